//! Convergence, judged from the nodes' forwarding tables against the model. Pure: the
//! engine reads the kernels (`Fib`), this module says what they forward.
//!
//! A ground-node pair the model says is reachable is *forwarded* when every branch of the
//! nodes' next hops (ECMP included) leads from source to destination over links that are
//! up, with no loop and no node lacking a route; it is *shortest* when, in addition, the
//! slowest branch is no slower than the model's path. After each event that changes the
//! graph, a `Watch` takes snapshots until every pair is shortest, the forwarding has held
//! still for a while, the next event comes, or it gives up; then it says what happened.

use orbitnet_model::{LinkState, NodeIdx, Plan, Routes};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Two paths whose delays differ by less than this are equally short (model delays are
/// exact, so this only absorbs the rounding of sums).
const SAME_DELAY_NS: u64 = 1_000;

/// What the nodes' kernels forward, as next-hop nodes, towards the destinations watched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fib {
    observed: Vec<bool>,
    /// (node, destination) -> next hops. No entry at an observed node: no route.
    hops: FxHashMap<(NodeIdx, NodeIdx), Hops>,
}

/// A route's next hops: nodes, or `Unknown` when one leaves through an interface that is
/// not a link of the plan (the user's own tunnel, say): where it goes is not known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hops {
    Nodes(Vec<NodeIdx>),
    Unknown,
}

impl Fib {
    pub fn new(n_nodes: usize) -> Self {
        Self { observed: vec![false; n_nodes], hops: FxHashMap::default() }
    }

    /// Says `node`'s table was read (a node not observed is one whose kernel this process
    /// cannot see).
    pub fn observe(&mut self, node: NodeIdx) {
        self.observed[node as usize] = true;
    }

    /// `node` forwards towards `dest` over `hops` (an empty list: a route that drops).
    pub fn set(&mut self, node: NodeIdx, dest: NodeIdx, hops: Hops) {
        self.hops.insert((node, dest), hops);
    }

    pub fn hops(&self, node: NodeIdx, dest: NodeIdx) -> Option<&Hops> {
        self.hops.get(&(node, dest))
    }

    /// (node, destination) entries that differ from `before`'s.
    pub fn changes_since(&self, before: &Fib) -> usize {
        let changed = self.hops.iter().filter(|(k, v)| before.hops.get(k) != Some(v)).count();
        changed + before.hops.keys().filter(|k| !self.hops.contains_key(k)).count()
    }
}

/// What forwarding does to one pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Forwarding {
    /// Delivered on every branch; the slowest branch's one-way delay.
    Delivered { worst_ns: u64 },
    /// Some branch comes back to a node it crossed.
    Loop { at: NodeIdx },
    /// Some branch reaches a node without a route, or a next hop whose link is not up.
    Blackhole { at: NodeIdx },
    /// Some branch reaches a node this process cannot see, or leaves the plan's links.
    Unknown { at: NodeIdx },
}

/// The model's side at one tick: the one-way delay of each link up, and of the path the
/// model would use between each pair of ground nodes it can reach.
#[derive(Clone, Debug, Default)]
pub struct Model {
    links: FxHashMap<(NodeIdx, NodeIdx), u64>,
    pairs: FxHashMap<(NodeIdx, NodeIdx), u64>,
}

impl Model {
    /// `routes` reaches at least the ground nodes: the routes installed in central mode,
    /// the shortest paths otherwise.
    pub fn new(plan: &Plan, links: &[LinkState], routes: &Routes) -> Self {
        let links = links
            .iter()
            .filter(|l| l.up)
            .flat_map(|l| [((l.a, l.b), l.delay_ns), ((l.b, l.a), l.delay_ns)])
            .collect();
        let ground = || plan.ground_range().map(|g| g as NodeIdx);
        let pairs = ground()
            .flat_map(|s| ground().filter(move |&d| d != s).map(move |d| (s, d)))
            .filter_map(|(s, d)| Some(((s, d), routes.delay_ns(s, d)?)))
            .collect();
        Self { links, pairs }
    }
}

