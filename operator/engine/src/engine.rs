//! The engine: one constellation's links on one host, brought to the model's state tick by
//! tick. A runner attaches the namespaces of the nodes it hosts, says which tick is due
//! (`prepare`, then `apply`), and reads what happened (`Tick`); the engine owns the rest:
//! the state chain, the links to build (the grid's, and the ground links chosen ahead),
//! the difference applied through a private `Applier`, and what went wrong, said once.
//!
//! What differs between runners is the `Host`: how a link end is made (veth pairs between
//! local namespaces; VXLAN towards pods on other Kubernetes nodes) and how the model's
//! link states are adjusted before they are applied (the underlay's own delay taken off).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use orbitnet_dataplane::apply::{End, Wanted};
use orbitnet_dataplane::{Applier, ApplyReport, Conn, Conns, NlError, Wiring, sweep};
use orbitnet_model::{GroundChoice, LinkId, LinkKind, LinkState, NodeIdx, Plan, SimTime, State, Timeline};
use orbitnet_routing::convergence::{Convergence, Outcome};
use rustc_hash::FxHashSet;

use crate::lookahead::Lookahead;
use crate::settings::Settings;

/// What a runner's host adds to the engine.
pub trait Host {
    /// Builds the link ends of `pairs` that belong on this host (every pair has at least
    /// one attached node; `conns` are the attached nodes' connections). Pairs it cannot
    /// build yet (a peer not placed anywhere) it leaves out of both lists: they are handed
    /// to it again after the next `Engine::rewire`. `progress(done, total)` as it goes.
    fn build(
        &mut self,
        plan: &Plan,
        conns: &mut Conns,
        pairs: &[(NodeIdx, NodeIdx)],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Built;

    /// The links as they are to be applied, if they differ from the model's, and the
    /// problems found doing so (reported beside the tick, not counted as errors).
    fn shape(&mut self, plan: &Plan, links: &[LinkState]) -> Option<(Vec<LinkState>, Vec<String>)> {
        let _ = (plan, links);
        None
    }

    /// Where `node`'s routing daemons keep their files and sockets, as this process reaches
    /// them, if they run here (`cost: delay` sets their link costs there each tick).
    fn routing_dir(&self, plan: &Plan, node: NodeIdx) -> Option<std::path::PathBuf> {
        let _ = (plan, node);
        None
    }
}

/// What building wanted links did.
#[derive(Debug, Default)]
pub struct BuildSummary {
    pub links: usize,
    /// Link ends (two per veth pair, one per VXLAN end).
    pub ends: usize,
    /// Links that could not be built, one line each.
    pub failed: Vec<String>,
}

/// What a host built.
#[derive(Debug, Default)]
pub struct Built {
    pub wiring: Wiring,
    /// Pairs that failed, with the reason.
    pub failed: Vec<((NodeIdx, NodeIdx), String)>,
}

/// What kind of thing went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// A kernel operation of the apply failed (retried next tick).
    Apply,
    /// A node's routing daemons did not take the link costs of the tick (retried next tick).
    Costs,
    /// A route needs a link that is not built here.
    Unwired,
    /// A link could not be built (retried every tick, said when it first fails).
    Build,
    /// A flow could not send (said once per flow).
    Traffic,
}

/// Something that went wrong at a tick, with what it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The node (its name) in whose namespace it happened, if one.
    pub node: Option<String>,
    pub link: Option<LinkId>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{node}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

pub use orbitnet_model::events::Event;

/// What one tick did.
#[derive(Debug)]
pub struct Tick {
    pub k: i64,
    pub t: SimTime,
    /// The model's state applied (before any shaping by the host).
    pub state: State,
    pub report: ApplyReport,
    /// Operations that failed, routes over links not built, links that could not be built
    /// (each build failure once, when it first happens).
    pub problems: Vec<Problem>,
    /// What the host said adjusting the links (e.g. an underlay slower than a link).
    pub shaping: Vec<String>,
    pub events: Vec<Event>,
    /// Links built while preparing this tick (not those of `build_all`).
    pub built: usize,
    /// The flows' ticks that settled (no datagram of them still in flight): (index in
    /// `Plan::flows`, its measurement beside the model).
    pub flows: Vec<(usize, orbitnet_mission::FlowTick)>,
    /// Convergence watches that ended since the tick before (one per graph change).
    pub convergence: Vec<Convergence>,
}

