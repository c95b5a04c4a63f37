//! `orbitnet run`: preflight, lock, bring-up, then the real-time loop around the engine.
//! Every tick: the engine prepares the next state (and the links it needs) while the tick
//! is not yet due, then applies it; the runner writes telemetry and the live view, and
//! takes live edits of the file. Ctrl-C, SIGTERM or the end of `--duration` tear everything
//! down; so does an error.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orbitnet_dataplane::naming;
use orbitnet_dataplane::netns::Netns;
use orbitnet_dataplane::preflight::{self, PreflightError};
use orbitnet_engine::metrics::FlowMetrics;
use orbitnet_engine::{Clock, Event, ProblemKind, Settings, Tick};
use orbitnet_model::{Epoch, LinkKind, NodeIdx, Plan, SimTime, SpecDuration, State};
use orbitnet_routing::convergence::Convergence;

use crate::lock::{LockError, RunLock};
use crate::telemetry::{FlowRecord, PathRecord, Record, Telemetry, TickRecord};
use crate::topology::{self, Emulation, UpError};
use crate::view::{Mode, Status, View};
use crate::watch::SpecWatch;
use crate::{down, stats};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub file: PathBuf,
    /// The file's constellation, compiled.
    pub plan: Plan,
    /// Emulation time to start at (rounded down to a tick).
    pub start: SimTime,
    /// Emulation time to run for; `None` until interrupted.
    pub duration: Option<SpecDuration>,
    pub time_scale: f64,
    pub dry_run: bool,
    pub telemetry: Option<PathBuf>,
    pub mode: Mode,
    pub workdir: Option<PathBuf>,
    /// Ground node pairs whose path delay is shown and recorded; empty = the first few.
    pub paths: Vec<(String, String)>,
    /// The engine's settings (look-ahead, delay tolerance).
    pub settings: Settings,
    /// Print the objectives' verdicts at the end (the caller turns them into an exit status).
    pub check: bool,
    /// Write the verdicts as JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Serve the flows' and objectives' Prometheus metrics here.
    pub metrics: Option<std::net::SocketAddr>,
    /// Serve the browser view here.
    pub ui: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("bringing the constellation up failed: {0}")]
    Up(#[from] UpError),
    #[error(transparent)]
    Down(#[from] down::DownError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot write telemetry: {0}")]
    Telemetry(std::io::Error),
    #[error("cannot write the JUnit file {0}: {1}")]
    Junit(PathBuf, std::io::Error),
    #[error("cannot serve metrics on {0}: {1}")]
    Metrics(std::net::SocketAddr, std::io::Error),
    #[error("cannot serve the browser view on {0}: {1}")]
    Ui(std::net::SocketAddr, std::io::Error),
}

/// What a run did, for the last lines printed.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub ticks: u64,
    pub skipped: u64,
    pub stopped_by: String,
    pub apply_ms: stats::Percentiles,
    pub errors: usize,
    /// The objectives' verdicts (empty without objectives).
    pub verdicts: Vec<orbitnet_mission::Verdict>,
    /// How the forwarding converged after each graph change.
    pub convergence: Vec<Convergence>,
}

/// The ground node pairs to follow: those asked for, or pairs of the first four.
fn path_pairs(plan: &Plan, asked: &[(String, String)]) -> Result<Vec<(NodeIdx, NodeIdx)>, RunError> {
    if asked.is_empty() {
        let ground: Vec<NodeIdx> = plan.ground_range().take(4).map(|g| g as NodeIdx).collect();
        return Ok(ground
            .iter()
            .enumerate()
            .flat_map(|(i, &a)| ground[i + 1..].iter().map(move |&b| (a, b)))
            .collect());
    }
    asked
        .iter()
        .map(|(a, b)| {
            let find = |n: &str| {
                plan.node_index(n).ok_or_else(|| RunError::Usage(format!("--paths: no node named {n:?}")))
            };
            Ok((find(a)?, find(b)?))
        })
        .collect()
}

fn paths_of(plan: &Plan, state: &State, pairs: &[(NodeIdx, NodeIdx)]) -> Vec<PathRecord> {
    pairs
        .iter()
        .map(|&(a, b)| {
            let routes = state.routes.as_ref();
            let path = routes.and_then(|r| r.path(a, b));
            PathRecord {
                from: plan.node(a).name.clone(),
                to: plan.node(b).name.clone(),
                delay_ms: routes.and_then(|r| r.delay_ns(a, b)).map(|ns| ns as f64 / 1e6),
                hops: path.map_or(0, |p| p.len() - 1),
            }
        })
        .collect()
}

