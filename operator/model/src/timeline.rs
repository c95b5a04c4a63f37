//! The state at any time as a function of the plan and that time alone, hysteresis included.
//!
//! Hysteresis (ground links kept until a better satellite wins by a margin; next hops kept
//! while they stay within `routeHysteresisUs`) makes a tick's choice depend on the tick
//! before. A chain that began wherever a process started would give two processes two
//! answers for the same tick. So every chain is *anchored*: ticks are counted from the
//! epoch (tick k is at k x `spec.tick`), and cut into segments of [`ANCHOR_PERIOD`].
//!
//! - **Ground links.** The choice at the ticks of segment s (ticks sP .. (s+1)P - 1) comes
//!   from a chain that starts afresh (no incumbents) [`ANCHOR_WARMUP`] before sP and steps
//!   tick by tick. By sP it has in practice joined the chain of segment s - 1 (both keep
//!   the same satellite once either hands over), so the switch is seamless; where it has
//!   not, the switch is a handover like any other, the same in every process.
//! - **Routes** (only with `routeHysteresisUs` > 0): the chain of segment s starts afresh at
//!   sP, no warm-up (a fresh tick is exactly the shortest paths, and a route computation costs
//!   a hundred times a ground-link choice).
//!
//! A process that starts at tick k replays at most one period plus the warm-up of
//! geometry and ground-link choices (and, with route hysteresis, up to a period of routes);
//! one that steps tick after tick does one step per tick. [`Timeline`] does both.
//! A time between two ticks gets the choice made from the tick before it.

use std::collections::BTreeSet;

use crate::faults::ActiveFaults;
use crate::geometry::Geometry;
use crate::links::GroundChoice;
use crate::plan::{NodeIdx, Plan};
use crate::routing::Routes;
use crate::state::State;
use crate::time::{SimTime, SpecDuration};

/// Length of a segment: hysteresis chains restart at multiples of it from the epoch.
pub const ANCHOR_PERIOD: SpecDuration = SpecDuration::from_secs(300);
/// How long before its segment a ground-link chain starts, so that it has joined the
/// previous segment's chain by the time it takes over.
pub const ANCHOR_WARMUP: SpecDuration = SpecDuration::from_secs(300);

/// The segments of a plan, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchors {
    /// Ticks per segment (at least 1).
    pub period: i64,
    /// Ticks of warm-up before a segment (whole ticks, rounded up).
    pub warmup: i64,
}

impl Anchors {
    pub fn of(tick: SpecDuration) -> Self {
        let tick_ns = tick.as_nanos().max(1);
        let ticks = |d: SpecDuration| i64::try_from(d.as_nanos().div_ceil(tick_ns)).unwrap_or(i64::MAX);
        Self { period: ticks(ANCHOR_PERIOD).max(1), warmup: ticks(ANCHOR_WARMUP) }
    }

    /// The segment tick `k` belongs to.
    pub fn segment(&self, k: i64) -> i64 {
        k.div_euclid(self.period)
    }

    /// The first tick of segment `s`.
    pub fn segment_start(&self, s: i64) -> i64 {
        s.saturating_mul(self.period)
    }

    /// The tick at which the ground-link chain of segment `s` starts afresh.
    fn chain_start(&self, s: i64) -> i64 {
        self.segment_start(s).saturating_sub(self.warmup)
    }

    /// The segments whose ground-link chains run at tick `k`: its own, and those warming up.
    fn live(&self, k: i64) -> std::ops::RangeInclusive<i64> {
        self.segment(k)..=self.segment(k.saturating_add(self.warmup))
    }

    /// Most ticks a cold start steps through before the tick it wants: a cheaper way
    /// there than stepping from further back.
    pub fn replay_limit(&self) -> i64 {
        self.period.saturating_add(self.warmup)
    }
}

impl Plan {
    /// The tick at or before `t`: floor(t / tick), counted from the epoch.
    pub fn tick_index(&self, t: SimTime) -> i64 {
        let tick_ns = i64::try_from(self.tick.as_nanos()).unwrap_or(i64::MAX).max(1);
        t.as_nanos().div_euclid(tick_ns)
    }