impl Tick {
    /// Ground links made since the state applied before.
    pub fn handovers(&self) -> usize {
        self.events
            .iter()
            .map(|e| match e {
                Event::Handover { added, .. } => added.len(),
                _ => 0,
            })
            .sum()
    }
}

/// What events are made of: the ground links chosen and the faults active at a tick.
struct Applied {
    k: i64,
    ground_choice: GroundChoice,
    active_faults: Vec<usize>,
}

/// A plan that cannot replace the running one.
#[derive(Debug, thiserror::Error)]
#[error("{0}; that needs a restart")]
pub struct Incompatible(pub String);

pub struct Engine<H> {
    plan: Arc<Plan>,
    host: H,
    applier: Applier,
    settings: Settings,
    /// The engine's timeline: being replayed to the start on the look-ahead's thread, then
    /// here.
    timeline: Started,
    lookahead: Lookahead,
    /// Ground links to have built: those chosen ahead, kept (a station often returns to the
    /// same satellites).
    ground: BTreeSet<(NodeIdx, NodeIdx)>,
    /// Pairs handed to the host since the wiring was last replaced or a node came or went.
    handed: FxHashSet<(NodeIdx, NodeIdx)>,
    /// Ground links chosen ahead and not handed to the host yet, in the order to build.
    queued: VecDeque<(NodeIdx, NodeIdx)>,
    /// Every grid link has been handed to the host since the wiring or the nodes changed
    /// (the grid never changes: a tick then looks only at its ground links).
    grid_handed: bool,
    /// Pairs whose build failed, and why: retried every tick, reported when new.
    build_errors: BTreeMap<(NodeIdx, NodeIdx), String>,
    /// The state for the next apply, and its tick.
    prepared: Option<(i64, State)>,
    /// What of the state applied last the next tick's events compare with, and its tick.
    applied: Option<Applied>,
    /// The wiring changed since the last apply.
    stale: bool,
    /// Problems met preparing, reported with the next apply.
    problems: Vec<Problem>,
    built: usize,
    /// The mission's flows with an end here, once started.
    traffic: Option<crate::traffic::Traffic>,
    /// The forwarding watched after each graph change (`Settings::convergence_every`).
    convergence: Option<crate::convergence::Watcher>,
    /// The daemons' link costs under `cost: delay`.
    costs: orbitnet_routing::costs::Keeper,
}

impl<H: Host> Engine<H> {
    /// An engine for `plan` on `host`, serving the nodes of `conns`; links are chosen ahead
    /// from emulation time `start` (never past `until`, the end of a run).
    pub fn new(
        plan: Plan,
        host: H,
        conns: Conns,
        settings: Settings,
        start: SimTime,
        until: Option<SimTime>,
    ) -> Self {
        let applier = Applier::new(conns, Wiring::default());
        Self::with_applier(plan, host, applier, settings, start, until)
    }

    /// An engine serving `local` nodes without a kernel: it works out every tick and
    /// records what it would send as done. For benchmarks and tests of the engine's logic.
    pub fn detached(
        plan: Plan,
        host: H,
        local: impl IntoIterator<Item = NodeIdx>,
        settings: Settings,
        start: SimTime,
        until: Option<SimTime>,
    ) -> Self {
        let applier = Applier::detached(Wiring::default(), local);
        Self::with_applier(plan, host, applier, settings, start, until)
    }

    fn with_applier(
        plan: Plan,
        host: H,
        applier: Applier,
        settings: Settings,
        start: SimTime,
        until: Option<SimTime>,
    ) -> Self {
        let plan = Arc::new(plan);
        let (lookahead, timeline) = Lookahead::start(&plan, start, settings.lookahead, until);
        let timeline = Started::Replaying(timeline);
        let applier = applier.with_delay_tolerance(settings.delay_tolerance.as_nanos());
        let convergence = settings
            .convergence_every
            .map(|every| crate::convergence::Watcher::new(&plan, Duration::from_nanos(every.as_nanos())));
        Self {
            convergence,
            costs: orbitnet_routing::costs::Keeper::default(),
            timeline,
            plan,
            host,
            applier,
            settings,
            lookahead,
            queued: VecDeque::new(),
            grid_handed: false,
            ground: BTreeSet::new(),
            handed: FxHashSet::default(),
            build_errors: BTreeMap::new(),
            prepared: None,
            applied: None,
            stale: true,
            problems: Vec::new(),
            built: 0,
            traffic: None,
        }
    }

