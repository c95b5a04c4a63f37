//! Underlay compensation: across Kubernetes nodes, a link's packets also cross the physical
//! network, which adds its own delay. The agent measures the round trip to each peer node
//! and takes half of it (the one-way underlay delay) out of the delay netem adds, never
//! going below zero; when the underlay alone is slower than the link should be, it says so.

/// Round trips to one peer node, in microseconds; the smallest recent one is the estimate
/// (queueing only ever adds to the propagation delay).
#[derive(Clone, Debug, Default)]
pub struct UnderlayEstimate {
    recent_rtt_us: Vec<f64>,
}

/// Round trips kept per peer.
const WINDOW: usize = 30;

impl UnderlayEstimate {
    pub fn push(&mut self, rtt_us: f64) {
        if rtt_us.is_finite() && rtt_us >= 0.0 {
            self.recent_rtt_us.push(rtt_us);
            if self.recent_rtt_us.len() > WINDOW {
                self.recent_rtt_us.remove(0);
            }
        }
    }

    /// Half the smallest recent round trip; 0 before any measurement.
    pub fn one_way_us(&self) -> f64 {
        self.recent_rtt_us.iter().copied().reduce(f64::min).map_or(0.0, |rtt| rtt / 2.0)
    }
}

/// The delay netem adds on a link end so that the underlay plus netem give `wanted_us`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compensated {
    pub netem_delay_us: f64,
    /// How much more than `wanted_us` the underlay alone takes (0 when it fits): reported,
    /// since no shaping can make a link faster than its wire.
    pub excess_us: f64,
}

pub fn compensate(wanted_us: f64, underlay_one_way_us: f64) -> Compensated {
    let netem_delay_us = (wanted_us - underlay_one_way_us).max(0.0);
    Compensated { netem_delay_us, excess_us: (underlay_one_way_us - wanted_us).max(0.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_underlays_one_way_delay_comes_off_the_emulated_one() {
        let c = compensate(12_000.0, 150.0);
        assert_eq!(c, Compensated { netem_delay_us: 11_850.0, excess_us: 0.0 });
        let slow = compensate(100.0, 400.0);
        assert_eq!(slow, Compensated { netem_delay_us: 0.0, excess_us: 300.0 });
    }

    #[test]
    fn the_estimate_is_half_the_smallest_recent_round_trip() {
        let mut e = UnderlayEstimate::default();
        assert_eq!(e.one_way_us(), 0.0);
        for rtt in [420.0, 300.0, 2_000.0, f64::NAN, -5.0] {
            e.push(rtt);
        }
        assert_eq!(e.one_way_us(), 150.0);
        for _ in 0..WINDOW {
            e.push(1_000.0);
        }
        assert_eq!(e.one_way_us(), 500.0, "old measurements leave the window");
    }
}
