//! Watching the forwarding converge after each event that changes the graph: the engine
//! notes the event when it applies it, then, while the runner waits for the next tick, reads
//! every attached node's forwarding table at a fixed resolution and judges it against the
//! model (`orbitnet_routing::convergence`). The same measurement serves every routing mode,
//! so central routing and the daemons compare on equal terms.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use orbitnet_dataplane::route;
use orbitnet_dataplane::{Conns, Wiring};
use orbitnet_model::{LinkId, NodeIdx, Plan, State};
use orbitnet_routing::convergence::{self, Convergence, Fib, Hops, Model, Outcome, Patience, Watch};
use rustc_hash::FxHashMap;

use crate::engine::Event;

/// An event's kind and description, for the record.
fn describe(events: &[Event]) -> (&'static str, String) {
    let kind = if events.iter().any(|e| matches!(e, Event::FaultBegan { .. })) {
        "faultBegan"
    } else if events.iter().any(|e| matches!(e, Event::FaultEnded { .. })) {
        "faultEnded"
    } else if events.iter().any(|e| matches!(e, Event::Handover { .. })) {
        "handover"
    } else {
        "link"
    };
    let what: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::FaultBegan { description, .. } => format!("began: {description}"),
            Event::FaultEnded { description, .. } => format!("ended: {description}"),
            Event::Handover { node, added, removed } => {
                format!("{node} handover +[{}] -[{}]", added.join(","), removed.join(","))
            }
        })
        .collect();
    (kind, if what.is_empty() { "links changed".into() } else { what.join("; ") })
}

pub(crate) struct Watcher {
    every: Duration,
    patience: Patience,
    /// The ground nodes and their addresses: the destinations judged.
    dests: Vec<(NodeIdx, Ipv4Addr)>,
    /// The links up at the state applied last, to tell a graph change.
    up: Option<Vec<LinkId>>,
    model: Option<Model>,
    watching: Option<(Watch, Instant)>,
    next: Instant,
    last_fib: Option<Fib>,
    done: Vec<Convergence>,
    /// Time spent reading and judging tables, and how many snapshots.
    pub(crate) spent: Duration,
    pub(crate) snapshots: u64,
    /// The last read that failed, said once until reads work again.
    pub(crate) error: Option<String>,
}

impl Watcher {
    pub(crate) fn new(plan: &Plan, every: Duration) -> Self {
        let quiet_s = plan.routing_protocol.as_ref().map_or(1.0, |p| f64::from(p.dead_interval_s));
        Self {
            every,
            patience: Patience { quiet_s, limit_s: 60.0 },
            dests: plan.ground_range().map(|g| (g as NodeIdx, plan.node_address(g as NodeIdx))).collect(),
            up: None,
            model: None,
            watching: None,
            next: Instant::now(),
            last_fib: None,
            done: Vec::new(),
            spent: Duration::ZERO,
            snapshots: 0,
            error: None,
        }
    }

    /// Notes the state applied at tick `k` (the apply began at `started`): a new watch if
    /// its links up differ from the last state's (or it is the first), else the model of the
    /// current watch brought up to date.
    pub(crate) fn applied(&mut self, plan: &Plan, k: i64, state: &State, events: &[Event], started: Instant) {
        let mut up: Vec<LinkId> = state.links.iter().filter(|l| l.up).map(|l| l.id).collect();
        up.sort_unstable();
        let changed = self.up.as_ref() != Some(&up);
        let first = self.up.is_none();
        self.up = Some(up);
        if !changed && self.watching.is_none() {
            return;
        }
        self.model = Some(match &state.routes {
            Some(routes) => Model::new(plan, &state.links, routes),
            None => {
                let dests: Vec<NodeIdx> = self.dests.iter().map(|d| d.0).collect();
                Model::new(plan, &state.links, &plan.routes(&state.links, &dests, None))
            }
        });
        if changed {
            self.close(Outcome::Superseded);
            let (kind, what) =
                if first { ("start", "emulation started".to_owned()) } else { describe(events) };
            let watch = Watch::new(k, state.t.as_secs_f64(), kind, &what, self.last_fib.clone());
            self.watching = Some((watch, started));
            self.next = Instant::now();
        }
    }

    /// Ends the current watch, if any, with `outcome`.
    pub(crate) fn close(&mut self, outcome: Outcome) {
        if let Some((watch, _)) = self.watching.take() {
            self.last_fib = watch.last_fib().cloned().or(self.last_fib.take());
            self.done.push(watch.finish(outcome));
        }
    }

    /// Takes a snapshot if one is due; returns when the next one is due.
    pub(crate) fn poll(&mut self, plan: &Plan, conns: &mut Conns, wiring: &Wiring) -> Option<Instant> {
        let (watch, started) = self.watching.as_mut()?;
        if Instant::now() < self.next {
            return Some(self.next);
        }
        let Some(model) = &self.model else { return None };
        let began = Instant::now();
        let fib = match read(plan, &self.dests, conns, wiring) {
            Ok(fib) => {
                self.error = None;
                fib
            }
            Err(e) => {
                self.error = Some(e);
                self.next = Instant::now() + self.every;
                return Some(self.next);
            }
        };
        let at_s = (Instant::now() - *started).as_secs_f64();
        let judged = convergence::judge(plan, model, &fib);
        let outcome = watch.snapshot(at_s, judged, fib, self.patience);
        self.spent += began.elapsed();
        self.snapshots += 1;
        self.next = began + self.every;
        match outcome {
            Some(outcome) => {
                self.close(outcome);
                None
            }
            None => Some(self.next),
        }
    }

    /// The watches ended since the last call.
    pub(crate) fn take(&mut self) -> Vec<Convergence> {
        std::mem::take(&mut self.done)
    }
}

/// Every attached node's forwarding towards the ground nodes, as next-hop nodes.
fn read(
    plan: &Plan,
    dests: &[(NodeIdx, Ipv4Addr)],
    conns: &mut Conns,
    wiring: &Wiring,
) -> Result<Fib, String> {
    let peers: FxHashMap<(NodeIdx, u32), NodeIdx> =
        wiring.ends().map(|e| ((e.node, e.ifindex), e.peer)).collect();
    let mut fib = Fib::new(plan.nodes.len());
    for (&node, conn) in conns.iter_mut() {
        let table = route::forwarding(conn).map_err(|e| format!("{}: {e}", plan.node(node).name))?;
        fib.observe(node);
        for &(dest, addr) in dests.iter().filter(|d| d.0 != node) {
            let Some(r) = route::longest_match(&table, addr) else { continue };
            let hops: Option<Vec<NodeIdx>> =
                r.ifindices.iter().map(|i| peers.get(&(node, *i)).copied()).collect();
            fib.set(node, dest, hops.map_or(Hops::Unknown, Hops::Nodes));
        }
    }
    Ok(fib)
}