    /// Starts sending and receiving the plan's flows that have an end among the nodes
    /// `namespace` gives; `clock` tells emulation time. Measurements come with each tick.
    pub fn start_traffic(
        &mut self,
        namespace: &dyn Fn(NodeIdx) -> Option<orbitnet_dataplane::netns::Netns>,
        clock: crate::clock::Clock,
    ) -> Result<(), crate::traffic::FlowError> {
        self.traffic = Some(crate::traffic::Traffic::start(&self.plan, namespace, clock)?);
        Ok(())
    }

    /// Whether the flows run (`start_traffic` succeeded).
    pub fn traffic_started(&self) -> bool {
        self.traffic.is_some()
    }

    /// What the flows measured so far (empty without traffic).
    pub fn traffic_snapshot(&self) -> Vec<orbitnet_mission::FlowSeries> {
        self.traffic.as_ref().map(crate::traffic::Traffic::snapshot).unwrap_or_default()
    }

    /// Stops the flows and returns everything measured of each (empty without traffic);
    /// with `wait`, after the datagrams in flight have arrived.
    pub fn finish_traffic(&mut self, wait: bool) -> Vec<orbitnet_mission::FlowSeries> {
        self.traffic.take().map(|t| t.finish(wait)).unwrap_or_default()
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// Serves one more node, through its namespace's connection.
    pub fn attach(&mut self, node: NodeIdx, conn: Conn) {
        self.applier.attach(node, conn);
        self.forget_handed();
        self.stale = true;
    }

    /// Stops serving a node: its connection is returned, its ends forgotten.
    pub fn detach(&mut self, node: NodeIdx) -> Option<Conn> {
        self.forget_handed();
        self.stale = true;
        self.applier.detach(node)
    }

    /// The attached nodes' connections, for the runner's own kernel work (listing ends).
    pub fn conns_mut(&mut self) -> &mut Conns {
        self.applier.conns_mut()
    }

    /// Replaces the wiring with what the kernel holds (after the runner found and pruned
    /// the ends there) and reads back what is applied to it; missing ends are built next.
    pub fn rewire(&mut self, wiring: Wiring) -> Result<(), NlError> {
        self.forget_handed();
        self.stale = true;
        self.applier.rewire(wiring)
    }

    /// Forgets what was handed to the host (the wiring or the nodes changed): every ground
    /// link chosen is looked at again.
    fn forget_handed(&mut self) {
        self.handed.clear();
        self.grid_handed = false;
        self.queued = self.ground.iter().copied().collect();
    }

    /// Every link this host may have to carry: the grid's and the ground links chosen so
    /// far, as node pairs.
    pub fn wanted(&self) -> impl Iterator<Item = (NodeIdx, NodeIdx)> + '_ {
        self.plan.isls.iter().map(|l| (l.a, l.b)).chain(self.ground.iter().copied())
    }

    /// Whether `pair` has an attached node whose end of it is not built.
    fn missing(&self, (a, b): (NodeIdx, NodeIdx)) -> bool {
        let wiring = self.applier.wiring();
        [(a, b), (b, a)]
            .into_iter()
            .any(|(node, peer)| self.applier.serves(node) && wiring.end_between(node, peer).is_none())
    }

