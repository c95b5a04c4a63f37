//! Our Dijkstra (compressed adjacency, binary heap, next hops recorded while searching)
//! against petgraph's `dijkstra` plus next-hop recovery from its distances, on the same
//! graph: Starlink shell 1's links at one tick, 100 destinations, every node a relay.

use criterion::{Criterion, criterion_group, criterion_main};
use orbitnet_model::routing::{Graph, Routes};
use orbitnet_model::{LinkState, SimTime};
use petgraph::graph::{NodeIndex, UnGraph};
use std::hint::black_box;

fn petgraph_next_hops(n: usize, links: &[LinkState], destinations: &[u32]) -> Vec<u32> {
    let mut g = UnGraph::<(), u64>::with_capacity(n, links.len());
    for _ in 0..n {
        g.add_node(());
    }
    for l in links.iter().filter(|l| l.up) {
        g.add_edge(NodeIndex::new(l.a as usize), NodeIndex::new(l.b as usize), l.delay_ns);
    }
    let mut hops = vec![u32::MAX; n * destinations.len()];
    for (d, &root) in destinations.iter().enumerate() {
        let dist = petgraph::algo::dijkstra(&g, NodeIndex::new(root as usize), None, |e| *e.weight());
        // petgraph gives distances only: a node's next hop is the lowest-index neighbour on
        // a shortest path.
        for v in g.node_indices().filter(|&v| v.index() != root as usize) {
            let Some(&dv) = dist.get(&v) else { continue };
            let hop = g
                .edges(v)
                .filter(|e| {
                    dist.get(&petgraph::visit::EdgeRef::target(e)).is_some_and(|&du| du + e.weight() == dv)
                })
                .map(|e| petgraph::visit::EdgeRef::target(&e).index() as u32)
                .min();
            hops[d * n + v.index()] = hop.unwrap_or(u32::MAX);
        }
    }
    hops
}

fn dijkstra(c: &mut Criterion) {
    let plan = orbitnet_benches::scenario("starlink-shell1.yaml");
    let state = plan.state_at(SimTime::ZERO);
    let destinations = plan.route_destinations();
    let n = plan.nodes.len();
    let relays = vec![true; n];
    let mut g = c.benchmark_group("routes to 100 stations, all relays");
    g.sample_size(20);
    g.bench_function("orbitnet", |b| {
        b.iter(|| Routes::compute(&Graph::from_links(n, black_box(&state.links)), &relays, &destinations))
    });
    g.bench_function("petgraph", |b| {
        b.iter(|| petgraph_next_hops(n, black_box(&state.links), &destinations))
    });
    g.finish();

    // Both must reach the same nodes, and petgraph's next hops must lead along paths of
    // our delay (next hops may differ where two paths tie).
    let ours = Routes::compute(&Graph::from_links(n, &state.links), &relays, &destinations);
    let theirs = petgraph_next_hops(n, &state.links, &destinations);
    let delay = |a: u32, b: u32| {
        let l = state.links.iter().find(|l| l.up && ((l.a, l.b) == (a, b) || (l.b, l.a) == (a, b)));
        l.map(|l| l.delay_ns).expect("a next hop over an up link")
    };
    for (d, &dest) in destinations.iter().enumerate() {
        for v in (0..n as u32).filter(|&v| v != dest) {
            assert_eq!(ours.next_hop(v, dest).is_some(), theirs[d * n + v as usize] != u32::MAX);
            if v % 97 == 0 && ours.next_hop(v, dest).is_some() {
                let (mut at, mut total) = (v, 0);
                while at != dest {
                    let hop = theirs[d * n + at as usize];
                    total += delay(at, hop);
                    at = hop;
                }
                assert_eq!(Some(total), ours.delay_ns(v, dest));
            }
        }
    }
}

criterion_group!(benches, dijkstra);
criterion_main!(benches);