/// Prints what `run` would build, building nothing.
fn dry_run(opts: &RunOptions, span: Span, view: &mut View) {
    let plan = &opts.plan;
    let horizon = span.start.checked_add(opts.settings.lookahead).unwrap_or(SimTime::from_nanos(i64::MAX));
    let horizon = span.end.map_or(horizon, |end| end.min(horizon));
    let ground = plan.ground_links_chosen(span.start, horizon);
    let programs = plan
        .nodes
        .iter()
        .filter(|n| plan.node_templates.for_kind(n.kind).is_some_and(|t| t.command.is_some()))
        .count();
    let first = plan.state_at(span.start);
    view.message(&format!(
        "dry run of {:?}: would create {} network namespaces ({}*), {} inter-satellite links and {} ground links (those chosen in the first {}), and start {programs} node programs; at t = {} s, {} of {} links are up",
        plan.name,
        plan.nodes.len(),
        orbitnet_dataplane::naming::netns_prefix(&plan.name),
        plan.isls.len(),
        ground.len(),
        SpecDuration::from_nanos((horizon.as_nanos() - span.start.as_nanos()) as u64),
        span.start,
        first.links_up(),
        first.links.len()
    ));
}

/// The span of a run in emulation time.
#[derive(Clone, Copy, Debug)]
struct Span {
    /// The first tick, and its time.
    first_tick: i64,
    start: SimTime,
    /// Where `--duration` ends the run, if it does.
    end: Option<SimTime>,
}

/// The routing mode as reports show it: `shortestPath`, `none`, `ospf (frr, bfd)`.
fn routing_label(plan: &Plan) -> String {
    let mode = plan.routing.as_str();
    match &plan.routing_protocol {
        Some(p) => format!("{mode} ({}{})", p.daemon.as_str(), if p.bfd.enabled { ", bfd" } else { "" }),
        None => mode.to_owned(),
    }
}

/// Routing daemons keep their timers in real time, however fast emulation time runs: a
/// time scale above 1 is refused once a tick would last less real time than one hello
/// (links would come and go between two hellos, before an adjacency could form), and
/// warned about below that (failure detection lasts that many times longer in emulation
/// time, and so do the losses it causes).
fn protocol_time_scale(plan: &Plan, time_scale: f64) -> Result<Option<String>, RunError> {
    let Some(p) = plan.routing_protocol.as_ref().filter(|_| time_scale > 1.0) else { return Ok(None) };
    let hello_s = f64::from(p.hello_interval_s);
    let limit = plan.tick.as_secs_f64() / hello_s;
    let detect_s = if p.bfd.enabled {
        f64::from(p.bfd.interval_ms * p.bfd.multiplier) / 1e3
    } else {
        f64::from(p.dead_interval_s)
    };
    if time_scale > limit {
        return Err(RunError::Usage(format!(
            "--time-scale {time_scale} is too fast for routing: {}: the daemons' timers run in real time, and at this scale a tick ({}) lasts {:.2} s of real time, less than one hello ({hello_s} s), so links would change between two hellos; the limit here is x{limit:.2} (tick / hello interval)",
            plan.routing.as_str(),
            plan.tick,
            plan.tick.as_secs_f64() / time_scale
        )));
    }
    Ok(Some(format!(
        "note: the routing daemons' timers run in real time: at x{time_scale} their failure detection ({detect_s} s) lasts {:.1} s of emulation time, and losses per event grow alike",
        detect_s * time_scale
    )))
}

fn span_of(opts: &RunOptions) -> Span {
    let first_tick = opts.plan.tick_index(opts.start);
    let start = opts.plan.tick_time(first_tick);
    let end = opts.duration.and_then(|d| start.checked_add(d));
    Span { first_tick, start, end }
}

/// Raises the soft open-files limit to the hard one: a node holds a socket and, while it
/// starts, a namespace handle.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// MemAvailable, KiB.
fn memory_available_kib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.split_whitespace().next()?.parse().ok()
}

fn describe_time(epoch: Epoch, t: SimTime) -> String {
    epoch.at(t).map(|at| Epoch(at).to_string()).unwrap_or_default()
}