    /// Hands the missing ones of `pairs` to the host; returns the links and ends it built.
    fn build(
        &mut self,
        pairs: impl IntoIterator<Item = (NodeIdx, NodeIdx)>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> (usize, usize) {
        let todo: Vec<(NodeIdx, NodeIdx)> =
            pairs.into_iter().filter(|&p| !self.handed.contains(&p) && self.missing(p)).collect();
        if todo.is_empty() {
            return (0, 0);
        }
        let built = self.host.build(&self.plan, self.applier.conns_mut(), &todo, progress);
        self.applier.add_ends(&built.wiring);
        let failed: BTreeMap<(NodeIdx, NodeIdx), String> = built.failed.into_iter().collect();
        for pair in todo {
            match failed.get(&pair) {
                Some(why) => {
                    if self.build_errors.get(&pair) != Some(why) {
                        let (a, b) = (&self.plan.node(pair.0).name, &self.plan.node(pair.1).name);
                        self.problems.push(Problem {
                            kind: ProblemKind::Build,
                            node: None,
                            link: Some(self.plan.link_id(pair.0, pair.1)),
                            message: format!("cannot build link {a} - {b}: {why}"),
                        });
                    }
                    self.build_errors.insert(pair, why.clone());
                }
                None => {
                    self.build_errors.remove(&pair);
                    self.handed.insert(pair);
                }
            }
        }
        let (links, ends) = (built.wiring.links(), built.wiring.ends().count());
        if links > 0 {
            self.stale = true;
        }
        (links, ends)
    }

    /// Builds every missing link wanted now (the grid's and the ground links chosen so
    /// far), as a runner does before its first tick or after its pods changed. Failures are
    /// returned here, not said again at the next tick.
    pub fn build_all(&mut self, progress: &mut dyn FnMut(usize, usize)) -> BuildSummary {
        let wanted: Vec<(NodeIdx, NodeIdx)> = self.wanted().collect();
        let (links, ends) = self.build(wanted, progress);
        self.problems.retain(|p| p.kind != ProblemKind::Build);
        BuildSummary { links, ends, failed: self.build_errors().collect() }
    }

    /// Links that could not be built, one line each, while they fail.
    pub fn build_errors(&self) -> impl Iterator<Item = String> + '_ {
        self.build_errors
            .iter()
            .map(|((a, b), why)| format!("{} - {}: {why}", self.plan.node(*a).name, self.plan.node(*b).name))
    }

    /// Takes a new plan of the same shape (faults, link classes, ground-link rules): from
    /// the next tick on, its states are applied.
    pub fn replan(&mut self, plan: Plan, t: SimTime, until: Option<SimTime>) -> Result<(), Incompatible> {
        if let Some(why) = self.plan.incompatibility(&plan) {
            return Err(Incompatible(why));
        }
        let plan = Arc::new(plan);
        let (lookahead, timeline) = Lookahead::start(&plan, t, self.settings.lookahead, until);
        self.timeline = Started::Replaying(timeline);
        self.lookahead = lookahead;
        self.plan = plan;
        self.prepared = None;
        self.stale = true;
        Ok(())
    }

    /// Works out the state of tick `k` and builds what it needs: the links it uses that
    /// are not built here (at once) and ground links chosen ahead (a few per tick).
    pub fn prepare(&mut self, k: i64) -> &State {
        let t = self.plan.tick_time(k);
        if let Some(more) = self.lookahead.poll(t) {
            self.queued.extend(more.iter().filter(|p| !self.ground.contains(p)));
            self.ground.extend(more);
        }
        let state = self.timeline.get(&self.plan).state_at(&self.plan, t);
        let grid = !self.grid_handed;
        let now: Vec<(NodeIdx, NodeIdx)> =
            state.links.iter().filter(|l| grid || l.kind == LinkKind::Gsl).map(|l| (l.a, l.b)).collect();
        self.built += self.build(now, &mut |_, _| {}).0;
        // A grid link whose build failed is looked at again next tick.
        self.grid_handed =
            self.build_errors.keys().all(|&(a, b)| self.plan.is_ground(a) || self.plan.is_ground(b));
        // Ground links chosen ahead, a few per tick; those already built (by a tick that
        // needed them) or handed leave the queue without costing a build.
        let mut ahead = Vec::with_capacity(self.settings.builds_per_tick);
        while ahead.len() < self.settings.builds_per_tick {
            let Some(pair) = self.queued.pop_front() else { break };
            if !self.handed.contains(&pair) && self.missing(pair) {
                ahead.push(pair);
            }
        }
        self.built += self.build(ahead, &mut |_, _| {}).0;
        &self.prepared.insert((k, state)).1
    }

