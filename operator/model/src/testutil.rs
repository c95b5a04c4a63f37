//! Helpers for the model's tests: small specs written inline.

use crate::{Plan, SimTime, SpecError, compile_yaml};

/// A document with one Walker shell and the given extra `spec` lines (YAML, indented by
/// two spaces), e.g. `spec_with("  groundStations: [...]")`.
pub fn spec_with(extra: &str) -> String {
    format!(
        r#"apiVersion: orbitnet.dev/v1alpha1
kind: Constellation
metadata: {{name: test}}
spec:
  epoch: "2026-11-24T00:00:00Z"
{extra}
"#
    )
}

pub const SHELL: &str = "  shells:\n  - {name: s, walker: {type: delta, planes: 4, satsPerPlane: 6, phasing: 1}, altitudeKm: 1200, inclinationDeg: 60}";

pub fn plan(extra: &str) -> Plan {
    compile_yaml(&spec_with(extra)).unwrap_or_else(|e| panic!("{e}"))
}

/// The problems of a spec that must not compile, as strings.
pub fn problems(extra: &str) -> Vec<String> {
    match compile_yaml(&spec_with(extra)) {
        Ok(_) => panic!("the spec compiled, but should not:\n{extra}"),
        Err(e @ SpecError::Syntax { .. }) => vec![e.to_string()],
        Err(e) => e.problems(),
    }
}

/// Asserts that one problem mentions every one of `needles`.
#[track_caller]
pub fn assert_problem(problems: &[String], needles: &[&str]) {
    assert!(
        problems.iter().any(|p| needles.iter().all(|n| p.contains(n))),
        "no problem mentions all of {needles:?}; problems: {problems:#?}"
    );
}

/// Emulation time `secs` seconds after the epoch.
pub fn at(secs: f64) -> SimTime {
    SimTime::from_secs_f64(secs).unwrap()
}
