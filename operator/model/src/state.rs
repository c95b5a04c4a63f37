//! The whole state at time t: positions, links, routes, active faults. `Plan::state_at`
//! composes geometry -> faults -> ground-link choice -> link states -> routes; the only
//! input from the past is the previous tick's ground-link choice, passed explicitly.

use crate::geometry::Geometry;
use crate::links::{GroundChoice, LinkState};
use crate::plan::{NodeIdx, Plan};
use crate::routing::{Graph, Routes};
use crate::spec::Routing;
use crate::time::{SimTime, SpecDuration};

#[derive(Clone, Debug)]
pub struct State {
    pub t: SimTime,
    pub geometry: Geometry,
    pub links: Vec<LinkState>,
    pub ground_choice: GroundChoice,
    /// Ground links made this tick that the previous tick did not have (0 without one).
    pub handovers: usize,
    /// Indices into `spec.faults` of the faults active at t.
    pub active_faults: Vec<usize>,
    /// `None` when routing is `none`.
    pub routes: Option<Routes>,
}

impl State {
    pub fn links_up(&self) -> usize {
        self.links.iter().filter(|l| l.up).count()
    }
}

impl Plan {
    /// The state at `t`. `previous` is the state one tick before (for ground-link
    /// hysteresis and handover counts); without it every ground node chooses afresh.
    pub fn state_at(&self, t: SimTime, previous: Option<&State>) -> State {
        let geometry = self.geometry(t);
        self.state_from(geometry, previous.map(|p| &p.ground_choice))
    }

    /// The state at an already computed geometry, routes included.
    pub fn state_from(&self, geometry: Geometry, previous: Option<&GroundChoice>) -> State {
        let faults = self.active_faults(geometry.t);
        let choice = self.choose_ground_links(&geometry, &faults, previous);
        let mut state = self.state_with_choice(geometry, choice, previous);
        state.routes = self.routes_for(&state.links);
        state
    }

    /// The state at a geometry with the ground-link choice already made, without routes.
    /// Lets a caller compute geometries and routes of many ticks in parallel and chain only
    /// the cheap choice (`choose_ground_links`) tick by tick.
    pub fn state_with_choice(
        &self,
        geometry: Geometry,
        ground_choice: GroundChoice,
        previous: Option<&GroundChoice>,
    ) -> State {
        let faults = self.active_faults(geometry.t);
        let links = self.link_states(&geometry, &faults, &ground_choice);
        let handovers = previous.map_or(0, |p| ground_choice.handovers_since(p));
        let active_faults = faults.active.iter().map(|f| f.spec_index).collect();
        State {
            t: geometry.t,
            geometry,
            links,
            ground_choice,
            handovers,
            active_faults,
            routes: None,
        }
    }

    /// Routes over `links` to the plan's destinations; `None` when routing is `none`.
    pub fn routes_for(&self, links: &[LinkState]) -> Option<Routes> {
        (self.routing == Routing::ShortestPath)
            .then(|| self.routes(links, &self.route_destinations()))
    }

    /// Shortest-delay next hops towards `destinations` over the links that are up.
    pub fn routes(&self, links: &[LinkState], destinations: &[NodeIdx]) -> Routes {
        let graph = Graph::from_links(self.nodes.len(), links);
        let relays: Vec<bool> = (0..self.nodes.len())
            .map(|i| !self.is_ground(i as NodeIdx))
            .collect();
        Routes::compute(&graph, &relays, destinations)
    }

    /// The tick times from `from` to `to` inclusive, every `step`.
    pub fn tick_times(
        from: SimTime,
        to: SimTime,
        step: SpecDuration,
    ) -> impl Iterator<Item = SimTime> {
        let step = i128::from(step.as_nanos().max(1));
        let span = i128::from(to.as_nanos()) - i128::from(from.as_nanos());
        let count = if span < 0 { 0 } else { span / step + 1 };
        // Every k < count keeps from + k * step within from..=to, so within i64.
        (0..count)
            .map(move |k| SimTime::from_nanos((i128::from(from.as_nanos()) + k * step) as i64))
    }

    /// Every tick's state from `from` to `to` inclusive, each chained to the one before.
    pub fn states(
        &self,
        from: SimTime,
        to: SimTime,
        step: SpecDuration,
    ) -> impl Iterator<Item = State> + '_ {
        let mut previous: Option<GroundChoice> = None;
        Self::tick_times(from, to, step).map(move |t| {
            let state = self.state_from(self.geometry(t), previous.as_ref());
            previous = Some(state.ground_choice.clone());
            state
        })
    }
}