/// One snapshot judged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Judgement {
    /// Ground pairs (ordered) the model can reach.
    pub pairs: usize,
    pub forwarded: usize,
    pub shortest: usize,
    pub loops: usize,
    pub blackholes: usize,
    pub unknown: usize,
    /// Largest slowest-branch delay over the model's, among forwarded pairs (1 = shortest).
    pub stretch: f64,
    /// The first pair not forwarded, and why: "alpha → bravo: no route at ring-0-3".
    pub unforwarded: Option<String>,
}

impl Judgement {
    pub fn all_forwarded(&self) -> bool {
        self.forwarded == self.pairs
    }

    pub fn all_shortest(&self) -> bool {
        self.shortest == self.pairs
    }
}

/// Judges `fib` against the model for every ordered pair of ground nodes.
pub fn judge(plan: &Plan, model: &Model, fib: &Fib) -> Judgement {
    let mut j = Judgement { stretch: 1.0, ..Judgement::default() };
    for dest in plan.ground_range().map(|d| d as NodeIdx) {
        let mut walk = Walk::new(fib, &model.links, dest, plan.nodes.len());
        for src in plan.ground_range().map(|s| s as NodeIdx).filter(|&s| s != dest) {
            let Some(&model_ns) = model.pairs.get(&(src, dest)) else { continue };
            j.pairs += 1;
            let (why, at) = match walk.from(src) {
                Forwarding::Delivered { worst_ns } => {
                    j.forwarded += 1;
                    if worst_ns <= model_ns + SAME_DELAY_NS {
                        j.shortest += 1;
                    }
                    if model_ns > 0 {
                        j.stretch = j.stretch.max(worst_ns as f64 / model_ns as f64);
                    }
                    continue;
                }
                Forwarding::Loop { at } => {
                    j.loops += 1;
                    ("a loop through", at)
                }
                Forwarding::Blackhole { at } => {
                    j.blackholes += 1;
                    ("no route or a link down at", at)
                }
                Forwarding::Unknown { at } => {
                    j.unknown += 1;
                    let seen = fib.observed[at as usize];
                    (if seen { "out by an interface of no link at" } else { "a table not read, at" }, at)
                }
            };
            j.unforwarded.get_or_insert_with(|| {
                let name = |n: NodeIdx| plan.node(n).name.as_str();
                format!("{} → {}: {why} {}", name(src), name(dest), name(at))
            });
        }
    }
    j
}

/// Where every node's forwarding towards one destination leads, each node worked out once
/// (ECMP makes a DAG whose paths could be exponentially many).
struct Walk<'a> {
    fib: &'a Fib,
    delay: &'a FxHashMap<(NodeIdx, NodeIdx), u64>,
    dest: NodeIdx,
    done: Vec<Option<Forwarding>>,
    on_path: Vec<bool>,
}

impl<'a> Walk<'a> {
    fn new(fib: &'a Fib, delay: &'a FxHashMap<(NodeIdx, NodeIdx), u64>, dest: NodeIdx, n: usize) -> Self {
        Self { fib, delay, dest, done: vec![None; n], on_path: vec![false; n] }
    }

    fn from(&mut self, v: NodeIdx) -> Forwarding {
        if v == self.dest {
            return Forwarding::Delivered { worst_ns: 0 };
        }
        if let Some(f) = self.done[v as usize] {
            return f;
        }
        if self.on_path[v as usize] {
            return Forwarding::Loop { at: v };
        }
        if !self.fib.observed.get(v as usize).copied().unwrap_or(false) {
            return Forwarding::Unknown { at: v };
        }
        let hops = match self.fib.hops(v, self.dest) {
            None => return self.settle(v, Forwarding::Blackhole { at: v }),
            Some(Hops::Unknown) => return self.settle(v, Forwarding::Unknown { at: v }),
            Some(Hops::Nodes(h)) if h.is_empty() => return self.settle(v, Forwarding::Blackhole { at: v }),
            Some(Hops::Nodes(h)) => h.clone(),
        };
        self.on_path[v as usize] = true;
        let mut result = Forwarding::Delivered { worst_ns: 0 };
        for hop in hops {
            let Some(&link_ns) = self.delay.get(&(v, hop)) else {
                result = Forwarding::Blackhole { at: v };
                break;
            };
            match self.from(hop) {
                Forwarding::Delivered { worst_ns } => {
                    if let Forwarding::Delivered { worst_ns: w } = &mut result {
                        *w = (*w).max(link_ns + worst_ns);
                    }
                }
                bad => {
                    result = bad;
                    break;
                }
            }
        }
        self.on_path[v as usize] = false;
        // A loop found below a node is only known to loop through the nodes on the stack;
        // caching it for them is right, as every one of them reaches the loop.
        self.settle(v, result)
    }

