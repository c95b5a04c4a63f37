//! The `Constellation` resource as the operator and the link agents share it: the type and
//! its CRD (`crd`), the labels on what the operator makes (`labels`), how an agent writes
//! its part of the status (`reports`), and the emulation clock the status defines. Nothing
//! here reconciles or touches a kernel.

pub mod crd;
pub mod labels;
pub mod reports;

use chrono::{DateTime, Utc};
use orbitnet_model::SimTime;

pub use crd::{AgentReport, Constellation, ConstellationStatus};

/// Emulation time at `now` for a clock started at `started_at` (the status's `startedAt`,
/// RFC 3339), never negative (another host's clock may be behind). `None` before the start,
/// or if the time does not parse (the operator writes it, so it does).
pub fn sim_time(started_at: Option<&str>, now: DateTime<Utc>) -> Option<SimTime> {
    let started = DateTime::parse_from_rfc3339(started_at?).ok()?.with_timezone(&Utc);
    let elapsed_ns = (now - started).num_nanoseconds().unwrap_or(i64::MAX).max(0);
    Some(SimTime::from_nanos(elapsed_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_time_counts_from_the_start_and_is_never_negative() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let now = at("2026-11-24T12:00:00Z");
        assert_eq!(sim_time(None, now), None);
        assert_eq!(sim_time(Some("2026-11-24T11:59:00Z"), now), Some(SimTime::from_nanos(60_000_000_000)));
        assert_eq!(sim_time(Some("2026-11-24T12:00:05Z"), now), Some(SimTime::ZERO));
        assert_eq!(sim_time(Some("not a time"), now), None);
    }
}
