//! One tick of Starlink shell 1 + 100 stations with routing, on one core (DESIGN.md §8:
//! <= 20 ms), its stages, the cost of starting cold at the worst tick, and a runner's whole
//! tick without the kernel, before the engine and with it.

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

/// A runner's work per tick for Starlink shell 1, without the kernel, side by side: as the
/// local runner and the agent each did it before the engine (the state chained from the
/// tick before, then the dataplane's difference), and as the engine does it (its timeline,
/// the links to build, the difference, events).
fn runner_tick(c: &mut Criterion) {
    use orbitnet_dataplane::apply::{Applier, End, Wiring};
    use orbitnet_engine::{Engine, MadeUp, Settings};
    use orbitnet_model::{GroundChoice, NodeIdx};
    let plan = orbitnet_benches::scenario("starlink-shell1.yaml");
    let (first, ticks) = (100i64, 30i64);
    let settings = Settings::default();
    let all = 0..plan.nodes.len() as NodeIdx;
    // An engine with the grid and its first window of ground links built.
    let built_engine = || {
        let mut engine = Engine::detached(
            plan.clone(),
            MadeUp::default(),
            all.clone(),
            settings,
            plan.tick_time(first),
            None,
        );
        engine.build_all(&mut |_, _| {});
        engine
    };
    let mut g = c.benchmark_group("starlink-shell1 runner tick");
    g.sample_size(10);
    g.bench_function("before the engine: chained state + difference", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let engine = built_engine();
                let mut wiring = Wiring::default();
                let mut ifindex = 10;
                for (a, b) in engine.wanted() {
                    for (node, peer) in [(a, b), (b, a)] {
                        ifindex += 1;
                        wiring.add(End {
                            link: plan.link_id(a, b),
                            node,
                            peer,
                            ifindex,
                            name: String::new(),
                        });
                    }
                }
                let mut applier = Applier::detached(wiring, all.clone())
                    .with_delay_tolerance(settings.delay_tolerance.as_nanos());
                let mut previous: Option<GroundChoice> =
                    Some(plan.state_at(plan.tick_time(first)).ground_choice);
                applier.apply(&plan, &plan.state_at(plan.tick_time(first)));
                let started = std::time::Instant::now();
                for k in first + 1..=first + ticks {
                    let t = plan.tick_time(k);
                    let geometry = plan.geometry(t);
                    let faults = plan.active_faults(t);
                    let choice = plan.choose_ground_links(&geometry, &faults, previous.as_ref());
                    let mut state = plan.state_with_choice(geometry, &faults, choice, previous.as_ref());
                    state.routes = plan.routes_for(&state.links, None);
                    previous = Some(state.ground_choice.clone());
                    black_box(applier.apply(&plan, &state));
                }
                total += started.elapsed();
            }
            total / ticks as u32
        })
    });
    g.bench_function("the engine", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let mut engine = built_engine();
                engine.apply(first);
                let started = std::time::Instant::now();
                for k in first + 1..=first + ticks {
                    black_box(engine.apply(k));
                }
                total += started.elapsed();
            }
            total / ticks as u32
        })
    });
    g.finish();
}

criterion_group!(benches, tick, diff, runner_tick);
criterion_main!(benches);
