//! The agent's loop. Two watches (Constellations, and the constellation pods of the whole
//! cluster: a link to a pod elsewhere needs that pod's node address) fill caches; one thread
//! owns every netlink socket and, every tick of every constellation with pods here, syncs
//! the kernel with the pods and applies the model's state; one thread measures the underlay;
//! one task writes the agent's status entries. Per-tick data never goes to the API server:
//! a report is written only when what it says changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::DateTime;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::store::WriterDropped;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use orbitnet_api::crd::ObjectiveStatus;
use orbitnet_api::crd::{AgentReport, Constellation};
use orbitnet_api::labels::LABEL_CONSTELLATION;
use orbitnet_api::reports;
use orbitnet_dataplane::{Conn, NlError};
use orbitnet_engine::metrics::FlowMetrics;
use orbitnet_engine::{Clock, ProblemKind};
use orbitnet_model::{NodeIdx, SimTime};
use tokio::sync::mpsc;

use crate::cluster::{self, PodView};
use crate::pods;
use crate::probe::Pinger;
use crate::underlay::UnderlayEstimate;
use crate::wired::{LocalNs, Wired};

pub struct Options {
    /// The Kubernetes node this agent runs on (`spec.nodeName` of its pod).
    pub node_name: String,
    /// Where the host's processes are listed (`/proc`, with hostPID).
    pub proc_root: PathBuf,
    /// How often the round trip to each peer node is measured.
    pub probe_every: Duration,
    /// Where the flows' and objectives' Prometheus metrics are served, if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// The longest the loop sleeps: a spec edit or a new pod is seen within this.
const POLL: Duration = Duration::from_millis(200);
/// A pod's namespace is looked for at most this often while it has none.
const RESCAN: Duration = Duration::from_secs(1);
/// A report that differs only in lag is written when the lag moved by more than this.
const LAG_CHANGE_MS: u32 = 1_000;
/// The flows' verdicts are worked out (and reported if they changed) at most this often
/// while a run lasts: the API server gets summaries, never per-tick writes.
const VERDICT_EVERY: Duration = Duration::from_secs(10);
/// The underlay's estimate to a peer node is logged when first known and whenever it moved
/// by this much since (it is the smallest of the recent round trips, halved).
const UNDERLAY_LOGGED_US: f64 = 100.0;

/// Why the agent could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `what`: "constellation" or "pod".
    #[error("the {what} watch stopped")]
    WatchStopped {
        what: &'static str,
        #[source]
        source: WriterDropped,
    },
    #[error("opening netlink in the host namespace")]
    HostNetlink(#[source] NlError),
    #[error("starting the {thread} thread")]
    Spawn {
        thread: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for the worker threads to stop")]
    Join(#[source] tokio::task::JoinError),
    #[error("a worker thread panicked")]
    WorkerPanicked,
    #[error("serving metrics on {0}")]
    Metrics(std::net::SocketAddr, #[source] std::io::Error),
}

/// What the reporter writes.
#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Report(AgentReport),
    Withdraw,
}

/// Runs the agent until `shutdown` completes. Links stay as they are when it stops: the
/// emulation keeps its last state, and a new agent takes it over from the kernel.
pub async fn run(
    client: Client,
    opts: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let csts: Api<Constellation> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let (cst_store, cst_writer) = reflector::store();
    let (pod_store, pod_writer) = reflector::store();
    let cst_watch =
        reflector::reflector(cst_writer, watcher(csts, watcher::Config::default()).default_backoff());
    let pod_watch = reflector::reflector(
        pod_writer,
        watcher(pods, watcher::Config::default().labels(LABEL_CONSTELLATION)).default_backoff(),
    );
    tokio::spawn(drive(cst_watch, "constellations"));
    tokio::spawn(drive(pod_watch, "pods"));
    tracing::info!(node = %opts.node_name, "waiting for the first list of constellations and pods");
    let stopped = |what| move |source| AgentError::WatchStopped { what, source };
    cst_store.wait_until_ready().await.map_err(stopped("constellation"))?;
    pod_store.wait_until_ready().await.map_err(stopped("pod"))?;

    let (tx, rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let underlay = Arc::new(Mutex::new(Underlay::default()));
    // Opened once here so that a missing capability fails the start, not every constellation.
    drop(Conn::open_here("host").map_err(AgentError::HostNetlink)?);
    let metrics = Arc::new(FlowMetrics::default());
    if let Some(addr) = opts.metrics_addr {
        let bound = orbitnet_engine::metrics::serve(addr, Arc::clone(&metrics))
            .map_err(|e| AgentError::Metrics(addr, e))?;
        tracing::info!(%bound, "serving the flows' metrics at /metrics");
    }
    let dataplane = {
        let mut l = Loop {
            here: opts.node_name.clone(),
            proc_root: opts.proc_root.clone(),
            csts: cst_store,
            pods: pod_store,
            tx,
            underlay: Arc::clone(&underlay),
            held: HashMap::new(),
            netns: HashMap::new(),
            routing_dirs: HashMap::new(),
            last_routing_scan: None,
            host_netns: pods::netns_inode(Path::new("/proc/self/ns/net")),
            last_scan: None,
            metrics,
        };
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("dataplane".into())
            .spawn(move || l.run(&stop))
            .map_err(|source| AgentError::Spawn { thread: "dataplane", source })?
    };
    let prober = {
        let stop = Arc::clone(&stop);
        let every = opts.probe_every;
        std::thread::Builder::new()
            .name("underlay".into())
            .spawn(move || probe_loop(&underlay, every, &stop))
            .map_err(|source| AgentError::Spawn { thread: "underlay", source })?
    };
    let reporter = tokio::spawn(report_loop(client, rx, opts.node_name.clone()));
    shutdown.await;
    tracing::info!("stopping; links stay as they are");
    stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || (dataplane.join(), prober.join()))
        .await
        .map_err(AgentError::Join)?;
    reporter.abort();
    if joined.0.is_err() || joined.1.is_err() {
        return Err(AgentError::WorkerPanicked);
    }
    Ok(())
}

async fn drive<S, T>(stream: S, what: &'static str)
where
    S: futures::Stream<Item = Result<T, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            tracing::warn!(watch = what, error = %e, "watch failed; retrying");
        }
    }
}

/// The peer addresses to measure, their estimates, and which of them the probe has tried
/// since they appeared (answered or not): links to a peer not tried yet wait for it rather
/// than be shaped with nothing taken off (a restarted agent would otherwise slow its node's
/// cross-node links by the underlay until its first round).
#[derive(Default)]
struct Underlay {
    peers: BTreeSet<IpAddr>,
    estimates: HashMap<IpAddr, UnderlayEstimate>,
    tried: BTreeSet<IpAddr>,
}

impl Underlay {
    fn one_way_us(&self) -> HashMap<IpAddr, f64> {
        self.estimates.iter().map(|(&ip, e)| (ip, e.one_way_us())).collect()
    }
}

/// Round trips to each peer a round; a peer the agent has not measured yet gets more at
/// once (until one goes unanswered), its first estimate being what its links are shaped
/// with until the next rounds.
const PROBES: usize = 3;
const FIRST_PROBES: usize = 10;

fn probe_loop(underlay: &Mutex<Underlay>, every: Duration, stop: &AtomicBool) {
    let mut pinger = match Pinger::new() {
        Ok(p) => Some(p),
        Err(error) => {
            tracing::warn!(
                %error,
                "cannot open a raw ICMP socket: the underlay is not measured or compensated"
            );
            None
        }
    };
    let mut next = Instant::now();
    // The estimate last logged per peer: logged again when it moves by UNDERLAY_LOGGED_US.
    let mut logged: HashMap<IpAddr, f64> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let (peers, new): (Vec<IpAddr>, Vec<IpAddr>) = underlay
            .lock()
            .map(|u| (u.peers.iter().copied().collect(), u.peers.difference(&u.tried).copied().collect()))
            .unwrap_or_default();
        // Every peer each round; a new one as soon as it appears.
        let round = if Instant::now() >= next {
            next = Instant::now() + every;
            peers.clone()
        } else if !new.is_empty() {
            new.clone()
        } else {
            std::thread::sleep(POLL);
            continue;
        };
        logged.retain(|ip, _| peers.contains(ip));
        for peer in round {
            let first = new.contains(&peer);
            let mut rtts_us = Vec::new();
            if let (Some(pinger), IpAddr::V4(v4)) = (pinger.as_mut(), peer) {
                for _ in 0..if first { FIRST_PROBES } else { PROBES } {
                    match pinger.round_trip(v4, Duration::from_secs(1)) {
                        Ok(Some(rtt)) => rtts_us.push(rtt.as_secs_f64() * 1e6),
                        Ok(None) => {
                            tracing::debug!(peer = %v4, "no echo reply within 1 s");
                            if first {
                                break;
                            }
                        }
                        Err(error) => tracing::warn!(peer = %v4, %error, "probing the underlay failed"),
                    }
                }
            }
            // One lock a round: the engine's thread reads the estimates every tick.
            let estimate = underlay.lock().ok().and_then(|mut u| {
                u.tried.insert(peer);
                if !rtts_us.is_empty() {
                    let e = u.estimates.entry(peer).or_default();
                    for rtt in rtts_us {
                        e.push(rtt);
                    }
                }
                Some(u.estimates.get(&peer)?.one_way_us())
            });
            if let Some(us) = estimate.filter(|&us| us > 0.0)
                && logged.get(&peer).is_none_or(|before| (us - before).abs() >= UNDERLAY_LOGGED_US)
            {
                tracing::info!(peer = %peer, one_way_us = us.round(), "underlay estimate: taken off the delay of links to that node");
                logged.insert(peer, us);
            }
        }
    }
}

