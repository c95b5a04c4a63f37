//! `orbitnet run`, `down` and `report`: the local runner's command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use orbitnet_engine::Settings;
use orbitnet_local::view::Mode;
use orbitnet_local::{RunOptions, down, report};
use orbitnet_model::{SimTime, SpecDuration};

#[derive(clap::Args)]
pub struct RunArgs {
    /// A Constellation YAML file. It is watched: edits to faults, link classes or ground-link
    /// rules take effect at the next tick.
    file: PathBuf,
    /// Emulation time to start at: seconds after the epoch, a duration ("10m") or an RFC 3339
    /// time. Default 0.
    #[arg(long, allow_hyphen_values = true)]
    start: Option<String>,
    /// Emulation time to run for ("60s", "10m"); default: the spec's `duration`, or until
    /// Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<SpecDuration>,
    /// Emulation seconds per wall-clock second.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Print what would be built, build nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write telemetry as JSON lines to this file.
    #[arg(long)]
    telemetry: Option<PathBuf>,
    /// No live view: only messages and the final summary.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Telemetry as JSON lines on standard output instead of the live view.
    #[arg(long)]
    json: bool,
    /// Where node logs and the hosts file go (default ./orbitnet-<name>).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Ground node pairs whose path delay to follow, e.g. "thule~vandenberg,thule~carrier-1"
    /// (default: pairs of the first four ground nodes).
    #[arg(long, value_delimiter = ',', value_parser = parse_pair)]
    paths: Vec<(String, String)>,
    /// How far ahead ground links are built.
    #[arg(long, value_parser = parse_duration, default_value_t = Settings::default().lookahead)]
    lookahead: SpecDuration,
    /// Change a link's netem only when its delay moved further than this (a path's
    /// round-trip error stays under 2 x hops x this); "0s" for every change.
    #[arg(long, value_parser = parse_duration, default_value_t = Settings::default().delay_tolerance)]
    delay_tolerance: SpecDuration,
    /// After each change of the graph, read every node's forwarding table this often until
    /// every ground pair is forwarded (telemetry `convergence` lines); "0s" turns it off.
    #[arg(long, value_parser = parse_duration, default_value = "50ms")]
    convergence_every: SpecDuration,
    /// At the end, judge the spec's objectives on what the flows measured: a table, and the
    /// exit status 0 (all passed), 1 (one failed) or 2 (one could not be judged).
    #[arg(long)]
    check: bool,
    /// Write the objectives' verdicts as JUnit XML to this file (implies --check).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Serve the flows' and objectives' Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Serve the browser view at http://ADDR/ (e.g. 127.0.0.1:8080): the run as it goes.
    #[arg(long, value_name = "ADDR")]
    ui: Option<std::net::SocketAddr>,
}

fn parse_duration(s: &str) -> Result<SpecDuration, String> {
    s.parse::<SpecDuration>().map_err(|e| e.to_string())
}

fn parse_pair(p: &str) -> Result<(String, String), String> {
    p.split_once('~')
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
        .ok_or_else(|| format!("{p:?} is not a pair: write a~b"))
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mode = if args.json {
        Mode::Json
    } else if args.quiet {
        Mode::Quiet
    } else {
        Mode::Live
    };
    let plan = crate::load(&args.file)?;
    let start = match &args.start {
        Some(s) => {
            let t = SimTime::parse(s, plan.epoch)?;
            if t < SimTime::ZERO {
                bail!("--start {s:?} is before the epoch; the local runner starts at or after it");
            }
            t
        }
        None => SimTime::ZERO,
    };
    let check = args.check || args.junit.is_some();
    if check && plan.objectives.is_empty() {
        bail!("--check: {} has no objectives to judge (spec.objectives)", args.file.display());
    }
    let duration = args.duration.or(plan.duration);
    let summary = orbitnet_local::run(RunOptions {
        file: args.file,
        plan,
        start,
        duration,
        time_scale: args.time_scale,
        dry_run: args.dry_run,
        telemetry: args.telemetry,
        mode,
        workdir: args.workdir,
        paths: args.paths,
        settings: Settings {
            lookahead: args.lookahead,
            delay_tolerance: args.delay_tolerance,
            convergence_every: (args.convergence_every.as_nanos() > 0).then_some(args.convergence_every),
            ..Settings::default()
        },
        check,
        junit: args.junit,
        metrics: args.metrics,
        ui: args.ui,
    })?;
    if check {
        crate::verdict_status(&summary.verdicts)?;
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct DownArgs {
    /// The Constellation file of the run to clean up (or give --name, or --all).
    #[arg(conflicts_with_all = ["name", "all"])]
    file: Option<PathBuf>,
    /// The constellation's name (metadata.name).
    #[arg(long)]
    name: Option<String>,
    /// Every orbitnet namespace on this host.
    #[arg(long)]
    all: bool,
}

pub fn down(args: DownArgs) -> anyhow::Result<()> {
    let name = match (&args.file, &args.name, args.all) {
        (Some(file), _, _) => Some(crate::load(file)?.name),
        (None, Some(name), _) => Some(name.clone()),
        (None, None, true) => None,
        (None, None, false) => bail!("say what to remove: a Constellation file, --name NAME, or --all"),
    };
    let removed = down::down(name.as_deref())?;
    let what = name.as_deref().map(|n| format!("{n:?}")).unwrap_or_else(|| "every constellation".into());
    println!(
        "down {what}: removed {} network namespaces, killed {} leftover processes",
        removed.namespaces.len(),
        removed.killed.len()
    );
    for f in &removed.failures {
        eprintln!("could not remove: {f}");
    }
    if !removed.failures.is_empty() {
        bail!("{} things could not be removed", removed.failures.len());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// A telemetry file written by `orbitnet run --telemetry`; several (runs of one scenario,
    /// e.g. in different routing modes) are compared side by side.
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Where the plots go (default: next to the telemetry file).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let first = &args.files[0];
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        first.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| ".".into())
    });
    let r = match args.files.as_slice() {
        [one] => report::report(one, &out_dir).with_context(|| format!("report of {}", one.display()))?,
        many => report::compare(many, &out_dir).context("comparing runs")?,
    };
    print!("{}", r.text);
    for p in r.plots {
        println!("plot: {}", p.display());
    }
    Ok(())
}
