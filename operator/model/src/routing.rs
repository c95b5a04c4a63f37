//! Shortest paths by one-way delay over the links that are up, as next hops per node.
//!
//! One Dijkstra per destination over the undirected graph (delays are symmetric), so each
//! tree rooted at a destination gives every node's next hop towards it. Ground nodes do not
//! relay: a path may start or end at one, never cross one (as in Hypatia).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::links::LinkState;
use crate::plan::NodeIdx;

const NONE: u32 = u32::MAX;

/// The graph of links that are up, in compressed adjacency form.
#[derive(Clone, Debug)]
pub struct Graph {
    offsets: Vec<u32>,
    /// (neighbour, one-way delay in ns)
    edges: Vec<(u32, u64)>,
}

impl Graph {
    pub fn from_links(n_nodes: usize, links: &[LinkState]) -> Self {
        let up = || links.iter().filter(|l| l.up);
        let mut degree = vec![0u32; n_nodes + 1];
        for l in up() {
            degree[l.a as usize] += 1;
            degree[l.b as usize] += 1;
        }
        let mut offsets = Vec::with_capacity(n_nodes + 1);
        let mut total = 0u32;
        for d in &degree[..n_nodes] {
            offsets.push(total);
            total += d;
        }
        offsets.push(total);
        let mut fill: Vec<u32> = offsets[..n_nodes].to_vec();
        let mut edges = vec![(0u32, 0u64); total as usize];
        for l in up() {
            for (from, to) in [(l.a, l.b), (l.b, l.a)] {
                edges[fill[from as usize] as usize] = (to, l.delay_ns);
                fill[from as usize] += 1;
            }
        }
        Self { offsets, edges }
    }

    pub fn n_nodes(&self) -> usize {
        self.offsets.len() - 1
    }

    fn neighbours(&self, v: u32) -> &[(u32, u64)] {
        &self.edges[self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize]
    }
}

/// Next hops towards a set of destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    pub destinations: Vec<NodeIdx>,
    n_nodes: usize,
    /// `slot_of[v]`: v's position in `destinations`, or NONE.
    slot_of: Vec<u32>,
    /// `next_hop[d * n_nodes + v]`: v's next hop towards `destinations[d]`, or NONE.
    next_hop: Vec<u32>,
    /// `delay_ns[d * n_nodes + v]`: one-way path delay from v to `destinations[d]`.
    delay_ns: Vec<u64>,
}

impl Routes {
    /// Shortest-delay trees towards every destination; `relays[v]` says whether v may be
    /// crossed by a path (satellites) or only start or end one (ground nodes).
    pub fn compute(graph: &Graph, relays: &[bool], destinations: &[NodeIdx]) -> Self {
        Self::compute_stable(graph, relays, destinations, None, 0)
    }

    /// Like `compute`, but a node keeps its next hop from `previous` towards a destination
    /// while that hop is still linked, strictly closer to the destination than the node
    /// (so paths cannot loop), and at most `slack_ns` worse than the shortest path through
    /// the node's best hop. Each hop adds at most `slack_ns`, so a path of h hops is at most
    /// h x `slack_ns` longer than the shortest. Without it, near-equal paths of a grid flip
    /// next hops every tick as delays drift.
    pub fn compute_stable(
        graph: &Graph,
        relays: &[bool],
        destinations: &[NodeIdx],
        previous: Option<&Routes>,
        slack_ns: u64,
    ) -> Self {
        let n = graph.n_nodes();
        let previous = previous.filter(|p| slack_ns > 0 && p.destinations == destinations && p.n_nodes == n);
        let mut next_hop = vec![NONE; n * destinations.len()];
        let mut delay_ns = vec![u64::MAX; n * destinations.len()];
        let mut heap = BinaryHeap::new();
        let mut order = Vec::with_capacity(n);
        for (d, &root) in destinations.iter().enumerate() {
            let hops = &mut next_hop[d * n..(d + 1) * n];
            let dist = &mut delay_ns[d * n..(d + 1) * n];
            shortest_path_tree(graph, relays, root, hops, dist, &mut heap, &mut order);
            if let Some(p) = previous {
                let before = &p.next_hop[d * n..(d + 1) * n];
                keep_previous_hops(graph, relays, root, hops, dist, before, slack_ns, &order);
            }
        }
        let mut slot_of = vec![NONE; n];
        for (d, &dest) in destinations.iter().enumerate() {
            slot_of[dest as usize] = d as u32;
        }
        Self { destinations: destinations.to_vec(), n_nodes: n, slot_of, next_hop, delay_ns }
    }

    fn slot(&self, destination: NodeIdx) -> Option<usize> {
        let slot = *self.slot_of.get(destination as usize)?;
        (slot != NONE).then_some(slot as usize)
    }