/// Runs a scenario until the duration ends or a signal comes; tears down in every case.
pub fn run(opts: RunOptions) -> Result<RunSummary, RunError> {
    let mut view = View::new(opts.mode);
    if !(opts.time_scale.is_finite() && opts.time_scale > 0.0) {
        return Err(RunError::Usage(format!("--time-scale {} must be a positive number", opts.time_scale)));
    }
    if let Some(why) = protocol_time_scale(&opts.plan, opts.time_scale)? {
        view.message(&why);
    }
    let pairs = path_pairs(&opts.plan, &opts.paths)?;
    let span = span_of(&opts);
    if opts.dry_run {
        dry_run(&opts, span, &mut view);
        return Ok(RunSummary { stopped_by: "dry run".into(), ..RunSummary::default() });
    }
    preflight::check()?;
    crate::daemons::preflight(&opts.plan).map_err(RunError::Usage)?;
    let name = opts.plan.name.clone();
    let _lock = RunLock::acquire(&name, &format!("file {}", opts.file.display()))?;
    let leftovers = down::leftover_namespaces(&name);
    if !leftovers.is_empty() {
        view.message(&format!(
            "removing {} network namespaces left by an earlier run of {name:?} that did not shut down",
            leftovers.len()
        ));
        // This run holds the lock: no live run owns them.
        for f in down::leftovers_of(&name).failures {
            view.message(&format!("removing the leftovers: {f}"));
        }
    }
    raise_open_files_limit();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(RunError::Signals)?;
    }
    let mut telemetry =
        Telemetry::new(opts.telemetry.as_deref(), opts.mode == Mode::Json).map_err(RunError::Telemetry)?;
    telemetry.emit(&Record::Start {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        constellation: name.clone(),
        file: opts.file.display().to_string(),
        nodes: opts.plan.nodes.len(),
        time_scale: opts.time_scale,
        tick: opts.plan.tick.to_string(),
        routing: routing_label(&opts.plan),
    });
    let workdir = opts.workdir.clone().unwrap_or_else(|| PathBuf::from(format!("orbitnet-{name}")));
    let memory_before = memory_available_kib();
    let window = (span.start, span.end);
    let emu =
        match topology::up(opts.plan.clone(), opts.settings, &workdir, window, &mut |what, done, total| {
            view.progress(what, done, total)
        }) {
            Ok(emu) => emu,
            Err(e) => {
                view.message(&format!("bring-up failed; removing what was built: {e}"));
                let _ = down::down(Some(&name));
                return Err(e.into());
            }
        };
    let result = run_loop(emu, &opts, span, &pairs, &stop, &mut telemetry, &mut view, memory_before);
    telemetry.flush();
    result
}

