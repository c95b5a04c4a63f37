//! What the model says of each flow at a tick: whether a path exists, the one-way delay of
//! its datagrams (each link's delay, and the time to put the datagram on the link at its
//! rate), the share of datagrams its links' loss lets through, and their jitter.

use std::collections::HashMap;

use orbitnet_model::mission::FlowDef;
use orbitnet_model::{LinkState, NodeIdx, Plan, Routes, State};

use crate::measure::ModelTick;

/// Bytes a link carries besides a datagram's payload: UDP (8), IPv4 (20) and the Ethernet
/// header (14) that a veth's rate limit counts.
pub const FRAME_OVERHEAD_BYTES: u64 = 42;

/// The model's view of the flows at one state.
pub struct Predictor<'a> {
    plan: &'a Plan,
    state: &'a State,
    links: HashMap<(NodeIdx, NodeIdx), &'a LinkState>,
    /// Routes towards destinations the state's routes leave out (`routing: none`, or
    /// `routeTo: ground` and a flow to a satellite), by destination.
    extra: HashMap<NodeIdx, Routes>,
}

impl<'a> Predictor<'a> {
    pub fn new(plan: &'a Plan, state: &'a State) -> Self {
        let links = state.links.iter().filter(|l| l.up).map(|l| ((l.a.min(l.b), l.a.max(l.b)), l)).collect();
        Self { plan, state, links, extra: HashMap::new() }
    }

    /// The model's prediction for `flow` at this state.
    pub fn flow(&mut self, flow: &FlowDef) -> ModelTick {
        let has_dest = |r: &Routes| r.destinations.contains(&flow.to);
        let path = match self.state.routes.as_ref().filter(|r| has_dest(r)) {
            Some(routes) => routes.path(flow.from, flow.to),
            None => {
                let (plan, state) = (self.plan, self.state);
                let routes =
                    self.extra.entry(flow.to).or_insert_with(|| plan.routes(&state.links, &[flow.to], None));
                routes.path(flow.from, flow.to)
            }
        };
        let Some(path) = path else { return ModelTick::default() };
        let mut tick = ModelTick {
            path: true,
            delay_ms: Some(0.0),
            hops: path.len() - 1,
            delivery: 1.0,
            jitter_ms: 0.0,
        };
        let mut jitter_sq = 0.0;
        let mut delay_ns = 0u64;
        let frame_bits = (u64::from(flow.size_bytes) + FRAME_OVERHEAD_BYTES) * 8;
        for hop in path.windows(2) {
            let Some(link) = self.links.get(&(hop[0].min(hop[1]), hop[0].max(hop[1]))) else {
                return ModelTick::default();
            };
            let transmission_ns = frame_bits.saturating_mul(1_000_000_000) / link.rate_bps.max(1);
            delay_ns += link.delay_ns + transmission_ns;
            tick.delivery *= 1.0 - link.loss_pct / 100.0;
            jitter_sq += (link.jitter_ns as f64 / 1e6).powi(2);
        }
        tick.delay_ms = Some(delay_ns as f64 / 1e6);
        tick.jitter_ms = 2.0 / 3.0 * jitter_sq.sqrt();
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitnet_model::SimTime;

    const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

    fn with_flow(yaml: &str, flow: &str) -> String {
        format!("{yaml}\n  traffic:\n  - {flow}\n")
    }

    #[test]
    fn the_prediction_is_the_routes_path_and_its_delay() {
        let plan = orbitnet_model::compile_yaml(&with_flow(
            TINY,
            "{name: tracks, from: alpha, to: bravo, packetsPerSecond: 10}",
        ))
        .unwrap();
        let state = plan.state_at(SimTime::ZERO);
        let flow = &plan.flows[0];
        let tick = Predictor::new(&plan, &state).flow(flow);
        let routes = state.routes.as_ref().unwrap();
        assert!(tick.path);
        let path = routes.path(flow.from, flow.to).unwrap();
        assert_eq!(tick.hops, path.len() - 1);
        // The path's delay, and 242 bytes (200 of payload) put on each link at its rate:
        // 38.72 us on tiny's 50 Mbit/s ground links, 19.36 us on its 100 Mbit/s ISLs.
        let ground = 2;
        let isls = tick.hops - ground;
        let transmission_ms = (ground as f64 * 38_720.0 + isls as f64 * 19_360.0) / 1e6;
        let want = routes.delay_ns(flow.from, flow.to).unwrap() as f64 / 1e6 + transmission_ms;
        assert!((tick.delay_ms.unwrap() - want).abs() < 1e-6, "{tick:?}, want {want}");
        // tiny's ground links lose a little to the atmosphere.
        assert!(tick.delivery < 1.0 && tick.delivery > 0.999, "{}", tick.delivery);
    }

    #[test]
    fn without_central_routes_the_model_still_knows_the_shortest_path() {
        let yaml = with_flow(TINY, "{name: tracks, from: alpha, to: ring-0-3, packetsPerSecond: 10}")
            .replace("routing: shortestPath", "routing: none");
        let plan = orbitnet_model::compile_yaml(&yaml).unwrap();
        let state = plan.state_at(SimTime::ZERO);
        assert!(state.routes.is_none());
        let tick = Predictor::new(&plan, &state).flow(&plan.flows[0]);
        assert!(tick.path && tick.delay_ms.unwrap() > 0.0, "{tick:?}");
    }
}