/// Writes each constellation's latest message, retrying every 2 s until the API server
/// takes it. A withdrawal replaces a report not yet written, so no report can follow it.
async fn report_loop(client: Client, mut rx: mpsc::UnboundedReceiver<((String, String), Msg)>, here: String) {
    let mut pending: BTreeMap<(String, String), Msg> = BTreeMap::new();
    loop {
        let received = if pending.is_empty() {
            rx.recv().await
        } else {
            tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep(Duration::from_secs(2)) => None,
            }
        };
        if let Some((key, msg)) = received {
            pending.insert(key, msg);
        } else if pending.is_empty() {
            return;
        }
        while let Ok((key, msg)) = rx.try_recv() {
            pending.insert(key, msg);
        }
        let keys: Vec<(String, String)> = pending.keys().cloned().collect();
        for key in keys {
            let api: Api<Constellation> = Api::namespaced(client.clone(), &key.0);
            let result = match &pending[&key] {
                Msg::Report(r) => reports::report(&api, &key.1, r).await,
                Msg::Withdraw => match api.get(&key.1).await {
                    Ok(cst) => reports::withdraw(&api, &cst, &here).await.map(|_| ()),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    pending.remove(&key);
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    pending.remove(&key);
                }
                Err(error) => tracing::warn!(
                    namespace = %key.0,
                    constellation = %key.1,
                    %error,
                    "writing the status failed; retrying"
                ),
            }
        }
    }
}