#[allow(clippy::too_many_arguments)] // the loop's shared context, passed once
fn run_loop(
    mut emu: Emulation,
    opts: &RunOptions,
    span: Span,
    pairs: &[(NodeIdx, NodeIdx)],
    stop: &AtomicBool,
    telemetry: &mut Telemetry,
    view: &mut View,
    memory_before: Option<u64>,
) -> Result<RunSummary, RunError> {
    let mut summary = RunSummary::default();
    // The first tick also builds the ground links it needs: counted in its time.
    let started = Instant::now();
    let first = emu.engine.apply(span.first_tick);
    let first_ms = started.elapsed();
    let memory_kib = memory_before.zip(memory_available_kib()).map(|(b, a)| b.saturating_sub(a));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let nodes = emu.engine.plan().nodes.len();
    let links = emu.engine.links().0;
    telemetry.emit(&Record::Up {
        build_ms: ms(emu.timings.total() + first_ms),
        namespaces_ms: ms(emu.timings.namespaces),
        links_ms: ms(emu.timings.links),
        programs_ms: ms(emu.timings.programs),
        first_apply_ms: ms(first_ms),
        first_apply_ops: first.report.operations(),
        namespaces: nodes,
        links,
        processes: emu.procs.len(),
        memory_kib,
    });
    view.message(&format!(
        "up in {:.1} s (namespaces {:.1} s, links {:.1} s, programs {:.1} s, first apply {:.1} s): {nodes} nodes, {links} links built, {} node programs, {} kernel operations for t = {} s{}; workdir {}",
        (emu.timings.total() + first_ms).as_secs_f64(),
        emu.timings.namespaces.as_secs_f64(),
        emu.timings.links.as_secs_f64(),
        emu.timings.programs.as_secs_f64(),
        first_ms.as_secs_f64(),
        emu.procs.len(),
        first.report.operations(),
        span.start,
        memory_kib.map(|k| format!(", {:.0} KiB of memory per node", k as f64 / nodes as f64)).unwrap_or_default(),
        emu.workdir.display()
    ));
    report_problems(&first, telemetry, view, &mut summary);
    let mut browser = match opts.ui {
        Some(addr) => match crate::browser::Browser::start(addr, emu.engine.plan(), span.start, span.end) {
            Ok((mut b, bound)) => {
                view.message(&format!("browser view: http://{bound}/"));
                b.tick(emu.engine.plan(), &first);
                Some(b)
            }
            Err(e) => {
                let _ = emu.teardown();
                return Err(RunError::Ui(addr, e));
            }
        },
        None => None,
    };

    let clock = Clock::start(emu.engine.plan(), opts.time_scale, span.first_tick);
    let flows = emu.engine.plan().flows.len();
    let mut per_traversal = None;
    if flows > 0 {
        let plan_name = emu.engine.plan().name.clone();
        let names: Vec<String> = emu.engine.plan().nodes.iter().map(|n| n.name.clone()).collect();
        let namespace =
            |n: NodeIdx| Netns::open_named(&naming::netns_name(&plan_name, &names[n as usize])).ok();
        match orbitnet_engine::calibrate::per_traversal_cost(&format!("orbitnet-cal-{}", std::process::id()))
        {
            Ok(c) => {
                view.message(&format!(
                    "a shaped link traversal costs this machine {:.3} ms (p90; median {:.3} ms, {} datagrams): a flow's tick departing from the model by more than hops x that is flagged",
                    c.p90_ms, c.median_ms, c.datagrams
                ));
                telemetry.emit(&Record::Calibration {
                    per_traversal_ms: c.p90_ms,
                    median_ms: c.median_ms,
                    datagrams: c.datagrams,
                });
                per_traversal = Some(c.p90_ms);
            }
            Err(e) => {
                view.message(&format!("cannot measure the per-traversal cost, no tick is flagged: {e}"))
            }
        }
        match emu.engine.start_traffic(&namespace, clock) {
            Ok(()) => view.message(&format!("{flows} flows sending and measured")),
            Err(e) => {
                summary.errors += 1;
                view.message(&format!("the flows cannot run: {e}"));
                telemetry.emit(&Record::Error {
                    t: span.start.as_secs_f64(),
                    node: String::new(),
                    link: None,
                    message: e.to_string(),
                });
            }
        }
    }
    let metrics = match opts.metrics {
        Some(addr) => {
            let m = Arc::new(FlowMetrics::default());
            match orbitnet_engine::metrics::serve(addr, Arc::clone(&m)) {
                Ok(bound) => view.message(&format!("metrics: http://{bound}/metrics")),
                Err(e) => {
                    let _ = emu.teardown();
                    return Err(RunError::Metrics(addr, e));
                }
            }
            Some(m)
        }
        None => None,
    };
    let mut last_flows: Vec<Option<FlowRecord>> = vec![None; flows];
    let mut emitted: Vec<i64> = vec![i64::MIN; flows];
    let mut watcher = SpecWatch::new(&opts.file);
    let mut k = span.first_tick;
    let mut handovers_total = 0usize;
    let mut last_edit_check = Instant::now();
    let mut late = stats::Percentiles::default();
    summary.stopped_by = "interrupt".into();

    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut next = k + 1;
        let past_end = |k: i64| span.end.is_some_and(|end| clock.time_of(k) > end);
        if past_end(next) {
            summary.stopped_by = "duration".into();
            break;
        }
        // Live edits, checked about once a second.
        if last_edit_check.elapsed() >= Duration::from_secs(1) {
            last_edit_check = Instant::now();
            if let Some(yaml) = watcher.changed()
                && apply_edit(&mut emu, &yaml, clock.time_of(next), span.end, telemetry, view)
                && let Some(b) = &browser
            {
                b.replanned(emu.engine.plan(), span.end);
            }
        }
        // The next state and the links it needs, before it is due; if the loop fell more
        // than a tick behind, the tick due now instead.
        emu.engine.prepare(next);
        let now_tick = clock.current_tick();
        if now_tick > next + 1 {
            summary.skipped += (now_tick - next) as u64;
            next = now_tick;
            if past_end(next) {
                summary.stopped_by = "duration".into();
                break;
            }
            emu.engine.prepare(next);
        }
        let due = clock.due(next);
        while Instant::now() < due && !stop.load(Ordering::Relaxed) {
            emu.engine.wait_watching(due.min(Instant::now() + Duration::from_millis(50)));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let tick = emu.engine.apply(next);
        let late_ms = clock.late(next).as_secs_f64() * 1e3;
        if let Some(b) = &mut browser {
            b.tick(emu.engine.plan(), &tick);
        }
        summary.apply_ms.push(tick.report.elapsed.as_secs_f64() * 1e3);
        late.push(late_ms);
        let t = tick.t;
        report_problems(&tick, telemetry, view, &mut summary);
        report_events(&tick, telemetry);
        for p in emu.procs.iter_mut() {
            if let Some(status) = p.newly_exited() {
                telemetry.emit(&Record::ProcessExited {
                    t: t.as_secs_f64(),
                    node: p.node.clone(),
                    status: status.to_string(),
                });
                view.message(&format!(
                    "t = {t} s: the program of {} exited ({status}); its log: {}",
                    p.node,
                    p.log.display()
                ));
            }
        }
        for e in crate::daemons::supervise(emu.engine.plan(), &mut emu.daemons, &emu.workdir) {
            telemetry.emit(&Record::DaemonsExited {
                t: t.as_secs_f64(),
                node: e.node.clone(),
                status: e.status.clone(),
                restarted: e.restarted,
            });
            summary.errors += 1;
            view.message(&format!(
                "t = {t} s: the routing daemons of {} exited ({}); {}; their log: {}",
                e.node,
                e.status,
                if e.restarted {
                    "started again"
                } else {
                    "left stopped (they exited too often, or cannot start)"
                },
                e.log.display()
            ));
        }
        for c in &tick.convergence {
            telemetry.emit(&Record::Convergence(c.clone()));
        }
        summary.convergence.extend(tick.convergence.iter().cloned());
        handovers_total += tick.handovers();
        let record = tick_record(emu.engine.plan(), &tick, pairs, late_ms);
        telemetry.emit(&Record::Tick(record.clone()));
        for (i, ft) in &tick.flows {
            let plan = emu.engine.plan();
            if let Some(m) = &metrics {
                m.observe(&plan.name, &plan.flows[*i].name, ft);
            }
            let r = FlowRecord::of(&plan.flows[*i].name, ft, per_traversal);
            telemetry.emit(&Record::Flow(r.clone()));
            emitted[*i] = emitted[*i].max(ft.k);
            last_flows[*i] = Some(r);
        }
        telemetry.flush();
        let mut shown = status(&emu, &tick.state, &record, &summary, &late, handovers_total, opts.time_scale);
        shown.lines.extend(last_flows.iter().flatten().map(flow_line));
        view.status(&shown);
        k = next;
        summary.ticks += 1;
    }

    view.finish();
    let t = clock.time_of(k);
    for c in emu.engine.finish_convergence() {
        telemetry.emit(&Record::Convergence(c.clone()));
        summary.convergence.push(c);
    }
    if let Some(line) = convergence_summary(&emu, &summary.convergence) {
        view.message(&line);
    }
    if let Some((spent, reads, _)) = emu.engine.convergence_cost() {
        telemetry.emit(&Record::ConvergenceCost { reads, ms: spent.as_secs_f64() * 1e3 });
    }
    if flows > 0 || !emu.engine.plan().objectives.is_empty() {
        if flows > 0 {
            view.message("stopping the flows (waiting 2 s for datagrams in flight)");
        }
        let series = emu.engine.finish_traffic(true);
        let run = orbitnet_mission::Span {
            from: span.start.as_secs_f64(),
            to: t.as_secs_f64() + emu.engine.plan().tick.as_secs_f64(),
        };
        let routing: Vec<orbitnet_mission::RoutingEvent> =
            summary.convergence.iter().map(orbitnet_routing::convergence::Convergence::event).collect();
        let measured = Measured { series: &series, emitted: &emitted, routing: &routing, per_traversal };
        summary.verdicts = mission_end(emu.engine.plan(), &measured, run, telemetry, view);
        if let Some(m) = &metrics {
            m.verdicts(&emu.engine.plan().name, &summary.verdicts, true);
        }
        if let Some(path) = &opts.junit {
            let xml = orbitnet_mission::junit::junit(
                &emu.engine.plan().name,
                &summary.verdicts,
                started.elapsed().as_secs_f64(),
                &chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
            );
            if let Err(e) = std::fs::write(path, xml) {
                let _ = emu.teardown();
                return Err(RunError::Junit(path.clone(), e));
            }
            view.message(&format!("JUnit: {}", path.display()));
        }
    }
    telemetry.emit(&Record::Stop {
        t: t.as_secs_f64(),
        reason: summary.stopped_by.clone(),
        ticks: summary.ticks,
        skipped: summary.skipped,
    });
    telemetry.flush();
    view.message(&format!(
        "stopping ({}) at t = {t} s; removing namespaces and programs",
        summary.stopped_by
    ));
    let failures = emu.teardown();
    for f in &failures {
        view.message(&format!("teardown: {f}"));
    }
    view.message(&format!(
        "stopped after {} ticks ({} skipped); apply p50 {:.2} ms, p99 {:.2} ms; {} errors",
        summary.ticks,
        summary.skipped,
        summary.apply_ms.quantile(0.5),
        summary.apply_ms.quantile(0.99),
        summary.errors
    ));
    Ok(summary)
}

