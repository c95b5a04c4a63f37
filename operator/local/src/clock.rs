//! The emulation clock: emulation time t = origin + (now - start) x time scale, ticks at
//! multiples of the spec's tick (DESIGN.md §2). The origin is 0 unless a run starts later.

use std::time::{Duration, Instant};

use orbitnet_model::{SimTime, SpecDuration};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    /// Emulation time at `start`: a whole number of ticks.
    origin: SimTime,
    time_scale: f64,
    tick: SpecDuration,
}

impl Clock {
    /// A clock running from tick `first` (emulation time `first` x tick) now.
    pub fn start(time_scale: f64, tick: SpecDuration, first: u64) -> Self {
        let mut c = Self { start: Instant::now(), origin: SimTime::ZERO, time_scale, tick };
        c.origin = c.time_of(first);
        c
    }

    /// The tick at or before emulation time `t` (0 before the epoch).
    pub fn tick_at(tick: SpecDuration, t: SimTime) -> u64 {
        (t.as_nanos().max(0) as u128 / u128::from(tick.as_nanos().max(1))) as u64
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
        let wall_s = (self.time_of(k).as_secs_f64() - self.origin.as_secs_f64()) / self.time_scale;
        self.start + Duration::from_secs_f64(wall_s.max(0.0))
    }

    /// Emulation time now.
    pub fn now(&self) -> SimTime {
        let t = self.origin.as_secs_f64() + self.start.elapsed().as_secs_f64() * self.time_scale;
        SimTime::from_secs_f64(t).unwrap_or(self.origin)
    }

    /// The last tick due by now.
    pub fn current_tick(&self) -> u64 {
        Self::tick_at(self.tick, self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_can_start_later_than_the_epoch() {
        let c = Clock::start(10.0, SpecDuration::from_secs(1), 300);
        assert!(c.due(300) <= Instant::now());
        assert!(((c.due(310) - c.due(300)).as_secs_f64() - 1.0).abs() < 1e-9);
        assert!(c.now().as_secs_f64() >= 300.0);
        assert_eq!(Clock::tick_at(SpecDuration::from_millis(100), SimTime::from_nanos(450_000_000)), 4);
    }

    #[test]
    fn ticks_are_spaced_by_the_tick_over_the_time_scale() {
        let c = Clock::start(60.0, SpecDuration::from_secs(1), 0);
        assert_eq!(c.time_of(3).as_nanos(), 3_000_000_000);
        let gap = c.due(60) - c.due(0);
        assert!((gap.as_secs_f64() - 1.0).abs() < 1e-9, "{gap:?}");
        let c = Clock::start(1.0, SpecDuration::from_millis(100), 0);
        assert!(((c.due(10) - c.due(0)).as_secs_f64() - 1.0).abs() < 1e-9);
    }
}