/// One constellation this agent holds.
struct Held {
    namespace: String,
    name: String,
    generation: i64,
    wired: Wired,
    apply_errors: Vec<String>,
    slow_underlay: Vec<String>,
    lag_ms: u32,
    sent: Option<AgentReport>,
    /// The objectives of the flows received here, as last judged, and when.
    objectives: Vec<ObjectiveStatus>,
    judged_at: Option<Instant>,
    /// The experiment is over here: flows stopped, verdicts final.
    finished: bool,
    /// The changes of the graph the convergence watch judged, and the emulation time it
    /// began watching (routing objectives are judged from then on).
    routing: Vec<orbitnet_mission::RoutingEvent>,
    watched_from: Option<f64>,
    /// Why the convergence watch's last read of the forwarding tables failed, if it did.
    read_error: Option<String>,
}

impl Held {
    fn teardown(&mut self) {
        for error in self.wired.teardown() {
            tracing::warn!(
                namespace = %self.namespace,
                constellation = %self.name,
                %error,
                "removing a link failed"
            );
        }
    }
}

struct Loop {
    here: String,
    proc_root: PathBuf,
    csts: Store<Constellation>,
    pods: Store<Pod>,
    tx: mpsc::UnboundedSender<((String, String), Msg)>,
    underlay: Arc<Mutex<Underlay>>,
    /// By constellation UID (a constellation deleted and created again is a new one).
    held: HashMap<String, Held>,
    /// Pod UID -> its namespace path.
    netns: HashMap<String, PathBuf>,
    /// Pod UID -> its routing daemons' directory (`cost: delay`), and when pods missing
    /// one were last looked for.
    routing_dirs: HashMap<String, PathBuf>,
    last_routing_scan: Option<Instant>,
    /// The agent's own network namespace (the host's): never taken for a pod's.
    host_netns: Option<u64>,
    last_scan: Option<Instant>,
    metrics: Arc<FlowMetrics>,
}

