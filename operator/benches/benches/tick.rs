//! One tick of Starlink shell 1 + 100 stations with routing, on one core (DESIGN.md §8:
//! <= 20 ms), its stages, and the cost of starting cold at the worst tick.

use criterion::{Criterion, criterion_group, criterion_main};
use orbitnet_model::SimTime;
use std::hint::black_box;

fn tick(c: &mut Criterion) {
    let plan = orbitnet_benches::scenario("starlink-shell1.yaml");
    let t = SimTime::from_nanos(43_000_000_000);
    let previous = plan.state_at(SimTime::from_nanos(42_000_000_000));
    let mut g = c.benchmark_group("starlink-shell1");
    g.sample_size(30);
    g.bench_function("next tick with routes", |b| {
        b.iter_batched(
            || {
                let mut timeline = plan.timeline();
                timeline.state_at(&plan, previous.t);
                timeline
            },
            |mut timeline| timeline.state_at(&plan, black_box(t)),
            criterion::BatchSize::LargeInput,
        )
    });
    // A process that starts at a segment's first tick replays the most: a period and the
    // warm-up of geometry and ground-link choice.
    let worst = plan.tick_time(plan.anchors().segment_start(1));
    g.bench_function("cold start at a segment's first tick, with routes", |b| {
        b.iter(|| plan.state_at(black_box(worst)))
    });
    g.bench_function("geometry", |b| b.iter(|| plan.geometry(black_box(t))));
    let geometry = plan.geometry(t);
    let faults = plan.active_faults(t);
    g.bench_function("ground-link choice", |b| {
        b.iter(|| plan.choose_ground_links(&geometry, &faults, Some(&previous.ground_choice)))
    });
    let choice = plan.choose_ground_links(&geometry, &faults, Some(&previous.ground_choice));
    g.bench_function("link states", |b| b.iter(|| plan.link_states(&geometry, &faults, &choice)));
    let links = plan.link_states(&geometry, &faults, &choice);
    g.bench_function("routes to 100 stations", |b| b.iter(|| plan.routes_for(black_box(&links), None)));
    g.finish();
}

/// The dataplane's per-tick difference for Starlink shell 1 (a detached applier: the
/// work of deciding what to send, no kernel), over 30 consecutive 1 s ticks.
fn diff(c: &mut Criterion) {
    use orbitnet_dataplane::apply::{Applier, End, Wiring};
    use orbitnet_model::{LinkKind, NodeIdx};
    let plan = orbitnet_benches::scenario("starlink-shell1.yaml");
    let states: Vec<_> = plan.states(SimTime::ZERO, SimTime::from_nanos(30_000_000_000), plan.tick).collect();
    let mut wiring = Wiring::default();
    let mut next_ifindex = 10u32;
    let mut pairs: Vec<(NodeIdx, NodeIdx)> = plan.isls.iter().map(|l| (l.a, l.b)).collect();
    for s in &states {
        pairs.extend(s.links.iter().filter(|l| l.kind == LinkKind::Gsl).map(|l| (l.a, l.b)));
    }
    pairs.sort_unstable();
    pairs.dedup();
    for (a, b) in pairs {
        for (node, peer) in [(a, b), (b, a)] {
            next_ifindex += 1;
            wiring.add(End {
                link: plan.link_id(a, b),
                node,
                peer,
                ifindex: next_ifindex,
                name: String::new(),
            });
        }
    }
    let all = 0..plan.nodes.len() as NodeIdx;
    let mut g = c.benchmark_group("starlink-shell1");
    g.sample_size(10);
    g.bench_function("dataplane difference, first tick (every route)", |b| {
        b.iter(|| {
            let mut applier = Applier::detached(wiring.clone(), all.clone());
            black_box(applier.apply(&plan, &states[0]))
        })
    });
    g.bench_function("dataplane difference, 30 ticks", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let mut applier = Applier::detached(wiring.clone(), all.clone());
                applier.apply(&plan, &states[0]);
                let started = std::time::Instant::now();
                for s in &states[1..] {
                    black_box(applier.apply(&plan, s));
                }
                total += started.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, tick, diff);
criterion_main!(benches);