    /// `from`'s next hop towards `to`, if `to` is a destination and reachable.
    pub fn next_hop(&self, from: NodeIdx, to: NodeIdx) -> Option<NodeIdx> {
        let d = self.slot(to)?;
        let hop = self.next_hop[d * self.n_nodes + from as usize];
        (hop != NONE).then_some(hop)
    }

    /// One-way delay of the shortest path from `from` to `to`, if reachable.
    pub fn delay_ns(&self, from: NodeIdx, to: NodeIdx) -> Option<u64> {
        let d = self.slot(to)?;
        let delay = self.delay_ns[d * self.n_nodes + from as usize];
        (delay != u64::MAX).then_some(delay)
    }

    /// The nodes from `from` to `to` along next hops, both included.
    pub fn path(&self, from: NodeIdx, to: NodeIdx) -> Option<Vec<NodeIdx>> {
        let d = self.slot(to)?;
        let mut path = vec![from];
        let mut v = from;
        while v != to {
            let hop = self.next_hop[d * self.n_nodes + v as usize];
            if hop == NONE || path.len() > self.n_nodes {
                return None;
            }
            path.push(hop);
            v = hop;
        }
        Some(path)
    }

    /// Every (node, destination, next hop), destination-major.
    pub fn iter(&self) -> impl Iterator<Item = (NodeIdx, NodeIdx, NodeIdx)> + '_ {
        self.destinations.iter().enumerate().flat_map(move |(d, &dest)| {
            self.next_hop[d * self.n_nodes..(d + 1) * self.n_nodes]
                .iter()
                .enumerate()
                .filter(|(_, hop)| **hop != NONE)
                .map(move |(v, &hop)| (v as NodeIdx, dest, hop))
        })
    }

    /// The (node, destination) pairs whose next hop differs from `previous`'s, or `None`
    /// when the two cannot be compared (other destinations or node count).
    pub fn changed_since(&self, previous: &Routes) -> Option<Vec<(NodeIdx, NodeIdx)>> {
        if self.destinations != previous.destinations || self.n_nodes != previous.n_nodes {
            return None;
        }
        let n = self.n_nodes;
        let changed = self
            .next_hop
            .iter()
            .zip(&previous.next_hop)
            .enumerate()
            .filter(|(_, (now, before))| now != before)
            .map(|(i, _)| ((i % n) as NodeIdx, self.destinations[i / n]))
            .collect();
        Some(changed)
    }

    /// Number of (node, destination) pairs with a route.
    pub fn len(&self) -> usize {
        self.next_hop.iter().filter(|&&h| h != NONE).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Dijkstra from `root`: `dist[v]` = shortest delay v -> root, `hops[v]` = v's next hop.
/// Ties go to the path found first, popping equal distances by lower node index, so the
/// result is deterministic.
/// `order` receives the nodes in the order they are settled (nondecreasing distance).
fn shortest_path_tree(
    graph: &Graph,
    relays: &[bool],
    root: NodeIdx,
    hops: &mut [u32],
    dist: &mut [u64],
    heap: &mut BinaryHeap<Reverse<(u64, u32)>>,
    order: &mut Vec<u32>,
) {
    heap.clear();
    order.clear();
    dist[root as usize] = 0;
    heap.push(Reverse((0, root)));
    while let Some(Reverse((du, u))) = heap.pop() {
        if du > dist[u as usize] {
            continue;
        }
        order.push(u);
        if u != root && !relays[u as usize] {
            continue;
        }
        for &(v, w) in graph.neighbours(u) {
            let dv = du.saturating_add(w);
            if dv < dist[v as usize] {
                dist[v as usize] = dv;
                hops[v as usize] = u;
                heap.push(Reverse((dv, v)));
            }
        }
    }
}

/// Keeps each node's previous next hop where `Routes::compute_stable` allows, then sets
/// `dist` to the delay of the paths actually followed. `order` is the settling order of the
/// shortest-path search: every kept hop is strictly closer, so it comes first.
#[allow(clippy::too_many_arguments)] // one tree's arrays, passed together once
fn keep_previous_hops(
    graph: &Graph,
    relays: &[bool],
    root: NodeIdx,
    hops: &mut [u32],
    dist: &mut [u64],
    before: &[u32],
    slack_ns: u64,
    order: &[u32],
) {
    // The lightest link to `h` (the search itself takes the lightest of parallel links).
    let weight = |v: u32, h: u32| graph.neighbours(v).iter().filter(|(x, _)| *x == h).map(|&(_, w)| w).min();
    let shortest: Vec<u64> = dist.to_vec();
    for &v in order.iter().filter(|&&v| v != root) {
        let (vi, prev) = (v as usize, before[v as usize]);
        if prev == NONE || prev == hops[vi] || !(relays[prev as usize] || prev == root) {
            continue;
        }
        let Some(w) = weight(v, prev) else { continue };
        let via = shortest[prev as usize];
        if via < shortest[vi] && via.saturating_add(w) <= shortest[vi].saturating_add(slack_ns) {
            hops[vi] = prev;
        }
    }
    for &v in order.iter().filter(|&&v| v != root) {
        let h = hops[v as usize];
        dist[v as usize] = weight(v, h).map_or(u64::MAX, |w| w.saturating_add(dist[h as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{LinkId, LinkKind};
    use proptest::prelude::*;

    fn link(a: u32, b: u32, delay_ns: u64, up: bool) -> LinkState {
        LinkState {
            id: LinkId(u64::from(a) << 32 | u64::from(b)),
            a,
            b,
            kind: LinkKind::Isl,
            up,
            distance_m: 0.0,
            elevation_deg: None,
            delay_ns,
            jitter_ns: 0,
            loss_pct: 0.0,
            rate_bps: 1,
        }
    }

    /// Floyd-Warshall over the same graph, honouring the no-relay rule by forbidding
    /// intermediate nodes that are not relays.
    fn brute_force(n: usize, links: &[LinkState], relays: &[bool]) -> Vec<Vec<u64>> {
        let mut d = vec![vec![u64::MAX; n]; n];
        for (v, row) in d.iter_mut().enumerate() {
            row[v] = 0;
        }
        for l in links.iter().filter(|l| l.up) {
            let (a, b) = (l.a as usize, l.b as usize);
            d[a][b] = d[a][b].min(l.delay_ns);
            d[b][a] = d[b][a].min(l.delay_ns);
        }
        for k in (0..n).filter(|&k| relays[k]) {
            for i in 0..n {
                for j in 0..n {
                    let via = d[i][k].saturating_add(d[k][j]);
                    if via < d[i][j] {
                        d[i][j] = via;
                    }
                }
            }
        }
        d
    }

    #[test]
    fn a_ground_node_is_never_crossed() {
        // 0 - 1 (ground) - 2 is short, 0 - 3 - 2 is long: the path must avoid 1.
        let links = [link(0, 1, 1, true), link(1, 2, 1, true), link(0, 3, 10, true), link(3, 2, 10, true)];
        let relays = [true, false, true, true];
        let g = Graph::from_links(4, &links);
        let r = Routes::compute(&g, &relays, &[2]);
        assert_eq!(r.path(0, 2), Some(vec![0, 3, 2]));
        assert_eq!(r.delay_ns(0, 2), Some(20));
        // A ground node may still start a path.
        assert_eq!(r.path(1, 2), Some(vec![1, 2]));
    }

    #[test]
    fn down_links_are_not_used() {
        let links = [link(0, 1, 1, false), link(0, 2, 5, true), link(2, 1, 5, true)];
        let g = Graph::from_links(3, &links);
        let r = Routes::compute(&g, &[true; 3], &[1]);
        assert_eq!(r.path(0, 1), Some(vec![0, 2, 1]));
    }

    #[test]
    fn a_previous_hop_is_kept_within_the_slack_only() {
        // 0 reaches 3 via 1 (10 + 10) or via 2 (10 + 11): 2 is 1 ns worse.
        let links = [link(0, 1, 10, true), link(1, 3, 10, true), link(0, 2, 10, true), link(2, 3, 11, true)];
        let g = Graph::from_links(4, &links);
        let fresh = Routes::compute(&g, &[true; 4], &[3]);
        assert_eq!(fresh.next_hop(0, 3), Some(1));
        // Pretend the last tick used 2: with 5 ns of slack 0 stays with 2, paying 21.
        let mut before = fresh.clone();
        before.next_hop[0] = 2;
        let stable = Routes::compute_stable(&g, &[true; 4], &[3], Some(&before), 5);
        assert_eq!(stable.next_hop(0, 3), Some(2));
        assert_eq!(stable.delay_ns(0, 3), Some(21), "the delay is the followed path's");
        // Without slack, or when the hop is no longer linked, the shortest wins.
        assert_eq!(Routes::compute_stable(&g, &[true; 4], &[3], Some(&before), 0).next_hop(0, 3), Some(1));
        let cut = [link(0, 1, 10, true), link(1, 3, 10, true), link(0, 2, 10, false), link(2, 3, 11, true)];
        let g2 = Graph::from_links(4, &cut);
        assert_eq!(Routes::compute_stable(&g2, &[true; 4], &[3], Some(&before), 5).next_hop(0, 3), Some(1));
    }

    #[test]
    fn changes_are_listed_by_node_and_destination() {
        let before = Routes::compute(
            &Graph::from_links(3, &[link(0, 1, 1, true), link(1, 2, 1, true), link(0, 2, 5, true)]),
            &[true; 3],
            &[2],
        );
        let after = Routes::compute(
            &Graph::from_links(3, &[link(0, 1, 1, true), link(1, 2, 1, false), link(0, 2, 5, true)]),
            &[true; 3],
            &[2],
        );
        // 0 reached 2 via 1, now directly; 1 reached 2 directly, now via 0.
        assert_eq!(after.changed_since(&before), Some(vec![(0, 2), (1, 2)]));
        assert_eq!(after.changed_since(&after), Some(vec![]));
        let other = Routes::compute(&Graph::from_links(3, &[]), &[true; 3], &[1]);
        assert_eq!(after.changed_since(&other), None);
    }

    #[test]
    fn unreachable_nodes_have_no_route() {
        let links = [link(0, 1, 1, true)];
        let g = Graph::from_links(3, &links);
        let r = Routes::compute(&g, &[true; 3], &[0]);
        assert_eq!(r.next_hop(2, 0), None);
        assert_eq!(r.next_hop(1, 0), Some(0));
        assert_eq!(r.len(), 1);
    }

    proptest! {
        /// Kept hops never make a loop, and every path stays within hops x slack of the
        /// shortest, whatever the previous tick's hops were.
        #[test]
        fn stable_routes_are_loop_free_and_near_shortest(
            n in 2usize..10,
            raw in proptest::collection::vec((0u32..10, 0u32..10, 1u64..1000), 0..30),
            previous_hops in proptest::collection::vec(0u32..11, 100),
            slack in 0u64..300,
        ) {
            let links: Vec<LinkState> = raw.iter()
                .filter(|(a, b, _)| (*a as usize) < n && (*b as usize) < n && a != b)
                .map(|&(a, b, w)| link(a, b, w, true))
                .collect();
            let g = Graph::from_links(n, &links);
            let relays = vec![true; n];
            let dests: Vec<u32> = (0..n as u32).collect();
            let best = Routes::compute(&g, &relays, &dests);
            let mut before = best.clone();
            for (slot, h) in before.next_hop.iter_mut().zip(&previous_hops) {
                *slot = if (*h as usize) < n { *h } else { NONE };
            }
            let stable = Routes::compute_stable(&g, &relays, &dests, Some(&before), slack);
            for to in 0..n as u32 {
                for from in (0..n as u32).filter(|&f| f != to) {
                    let path = stable.path(from, to);
                    prop_assert_eq!(path.is_some(), best.path(from, to).is_some());
                    if let Some(path) = path {
                        let hops = (path.len() - 1) as u64;
                        let d = stable.delay_ns(from, to).unwrap();
                        let shortest = best.delay_ns(from, to).unwrap();
                        prop_assert!(d >= shortest && d <= shortest + hops * slack, "{} vs {} over {} hops", d, shortest, hops);
                    }
                }
            }
        }

        /// On random small graphs, following next hops reaches the destination with exactly
        /// the brute-force shortest delay, and every node the brute force can reach has a route.
        #[test]
        fn next_hops_follow_brute_force_shortest_paths(
            n in 2usize..12,
            raw in proptest::collection::vec((0u32..12, 0u32..12, 1u64..1000, proptest::bool::weighted(0.8)), 0..40),
            relay_bits in proptest::collection::vec(proptest::bool::weighted(0.7), 12),
        ) {
            let links: Vec<LinkState> = raw.iter()
                .filter(|(a, b, _, _)| (*a as usize) < n && (*b as usize) < n && a != b)
                .map(|&(a, b, w, up)| link(a, b, w, up))
                .collect();
            let relays = &relay_bits[..n];
            let want = brute_force(n, &links, relays);
            let g = Graph::from_links(n, &links);
            let dests: Vec<u32> = (0..n as u32).collect();
            let r = Routes::compute(&g, relays, &dests);
            for to in 0..n {
                for from in 0..n {
                    if from == to { continue; }
                    let (from, to) = (from as u32, to as u32);
                    match r.path(from, to) {
                        None => prop_assert_eq!(want[from as usize][to as usize], u64::MAX),
                        Some(path) => {
                            let mut total = 0;
                            for w in path.windows(2) {
                                let hop = links.iter().filter(|l| l.up && ((l.a, l.b) == (w[0], w[1]) || (l.b, l.a) == (w[0], w[1])))
                                    .map(|l| l.delay_ns).min();
                                prop_assert!(hop.is_some(), "next hop {} -> {} is not an up link", w[0], w[1]);
                                total += hop.unwrap();
                            }
                            for v in &path[1..path.len() - 1] {
                                prop_assert!(relays[*v as usize], "path crosses non-relay {}", v);
                            }
                            prop_assert_eq!(total, want[from as usize][to as usize]);
                            prop_assert_eq!(Some(total), r.delay_ns(from, to));
                        }
                    }
                }
            }
        }
    }
}
