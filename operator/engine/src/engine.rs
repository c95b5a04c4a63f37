//! The engine: one constellation's links on one host, brought to the model's state tick by
//! tick. A runner attaches the namespaces of the nodes it hosts, says which tick is due
//! (`prepare`, then `apply`), and reads what happened (`Tick`); the engine owns the rest:
//! the state chain, the links to build (the grid's, and the ground links chosen ahead),
//! the difference applied through a private `Applier`, and what went wrong, said once.
//!
//! What differs between runners is the `Host`: how a link end is made (veth pairs between
//! local namespaces; VXLAN towards pods on other Kubernetes nodes) and how the model's
//! link states are adjusted before they are applied (the underlay's own delay taken off).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use orbitnet_dataplane::apply::Wanted;
use orbitnet_dataplane::{Applier, ApplyReport, Conn, Conns, NlError, Wiring, sweep};
use orbitnet_model::{LinkId, LinkState, NodeIdx, Plan, SimTime, State, Timeline};
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
    /// A route needs a link that is not built here.
    Unwired,
    /// A link could not be built (retried every tick, said when it first fails).
    Build,
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

/// What changed between the state applied before and the one applied now.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A ground node's satellites changed.
    Handover {
        node: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    FaultBegan {
        index: usize,
        kind: String,
        description: String,
    },
    FaultEnded {
        index: usize,
        kind: String,
        description: String,
    },
}

/// What one tick did.
#[derive(Debug)]
pub struct Tick {
    pub k: i64,
    pub t: SimTime,
    pub report: ApplyReport,
    /// Operations that failed, routes over links not built, links that could not be built
    /// (each build failure once, when it first happens).
    pub problems: Vec<Problem>,
    /// What the host said adjusting the links (e.g. an underlay slower than a link).
    pub shaping: Vec<String>,
    pub events: Vec<Event>,
    /// Links built this tick.
    pub built: usize,
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

/// A plan that cannot replace the running one.
#[derive(Debug, thiserror::Error)]
#[error("{0}; that needs a restart")]
pub struct Incompatible(pub String);

pub struct Engine<H> {
    plan: Arc<Plan>,
    host: H,
    applier: Applier,
    settings: Settings,
    timeline: Timeline,
    lookahead: Lookahead,
    /// Ground links to have built: those chosen ahead, kept (a station often returns to the
    /// same satellites).
    ground: BTreeSet<(NodeIdx, NodeIdx)>,
    /// Pairs handed to the host since the wiring was last replaced or a node came or went.
    handed: FxHashSet<(NodeIdx, NodeIdx)>,
    /// Pairs whose build failed, and why: retried every tick, reported when new.
    build_errors: BTreeMap<(NodeIdx, NodeIdx), String>,
    /// The state for the next apply, and its tick.
    prepared: Option<(i64, State)>,
    /// The state applied last, and its tick.
    applied: Option<(i64, State)>,
    /// The wiring changed since the last apply.
    stale: bool,
    /// Problems met preparing, reported with the next apply.
    problems: Vec<Problem>,
    built: usize,
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
        let (lookahead, ground) = Lookahead::start(&plan, start, settings.lookahead, until);
        let applier =
            Applier::new(conns, Wiring::default()).with_delay_tolerance(settings.delay_tolerance.as_nanos());
        Self {
            timeline: plan.timeline(),
            plan: Arc::new(plan),
            host,
            applier,
            settings,
            lookahead,
            ground,
            handed: FxHashSet::default(),
            build_errors: BTreeMap::new(),
            prepared: None,
            applied: None,
            stale: true,
            problems: Vec::new(),
            built: 0,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
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
        self.handed.clear();
        self.stale = true;
    }

    /// Stops serving a node: its connection is returned, its ends forgotten.
    pub fn detach(&mut self, node: NodeIdx) -> Option<Conn> {
        self.handed.clear();
        self.stale = true;
        self.applier.detach(node)
    }

    /// The attached nodes' connections, for the runner's own kernel work (listing ends).
    pub fn conns_mut(&mut self) -> &mut Conns {
        self.applier.conns_mut()
    }

    /// Nodes served.
    pub fn nodes(&self) -> usize {
        self.applier.nodes()
    }