impl Loop {
    fn run(&mut self, stop: &AtomicBool) {
        tracing::info!(node = %self.here, "link agent running");
        while !stop.load(Ordering::Relaxed) {
            let next = self.step();
            std::thread::sleep(next.clamp(Duration::from_millis(1), POLL));
        }
    }

    /// One pass over every constellation; returns how long until the next tick is due.
    fn step(&mut self) -> Duration {
        let csts = self.csts.state();
        let views: Vec<PodView> = self.pods.state().iter().filter_map(|p| cluster::pod_view(p)).collect();
        let mut seen = HashSet::new();
        let mut next = POLL;
        for cst in &csts {
            let Some(uid) = cst.metadata.uid.clone() else { continue };
            seen.insert(uid.clone());
            if cst.metadata.deletion_timestamp.is_some() {
                self.release(&uid, cst);
            } else if let Some(due) = self.hold(&uid, cst, &views) {
                next = next.min(due);
            }
        }
        let vanished: Vec<String> = self.held.keys().filter(|uid| !seen.contains(*uid)).cloned().collect();
        for uid in vanished {
            if let Some(mut held) = self.held.remove(&uid) {
                tracing::info!(
                    namespace = %held.namespace,
                    constellation = %held.name,
                    "constellation gone; removing its links"
                );
                held.teardown();
            }
        }
        let peers: BTreeSet<IpAddr> = self.held.values().flat_map(|h| h.wired.peers()).collect();
        if let Ok(mut u) = self.underlay.lock() {
            u.estimates.retain(|ip, _| peers.contains(ip));
            u.tried.retain(|ip| peers.contains(ip));
            u.peers = peers;
        }
        next
    }

    /// A constellation being deleted: its links go, then the agent's entry.
    fn release(&mut self, uid: &str, cst: &Constellation) {
        if let Some(mut held) = self.held.remove(uid) {
            tracing::info!(
                namespace = %held.namespace,
                constellation = %held.name,
                "constellation being deleted; removing its links"
            );
            held.teardown();
        }
        let listed = cst.status.as_ref().is_some_and(|s| s.agents.iter().any(|a| a.node == self.here));
        if listed {
            let key = (cst.namespace().unwrap_or_default(), cst.name_any());
            // Repeated each pass until the entry is gone from the cache: the reporter keeps
            // only the latest message per constellation.
            let _ = self.tx.send((key, Msg::Withdraw));
        }
    }