/// One line on the run's convergence: per event kind, how many and how long until every
/// reachable pair was forwarded; and what the watching cost.
fn convergence_summary(emu: &Emulation, all: &[Convergence]) -> Option<String> {
    let (spent, reads, error) = emu.engine.convergence_cost()?;
    let per_kind: Vec<String> = crate::converge::kind_lines(all.iter()).into_iter().map(|(_, l)| l).collect();
    Some(format!(
        "convergence: {}; {reads} table reads took {:.1} ms{}",
        if per_kind.is_empty() { "no graph change".into() } else { per_kind.join("; ") },
        spent.as_secs_f64() * 1e3,
        error.map(|e| format!("; the last read failed: {e}")).unwrap_or_default()
    ))
}

/// A flow's last settled tick, for the live view.
fn flow_line(r: &FlowRecord) -> String {
    let delivered = if r.sent > 0 { r.received as f64 / r.sent as f64 * 100.0 } else { 0.0 };
    let measured = r.delay_ms.map_or("-".into(), |d| format!("{:.2} ms", d[1]));
    let model = r.model_delay_ms.map_or("no path".into(), |m| format!("{m:.2} ms"));
    format!(
        "flow {} @ {} s: {}/{} delivered ({delivered:.1} %), median {measured}, model {model}",
        r.flow, r.t, r.received, r.sent
    )
}

