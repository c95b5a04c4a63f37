//! `orbitnet run`: preflight, lock, bring-up, then the real-time loop. Every tick: the
//! model's state (computed ahead, while waiting for the tick to be due), the dataplane's
//! difference applied, telemetry, the live view. Ctrl-C, SIGTERM or the end of `--duration`
//! tear everything down; so does an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use orbitnet_dataplane::preflight::{self, PreflightError};
use orbitnet_model::{Epoch, LinkKind, NodeIdx, Plan, SimTime, SpecDuration, SpecError, State};

use crate::clock::Clock;
use crate::lock::{LockError, RunLock};
use crate::telemetry::{PathRecord, Record, Telemetry, TickRecord};
use crate::topology::{self, Emulation, UpError};
use crate::view::{Mode, Status, View};
use crate::watch::SpecWatch;
use crate::{down, stats};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub file: PathBuf,
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
    /// How far ahead ground links are built.
    pub lookahead: SpecDuration,
    /// A link's netem is changed only when its delay moved further than this.
    pub delay_tolerance: SpecDuration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid Constellation: {source}")]
    Spec { path: String, source: SpecError },
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
}

/// What a run did, for the last lines printed.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub ticks: u64,
    pub skipped: u64,
    pub stopped_by: String,
    pub apply_ms: stats::Percentiles,
    pub errors: usize,
}

fn load(path: &Path) -> Result<Plan, RunError> {
    let yaml = std::fs::read_to_string(path)
        .map_err(|source| RunError::Read { path: path.display().to_string(), source })?;
    orbitnet_model::compile_yaml(&yaml)
        .map_err(|source| RunError::Spec { path: path.display().to_string(), source })
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
fn dry_run(plan: &Plan, opts: &RunOptions, view: &mut View) {
    let span = span_of(plan, opts);
    let ground = plan.ground_links_chosen(span.start, span.horizon);
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
        SpecDuration::from_nanos((span.horizon.as_nanos() - span.start.as_nanos()) as u64),
        span.start,
        first.links_up(),
        first.links.len()
    ));
}

/// The span of a run in emulation time.
#[derive(Clone, Copy, Debug)]
struct Span {
    /// The first tick, and its time.
    first_tick: u64,
    start: SimTime,
    /// Where `--duration` ends the run, if it does.
    end: Option<SimTime>,
    /// The end of the first look-ahead window of ground links.
    horizon: SimTime,
}