    /// Syncs and applies one constellation; returns when its next tick is due.
    fn hold(&mut self, uid: &str, cst: &Constellation, views: &[PodView]) -> Option<Duration> {
        let namespace = cst.namespace().unwrap_or_default();
        let name = cst.name_any();
        let generation = cst.metadata.generation.unwrap_or_default();
        let key = (namespace.clone(), name.clone());
        let here_too = views.iter().any(|p| {
            p.namespace == namespace && p.constellation == name && p.host.as_deref() == Some(&self.here)
        });
        if !here_too && !self.held.contains_key(uid) {
            return None;
        }
        let started_at = cst.status.as_ref().and_then(|s| s.started_at.as_deref());
        let zero = started_at.and_then(|at| DateTime::parse_from_rfc3339(at).ok()).map(SystemTime::from);
        if self.held.get(uid).is_none_or(|h| h.generation != generation) {
            let compiled = orbitnet_model::compile(&name, &cst.spec)
                .map_err(|e| format!("the spec does not compile: {e}"));
            match compiled {
                Err(e) => {
                    let report = AgentReport {
                        node: self.here.clone(),
                        observed_generation: generation,
                        errors: 1,
                        last_error: Some(e),
                        ..AgentReport::default()
                    };
                    self.send_if_changed(uid, key, report);
                    return None;
                }
                Ok(plan) => {
                    let t = zero.map_or(SimTime::ZERO, |z| Clock::since(&plan, z).now());
                    let replanned = match self.held.get_mut(uid) {
                        Some(held) => match held.wired.replan(plan.clone(), t) {
                            Ok(()) => {
                                tracing::info!(
                                    %namespace,
                                    constellation = %name,
                                    generation,
                                    "new generation applied to the running links"
                                );
                                held.generation = generation;
                                true
                            }
                            Err(why) => {
                                tracing::info!(
                                    %namespace,
                                    constellation = %name,
                                    generation,
                                    reason = %why,
                                    "new generation reshapes the constellation; rebuilding its links"
                                );
                                held.teardown();
                                false
                            }
                        },
                        None => false,
                    };
                    if !replanned {
                        let underlay = match Conn::open_here("host") {
                            Ok(conn) => conn,
                            Err(error) => {
                                tracing::warn!(
                                    %namespace,
                                    constellation = %name,
                                    %error,
                                    "opening netlink in the host namespace failed"
                                );
                                return None;
                            }
                        };
                        let wired = Wired::new(plan, &self.here, &namespace, underlay, t);
                        self.held.insert(
                            uid.to_owned(),
                            Held {
                                namespace: namespace.clone(),
                                name: name.clone(),
                                generation,
                                wired,
                                apply_errors: Vec::new(),
                                slow_underlay: Vec::new(),
                                lag_ms: 0,
                                sent: None,
                                objectives: Vec::new(),
                                judged_at: None,
                                finished: false,
                                routing: Vec::new(),
                                watched_from: None,
                                read_error: None,
                            },
                        );
                    }
                }
            }
        }
        let placed = {
            let held = self.held.get(uid)?;
            cluster::place(held.wired.plan(), &namespace, views, &self.here)
        };
        let local = self.namespaces_of(&placed.local);
        let keeps_costs = self.held.get(uid).is_some_and(|h| h.wired.keeps_costs());
        let routing_dirs = if keeps_costs { self.routing_dirs_of(&placed.local) } else { HashMap::new() };
        let held = self.held.get_mut(uid)?;
        held.wired.set_routing_dirs(routing_dirs);
        let synced = held.wired.sync(&local, &placed.placements);
        if synced.changed() {
            tracing::info!(
                %namespace,
                constellation = %name,
                pods_added = synced.pods_added,
                pods_removed = synced.pods_removed,
                ends_built = synced.ends_built,
                ends_removed = synced.ends_removed,
                pods_wired = held.wired.pods(),
                "pods synced"
            );
        }
        for error in &synced.new_errors {
            tracing::warn!(%namespace, constellation = %name, %error, "wiring failed; retrying");
        }
        // Before the constellation starts (no `startedAt` yet), its state at t = 0.
        let clock = zero.map(|z| Clock::since(held.wired.plan(), z));
        let k = clock.map_or(0, |c| c.current_tick());
        // Due, and every peer node's underlay tried: one lock, only when due.
        let one_way = held
            .wired
            .due(k)
            .then(|| self.underlay.lock().ok())
            .flatten()
            .and_then(|u| held.wired.peers().all(|p| u.tried.contains(&p)).then(|| u.one_way_us()));
        if let Some(one_way) = one_way {
            let tick = held.wired.apply(k, one_way);
            if held.wired.watches_convergence() {
                held.watched_from.get_or_insert(tick.t.as_secs_f64());
            }
            for c in &tick.convergence {
                tracing::info!(
                    %namespace,
                    constellation = %name,
                    kind = %c.kind,
                    t = c.t,
                    outcome = ?c.outcome,
                    forwarded_s = ?c.forwarded_s,
                    stretch = c.stretch,
                    pairs = c.pairs,
                    broken = c.broken,
                    loops = c.loops,
                    blackholes = c.blackholes,
                    churn = c.churn,
                    snapshots = c.snapshots,
                    what = %c.what,
                    unforwarded = c.unforwarded.as_deref().unwrap_or("-"),
                    "convergence"
                );
            }
            held.routing
                .extend(tick.convergence.iter().map(orbitnet_routing::convergence::Convergence::event));
            for (i, ft) in &tick.flows {
                self.metrics.observe(&held.name, &held.wired.plan().flows[*i].name, ft);
            }
            held.apply_errors = tick
                .problems
                .iter()
                .filter(|p| matches!(p.kind, ProblemKind::Apply | ProblemKind::Costs))
                .map(|p| p.to_string())
                .collect();
            for p in
                tick.problems.iter().filter(|p| !matches!(p.kind, ProblemKind::Apply | ProblemKind::Costs))
            {
                tracing::debug!(%namespace, constellation = %name, problem = %p, "tick problem");
            }
            held.slow_underlay = tick.shaping;
            held.lag_ms = clock.map_or(0, |c| u32::try_from(c.late(k).as_millis()).unwrap_or(u32::MAX));
        }
        if let Some(clock) = clock {
            mission(held, &placed.local, &local, clock, &self.metrics);
        }
        let (links_built, links_up) = held.wired.links();
        let mut problems = held.wired.build_errors.iter().chain(&held.apply_errors);
        let report = AgentReport {
            node: self.here.clone(),
            observed_generation: generation,
            pods: u32::try_from(held.wired.pods()).unwrap_or(u32::MAX),
            links_built: u32::try_from(links_built).unwrap_or(u32::MAX),
            links_up: u32::try_from(links_up).unwrap_or(u32::MAX),
            errors: u32::try_from(held.wired.build_errors.len() + held.apply_errors.len())
                .unwrap_or(u32::MAX),
            last_error: problems.next().or(held.slow_underlay.first()).cloned(),
            lag_ms: held.lag_ms,
            objectives: held.objectives.clone(),
        };
        let mut next = clock.map_or(POLL, |c| c.due(k + 1).saturating_duration_since(Instant::now()));
        if let Some(read) = held.wired.watch_convergence() {
            next = next.min(read.saturating_duration_since(Instant::now()));
        }
        // Said when it changes; copied only then.
        if held.wired.convergence_read_error() != held.read_error.as_deref() {
            let read_error = held.wired.convergence_read_error().map(str::to_owned);
            match &read_error {
                Some(error) => tracing::warn!(
                    %namespace,
                    constellation = %name,
                    %error,
                    "the convergence watch cannot read the pods' forwarding tables"
                ),
                None => tracing::info!(
                    %namespace,
                    constellation = %name,
                    "the convergence watch reads the pods' forwarding tables again"
                ),
            }
            held.read_error = read_error;
        }
        self.send_if_changed(uid, key, report);
        Some(next)
    }