/// What a run measured for its objectives: each flow's series and its last tick written,
/// the convergence of each change of the graph, the per-traversal cost.
struct Measured<'a> {
    series: &'a [orbitnet_mission::FlowSeries],
    emitted: &'a [i64],
    routing: &'a [orbitnet_mission::RoutingEvent],
    per_traversal: Option<f64>,
}

/// The end of a run with flows or objectives: the ticks not yet written, each flow's
/// fidelity, the objectives' verdicts (written, and shown as a table).
fn mission_end(
    plan: &Plan,
    m: &Measured<'_>,
    run: orbitnet_mission::Span,
    telemetry: &mut Telemetry,
    view: &mut View,
) -> Vec<orbitnet_mission::Verdict> {
    let (series, emitted, per_traversal) = (m.series, m.emitted, m.per_traversal);
    for (i, s) in series.iter().enumerate() {
        for ft in s.ticks.values().filter(|t| t.k > emitted[i]) {
            telemetry.emit(&Record::Flow(FlowRecord::of(&plan.flows[i].name, ft, per_traversal)));
        }
        let flagged = s.ticks.values().filter(|t| crate::telemetry::flagged(t, per_traversal)).count();
        let errors: Vec<f64> =
            s.ticks.values().filter_map(|t| Some(t.delay.percentile_ms(50.0)? - t.model.delay_ms?)).collect();
        if !errors.is_empty() {
            let (median, p99) = (stats::quantile_of(&errors, 0.5), stats::quantile_of(&errors, 0.99));
            let sent: u64 = s.ticks.values().map(|t| t.sent).sum();
            let received: u64 = s.ticks.values().map(|t| t.received).sum();
            let ticks = errors.len();
            view.message(&format!(
                "flow {}: {received} of {sent} datagrams delivered; measured - model one-way delay: median {median:+.3} ms, p99 {p99:+.3} ms; {flagged} of {ticks} ticks flagged",
                plan.flows[i].name
            ));
            telemetry.emit(&Record::Fidelity {
                flow: plan.flows[i].name.clone(),
                ticks,
                median_error_ms: median,
                p99_error_ms: p99,
                flagged,
            });
        }
    }
    let verdicts = judge(plan, series, m.routing, run);
    for v in &verdicts {
        telemetry.emit(&Record::Verdict(v.clone()));
    }
    if !verdicts.is_empty() {
        view.message(&format!(
            "objectives over t = {} .. {} s:\n{}",
            run.from,
            run.to,
            orbitnet_mission::table(&verdicts).trim_end()
        ));
    }
    telemetry.flush();
    verdicts
}