    fn settle(&mut self, v: NodeIdx, f: Forwarding) -> Forwarding {
        self.done[v as usize] = Some(f);
        f
    }
}

/// How a watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Every pair forwarded over paths as short as the model's.
    Shortest,
    /// Every pair forwarded, and the tables held still for the quiet time, over some paths
    /// longer than the model's.
    Stable,
    /// The next event came first.
    Superseded,
    /// Not settled within the time allowed.
    Timeout,
    /// The run ended first.
    Ended,
}

/// How long a watch waits for the forwarding to settle: it ends `quiet_s` after the last
/// change once every pair is forwarded, and gives up after `limit_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Patience {
    pub quiet_s: f64,
    pub limit_s: f64,
}

/// One event's convergence, as telemetry carries it. Times are real seconds after the
/// event was applied to the links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Convergence {
    /// The event's tick and its emulation time.
    pub k: i64,
    pub t: f64,
    /// `start`, `faultBegan`, `faultEnded`, `handover` or `link`.
    pub kind: String,
    pub what: String,
    pub outcome: Outcome,
    /// When every reachable pair was forwarded, for good (None: not by the end).
    pub forwarded_s: Option<f64>,
    /// When every reachable pair was forwarded over a shortest path, for good.
    pub shortest_s: Option<f64>,
    /// The stretch at the end (slowest forwarding branch over the model's path, worst pair).
    pub stretch: f64,
    /// Reachable ground pairs at the end, and the most seen not forwarded at once.
    pub pairs: usize,
    pub broken: usize,
    pub loops: usize,
    pub blackholes: usize,
    /// Forwarding entries (node, destination) changed from before the event to the end.
    pub churn: usize,
    pub snapshots: usize,
    pub watched_s: f64,
    /// At the last snapshot, the first pair not forwarded and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unforwarded: Option<String>,
}

impl Convergence {
    /// The event as routing objectives judge it.
    pub fn event(&self) -> orbitnet_mission::RoutingEvent {
        orbitnet_mission::RoutingEvent {
            t: self.t,
            kind: self.kind.clone(),
            forwarded_s: self.forwarded_s,
            watched_s: self.watched_s,
            settled_stretch: matches!(self.outcome, Outcome::Shortest | Outcome::Stable)
                .then_some(self.stretch),
        }
    }
}

/// One event being watched.
pub struct Watch {
    k: i64,
    t: f64,
    kind: String,
    what: String,
    before: Option<Fib>,
    last: Option<Fib>,
    /// Real seconds of the last snapshot, and of the last change in the forwarding.
    last_s: f64,
    changed_s: f64,
    /// Since when every pair has been forwarded / shortest, if they still are.
    forwarded_since: Option<f64>,
    shortest_since: Option<f64>,
    judged: Judgement,
    broken: usize,
    loops: usize,
    blackholes: usize,
    snapshots: usize,
}

impl Watch {
    /// A watch of the event at tick `k` (emulation time `t_s`); `before` is the last
    /// snapshot taken before it, if any.
    pub fn new(k: i64, t_s: f64, kind: &str, what: &str, before: Option<Fib>) -> Self {
        Self {
            k,
            t: t_s,
            kind: kind.to_owned(),
            what: what.to_owned(),
            before,
            last: None,
            last_s: 0.0,
            changed_s: 0.0,
            forwarded_since: None,
            shortest_since: None,
            // Until a snapshot says otherwise (a watch may end before its first).
            judged: Judgement { stretch: 1.0, ..Judgement::default() },
            broken: 0,
            loops: 0,
            blackholes: 0,
            snapshots: 0,
        }
    }