fn span_of(plan: &Plan, opts: &RunOptions) -> Span {
    let first_tick = crate::clock::Clock::tick_at(plan.tick, opts.start);
    let start = SimTime::from_nanos(
        i64::try_from(u128::from(first_tick) * u128::from(plan.tick.as_nanos())).unwrap_or(i64::MAX),
    );
    let end = opts.duration.and_then(|d| start.checked_add(d));
    let window_end = start.checked_add(opts.lookahead).unwrap_or(SimTime::from_nanos(i64::MAX));
    Span { first_tick, start, end, horizon: end.map_or(window_end, |e| e.min(window_end)) }
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
    let plan = load(&opts.file)?;
    if !(opts.time_scale.is_finite() && opts.time_scale > 0.0) {
        return Err(RunError::Usage(format!("--time-scale {} must be a positive number", opts.time_scale)));
    }
    let pairs = path_pairs(&plan, &opts.paths)?;
    if opts.dry_run {
        dry_run(&plan, &opts, &mut view);
        return Ok(RunSummary { stopped_by: "dry run".into(), ..RunSummary::default() });
    }
    preflight::check()?;
    let _lock = RunLock::acquire(&plan.name, &format!("file {}", opts.file.display()))?;
    let leftovers = down::leftover_namespaces(&plan.name);
    if !leftovers.is_empty() {
        view.message(&format!(
            "removing {} network namespaces left by an earlier run of {:?} that did not shut down",
            leftovers.len(),
            plan.name
        ));
        down::down(Some(&plan.name))?;
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
        constellation: plan.name.clone(),
        file: opts.file.display().to_string(),
        nodes: plan.nodes.len(),
        time_scale: opts.time_scale,
        tick: plan.tick.to_string(),
    });
    let workdir = opts.workdir.clone().unwrap_or_else(|| PathBuf::from(format!("orbitnet-{}", plan.name)));
    let memory_before = memory_available_kib();
    let span = span_of(&plan, &opts);
    let name = plan.name.clone();
    let emu = match topology::up(plan, &workdir, (span.start, span.horizon), &mut |what, done, total| {
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
    emu.applier.delay_tolerance_ns = opts.delay_tolerance.as_nanos();
    let mut timeline = emu.plan.timeline();
    let mut state = timeline.state_at(&emu.plan, span.start);
    let first = emu.applier.apply(&emu.plan, &state);
    let memory_kib = memory_before.zip(memory_available_kib()).map(|(b, a)| b.saturating_sub(a));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let up_record = Record::Up {
        build_ms: ms(emu.timings.total() + first.elapsed),
        namespaces_ms: ms(emu.timings.namespaces),
        links_ms: ms(emu.timings.links),
        programs_ms: ms(emu.timings.programs),
        first_apply_ms: ms(first.elapsed),
        first_apply_ops: first.operations(),
        namespaces: emu.plan.nodes.len(),
        links: emu.applier.wiring.links(),
        processes: emu.procs.len(),
        memory_kib,
    };
    telemetry.emit(&up_record);
    view.message(&format!(
        "up in {:.1} s (namespaces {:.1} s, links {:.1} s, programs {:.1} s, first apply {:.1} s): {} nodes, {} links built, {} node programs, {} kernel operations for t = {} s{}; workdir {}",
        (emu.timings.total() + first.elapsed).as_secs_f64(),
        emu.timings.namespaces.as_secs_f64(),
        emu.timings.links.as_secs_f64(),
        emu.timings.programs.as_secs_f64(),
        first.elapsed.as_secs_f64(),
        emu.plan.nodes.len(),
        emu.applier.wiring.links(),
        emu.procs.len(),
        first.operations(),
        span.start,
        memory_kib.map(|k| format!(", {:.0} KiB of memory per node", k as f64 / emu.plan.nodes.len() as f64)).unwrap_or_default(),
        emu.workdir.display()
    ));
    report_errors(&first, &emu.plan, span.start, telemetry, view, &mut summary);

    let clock = Clock::start(opts.time_scale, emu.plan.tick, span.first_tick);
    let mut watcher = SpecWatch::new(&opts.file);
    let mut k: u64 = span.first_tick;
    let mut handovers_total = 0usize;
    let mut last_edit_check = Instant::now();
    let mut lookahead_end = span.horizon;
    let (ahead_tx, ahead_rx) = mpsc::channel::<Vec<(NodeIdx, NodeIdx)>>();
    let mut ahead_pending = false;
    let mut queued_links: Vec<(NodeIdx, NodeIdx)> = Vec::new();
    let mut late = stats::Percentiles::default();
    summary.stopped_by = "interrupt".into();

    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut next = k + 1;
        let t = clock.time_of(next);
        if span.end.is_some_and(|end| t > end) {
            summary.stopped_by = "duration".into();
            break;
        }
        // Ground links the model will need soon are built ahead, a few per tick: halfway
        // through the window built so far, the next window is scanned (never past the end).
        let window = i64::try_from(opts.lookahead.as_nanos()).unwrap_or(i64::MAX);
        let run_end = span.end.map_or(i64::MAX, SimTime::as_nanos);
        if !ahead_pending
            && lookahead_end.as_nanos() < run_end
            && t.as_nanos() >= lookahead_end.as_nanos().saturating_sub(window / 2)
        {
            let (plan, from) = (emu.plan.clone(), lookahead_end);
            let to = SimTime::from_nanos(from.as_nanos().saturating_add(window).min(run_end));
            let tx = ahead_tx.clone();
            std::thread::spawn(move || {
                let used = plan.ground_links_chosen(from, to);
                let _ = tx.send(used.into_iter().collect());
            });
            lookahead_end = to;
            ahead_pending = true;
        }
        if let Ok(pairs) = ahead_rx.try_recv() {
            queued_links.extend(pairs.into_iter().filter(|p| !emu.ground_built.contains(p)));
            ahead_pending = false;
        }
        if !queued_links.is_empty() {
            let batch: Vec<_> = queued_links.drain(..queued_links.len().min(32)).collect();
            build_links(&mut emu, &batch, t, telemetry, view);
        }

        // Live edits, checked about once a second.
        if last_edit_check.elapsed() >= Duration::from_secs(1) {
            last_edit_check = Instant::now();
            if let Some(yaml) = watcher.changed()
                && apply_edit(&mut emu, &yaml, t, telemetry, view)
            {
                timeline = emu.plan.timeline();
            }
        }

        // The next state, computed before it is due.
        let mut next_state = timeline.state_at(&emu.plan, t);
        // If the loop fell more than a tick behind, jump to the tick due now.
        let now_tick = clock.current_tick();
        if now_tick > next + 1 {
            summary.skipped += now_tick - next;
            next = now_tick;
            next_state = timeline.state_at(&emu.plan, clock.time_of(next));
        }
        let t = clock.time_of(next);
        // A ground link the look-ahead missed (a live edit, a fault) is built now.
        let needed: Vec<(NodeIdx, NodeIdx)> = next_state
            .links
            .iter()
            .filter(|l| l.kind == LinkKind::Gsl && !emu.ground_built.contains(&(l.a, l.b)))
            .map(|l| (l.a, l.b))
            .collect();
        if !needed.is_empty() {
            build_links(&mut emu, &needed, t, telemetry, view);
        }
        let due = clock.due(next);
        while Instant::now() < due && !stop.load(Ordering::Relaxed) {
            std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let report = emu.applier.apply(&emu.plan, &next_state);
        let late_ms = Instant::now().saturating_duration_since(due).as_secs_f64() * 1e3;
        summary.apply_ms.push(report.elapsed.as_secs_f64() * 1e3);
        late.push(late_ms);
        report_errors(&report, &emu.plan, t, telemetry, view, &mut summary);
        events(&emu.plan, &state, &next_state, telemetry);
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
        handovers_total += next_state.handovers;
        let record = tick_record(&emu.plan, &next_state, pairs, &report, late_ms);
        telemetry.emit(&Record::Tick(record.clone()));
        telemetry.flush();
        view.status(&status(&emu, &next_state, &record, &summary, &late, handovers_total, opts.time_scale));
        state = next_state;
        k = next;
        summary.ticks += 1;
    }

    view.finish();
    let t = clock.time_of(k);
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

fn build_links(
    emu: &mut Emulation,
    pairs: &[(NodeIdx, NodeIdx)],
    t: SimTime,
    telemetry: &mut Telemetry,
    view: &mut View,
) {
    let (built, failures) = emu.ensure_ground_links(pairs);
    if built > 0 || !failures.is_empty() {
        telemetry.emit(&Record::LinksBuilt { t: t.as_secs_f64(), links: built, failed: failures.len() });
    }
    for f in failures {
        view.message(&format!("t = {t} s: cannot build ground link {f}"));
        telemetry.emit(&Record::Error { t: t.as_secs_f64(), node: String::new(), link: None, message: f });
    }
}

/// Takes a live edit of the file if it can; says whether it did.
fn apply_edit(
    emu: &mut Emulation,
    yaml: &str,
    t: SimTime,
    telemetry: &mut Telemetry,
    view: &mut View,
) -> bool {
    let (accepted, message) = match orbitnet_model::compile_yaml(yaml) {
        Err(e) => (false, format!("edit ignored, the file is not valid: {e}")),
        Ok(new) => match emu.plan.incompatibility(&new) {
            Some(why) => (false, format!("edit ignored: {why}; that needs a restart")),
            None => {
                let faults = new.faults.len();
                emu.plan = new;
                (
                    true,
                    format!(
                        "edit applied at t = {t} s: {faults} faults, link classes and ground-link rules as in the file"
                    ),
                )
            }
        },
    };
    view.message(&message);
    telemetry.emit(&Record::Edit { t: t.as_secs_f64(), accepted, message });
    accepted
}

fn report_errors(
    report: &orbitnet_dataplane::ApplyReport,
    plan: &Plan,
    t: SimTime,
    telemetry: &mut Telemetry,
    view: &mut View,
    summary: &mut RunSummary,
) {
    for f in &report.failed {
        summary.errors += 1;
        let node = plan.node(f.node).name.clone();
        telemetry.emit(&Record::Error {
            t: t.as_secs_f64(),
            node: node.clone(),
            link: f.link.map(|l| l.to_string()),
            message: f.error.to_string(),
        });
        if summary.errors <= 20 {
            view.message(&format!("t = {t} s: {node}: {}", f.error));
        }
    }
    for &(a, b) in &report.unwired {
        summary.errors += 1;
        let message =
            format!("the route needs link {} - {}, which is not built", plan.node(a).name, plan.node(b).name);
        telemetry.emit(&Record::Error {
            t: t.as_secs_f64(),
            node: plan.node(a).name.clone(),
            link: None,
            message: message.clone(),
        });
        if summary.errors <= 20 {
            view.message(&format!("t = {t} s: {message}"));
        }
    }
}

/// Handovers and faults beginning or ending between two ticks.
fn events(plan: &Plan, before: &State, now: &State, telemetry: &mut Telemetry) {
    let t = now.t.as_secs_f64();
    for (g, (was, is)) in
        before.ground_choice.per_ground.iter().zip(&now.ground_choice.per_ground).enumerate()
    {
        if was != is {
            let names = |v: Vec<&NodeIdx>| v.into_iter().map(|&s| plan.node(s).name.clone()).collect();
            telemetry.emit(&Record::Handover {
                t,
                node: plan.node((plan.n_sats + g) as NodeIdx).name.clone(),
                added: names(is.iter().filter(|s| !was.contains(s)).collect()),
                removed: names(was.iter().filter(|s| !is.contains(s)).collect()),
            });
        }
    }
    let describe = |i: usize| {
        plan.faults.iter().find(|f| f.spec_index == i).map(|f| (f.kind.as_str().to_owned(), f.describe(plan)))
    };
    for &i in now.active_faults.iter().filter(|i| !before.active_faults.contains(i)) {
        if let Some((kind, description)) = describe(i) {
            telemetry.emit(&Record::FaultBegan { t, index: i, kind, description });
        }
    }
    for &i in before.active_faults.iter().filter(|i| !now.active_faults.contains(i)) {
        if let Some((kind, description)) = describe(i) {
            telemetry.emit(&Record::FaultEnded { t, index: i, kind, description });
        }
    }
}

fn tick_record(
    plan: &Plan,
    state: &State,
    pairs: &[(NodeIdx, NodeIdx)],
    report: &orbitnet_dataplane::ApplyReport,
    late_ms: f64,
) -> TickRecord {
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
        handovers: state.handovers,
        apply_ms: report.elapsed.as_secs_f64() * 1e3,
        diff_ms: report.diff_elapsed.as_secs_f64() * 1e3,
        netem_changes: report.netem_changes,
        link_changes: report.links_up + report.links_down,
        route_changes: report.routes_replaced + report.routes_deleted,
        late_ms,
        ops: report.operations(),
        errors: report.failed.len() + report.unwired.len(),
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
    let plan = &emu.plan;
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