/// Every objective judged on what the flows (`series`, by flow) and the convergence watches
/// (`routing`) measured over `run`.
pub(crate) fn judge(
    plan: &Plan,
    series: &[orbitnet_mission::FlowSeries],
    routing: &[orbitnet_mission::RoutingEvent],
    run: orbitnet_mission::Span,
) -> Vec<orbitnet_mission::Verdict> {
    let empty = orbitnet_mission::FlowSeries::default();
    plan.objectives
        .iter()
        .map(|o| match o.flow {
            // Flows that could not start measured nothing: their objectives are inconclusive.
            Some(f) => orbitnet_mission::evaluate(plan, o, series.get(f).unwrap_or(&empty), run),
            None => orbitnet_mission::evaluate_routing(plan, o, routing, run),
        })
        .collect()
}

/// Takes a live edit of the file if it can, from the next tick on; says whether it did.
fn apply_edit(
    emu: &mut Emulation,
    yaml: &str,
    t: SimTime,
    end: Option<SimTime>,
    telemetry: &mut Telemetry,
    view: &mut View,
) -> bool {
    let (accepted, message) = match orbitnet_model::compile_yaml(yaml) {
        Err(e) => (false, format!("edit ignored, the file is not valid: {e}")),
        Ok(new) => {
            let faults = new.faults.len();
            match emu.engine.replan(new, t, end) {
                Err(e) => (false, format!("edit ignored: {e}")),
                Ok(()) => (
                    true,
                    format!(
                        "edit applied at t = {t} s: {faults} faults, link classes and ground-link rules as in the file"
                    ),
                ),
            }
        }
    };
    view.message(&message);
    telemetry.emit(&Record::Edit { t: t.as_secs_f64(), accepted, message });
    accepted
}

/// A tick's problems as telemetry records, and the first few on the terminal.
fn report_problems(tick: &Tick, telemetry: &mut Telemetry, view: &mut View, summary: &mut RunSummary) {
    let t = tick.t.as_secs_f64();
    let failed_builds = tick.problems.iter().filter(|p| p.kind == ProblemKind::Build).count();
    if tick.built > 0 || failed_builds > 0 {
        telemetry.emit(&Record::LinksBuilt { t, links: tick.built, failed: failed_builds });
    }
    for p in &tick.problems {
        summary.errors += 1;
        telemetry.emit(&Record::Error {
            t,
            node: p.node.clone().unwrap_or_default(),
            link: p.link.map(|l| l.to_string()),
            message: p.message.clone(),
        });
        if summary.errors <= 20 {
            view.message(&format!("t = {} s: {p}", tick.t));
        }
    }
}

/// Handovers and faults beginning or ending, as telemetry records.
fn report_events(tick: &Tick, telemetry: &mut Telemetry) {
    let t = tick.t.as_secs_f64();
    for e in &tick.events {
        telemetry.emit(&match e.clone() {
            Event::Handover { node, added, removed } => Record::Handover { t, node, added, removed },
            Event::FaultBegan { index, kind, description } => {
                Record::FaultBegan { t, index, kind, description }
            }
            Event::FaultEnded { index, kind, description } => {
                Record::FaultEnded { t, index, kind, description }
            }
        });
    }
}

