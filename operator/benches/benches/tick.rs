//! One tick of Starlink shell 1 + 100 stations with routing, on one core (DESIGN.md §7:
//! <= 20 ms), and its stages.

use criterion::{Criterion, criterion_group, criterion_main};
use orbitnet_model::SimTime;
use std::hint::black_box;

fn tick(c: &mut Criterion) {
    let plan = orbitnet_benches::scenario("starlink-shell1.yaml");
    let t = SimTime::from_nanos(42_300_000_000);
    let previous = plan.state_at(SimTime::from_nanos(42_200_000_000), None);
    let mut g = c.benchmark_group("starlink-shell1");
    g.sample_size(30);
    g.bench_function("state_at with routes", |b| b.iter(|| plan.state_at(black_box(t), Some(&previous))));
    g.bench_function("geometry", |b| b.iter(|| plan.geometry(black_box(t))));
    let geometry = plan.geometry(t);
    let faults = plan.active_faults(t);
    g.bench_function("ground-link choice", |b| {
        b.iter(|| plan.choose_ground_links(&geometry, &faults, Some(&previous.ground_choice)))
    });
    let choice = plan.choose_ground_links(&geometry, &faults, Some(&previous.ground_choice));
    g.bench_function("link states", |b| b.iter(|| plan.link_states(&geometry, &faults, &choice)));
    let links = plan.link_states(&geometry, &faults, &choice);
    g.bench_function("routes to 100 stations", |b| b.iter(|| plan.routes_for(black_box(&links))));
    g.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);
