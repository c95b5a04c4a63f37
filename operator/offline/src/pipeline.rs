//! Many ticks on all cores, delivered in order. The model's timeline steps the ground-link
//! choice from tick to tick (hysteresis) on one thread, while the routes of the batch before
//! (a function of each tick's links alone, the bulk of the work) are computed on the others.

use orbitnet_model::{Plan, SimTime, SpecDuration, State};
use rayon::prelude::*;

/// Ticks per batch: enough to keep every core busy, few enough that a batch of states with
/// routes (about 2 MB each for Starlink shell 1) stays small.
const BATCH: usize = 32;

/// Computes the states at `from`, `from + step`, ... up to `to` (inclusive) and hands them
/// to `sink` in time order; routes only if `with_routes`. Stops early if `sink` fails.
pub fn for_each_tick<E>(
    plan: &Plan,
    from: SimTime,
    to: SimTime,
    step: SpecDuration,
    with_routes: bool,
    mut sink: impl FnMut(State) -> Result<(), E>,
) -> Result<(), E> {
    if with_routes && plan.route_hysteresis_ns > 0 {
        // A tick's routes depend on the tick before's: all in order, on one thread.
        return plan.states(from, to, step).try_for_each(sink);
    }
    let mut timeline = plan.timeline().without_routes();
    let mut times = Plan::tick_times(from, to, step);
    let mut routed: Vec<State> = Vec::new();
    loop {
        let next: Vec<SimTime> = times.by_ref().take(BATCH).collect();
        let (unrouted, done) = rayon::join(
            || next.iter().map(|&t| timeline.state_at(plan, t)).collect::<Vec<State>>(),
            || {
                let mut batch = std::mem::take(&mut routed);
                if with_routes {
                    batch.par_iter_mut().for_each(|s| s.routes = plan.routes_for(&s.links, None));
                }
                batch
            },
        );
        for state in done {
            sink(state)?;
        }
        if unrouted.is_empty() {
            return Ok(());
        }
        routed = unrouted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
apiVersion: orbitnet.dev/v1alpha1
kind: Constellation
metadata: {name: t}
spec:
  epoch: "2026-11-24T00:00:00Z"
  shells:
  - {name: s, walker: {type: delta, planes: 4, satsPerPlane: 6, phasing: 1}, altitudeKm: 1200, inclinationDeg: 60}
  groundStations:
  - {name: a, latDeg: 10, lonDeg: 10}
  - {name: b, latDeg: 40, lonDeg: -20}
  groundLinks: {minElevationDeg: 10, policy: highestElevation, antennas: 1, hysteresisDeg: 5}
"#;

    /// The parallel pipeline must give exactly what the model's own timeline gives: same
    /// links, same hysteresis-chained choices, same routes, in order; with and without route
    /// hysteresis.
    #[test]
    fn parallel_pipeline_equals_the_sequential_model() {
        for step in [SpecDuration::from_secs(1), SpecDuration::from_millis(2_500)] {
            same_as_sequential(YAML, step);
            same_as_sequential(&format!("{YAML}  routeHysteresisUs: 300\n"), step);
        }
    }

    fn same_as_sequential(yaml: &str, step: SpecDuration) {
        let plan = orbitnet_model::compile_yaml(yaml).unwrap();
        let (from, to) = (SimTime::ZERO, SimTime::from_nanos(400_000_000_000));
        let want: Vec<State> = plan.states(from, to, step).collect();
        let mut got = Vec::new();
        for_each_tick(&plan, from, to, step, true, |s| {
            got.push(s);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got.len() > BATCH, "the test must cross a batch boundary");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.t, w.t);
            assert_eq!(g.links, w.links);
            assert_eq!(g.ground_choice, w.ground_choice);
            assert_eq!(g.handovers, w.handovers);
            assert_eq!(g.routes, w.routes);
        }
        let changes = want.windows(2).filter(|w| w[0].ground_choice != w[1].ground_choice).count();
        assert!(changes > 0, "the test must exercise handovers");
    }
}