    /// The time of tick `k` (saturating at the ends of time).
    pub fn tick_time(&self, k: i64) -> SimTime {
        let tick_ns = i64::try_from(self.tick.as_nanos()).unwrap_or(i64::MAX);
        SimTime::from_nanos(k.saturating_mul(tick_ns))
    }

    pub fn anchors(&self) -> Anchors {
        Anchors::of(self.tick)
    }

    /// A timeline of this plan's states, routes included when routing computes them.
    pub fn timeline(&self) -> Timeline {
        Timeline { anchors: self.anchors(), with_routes: true, at: None }
    }

    /// The state at `t`: the same in every process, whatever it computed before.
    pub fn state_at(&self, t: SimTime) -> State {
        self.timeline().state_at(self, t)
    }
}

/// Where a timeline has stepped to: tick `k`, the choice of every ground-link chain
/// running there, the choice of the tick before (its handovers are counted against it),
/// and (route hysteresis only) the routes of tick `k`.
#[derive(Clone, Debug)]
struct Cursor {
    k: i64,
    /// (segment, its chain's choice at `k`), by segment.
    chains: Vec<(i64, GroundChoice)>,
    /// The choice at `k - 1`, if the cursor came from there.
    choice_before: Option<GroundChoice>,
    routes: Option<Routes>,
}

impl Cursor {
    fn chain(&self, segment: i64) -> Option<&GroundChoice> {
        self.chains.iter().find(|(s, _)| *s == segment).map(|(_, c)| c)
    }
}

/// States in time order, each as `Plan::state_at` gives it, at the cost of one step per
/// tick when asked for times in order (and of a replay when asked to jump). A timeline
/// remembers where its plan's chains are: use it with the plan that made it (a changed
/// plan needs a new timeline).
#[derive(Clone, Debug)]
pub struct Timeline {
    anchors: Anchors,
    with_routes: bool,
    at: Option<Cursor>,
}

impl Timeline {
    /// States without routes (geometry, ground-link choice, links): what a look-ahead of
    /// the links to build needs, for a fraction of the cost.
    pub fn without_routes(mut self) -> Self {
        self.with_routes = false;
        self
    }

    /// Ground-link handovers at the ticks after `from` up to `to` (`Plan::handovers_between`;
    /// consecutive windows cost one step a tick, not a replay each).
    pub fn handovers_between(&mut self, plan: &Plan, from: SimTime, to: SimTime) -> usize {
        let (first, last) = (plan.tick_index(from) + 1, plan.tick_index(to));
        (first..=last).map(|k| self.state_at(plan, plan.tick_time(k)).handovers).sum()
    }

    /// Whether routes are chained from tick to tick (route hysteresis).
    fn routes_chained(&self, plan: &Plan) -> bool {
        self.with_routes && plan.route_hysteresis_ns > 0
    }

    /// The state at `t`.
    pub fn state_at(&mut self, plan: &Plan, t: SimTime) -> State {
        let k = plan.tick_index(t);
        let on_tick = plan.tick_time(k) == t;
        let geometry = plan.geometry(t);
        let faults = plan.active_faults(t);
        if on_tick && self.at.as_ref().is_some_and(|c| c.k == k && c.choice_before.is_some()) {
            // Asked again for the tick it is at.
            let cursor = self.cursor();
            let choice = cursor.chain(self.anchors.segment(k)).expect("the chain of k's segment runs at k");
            let mut state =
                plan.state_with_choice(geometry, &faults, choice.clone(), cursor.choice_before.as_ref());
            if self.with_routes {
                state.routes = match &cursor.routes {
                    Some(routes) => Some(routes.clone()),
                    None => plan.routes_for(&state.links, None),
                };
            }
            return state;
        }
        // The tick before `t` gives the incumbents of `t`'s choice.
        let before = if on_tick { k - 1 } else { k };
        self.step_to(plan, before);
        let cursor = self.cursor();
        let previous = cursor.chain(self.anchors.segment(before)).cloned();
        let (choice, chained_routes) = if on_tick {
            self.step(plan, k, &geometry, &faults, true);
            let cursor = self.cursor();
            // Every chain running at k is in the cursor: a replay starts where the earliest
            // of them starts, and stepping keeps them all.
            let choice = cursor.chain(self.anchors.segment(k)).expect("the chain of k's segment runs at k");
            (choice.clone(), cursor.routes.clone())
        } else {
            // Between ticks: one more choice from the tick before, which moves no chain.
            (plan.choose_ground_links(&geometry, &faults, previous.as_ref()), None)
        };
        let mut state = plan.state_with_choice(geometry, &faults, choice, previous.as_ref());
        if self.with_routes {
            state.routes = match chained_routes {
                Some(routes) => Some(routes),
                // Between ticks, chained routes continue from the tick before.
                None => plan.routes_for(&state.links, self.cursor().routes.as_ref()),
            };
        }
        state
    }