    /// Takes a snapshot read `at_s` real seconds after the event; returns the outcome once
    /// the watch is over.
    pub fn snapshot(
        &mut self,
        at_s: f64,
        judged: Judgement,
        fib: Fib,
        patience: Patience,
    ) -> Option<Outcome> {
        let changed = self.last.as_ref().is_none_or(|last| fib.changes_since(last) > 0);
        if changed {
            self.changed_s = at_s;
        }
        self.broken = self.broken.max(judged.pairs - judged.forwarded);
        self.loops = self.loops.max(judged.loops);
        self.blackholes = self.blackholes.max(judged.blackholes);
        self.forwarded_since = judged.all_forwarded().then(|| self.forwarded_since.unwrap_or(at_s));
        self.shortest_since = judged.all_shortest().then(|| self.shortest_since.unwrap_or(at_s));
        self.last_s = at_s;
        self.snapshots += 1;
        self.last = Some(fib);
        self.judged = judged;
        if self.shortest_since.is_some() {
            Some(Outcome::Shortest)
        } else if self.forwarded_since.is_some() && at_s - self.changed_s >= patience.quiet_s {
            Some(Outcome::Stable)
        } else if at_s >= patience.limit_s {
            Some(Outcome::Timeout)
        } else {
            None
        }
    }

    /// The last snapshot taken, to serve as the next event's `before`.
    pub fn last_fib(&self) -> Option<&Fib> {
        self.last.as_ref()
    }

