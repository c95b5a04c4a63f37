//! Property tests over the parser and the model: no input makes them panic, and every state
//! they produce is sane (finite numbers, losses within 0..100 %, routes over up links).

use proptest::prelude::*;

use crate::plan::LinkKind;
use crate::{Plan, SimTime, State, compile_yaml};

const BACKBONE: &str = include_str!("../../../scenarios/backbone.yaml");

fn check_state(plan: &Plan, s: &State) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.geometry.ecef.len(), plan.nodes.len());
    for (r, alive) in s.geometry.ecef.iter().zip(&s.geometry.alive) {
        prop_assert!(!alive || r.iter().all(|c| c.is_finite()));
    }
    for l in &s.links {
        prop_assert!(l.distance_m.is_finite() && l.distance_m >= 0.0, "distance {}", l.distance_m);
        prop_assert!((0.0..=100.0).contains(&l.loss_pct), "loss {}", l.loss_pct);
        prop_assert!(l.rate_bps > 0);
        prop_assert!(l.a != l.b);
        let class = if l.kind == LinkKind::Isl { &plan.isl_class } else { &plan.gsl_class };
        prop_assert!(l.delay_ns >= class.processing_delay_ns);
        if let Some(el) = l.elevation_deg {
            prop_assert!(
                el.is_finite() && el >= plan.ground_links.min_elevation_rad.to_degrees() - 1e-9,
                "elevation {}",
                el
            );
        }
    }
    if let Some(routes) = &s.routes {
        for (from, to, hop) in routes.iter().take(2_000) {
            let up = s.links.iter().any(|l| l.up && ((l.a, l.b) == (from, hop) || (l.b, l.a) == (from, hop)));
            prop_assert!(up, "route {} -> {} via {} uses no up link", from, to, hop);
        }
    }
    Ok(())
}

/// Replacements that stress a parser: wrong types, extremes, nothing.
const TOKENS: &[&str] = &[
    "-1",
    "0",
    ".nan",
    ".inf",
    "-.inf",
    "1e308",
    "[]",
    "{}",
    "null",
    "\"\"",
    "999999999999",
    "-5s",
    "x",
    "1e-320",
    "~",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_parsed_or_refused_without_panic(text in ".{0,400}") {
        let _ = compile_yaml(&text);
    }

    /// The backbone document with one value replaced by a hostile token: refused with a
    /// message, or compiled into a model whose states are sane.
    #[test]
    fn a_mutated_document_is_refused_or_sane(at in 0usize..BACKBONE.len(), token in proptest::sample::select(TOKENS), t in -1e7f64..1e7) {
        // Replace the value after the `at`-th character's next ": " (or leave it if none).
        let mutated = match BACKBONE[at..].find(": ").map(|i| at + i + 2) {
            Some(start) if BACKBONE.is_char_boundary(start) => {
                let end = BACKBONE[start..].find([',', '}', '\n']).map_or(BACKBONE.len(), |i| start + i);
                format!("{}{token}{}", &BACKBONE[..start], &BACKBONE[end..])
            }
            _ => BACKBONE.to_owned(),
        };
        if let Ok(plan) = compile_yaml(&mutated) {
            let t = SimTime::from_secs_f64(t).unwrap();
            check_state(&plan, &plan.state_at(t))?;
        }
    }

    /// Random constellations, stations, platforms and faults, valid or not: compile never
    /// panics, and the states of every valid one at random times are sane.
    #[test]
    fn random_specs_are_refused_or_sane(yaml in random_spec(), times in proptest::collection::vec(-1e9f64..1e9, 1..4)) {
        match compile_yaml(&yaml) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(plan) => {
                let mut timeline = plan.timeline();
                for t in times {
                    check_state(&plan, &timeline.state_at(&plan, SimTime::from_secs_f64(t).unwrap()))?;
                }
            }
        }
    }
}

/// Whether two states are the same state: everything but the geometry's exact bit pattern
/// is compared (the geometry is a function of t alone, and compared through the links).
fn same_state(a: &State, b: &State) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.t, b.t);
    prop_assert_eq!(&a.ground_choice, &b.ground_choice, "ground links at {} s", a.t);
    prop_assert_eq!(a.handovers, b.handovers, "handovers at {} s", a.t);
    prop_assert_eq!(&a.links, &b.links, "links at {} s", a.t);
    prop_assert_eq!(&a.routes, &b.routes, "routes at {} s", a.t);
    prop_assert_eq!(&a.active_faults, &b.active_faults);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The state at a tick is a function of the spec and the tick: two processes that start
    /// at different ticks (a timeline each, stepping tick by tick, now and then skipping
    /// ahead) and a process asked for one tick alone agree at every tick they share, across
    /// anchor boundaries, with ground-link and route hysteresis, at any tick length.
    #[test]
    fn every_process_gets_the_same_state_whatever_tick_it_started_at(
        yaml in random_spec(),
        tick in proptest::sample::select(&["1s", "10s", "60s"][..]),
        route_hysteresis_us in proptest::sample::select(&[0u32, 400][..]),
        segment in -3i64..4,
        (start_a, start_b, len) in (-2.0f64..1.0, -1.0f64..1.0, 1.0f64..2.5),
        skip in 2usize..9,
    ) {
        let yaml = format!("{yaml}  tick: {tick}\n  routeHysteresisUs: {route_hysteresis_us}\n");
        let plan = compile_yaml(&yaml);
        prop_assume!(plan.is_ok(), "only valid specs have states");
        let plan = plan.unwrap();
        let anchors = plan.anchors();
        // Starting ticks around a segment boundary, in periods.
        let boundary = anchors.segment_start(segment);
        let at_period = |x: f64| boundary + (x * anchors.period as f64).round() as i64;
        let (a, b) = (at_period(start_a), at_period(start_b));
        let end = a.max(b) + (len * anchors.period as f64).round() as i64;
        let mut from_a = plan.timeline();
        let mut from_b = plan.timeline();
        let from_a_states: Vec<State> = (a..=end).map(|k| from_a.state_at(&plan, plan.tick_time(k))).collect();
        for k in b..=end {
            let s = from_b.state_at(&plan, plan.tick_time(k));
            if k < a {
                continue;
            }
            same_state(&s, &from_a_states[(k - a) as usize])?;
        }
        // A third process skips ahead now and then, as a runner that fell behind does; a
        // fourth is asked for one tick and the time a third of a tick after it.
        let mut skipping = plan.timeline();
        for k in (a..=end).step_by(skip) {
            same_state(&skipping.state_at(&plan, plan.tick_time(k)), &from_a_states[(k - a) as usize])?;
        }
        let mid = (a + end) / 2;
        same_state(&plan.state_at(plan.tick_time(mid)), &from_a_states[(mid - a) as usize])?;
        // One that stepped to a tick without its state (a look-ahead's copy) gives it after.
        let mut stepped = plan.timeline();
        stepped.step_to_tick(&plan, mid);
        same_state(&stepped.state_at(&plan, plan.tick_time(mid)), &from_a_states[(mid - a) as usize])?;
        let between = SimTime::from_nanos(plan.tick_time(mid).as_nanos() + plan.tick.as_nanos() as i64 / 3);
        same_state(&plan.state_at(between), &from_a.state_at(&plan, between))?;
    }
}