    /// Applies tick `k` (prepared now if `prepare` was not called for it).
    pub fn apply(&mut self, k: i64) -> Tick {
        let started = Instant::now();
        if self.prepared.as_ref().is_none_or(|(p, _)| *p != k) {
            self.prepare(k);
        }
        let Some((k, state)) = self.prepared.take() else {
            unreachable!("prepare(k) leaves a prepared state for k")
        };
        let shaped = self.host.shape(&self.plan, &state.links);
        let (report, shaping) = match &shaped {
            Some((links, said)) => (
                self.applier.apply(&self.plan, Wanted { links, routes: state.routes.as_ref() }),
                said.clone(),
            ),
            None => (self.applier.apply(&self.plan, &state), Vec::new()),
        };
        let mut problems = std::mem::take(&mut self.problems);
        problems.extend(self.report_problems(&report));
        let (plan, host) = (&self.plan, &self.host);
        for (node, message) in self.costs.keep(plan, &state.links, &|n| host.routing_dir(plan, n)) {
            problems.push(Problem {
                kind: ProblemKind::Costs,
                node: Some(self.plan.node(node).name.clone()),
                link: None,
                message,
            });
        }
        let events = self
            .applied
            .as_ref()
            .map(|a| orbitnet_model::events::between(&self.plan, &a.ground_choice, &a.active_faults, &state))
            .unwrap_or_default();
        let convergence = match &mut self.convergence {
            Some(w) => {
                w.applied(&self.plan, k, &state, &events, started);
                w.take()
            }
            None => Vec::new(),
        };
        let flows = match &mut self.traffic {
            Some(traffic) => {
                traffic.applied(&self.plan, &state, k);
                problems.extend(traffic.errors().into_iter().map(|message| Problem {
                    kind: ProblemKind::Traffic,
                    node: None,
                    link: None,
                    message,
                }));
                traffic.settle(k)
            }
            None => Vec::new(),
        };
        self.applied = Some(Applied {
            k,
            ground_choice: state.ground_choice.clone(),
            active_faults: state.active_faults.clone(),
        });
        // The state goes with the tick: the runner drops it when done, and the next tick's
        // state reuses its memory (keeping it here measured 3 % slower per tick).
        let tick = Tick {
            k,
            t: state.t,
            state,
            report,
            problems,
            shaping,
            events,
            built: std::mem::take(&mut self.built),
            flows,
            convergence,
        };
        self.stale = false;
        tick
    }

    /// Waits until `until`, reading the forwarding tables as the convergence watch needs
    /// (plain sleep when nothing is watched). Runners call it between ticks.
    pub fn wait_watching(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let wake = self.watch_convergence().map_or(until, |n| n.min(until));
            std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        }
    }

    /// Reads the forwarding tables if the convergence watch is due to; returns when it is
    /// next due (`None`: nothing is being watched). For runners that wait their own way
    /// (the agent serves several constellations from one thread).
    pub fn watch_convergence(&mut self) -> Option<Instant> {
        let w = self.convergence.as_mut()?;
        let (conns, wiring) = self.applier.conns_and_wiring();
        w.poll(&self.plan, conns, wiring)
    }

    /// Whether the convergence watch is on (`Settings::convergence_every`).
    pub fn watches_convergence(&self) -> bool {
        self.convergence.is_some()
    }

    /// Ends the convergence watch under way (the run is over) and returns the watches not
    /// handed out with a tick yet.
    pub fn finish_convergence(&mut self) -> Vec<Convergence> {
        self.convergence.as_mut().map_or_else(Vec::new, |w| {
            w.close(Outcome::Ended);
            w.take()
        })
    }

    /// Time spent reading and judging forwarding tables, the number of reads, and the
    /// last read's error while reads fail.
    pub fn convergence_cost(&self) -> Option<(Duration, u64, Option<&str>)> {
        self.convergence.as_ref().map(|w| (w.spent, w.snapshots, w.error.as_deref()))
    }

    fn report_problems(&self, report: &ApplyReport) -> Vec<Problem> {
        let name = |n: NodeIdx| self.plan.node(n).name.clone();
        let failed = report.failed.iter().map(|f| Problem {
            kind: ProblemKind::Apply,
            node: Some(name(f.node)),
            link: f.link,
            message: f.error.to_string(),
        });
        let unwired = report.unwired.iter().map(|&(a, b)| Problem {
            kind: ProblemKind::Unwired,
            node: Some(name(a)),
            link: Some(self.plan.link_id(a, b)),
            message: format!("the route needs link {} - {}, which is not built", name(a), name(b)),
        });
        failed.chain(unwired).collect()
    }

    /// The tick applied last.
    pub fn applied_tick(&self) -> Option<i64> {
        self.applied.as_ref().map(|a| a.k)
    }

    /// Whether the wiring changed since the last apply (the same tick needs applying again).
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// Links with an end here, and of those the ones applied up.
    pub fn links(&self) -> (usize, usize) {
        let wiring = self.applier.wiring();
        let up: FxHashSet<LinkId> =
            wiring.ends().filter(|e| self.applier.applied_up(e)).map(|e| e.link).collect();
        (wiring.links(), up.len())
    }

    /// Removes every link end of this constellation from the attached namespaces, and their
    /// routes (qdiscs go with the ends). Returns what could not be removed.
    pub fn remove_links(&mut self) -> Vec<String> {
        let mut swept = sweep::Swept::default();
        for conn in self.applier.conns_mut().values_mut() {
            if let Err(e) = sweep::interfaces_and_routes(conn, Some(&self.plan.name), &mut swept) {
                swept.failures.push(format!("reading the link ends back: {e}"));
            }
        }
        let conns = std::mem::take(self.applier.conns_mut());
        self.applier = Applier::new(conns, Wiring::default())
            .with_delay_tolerance(self.settings.delay_tolerance.as_nanos());
        self.forget_handed();
        self.applied = None;
        self.stale = true;
        swept.failures
    }

    /// Closes every connection and hands the host back.
    pub fn into_host(self) -> H {
        self.host
    }
}