fn tick_record(plan: &Plan, tick: &Tick, pairs: &[(NodeIdx, NodeIdx)], late_ms: f64) -> TickRecord {
    let (state, report) = (&tick.state, &tick.report);
    let up = |kind| state.links.iter().filter(|l| l.kind == kind && l.up).count();
    TickRecord {
        t: state.t.as_secs_f64(),
        wall: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        links_up: state.links_up(),
        links: state.links.len(),
        isl_up: up(LinkKind::Isl),
        gsl_up: up(LinkKind::Gsl),
        handovers: tick.handovers(),
        apply_ms: report.elapsed.as_secs_f64() * 1e3,
        diff_ms: report.diff_elapsed.as_secs_f64() * 1e3,
        netem_changes: report.netem_changes,
        link_changes: report.links_up + report.links_down,
        route_changes: report.routes_replaced + report.routes_deleted,
        late_ms,
        ops: report.operations(),
        errors: tick.problems.len(),
        active_faults: state.active_faults.clone(),
        paths: paths_of(plan, state, pairs),
    }
}

fn status(
    emu: &Emulation,
    state: &State,
    r: &TickRecord,
    summary: &RunSummary,
    late: &stats::Percentiles,
    handovers_total: usize,
    time_scale: f64,
) -> Status {
    let plan = emu.engine.plan();
    let running = emu.procs.len();
    let header = format!(
        "orbitnet · {} · t = {} s ({}) · x{} · tick {}",
        plan.name,
        state.t,
        describe_time(plan.epoch, state.t),
        time_scale,
        plan.tick
    );
    let isl_total = state.links.iter().filter(|l| l.kind == LinkKind::Isl).count();
    let mut lines = vec![
        format!(
            "links up {}/{} (ISL {}/{isl_total}, GSL {}) · handovers {} this tick, {handovers_total} in all · {} nodes, {running} programs",
            r.links_up,
            r.links,
            r.isl_up,
            r.gsl_up,
            r.handovers,
            plan.nodes.len()
        ),
        format!(
            "apply {:.2} ms ({} ops) · p50 {:.2} ms · p99 {:.2} ms · late p99 {:.2} ms · errors {}",
            r.apply_ms,
            r.ops,
            summary.apply_ms.quantile(0.5),
            summary.apply_ms.quantile(0.99),
            late.quantile(0.99),
            summary.errors
        ),
    ];
    let faults: Vec<String> = state
        .active_faults
        .iter()
        .filter_map(|&i| plan.faults.iter().find(|f| f.spec_index == i))
        .map(|f| format!("[{}] {}", f.spec_index, f.describe(plan)))
        .collect();
    lines.push(format!("faults: {}", if faults.is_empty() { "none".into() } else { faults.join("; ") }));
    for p in &r.paths {
        lines.push(match p.delay_ms {
            Some(d) => format!("{} > {}: {d:.3} ms one-way, {} hops", p.from, p.to, p.hops),
            None => format!("{} > {}: unreachable", p.from, p.to),
        });
    }
    let line = format!(
        "t={} links_up={}/{} handovers={} apply_ms={:.2} ops={} errors={} faults={:?}",
        state.t, r.links_up, r.links, r.handovers, r.apply_ms, r.ops, r.errors, state.active_faults
    );
    Status { header, lines, line }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ospf(tick: &str) -> Plan {
        let yaml = include_str!("../../../scenarios/tiny.yaml")
            .replace("routing: shortestPath", "routing: ospf")
            .replace("tick: 1s", &format!("tick: {tick}"));
        orbitnet_model::compile_yaml(&yaml).unwrap()
    }

    #[test]
    fn a_time_scale_is_refused_once_a_tick_lasts_less_than_a_hello() {
        assert!(protocol_time_scale(&ospf("1s"), 1.0).unwrap().is_none(), "real time is fine");
        let Err(RunError::Usage(why)) = protocol_time_scale(&ospf("1s"), 2.0) else {
            panic!("x2 with 1 s ticks")
        };
        assert!(why.contains("the limit here is x1.00 (tick / hello interval)"), "{why}");
        let warned = protocol_time_scale(&ospf("10s"), 10.0).unwrap().unwrap();
        assert!(warned.contains("(4 s) lasts 40.0 s of emulation time"), "{warned}");
        assert!(protocol_time_scale(&ospf("10s"), 10.5).is_err());
        let central = orbitnet_model::compile_yaml(include_str!("../../../scenarios/tiny.yaml")).unwrap();
        assert!(protocol_time_scale(&central, 100.0).unwrap().is_none(), "no daemons, no limit");
    }
}
