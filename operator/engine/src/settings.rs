//! The engine's settings, defined once for every runner (the command line's defaults are
//! these).

use orbitnet_model::SpecDuration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A link's netem is changed only when its delay (or jitter) moved further than this
    /// from the one applied (each link uses between half and all of it, so links drifting
    /// alike do not all change on one tick). 10 us bounds a path's round-trip error by
    /// 2 x hops x 10 us and spares most of the kernel work: ground links drift ~5 us/s,
    /// cross-plane links under 1 us/s.
    pub delay_tolerance: SpecDuration,
    /// Ground links are built for those the model chooses within this much emulation time
    /// ahead: a station can see thousands of satellites over a day, so not for every pair.
    pub lookahead: SpecDuration,
    /// Ground links built ahead of need per tick (more wait for the next): building is
    /// kernel work on the tick's path. Links a tick needs now are built at once.
    pub builds_per_tick: usize,
    /// After each event that changes the graph, every node's forwarding table is read this
    /// often (real time) until it has converged (`None`: not watched). The first read
    /// follows the apply at once. Off by default: a runner that waits through
    /// `Engine::wait_watching` turns it on.
    pub convergence_every: Option<SpecDuration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            delay_tolerance: SpecDuration::from_nanos(10_000),
            lookahead: SpecDuration::from_secs(600),
            builds_per_tick: 32,
            convergence_every: None,
        }
    }
}