/// A timeline on its way from the thread that replays it, or here.
enum Started {
    Replaying(Option<Receiver<Timeline>>),
    Here(Timeline),
}

impl Started {
    /// The timeline, waiting for its replay to end if it has not.
    fn get(&mut self, plan: &Plan) -> &mut Timeline {
        if let Started::Replaying(rx) = self {
            let timeline = rx.take().and_then(|rx| rx.recv().ok()).unwrap_or_else(|| {
                tracing::warn!("the look-ahead's thread did not hand a timeline over; replaying here");
                plan.timeline()
            });
            *self = Started::Here(timeline);
        }
        match self {
            Started::Here(timeline) => timeline,
            Started::Replaying(_) => unreachable!("set just above"),
        }
    }
}

/// A host without a kernel, for [`Engine::detached`] (benchmarks, tests of the engine's
/// logic): it builds a link by making up an interface index for each end, and fails the
/// pairs in `fail`.
#[derive(Default)]
pub struct MadeUp {
    next_ifindex: u32,
    /// The pairs asked for, in order.
    pub asked: Vec<(NodeIdx, NodeIdx)>,
    /// Pairs whose build fails ("no room").
    pub fail: BTreeSet<(NodeIdx, NodeIdx)>,
}

impl Host for MadeUp {
    fn build(
        &mut self,
        plan: &Plan,
        _conns: &mut Conns,
        pairs: &[(NodeIdx, NodeIdx)],
        _progress: &mut dyn FnMut(usize, usize),
    ) -> Built {
        let mut built = Built::default();
        for &(a, b) in pairs {
            self.asked.push((a, b));
            if self.fail.contains(&(a, b)) {
                built.failed.push(((a, b), "no room".into()));
                continue;
            }
            for (node, peer) in [(a, b), (b, a)] {
                self.next_ifindex += 1;
                let ifindex = self.next_ifindex;
                built.wiring.add(End {
                    link: plan.link_id(a, b),
                    node,
                    peer,
                    ifindex,
                    name: format!("if{ifindex}"),
                });
            }
        }
        built
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

    fn engine(start_s: i64, settings: Settings) -> Engine<MadeUp> {
        let plan = orbitnet_model::compile_yaml(TINY).unwrap();
        let nodes = 0..plan.nodes.len() as NodeIdx;
        let start = SimTime::from_nanos(start_s * 1_000_000_000);
        Engine::detached(plan, MadeUp::default(), nodes, settings, start, None)
    }

    #[test]
    fn the_grid_is_built_first_and_ground_links_at_once_when_needed_else_a_few_a_tick() {
        let settings = Settings { builds_per_tick: 1, ..Settings::default() };
        let mut e = engine(300, settings);
        let plan = e.plan().clone();
        let built = e.build_all(&mut |_, _| {});
        assert_eq!((built.links, built.ends), (plan.isls.len(), 2 * plan.isls.len()));
        assert!(built.failed.is_empty());
        let first = e.apply(300);
        let needed = plan.state_at(plan.tick_time(300)).links.len() - plan.isls.len();
        assert!(needed > 0 && first.built >= needed, "the tick's ground links at once: {}", first.built);
        assert!(first.built <= needed + 1, "and at most one chosen ahead: {}", first.built);
        // tiny's next handover is at 367 s: until then a tick builds only what was chosen
        // ahead, one at a time, until the look-ahead's first window is built.
        let window = plan.ground_links_chosen(plan.tick_time(300), plan.tick_time(900));
        for k in 301..367 {
            let tick = e.apply(k);
            assert!(tick.built <= 1, "tick {k} built {}", tick.built);
            assert!(tick.problems.is_empty(), "{:?}", tick.problems);
            if e.links().0 == plan.isls.len() + window.len() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "the first window's {} ground links were not all built by 366 s: {:?}",
            window.len(),
            e.links()
        );
    }

    #[test]
    fn a_failing_build_is_said_once_retried_and_forgotten_when_it_succeeds() {
        let mut e = engine(300, Settings::default());
        let plan = e.plan().clone();
        let gsl = plan
            .state_at(plan.tick_time(300))
            .links
            .iter()
            .find(|l| l.a as usize >= plan.n_sats)
            .map(|l| (l.a, l.b))
            .unwrap();
        e.host_mut().fail.insert(gsl);
        let first = e.apply(300);
        let said: Vec<&Problem> = first.problems.iter().filter(|p| p.kind == ProblemKind::Build).collect();
        assert_eq!(said.len(), 1, "{:?}", first.problems);
        assert!(said[0].message.contains("no room"), "{}", said[0]);
        assert_eq!(e.build_errors().count(), 1);
        let second = e.apply(301);
        assert!(
            second.problems.iter().all(|p| p.kind != ProblemKind::Build),
            "said once: {:?}",
            second.problems
        );
        assert!(e.host().asked.iter().filter(|&&p| p == gsl).count() >= 2, "retried");
        e.host_mut().fail.clear();
        e.apply(302);
        assert_eq!(e.build_errors().count(), 0);
        assert!(!e.missing(gsl));
    }

    #[test]
    fn handovers_and_faults_are_events_between_applied_ticks() {
        let yaml =
            format!("{TINY}  faults:\n  - {{kind: nodeDown, node: ring-0-5, at: 366s, duration: 2s}}\n");
        let plan = orbitnet_model::compile_yaml(&yaml).unwrap();
        let nodes = 0..plan.nodes.len() as NodeIdx;
        let mut e =
            Engine::detached(plan, MadeUp::default(), nodes, Settings::default(), SimTime::ZERO, None);
        let mut events = Vec::new();
        for k in 360..=370 {
            events.extend(e.apply(k).events.into_iter().map(|ev| (k, ev)));
        }
        let handover = Event::Handover {
            node: "bravo".into(),
            added: vec!["ring-0-3".into()],
            removed: vec!["ring-0-4".into()],
        };
        assert!(events.contains(&(367, handover)), "{events:?}");
        assert!(events.iter().any(|(k, ev)| *k == 366 && matches!(ev, Event::FaultBegan { index: 0, .. })));
        assert!(events.iter().any(|(k, ev)| *k == 368 && matches!(ev, Event::FaultEnded { index: 0, .. })));
    }

    #[test]
    fn a_new_plan_of_the_same_shape_is_taken_and_another_shape_refused() {
        let mut e = engine(0, Settings::default());
        e.apply(10);
        let with_fault =
            format!("{TINY}  faults:\n  - {{kind: nodeDown, node: ring-0-1, at: 0s, duration: 1h}}\n");
        e.replan(
            orbitnet_model::compile_yaml(&with_fault).unwrap(),
            SimTime::from_nanos(10_000_000_000),
            None,
        )
        .unwrap();
        let tick = e.apply(11);
        assert!(tick.events.iter().any(|ev| matches!(ev, Event::FaultBegan { .. })), "{:?}", tick.events);
        let bigger = TINY.replace("satsPerPlane: 8", "satsPerPlane: 9");
        assert_ne!(bigger, TINY, "tiny has 8 satellites a plane");
        let refused = e.replan(orbitnet_model::compile_yaml(&bigger).unwrap(), SimTime::ZERO, None);
        assert!(refused.is_err_and(|why| why.to_string().contains("nodes changed")));
    }

    #[test]
    fn every_applied_state_is_the_models() {
        let mut e = engine(0, Settings::default());
        for k in [0, 1, 2, 50, 51] {
            let got = e.apply(k).state;
            let plan = e.plan().clone();
            let want = plan.state_at(plan.tick_time(k));
            assert_eq!(
                (&got.ground_choice, &got.links, &got.routes),
                (&want.ground_choice, &want.links, &want.routes)
            );
        }
    }
}