    /// The record, with how it ended.
    pub fn finish(self, outcome: Outcome) -> Convergence {
        let churn = match (&self.before, &self.last) {
            (Some(before), Some(last)) => last.changes_since(before),
            (None, Some(last)) => last.hops.len(),
            _ => 0,
        };
        Convergence {
            k: self.k,
            t: self.t,
            kind: self.kind,
            what: self.what,
            outcome,
            forwarded_s: self.forwarded_since,
            shortest_s: self.shortest_since,
            stretch: self.judged.stretch,
            pairs: self.judged.pairs,
            broken: self.broken,
            loops: self.loops,
            blackholes: self.blackholes,
            churn,
            snapshots: self.snapshots,
            watched_s: self.last_s,
            unforwarded: self.judged.unforwarded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitnet_model::LinkKind;
    use orbitnet_model::routing::Graph;

    /// Four satellites in a ring 0-1-2-3-0 (10, 10, 10, 40 ms), a station on 0 and one
    /// on 2.
    const YAML: &str = r#"
apiVersion: orbitnet.dev/v1alpha1
kind: Constellation
metadata: {name: ring}
spec:
  epoch: "2026-11-24T00:00:00Z"
  shells:
  - {name: s, walker: {type: delta, planes: 1, satsPerPlane: 4}, altitudeKm: 8062, inclinationDeg: 0}
  groundStations:
  - {name: a, latDeg: 0, lonDeg: 0}
  - {name: b, latDeg: 0, lonDeg: 180}
  routing: ospf
"#;

    fn link(plan: &Plan, a: NodeIdx, b: NodeIdx, delay_ms: u64) -> LinkState {
        let kind = if plan.is_ground(a) { LinkKind::Gsl } else { LinkKind::Isl };
        LinkState {
            id: plan.link_id(a, b),
            a,
            b,
            kind,
            up: true,
            distance_m: 0.0,
            elevation_deg: None,
            delay_ns: delay_ms * 1_000_000,
            jitter_ns: 0,
            loss_pct: 0.0,
            rate_bps: 100_000_000,
        }
    }

    struct Case {
        plan: Plan,
        links: Vec<LinkState>,
        routes: Routes,
    }

    /// Nodes 0..4 satellites, 4 = a (on 0), 5 = b (on 2).
    fn case() -> Case {
        let plan = orbitnet_model::compile_yaml(YAML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.n_sats, plan.nodes.len()), (4, 6));
        let links = vec![
            link(&plan, 0, 1, 10),
            link(&plan, 1, 2, 10),
            link(&plan, 2, 3, 10),
            link(&plan, 3, 0, 40),
            link(&plan, 4, 0, 5),
            link(&plan, 5, 2, 5),
        ];
        let graph = Graph::from_links(plan.nodes.len(), &links);
        let relays: Vec<bool> = (0..6).map(|i| i < 4).collect();
        let routes = Routes::compute(&graph, &relays, &[4, 5]);
        Case { plan, links, routes }
    }

    fn fib(entries: &[(NodeIdx, NodeIdx, &[NodeIdx])]) -> Fib {
        let mut f = Fib::new(6);
        for n in 0..6 {
            f.observe(n);
        }
        for &(node, dest, hops) in entries {
            f.set(node, dest, Hops::Nodes(hops.to_vec()));
        }
        f
    }

    /// Shortest forwarding both ways: a-0-1-2-b.
    const SHORTEST: &[(NodeIdx, NodeIdx, &[NodeIdx])] = &[
        (4, 5, &[0]),
        (0, 5, &[1]),
        (1, 5, &[2]),
        (2, 5, &[5]),
        (5, 4, &[2]),
        (2, 4, &[1]),
        (1, 4, &[0]),
        (0, 4, &[4]),
    ];

    fn judged(c: &Case, f: &Fib) -> Judgement {
        judge(&c.plan, &Model::new(&c.plan, &c.links, &c.routes), f)
    }

    #[test]
    fn shortest_forwarding_is_converged() {
        let c = case();
        let j = judged(&c, &fib(SHORTEST));
        assert_eq!((j.pairs, j.forwarded, j.shortest), (2, 2, 2));
        assert_eq!(j.stretch, 1.0);
    }

    #[test]
    fn a_longer_branch_is_forwarded_with_its_stretch() {
        let c = case();
        // a -> b the long way round: a-0-3-2-b = 5 + 40 + 10 + 5 = 60 ms against 30 ms.
        let mut e = SHORTEST.to_vec();
        e.retain(|&(n, d, _)| !(n == 0 && d == 5));
        e.extend([(0, 5, &[3][..]), (3, 5, &[2][..])]);
        let j = judged(&c, &fib(&e));
        assert_eq!((j.forwarded, j.shortest), (2, 1));
        assert_eq!(j.stretch, 2.0);
        // ECMP over both: the slowest branch counts.
        e.retain(|&(n, d, _)| !(n == 0 && d == 5));
        e.push((0, 5, &[1, 3][..]));
        let j = judged(&c, &fib(&e));
        assert_eq!((j.forwarded, j.shortest, j.stretch), (2, 1, 2.0));
    }

    #[test]
    fn loops_and_blackholes_are_told_apart() {
        let c = case();
        // 1 points back at 0 towards b: a loop.
        let mut e = SHORTEST.to_vec();
        e.retain(|&(n, d, _)| !(n == 1 && d == 5));
        e.push((1, 5, &[0]));
        let j = judged(&c, &fib(&e));
        assert_eq!((j.forwarded, j.loops, j.blackholes), (1, 1, 0));
        assert_eq!(j.unforwarded.as_deref(), Some("a → b: a loop through s-0-0"));
        // No route at 1: a blackhole.
        e.retain(|&(n, d, _)| !(n == 1 && d == 5));
        let j = judged(&c, &fib(&e));
        assert_eq!((j.forwarded, j.loops, j.blackholes), (1, 0, 1));
        assert_eq!(j.unforwarded.as_deref(), Some("a → b: no route or a link down at s-0-1"));
        // A route over a link that is down (1-3 does not exist): a blackhole too.
        e.push((1, 5, &[3]));
        assert_eq!(judged(&c, &fib(&e)).blackholes, 1);
        // One good branch and one looping: the pair loops.
        e.retain(|&(n, d, _)| !(n == 1 && d == 5));
        e.push((1, 5, &[2, 0]));
        assert_eq!(judged(&c, &fib(&e)).loops, 1);
    }

    #[test]
    fn unseen_nodes_and_foreign_interfaces_are_unknown() {
        let c = case();
        let mut f = fib(SHORTEST);
        f.observed[1] = false;
        let j = judged(&c, &f);
        assert_eq!((j.forwarded, j.unknown), (0, 2));
        assert_eq!(j.unforwarded.as_deref(), Some("b → a: a table not read, at s-0-1"));
        let mut f = fib(SHORTEST);
        f.set(2, 5, Hops::Unknown);
        let j = judged(&c, &f);
        assert_eq!(j.unknown, 1);
        assert_eq!(j.unforwarded.as_deref(), Some("a → b: out by an interface of no link at s-0-2"));
        assert_eq!(judged(&c, &fib(SHORTEST)).unforwarded, None);
    }

    #[test]
    fn unreachable_pairs_are_not_counted() {
        let mut c = case();
        for l in &mut c.links {
            if l.a == 5 || l.b == 5 {
                l.up = false;
            }
        }
        let graph = Graph::from_links(6, &c.links);
        c.routes = Routes::compute(&graph, &[true, true, true, true, false, false], &[4, 5]);
        let j = judged(&c, &fib(&[]));
        assert_eq!(j.pairs, 0);
        assert!(j.all_forwarded() && j.all_shortest());
    }

    const PATIENCE: Patience = Patience { quiet_s: 1.0, limit_s: 10.0 };

    #[test]
    fn a_watch_waits_for_forwarding_that_holds() {
        let c = case();
        let before = fib(SHORTEST);
        let mut w = Watch::new(7, 7.0, "faultBegan", "link cut", Some(before.clone()));
        // Blackholed, then forwarded the long way, then flaps back to a blackhole.
        let mut partial = SHORTEST.to_vec();
        partial.retain(|&(n, d, _)| !(n == 0 && d == 5));
        let f = fib(&partial);
        assert_eq!(w.snapshot(0.01, judged(&c, &f), f, PATIENCE), None);
        let mut long = partial.clone();
        long.extend([(0, 5, &[3][..]), (3, 5, &[2][..])]);
        let f = fib(&long);
        assert_eq!(w.snapshot(0.5, judged(&c, &f), f, PATIENCE), None);
        let f = fib(&partial);
        assert_eq!(w.snapshot(0.6, judged(&c, &f), f, PATIENCE), None);
        let f = fib(&long);
        assert_eq!(w.snapshot(0.8, judged(&c, &f), f, PATIENCE), None);
        let f = fib(&long);
        assert_eq!(w.snapshot(1.2, judged(&c, &f), f, PATIENCE), None, "quiet for 0.4 s only");
        let f = fib(&long);
        assert_eq!(w.snapshot(1.8, judged(&c, &f), f, PATIENCE), Some(Outcome::Stable));
        let r = w.finish(Outcome::Stable);
        assert_eq!(r.forwarded_s, Some(0.8), "forwarded for good from the last recovery");
        assert_eq!((r.shortest_s, r.stretch, r.broken, r.blackholes), (None, 2.0, 1, 1));
        assert_eq!((r.churn, r.snapshots, r.watched_s), (2, 6, 1.8));
    }

    #[test]
    fn a_watch_ends_at_the_shortest_paths_or_gives_up() {
        let c = case();
        let mut w = Watch::new(0, 0.0, "start", "", None);
        let f = fib(SHORTEST);
        assert_eq!(w.snapshot(0.002, judged(&c, &f), f, PATIENCE), Some(Outcome::Shortest));
        let r = w.finish(Outcome::Shortest);
        assert_eq!((r.forwarded_s, r.shortest_s, r.churn), (Some(0.002), Some(0.002), 8));
        let mut w = Watch::new(0, 0.0, "start", "", None);
        let f = fib(&[]);
        assert_eq!(w.snapshot(10.0, judged(&c, &f), f, PATIENCE), Some(Outcome::Timeout));
        assert_eq!(w.finish(Outcome::Timeout).forwarded_s, None);
    }
}