    /// Steps to tick `k` without making its state (what a copy that goes on ahead, as the
    /// look-ahead of links to build, starts from); a state asked for at `k` then costs no
    /// replay.
    pub fn step_to_tick(&mut self, plan: &Plan, k: i64) {
        self.step_to_tick_with(plan, k, &mut |times| times.iter().map(|&t| plan.geometry(t)).collect());
    }

    /// `step_to_tick`, with the geometries of the ticks it steps through (most of the
    /// work) computed by `geometries`, a batch of times at a time, in order: a caller may
    /// compute them on other threads.
    pub fn step_to_tick_with(
        &mut self,
        plan: &Plan,
        k: i64,
        geometries: &mut dyn FnMut(&[SimTime]) -> Vec<Geometry>,
    ) {
        if self.at.as_ref().is_some_and(|c| c.k == k && c.choice_before.is_some()) {
            return;
        }
        // To the tick before first (a replay from where the chain observed there starts),
        // so that k has the choice of the tick before it.
        self.step_through(plan, k - 1, geometries);
        let t = plan.tick_time(k);
        let geometry = geometries(&[t]).pop().expect("one geometry per time asked for");
        self.step(plan, k, &geometry, &plan.active_faults(t), true);
    }

    /// The ground links chosen at the ticks from `from` to `to`, as (ground node,
    /// satellite) pairs (`Plan::ground_links_chosen`; a window after the last costs one step
    /// a tick, not a replay).
    pub fn ground_links_chosen(
        &mut self,
        plan: &Plan,
        from: SimTime,
        to: SimTime,
    ) -> BTreeSet<(NodeIdx, NodeIdx)> {
        let mut used = BTreeSet::new();
        for k in plan.tick_index(from)..=plan.tick_index(to) {
            self.step_to_tick(plan, k);
            let Some(choice) = self.cursor().chain(self.anchors.segment(k)) else { continue };
            for (g, sats) in choice.per_ground.iter().enumerate() {
                used.extend(sats.iter().map(|&s| ((plan.n_sats + g) as NodeIdx, s)));
            }
        }
        used
    }

    fn cursor(&self) -> &Cursor {
        self.at.as_ref().expect("a cursor exists once step_to or step has run")
    }

    /// Moves the cursor to tick `target`: forward one tick at a time when that is the
    /// cheaper way, else by a replay from where `target`'s chains start.
    fn step_to(&mut self, plan: &Plan, target: i64) {
        self.step_through(plan, target, &mut |times| times.iter().map(|&t| plan.geometry(t)).collect());
    }

