//! The emulation clock: emulation time t = origin + (now - start) x time scale, ticks at
//! multiples of the spec's tick counted from the epoch (DESIGN.md §2). The local runner
//! starts one at the tick it starts from; an agent anchors one at the resource's
//! `startedAt` (t = 0 then).

use std::time::{Duration, Instant, SystemTime};

use orbitnet_model::{Plan, SimTime, SpecDuration};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The instant emulation time was `origin` (in the future for a clock that has not
    /// started yet: time stays at `origin` until then).
    start: Instant,
    origin: SimTime,
    time_scale: f64,
    tick: SpecDuration,
}

impl Clock {
    /// A clock at tick `first` of `plan` now, running `time_scale` emulation seconds per
    /// second.
    pub fn start(plan: &Plan, time_scale: f64, first: i64) -> Self {
        Self { start: Instant::now(), origin: plan.tick_time(first), time_scale, tick: plan.tick }
    }

    /// A clock in real time whose emulation time was 0 at wall-clock time `zero` (which may
    /// lie ahead: a host whose clock runs behind sees time 0 until then).
    pub fn since(plan: &Plan, zero: SystemTime) -> Self {
        let now = Instant::now();
        let start = match SystemTime::now().duration_since(zero) {
            Ok(elapsed) => now.checked_sub(elapsed).unwrap_or(now),
            Err(ahead) => now + ahead.duration(),
        };
        Self { start, origin: SimTime::ZERO, time_scale: 1.0, tick: plan.tick }
    }

    fn tick_ns(&self) -> i64 {
        i64::try_from(self.tick.as_nanos()).unwrap_or(i64::MAX).max(1)
    }

    /// Emulation time of tick `k`.
    pub fn time_of(&self, k: i64) -> SimTime {
        SimTime::from_nanos(k.saturating_mul(self.tick_ns()))
    }

    /// The wall-clock instant tick `k` is due.
    pub fn due(&self, k: i64) -> Instant {
        let wall_s = (self.time_of(k).as_secs_f64() - self.origin.as_secs_f64()) / self.time_scale;
        self.start + Duration::from_secs_f64(wall_s.max(0.0))
    }

    /// How long ago tick `k` was due (zero if it is not due yet).
    pub fn late(&self, k: i64) -> Duration {
        Instant::now().saturating_duration_since(self.due(k))
    }

    /// Emulation time now.
    pub fn now(&self) -> SimTime {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        let t = self.origin.as_secs_f64() + elapsed.as_secs_f64() * self.time_scale;
        SimTime::from_secs_f64(t).unwrap_or(self.origin)
    }

    /// The last tick due by now.
    pub fn current_tick(&self) -> i64 {
        self.now().as_nanos().div_euclid(self.tick_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(tick: &str) -> Plan {
        let yaml = include_str!("../../../scenarios/tiny.yaml").replace("tick: 1s", &format!("tick: {tick}"));
        orbitnet_model::compile_yaml(&yaml).unwrap()
    }

    #[test]
    fn a_clock_can_start_later_than_the_epoch() {
        let c = Clock::start(&plan("1s"), 10.0, 300);
        assert!(c.due(300) <= Instant::now());
        assert!(((c.due(310) - c.due(300)).as_secs_f64() - 1.0).abs() < 1e-9);
        assert!(c.now().as_secs_f64() >= 300.0);
        assert_eq!(c.current_tick(), c.now().as_nanos() / 1_000_000_000);
    }

    #[test]
    fn ticks_are_spaced_by_the_tick_over_the_time_scale() {
        let c = Clock::start(&plan("1s"), 60.0, 0);
        assert_eq!(c.time_of(3).as_nanos(), 3_000_000_000);
        let gap = c.due(60) - c.due(0);
        assert!((gap.as_secs_f64() - 1.0).abs() < 1e-9, "{gap:?}");
        let c = Clock::start(&plan("100ms"), 1.0, 0);
        assert!(((c.due(10) - c.due(0)).as_secs_f64() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_clock_since_a_wall_time_counts_from_it() {
        let p = plan("1s");
        let c = Clock::since(&p, SystemTime::now() - Duration::from_secs(42));
        assert_eq!(c.current_tick(), 42);
        assert!(c.late(42) < Duration::from_secs(1));
        assert!(c.late(40) >= Duration::from_secs(2));
        let ahead = Clock::since(&p, SystemTime::now() + Duration::from_secs(30));
        assert_eq!(ahead.now(), SimTime::ZERO, "time stays at 0 until the zero instant");
        assert!(ahead.due(0) > Instant::now() + Duration::from_secs(29));
    }
}