    fn send_if_changed(&mut self, uid: &str, key: (String, String), report: AgentReport) {
        let sent = self.held.get(uid).and_then(|h| h.sent.as_ref());
        let same = sent.is_some_and(|s| {
            AgentReport { lag_ms: report.lag_ms, ..s.clone() } == report
                && s.lag_ms.abs_diff(report.lag_ms) <= LAG_CHANGE_MS
        });
        if same {
            return;
        }
        if let Some(h) = self.held.get_mut(uid) {
            h.sent = Some(report.clone());
        }
        let _ = self.tx.send((key, Msg::Report(report)));
    }

    /// The namespace path of each local pod, `None` while none of its processes is found.
    /// /proc is scanned again when a cached process is gone, and at most once a second for
    /// pods never found (not started yet).
    fn namespaces_of(&mut self, local: &HashMap<NodeIdx, String>) -> HashMap<NodeIdx, LocalNs> {
        let before = self.netns.len();
        self.netns.retain(|uid, path| still_of(path, uid));
        let lost = self.netns.len() < before;
        let missing: Vec<String> =
            local.values().filter(|uid| !self.netns.contains_key(*uid)).cloned().collect();
        if !missing.is_empty() && (lost || self.last_scan.is_none_or(|at| at.elapsed() >= RESCAN)) {
            self.last_scan = Some(Instant::now());
            self.netns.extend(pods::find_netns(&self.proc_root, &missing, self.host_netns));
        }
        local.iter().map(|(&node, uid)| (node, (uid.clone(), self.netns.get(uid).cloned()))).collect()
    }
}

impl Loop {
    /// The routing daemons' directory of each local pod that has one configured. /proc is
    /// scanned again at most once a second while a pod has none (its daemons starting, or
    /// its routing container restarting: a restart leaves the cached path dangling).
    fn routing_dirs_of(&mut self, local: &HashMap<NodeIdx, String>) -> HashMap<NodeIdx, PathBuf> {
        self.routing_dirs.retain(|_, dir| dir.join(orbitnet_routing::costs::CONFIGURED).exists());
        let missing: Vec<String> =
            local.values().filter(|uid| !self.routing_dirs.contains_key(*uid)).cloned().collect();
        if !missing.is_empty() && self.last_routing_scan.is_none_or(|at| at.elapsed() >= RESCAN) {
            self.last_routing_scan = Some(Instant::now());
            self.routing_dirs.extend(pods::find_routing_dirs(&self.proc_root, &missing));
        }
        local.iter().filter_map(|(&node, uid)| Some((node, self.routing_dirs.get(uid)?.clone()))).collect()
    }
}