    /// `step_to`, with the geometries computed by `geometries` (see `step_to_tick_with`).
    fn step_through(
        &mut self,
        plan: &Plan,
        target: i64,
        geometries: &mut dyn FnMut(&[SimTime]) -> Vec<Geometry>,
    ) {
        /// Ticks whose geometries are asked for at once: enough to keep a few threads busy.
        const BATCH: i64 = 64;
        let from = match &self.at {
            Some(c) if c.k == target => return,
            Some(c) if c.k < target && target - c.k <= self.anchors.replay_limit() => c.k + 1,
            _ => {
                self.at = None;
                self.anchors.chain_start(self.anchors.segment(target))
            }
        };
        // Chained routes matter from the start of `target`'s segment (or from where the
        // cursor already has them).
        let routes_from =
            if self.at.is_some() { from } else { self.anchors.segment_start(self.anchors.segment(target)) };
        let mut first = from;
        while first <= target {
            let last = target.min(first.saturating_add(BATCH - 1));
            let times: Vec<SimTime> = (first..=last).map(|j| plan.tick_time(j)).collect();
            let batch = geometries(&times);
            assert_eq!(batch.len(), times.len(), "one geometry per time asked for");
            for (j, geometry) in (first..=last).zip(batch) {
                let faults = plan.active_faults(geometry.t);
                self.step(plan, j, &geometry, &faults, j >= routes_from);
            }
            first = last + 1;
        }
    }

    /// One tick of every chain running at tick `j`, from the cursor at `j - 1` (or from
    /// nothing, in a replay's first tick); routes too, if chained and `routes` is set.
    fn step(&mut self, plan: &Plan, j: i64, geometry: &Geometry, faults: &ActiveFaults<'_>, routes: bool) {
        let before = self.at.take().filter(|c| c.k == j - 1);
        let choice_before = before.as_ref().and_then(|c| c.chain(self.anchors.segment(j - 1))).cloned();
        let mut chains = Vec::with_capacity(2);
        for s in self.anchors.live(j) {
            let previous = before.as_ref().and_then(|c| c.chain(s));
            // A chain met mid-way in a replay's first ticks has no history: it is not one
            // the replay needs (they all start within it), so it is left out.
            if previous.is_none() && j != self.anchors.chain_start(s) {
                continue;
            }
            chains.push((s, plan.choose_ground_links(geometry, faults, previous)));
        }
        let segment = self.anchors.segment(j);
        let routes = (routes && self.routes_chained(plan)).then(|| {
            let empty = GroundChoice::default();
            // Routes are chained only from the start of j's segment, where its chain runs.
            let choice = chains.iter().find(|(s, _)| *s == segment).map_or(&empty, |(_, c)| c);
            let links = plan.link_states(geometry, faults, choice);
            let previous = before
                .as_ref()
                .filter(|c| self.anchors.segment(c.k) == segment)
                .and_then(|c| c.routes.as_ref());
            plan.routes_for(&links, previous)
        });
        self.at = Some(Cursor { k: j, chains, choice_before, routes: routes.flatten() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{SHELL, plan};

    #[test]
    fn segments_and_their_chains_are_counted_from_the_epoch() {
        let a = Anchors::of(SpecDuration::from_secs(1));
        assert_eq!((a.period, a.warmup), (300, 300));
        assert_eq!((a.segment(0), a.segment(299), a.segment(300), a.segment(-1)), (0, 0, 1, -1));
        assert_eq!((a.chain_start(1), a.chain_start(0)), (0, -300));
        assert_eq!(a.live(0), 0..=1, "segment 1's chain warms up during segment 0");
        assert_eq!(a.replay_limit(), 600);
        let fine = Anchors::of(SpecDuration::from_millis(100));
        assert_eq!((fine.period, fine.warmup), (3000, 3000));
        let odd = Anchors::of(SpecDuration::from_secs(7));
        assert_eq!((odd.period, odd.warmup), (43, 43), "whole ticks, rounded up");
    }

    /// A timeline stepped to a tick holds the choice of the tick before, even at a
    /// segment's first tick, so that asking it for that tick's state replays nothing.
    #[test]
    fn a_timeline_stepped_to_a_tick_has_what_its_state_needs() {
        let p = plan(&format!("{SHELL}\n  groundStations:\n  - {{name: g, latDeg: 10, lonDeg: 20}}"));
        for k in [0, 1, 299, 300, 301, 600] {
            let mut timeline = p.timeline();
            timeline.step_to_tick(&p, k);
            let cursor = timeline.at.as_ref().unwrap();
            assert_eq!(cursor.k, k);
            assert!(cursor.choice_before.is_some(), "tick {k}");
        }
    }
}