    /// Replaces the wiring with what the kernel holds (after the runner found and pruned
    /// the ends there) and reads back what is applied to it; missing ends are built next.
    pub fn rewire(&mut self, wiring: Wiring) -> Result<(), NlError> {
        self.handed.clear();
        self.stale = true;
        self.applier.rewire(wiring)
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

    /// Hands the missing ones of `pairs` to the host, at most `limit`; returns the links
    /// and ends it built.
    fn build(
        &mut self,
        pairs: impl IntoIterator<Item = (NodeIdx, NodeIdx)>,
        limit: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> (usize, usize) {
        let todo: Vec<(NodeIdx, NodeIdx)> =
            pairs.into_iter().filter(|&p| !self.handed.contains(&p) && self.missing(p)).take(limit).collect();
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
        self.built += links;
        (links, ends)
    }

    /// Builds every missing link wanted now (the grid's and the ground links chosen so
    /// far), as a runner does before its first tick or after its pods changed. Failures are
    /// returned here, not said again at the next tick.
    pub fn build_all(&mut self, progress: &mut dyn FnMut(usize, usize)) -> BuildSummary {
        let wanted: Vec<(NodeIdx, NodeIdx)> = self.wanted().collect();
        let (links, ends) = self.build(wanted, usize::MAX, progress);
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
        let (lookahead, ground) = Lookahead::start(&plan, t, self.settings.lookahead, until);
        self.lookahead = lookahead;
        self.ground.extend(ground);
        self.timeline = plan.timeline();
        self.plan = Arc::new(plan);
        self.prepared = None;
        self.stale = true;
        Ok(())
    }

    /// Works out the state of tick `k` and builds what it needs: the links it uses that
    /// are not built here (at once) and ground links chosen ahead (a few per tick).
    pub fn prepare(&mut self, k: i64) -> &State {
        let t = self.plan.tick_time(k);
        if let Some(more) = self.lookahead.poll(&self.plan, t) {
            self.ground.extend(more);
        }
        let state = self.timeline.state_at(&self.plan, t);
        let now: Vec<(NodeIdx, NodeIdx)> = state.links.iter().map(|l| (l.a, l.b)).collect();
        self.build(now, usize::MAX, &mut |_, _| {});
        let ahead: Vec<(NodeIdx, NodeIdx)> = self.ground.iter().copied().collect();
        self.build(ahead, self.settings.builds_per_tick, &mut |_, _| {});
        &self.prepared.insert((k, state)).1
    }

    /// Applies tick `k` (prepared now if `prepare` was not called for it).
    pub fn apply(&mut self, k: i64) -> Tick {
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
        let events = events(&self.plan, self.applied.as_ref().map(|(_, s)| s), &state);
        let tick =
            Tick { k, t: state.t, report, problems, shaping, events, built: std::mem::take(&mut self.built) };
        self.applied = Some((k, state));
        self.stale = false;
        tick
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
        self.applied.as_ref().map(|(k, _)| *k)
    }

    /// The state applied last (the model's, before any shaping).
    pub fn state(&self) -> Option<&State> {
        self.applied.as_ref().map(|(_, s)| s)
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
        self.handed.clear();
        self.applied = None;
        self.stale = true;
        swept.failures
    }

    /// Closes every connection and hands the host back.
    pub fn into_host(self) -> H {
        self.host
    }
}

/// Handovers and faults beginning or ending between two applied states.
fn events(plan: &Plan, before: Option<&State>, now: &State) -> Vec<Event> {
    let Some(before) = before else { return Vec::new() };
    let name = |i: NodeIdx| plan.node(i).name.clone();
    let mut out = Vec::new();
    for (g, (was, is)) in
        before.ground_choice.per_ground.iter().zip(&now.ground_choice.per_ground).enumerate()
    {
        if was != is {
            out.push(Event::Handover {
                node: name((plan.n_sats + g) as NodeIdx),
                added: is.iter().filter(|s| !was.contains(s)).map(|&s| name(s)).collect(),
                removed: was.iter().filter(|s| !is.contains(s)).map(|&s| name(s)).collect(),
            });
        }
    }
    let fault = |i: usize| plan.faults.iter().find(|f| f.spec_index == i);
    for &i in now.active_faults.iter().filter(|i| !before.active_faults.contains(i)) {
        if let Some(f) = fault(i) {
            out.push(Event::FaultBegan {
                index: i,
                kind: f.kind.as_str().into(),
                description: f.describe(plan),
            });
        }
    }
    for &i in before.active_faults.iter().filter(|i| !now.active_faults.contains(i)) {
        if let Some(f) = fault(i) {
            out.push(Event::FaultEnded {
                index: i,
                kind: f.kind.as_str().into(),
                description: f.describe(plan),
            });
        }
    }
    out
}