/// The mission of one constellation on this node: the flows started once every local
/// end's pod has a namespace; the objectives of the flows received here, and the routing
/// objectives, judged every `VERDICT_EVERY`, and finally once the spec's `duration` is over
/// (the flows stopped, the convergence watch ended).
fn mission(
    held: &mut Held,
    placed: &HashMap<NodeIdx, String>,
    local: &HashMap<NodeIdx, LocalNs>,
    clock: Clock,
    metrics: &FlowMetrics,
) {
    let plan = held.wired.plan();
    let flows = !plan.flows.is_empty();
    if held.finished || (!flows && plan.objectives.is_empty()) {
        return;
    }
    if flows && !held.wired.traffic_started() {
        let ends: Vec<NodeIdx> =
            plan.flows.iter().flat_map(|f| [f.from, f.to]).filter(|n| placed.contains_key(n)).collect();
        if ends.is_empty() || !ends.iter().all(|n| local.get(n).is_some_and(|(_, path)| path.is_some())) {
            return;
        }
        match held.wired.start_traffic(local, clock) {
            Ok(()) => tracing::info!(
                namespace = %held.namespace,
                constellation = %held.name,
                ends = ends.len(),
                "flows started"
            ),
            Err(error) => {
                tracing::warn!(namespace = %held.namespace, constellation = %held.name, %error, "flows cannot start");
                held.apply_errors.push(error.to_string());
                return;
            }
        }
    }
    let now = clock.now();
    let end = held.wired.plan().duration.and_then(|d| SimTime::ZERO.checked_add(d));
    // Datagrams of the run's last tick arrive up to IN_FLIGHT after it.
    let over = end.is_some_and(|end| {
        now.as_nanos() >= end.as_nanos() + orbitnet_engine::traffic::IN_FLIGHT.as_nanos() as i64
    });
    if !over && held.judged_at.is_some_and(|at| at.elapsed() < VERDICT_EVERY) {
        return;
    }
    held.judged_at = Some(Instant::now());
    let series = match (flows, over) {
        (false, _) => Vec::new(),
        (true, true) => held.wired.finish_traffic(),
        (true, false) => held.wired.traffic_snapshot(),
    };
    if over {
        let ended = held.wired.finish_convergence();
        held.routing.extend(ended.iter().map(orbitnet_routing::convergence::Convergence::event));
    }
    let plan = held.wired.plan();
    // Judged up to what has settled: a tick's datagrams may be in flight for IN_FLIGHT.
    let settled = now.as_secs_f64() - orbitnet_engine::traffic::IN_FLIGHT.as_secs_f64();
    let to = end.map_or(settled, |e| e.as_secs_f64().min(settled));
    let mut verdicts = orbitnet_mission::judge_received(plan, &series, &|n| placed.contains_key(&n), to);
    let watched = if placed.len() < plan.nodes.len() {
        Err(format!(
            "{} of the {} pods are on other Kubernetes nodes: routing objectives need every node's forwarding table, and a link agent reads only its own pods'",
            plan.nodes.len() - placed.len(),
            plan.nodes.len()
        ))
    } else {
        match held.watched_from {
            Some(from) => Ok(from),
            None => Err("the link agent was not watching convergence: the routing objectives came with an edit after it took the constellation (restart it, or recreate the constellation)".to_owned()),
        }
    };
    let run = orbitnet_mission::Span { from: *watched.as_ref().unwrap_or(&0.0), to };
    verdicts.extend(orbitnet_mission::judge_routing(
        plan,
        watched.as_ref().map(|_| held.routing.as_slice()).map_err(String::as_str),
        run,
    ));
    held.objectives = verdicts.iter().map(|v| ObjectiveStatus::of(v, over)).collect();
    metrics.verdicts(&held.name, &verdicts, over);
    if over {
        held.finished = true;
        tracing::info!(
            namespace = %held.namespace,
            constellation = %held.name,
            objectives = held.objectives.len(),
            "the run is over; flows stopped, verdicts final"
        );
    }
}

/// Whether the process of `path` (`<proc>/<pid>/ns/net`) still belongs to pod `uid` (its
/// pid may have been reused).
fn still_of(path: &Path, uid: &str) -> bool {
    let Some(pid_dir) = path.parent().and_then(Path::parent) else { return false };
    std::fs::read_to_string(pid_dir.join("cgroup"))
        .ok()
        .and_then(|c| pods::pod_uid_in_cgroup(&c))
        .is_some_and(|found| found == uid)
}
