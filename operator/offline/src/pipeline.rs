//! Many ticks on all cores, delivered in order. Geometry and routes of a tick depend only
//! on the plan and t, so they run in parallel; the ground-link choice depends on the tick
//! before (hysteresis), so it alone is chained, on one thread, between the parallel stages.

use std::collections::BTreeSet;

use orbitnet_model::{GroundChoice, NodeIdx, Plan, Routes, SimTime, SpecDuration, State};
use rayon::prelude::*;

/// Ticks per batch: enough to keep every core busy, few enough that a batch of states with
/// routes (about 2 MB each for Starlink shell 1) stays small.
const BATCH: usize = 32;

/// Computes every tick from `from` to `to` (inclusive, every `step`) and hands the states
/// to `sink` in time order; routes only if `with_routes`. Stops early if `sink` fails.
pub fn for_each_tick<E>(
    plan: &Plan,
    from: SimTime,
    to: SimTime,
    step: SpecDuration,
    with_routes: bool,
    mut sink: impl FnMut(State) -> Result<(), E>,
) -> Result<(), E> {
    let mut previous: Option<GroundChoice> = None;
    // With route hysteresis a tick's routes depend on the tick before's: computed in order.
    let chained_routes = with_routes && plan.route_hysteresis_ns > 0;
    let mut previous_routes: Option<Routes> = None;
    let mut times = Plan::tick_times(from, to, step).peekable();
    let mut batch = Vec::with_capacity(BATCH);
    while times.peek().is_some() {
        batch.clear();
        batch.extend(times.by_ref().take(BATCH));
        let geometries: Vec<_> = batch.par_iter().map(|&t| plan.geometry(t)).collect();
        let mut chained = Vec::with_capacity(geometries.len());
        for geometry in geometries {
            let faults = plan.active_faults(geometry.t);
            let choice = plan.choose_ground_links(&geometry, &faults, previous.as_ref());
            let before = previous.replace(choice.clone());
            chained.push((geometry, choice, before));
        }
        let mut states: Vec<State> = chained
            .into_par_iter()
            .map(|(geometry, choice, before)| {
                let mut state = plan.state_with_choice(geometry, choice, before.as_ref());
                if with_routes && !chained_routes {
                    state.routes = plan.routes_for(&state.links, None);
                }
                state
            })
            .collect();
        if chained_routes {
            for state in &mut states {
                state.routes = plan.routes_for(&state.links, previous_routes.as_ref());
                previous_routes.clone_from(&state.routes);
            }
        }
        for state in states {
            sink(state)?;
        }
    }
    Ok(())
}

/// Every (ground node, satellite) pair the model chooses between `from` and `to`.
pub fn ground_links_used(
    plan: &Plan,
    from: SimTime,
    to: SimTime,
    step: SpecDuration,
) -> BTreeSet<(NodeIdx, NodeIdx)> {
    let mut used = BTreeSet::new();
    let _ = for_each_tick(plan, from, to, step, false, |state| -> Result<(), ()> {
        for (g, sats) in state.ground_choice.per_ground.iter().enumerate() {
            used.extend(sats.iter().map(|&s| ((plan.n_sats + g) as NodeIdx, s)));
        }
        Ok(())
    });
    used
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

    /// The parallel pipeline must give exactly what the model's own sequential iterator
    /// gives: same links, same hysteresis-chained choices, same routes, in order; with and
    /// without route hysteresis.
    #[test]
    fn parallel_pipeline_equals_the_sequential_model() {
        same_as_sequential(YAML);
        same_as_sequential(&format!("{YAML}  routeHysteresisUs: 300\n"));
    }

    fn same_as_sequential(yaml: &str) {
        let plan = orbitnet_model::compile_yaml(yaml).unwrap();
        let (from, to, step) =
            (SimTime::ZERO, SimTime::from_nanos(200_000_000_000), SpecDuration::from_secs(3));
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
        assert!(want.iter().map(|s| s.handovers).sum::<usize>() > 0, "the test must exercise handovers");
    }
}
