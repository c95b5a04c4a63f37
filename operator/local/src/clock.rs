//! The emulation clock: emulation time t = (now - start) x time scale, ticks at multiples
//! of the spec's tick (DESIGN.md §2).

use std::time::{Duration, Instant};

use orbitnet_model::{SimTime, SpecDuration};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    time_scale: f64,
    tick: SpecDuration,
}

impl Clock {
    pub fn start(time_scale: f64, tick: SpecDuration) -> Self {
        Self { start: Instant::now(), time_scale, tick }
    }

    pub fn tick(&self) -> SpecDuration {
        self.tick
    }

    /// Emulation time of tick `k`.
    pub fn time_of(&self, k: u64) -> SimTime {
        let nanos = u128::from(self.tick.as_nanos()) * u128::from(k);
        SimTime::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    /// The wall-clock instant tick `k` is due.
    pub fn due(&self, k: u64) -> Instant {
        let wall_s = self.time_of(k).as_secs_f64() / self.time_scale;
        self.start + Duration::from_secs_f64(wall_s.max(0.0))
    }

    /// Emulation time now.
    pub fn now(&self) -> SimTime {
        SimTime::from_secs_f64(self.start.elapsed().as_secs_f64() * self.time_scale).unwrap_or(SimTime::ZERO)
    }

    /// The last tick due by now.
    pub fn current_tick(&self) -> u64 {
        let t = self.now().as_nanos().max(0) as u128;
        (t / u128::from(self.tick.as_nanos().max(1))) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_spaced_by_the_tick_over_the_time_scale() {
        let c = Clock::start(60.0, SpecDuration::from_secs(1));
        assert_eq!(c.time_of(3).as_nanos(), 3_000_000_000);
        let gap = c.due(60) - c.due(0);
        assert!((gap.as_secs_f64() - 1.0).abs() < 1e-9, "{gap:?}");
        let c = Clock::start(1.0, SpecDuration::from_millis(100));
        assert!(((c.due(10) - c.due(0)).as_secs_f64() - 1.0).abs() < 1e-9);
    }
}