/// A spec with random values, mostly but not always valid.
fn random_spec() -> impl Strategy<Value = String> {
    let shell = (
        proptest::sample::select(&["delta", "star"][..]),
        prop_oneof![9 => 1u32..6, 1 => Just(0u32)],
        prop_oneof![9 => 1u32..7, 1 => Just(0u32)],
        // Phasing: usually reduced below `planes` (valid), sometimes not.
        (0u32..6, proptest::bool::weighted(0.9)),
        prop_oneof![8 => 300.0f64..40_000.0, 1 => Just(-1.0), 1 => Just(f64::NAN)],
        prop_oneof![9 => 0.0f64..180.0, 1 => -10.0f64..200.0],
    );
    let ground = (
        proptest::collection::vec(
            (prop_oneof![9 => -90.0f64..90.0, 1 => Just(91.0)], -180.0f64..180.0),
            0..4,
        ),
        prop_oneof![9 => 1.0f64..2_000.0, 1 => -10.0f64..0.0],
        proptest::sample::select(&["all", "nearest", "highestElevation"][..]),
        prop_oneof![9 => 1u32..4, 1 => Just(0u32)],
        prop_oneof![9 => 0.0f64..60.0, 1 => 91.0f64..95.0],
        0.0f64..10.0,
    );
    let fault = (
        proptest::sample::select(&["nodeDown", "stationDown", "linkDown", "jamming", "degraded"][..]),
        proptest::sample::select(&["w-0-0", "w-1-2", "g0", "ship", "nobody"][..]),
    );
    (shell, ground, fault).prop_map(
        |((kind, planes, sats, (phasing, reduce), altitude_km, inclination), (stations, speed, policy, antennas, min_el, hysteresis), (fault_kind, node))| {
            let phasing = if reduce { phasing % planes.max(1) } else { phasing };
            let mut yaml = format!(
                "apiVersion: orbitnet.dev/v1alpha1\nkind: Constellation\nmetadata: {{name: p}}\nspec:\n  epoch: \"2026-11-24T00:00:00Z\"\n  shells:\n  - {{name: w, walker: {{type: {kind}, planes: {planes}, satsPerPlane: {sats}, phasing: {phasing}}}, altitudeKm: {altitude_km}, inclinationDeg: {inclination}}}\n  groundLinks: {{minElevationDeg: {min_el}, policy: {policy}, antennas: {antennas}, hysteresisDeg: {hysteresis}, hysteresisKm: {hysteresis}}}\n  groundStations:\n"
            );
            for (i, (lat, lon)) in stations.iter().enumerate() {
                yaml += &format!("  - {{name: g{i}, latDeg: {lat}, lonDeg: {lon}}}\n");
            }
            yaml += &format!("  platforms:\n  - {{name: ship, kind: ship, speedKmh: {speed}, waypoints: [{{latDeg: 10, lonDeg: 10}}, {{latDeg: -10, lonDeg: 170}}], loop: true}}\n");
            let fields = match fault_kind {
                "nodeDown" | "stationDown" => format!("node: {node}"),
                "linkDown" => format!("a: {node}, b: w-0-1"),
                "jamming" => "latDeg: 10, lonDeg: 10, radiusKm: 1000, lossPct: 50".to_owned(),
                _ => format!("node: {node}, lossPct: 50, extraDelayUs: 100, rateMbps: 5"),
            };
            yaml + &format!("  faults:\n  - {{kind: {fault_kind}, {fields}, at: 0s, duration: 1h}}\n")
        },
    )
}

/// A property that only ever saw refusals would prove nothing about the model: the
/// generator must produce valid specs often.
#[test]
fn random_specs_are_often_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = random_spec();
    let valid =
        (0..300).filter(|_| compile_yaml(&strategy.new_tree(&mut runner).unwrap().current()).is_ok()).count();
    assert!(valid >= 60, "only {valid} of 300 random specs compile");
}
