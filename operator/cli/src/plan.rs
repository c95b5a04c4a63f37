//! `orbitnet plan FILE`: the offline runner's command line.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use orbitnet_model::{SimTime, SpecDuration};
use orbitnet_offline::output::{self, JsonState, TableOptions};
use orbitnet_offline::{Report, Summary};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// A Constellation YAML file.
    file: PathBuf,
    /// One instant: seconds after the epoch ("600"), a duration after it ("10m") or an
    /// RFC 3339 time. Default 0.
    #[arg(long, conflicts_with_all = ["from", "to", "step"])]
    at: Option<String>,
    /// Start of a range (same forms as --at); needs --to.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// End of a range, inclusive.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Time between ticks of a range, in seconds ("0.1") or a duration ("100ms").
    /// Default: the spec's tick.
    #[arg(long)]
    step: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Include next-hop routes (JSON: per node and destination; table: paths between ground nodes).
    #[arg(long)]
    routes: bool,
    /// Table: a row for every inter-satellite link, not only the names of those down.
    #[arg(long)]
    all_links: bool,
    /// Print only counts and timing (for benchmarks).
    #[arg(long)]
    summary: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// What the physics alone allows the spec's objectives: each predicted to pass or fail
    /// from the model's paths over the run (`spec.duration`, or --to). Exit status as
    /// `run --check`.
    #[arg(long, conflicts_with_all = ["at", "format", "summary", "all_links"])]
    objectives: bool,
    /// Serve the browser view at http://ADDR/ (e.g. 127.0.0.1:8080): the plan from --from
    /// to --to (default: 0 to `spec.duration`, or an hour), with a time slider.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["at", "format", "summary", "all_links", "routes", "objectives", "step"])]
    ui: Option<std::net::SocketAddr>,
}

fn parse_step(s: &str) -> anyhow::Result<SpecDuration> {
    let step = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => SpecDuration::from_nanos((secs * 1e9).round() as u64),
        Ok(_) => bail!("--step {s:?} must be greater than 0"),
        Err(_) => s.parse::<SpecDuration>().with_context(|| format!("--step {s:?}"))?,
    };
    if step == SpecDuration::ZERO {
        bail!("--step {s:?} must be at least 1ns");
    }
    Ok(step)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.format == Format::Csv && args.routes && !args.summary {
        bail!("--routes does not fit the CSV link table; use --format json for routes");
    }
    if args.step.is_some() && args.from.is_none() {
        bail!("--step needs a range: give --from and --to");
    }
    let plan = crate::load(&args.file)?;
    let time = |s: &str| SimTime::parse(s, plan.epoch).map_err(anyhow::Error::from);
    let (from, to) = match (&args.at, &args.from, &args.to) {
        (Some(at), _, _) => (time(at)?, time(at)?),
        (None, Some(from), Some(to)) => (time(from)?, time(to)?),
        _ => (SimTime::ZERO, SimTime::ZERO),
    };
    if to < from {
        bail!("--to ({to} s) is before --from ({from} s)");
    }
    let step = args.step.as_deref().map(parse_step).transpose()?.unwrap_or(plan.tick);
    if let Some(n) = args.threads {
        rayon_threads(n)?;
    }
    // Where a run of the spec ends: --to, else spec.duration.
    let end = match (&args.to, plan.duration) {
        (Some(_), _) => Some(to),
        (None, Some(d)) => Some(SimTime::ZERO.checked_add(d).context("spec.duration is too long")?),
        (None, None) => None,
    };
    if let Some(addr) = args.ui {
        let an_hour = SimTime::from_nanos(3_600_000_000_000);
        return ui(plan, from, end.unwrap_or(an_hour), addr);
    }
    if args.objectives {
        let Some(end) = end else {
            bail!("--objectives needs the run's length: set spec.duration or give --from and --to")
        };
        return objectives(&plan, from, end, step);
    }

    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.format == Format::Csv && !args.summary {
        writeln!(out, "{}", output::CSV_HEADER)?;
    }
    let table = TableOptions { routes: args.routes, all_links: args.all_links };
    let mut summary = Summary::default();
    let started = Instant::now();
    orbitnet_offline::for_each_tick(&plan, from, to, step, args.routes, |state| -> anyhow::Result<()> {
        summary.add(&state);
        if args.summary {
            return Ok(());
        }
        match args.format {
            Format::Json => {
                serde_json::to_writer(
                    &mut out,
                    &JsonState { plan: &plan, state: &state, with_routes: args.routes },
                )?;
                writeln!(out)?;
            }
            Format::Csv => output::write_csv_rows(&mut out, &plan, &state)?,
            Format::Table => output::write_table(&mut out, &plan, &state, table)?,
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    if args.summary {
        write!(out, "{}", Report { plan: &plan, summary: &summary })?;
        writeln!(
            out,
            "time: {:.3} s wall, {:.3} ms per tick, worker threads: {}, routes {}",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e3 / summary.ticks.max(1) as f64,
            rayon_threads_now(),
            if args.routes { "included" } else { "not computed" }
        )?;
    }
    out.flush()?;
    Ok(())
}

/// `plan --objectives`: every objective judged on the model's paths from `from` to `to`.
fn objectives(
    plan: &orbitnet_model::Plan,
    from: SimTime,
    to: SimTime,
    step: SpecDuration,
) -> anyhow::Result<()> {
    if plan.objectives.is_empty() {
        bail!("the spec has no objectives (spec.objectives)");
    }
    let mut ticks: Vec<Vec<(f64, orbitnet_mission::ModelTick)>> = vec![Vec::new(); plan.flows.len()];
    // The run is [from, to): its last tick starts before `to`.
    let last = SimTime::from_nanos((to.as_nanos() - 1).max(from.as_nanos()));
    orbitnet_offline::for_each_tick(plan, from, last, step, true, |state| -> anyhow::Result<()> {
        let mut predictor = orbitnet_mission::Predictor::new(plan, &state);
        for (i, flow) in plan.flows.iter().enumerate() {
            ticks[i].push((state.t.as_secs_f64(), predictor.flow(flow)));
        }
        Ok(())
    })?;
    let verdicts: Vec<orbitnet_mission::Verdict> = plan
        .objectives
        .iter()
        .map(|o| orbitnet_mission::predict(plan, o, o.flow.map_or(&[][..], |f| &ticks[f]), to.as_secs_f64()))
        .collect();
    println!("objectives of {:?} as the model's paths allow them, t = {from} .. {to} s:", plan.name);
    print!("{}", orbitnet_mission::table(&verdicts));
    crate::verdict_status(&verdicts)
}

/// `plan --ui`: the browser view of the plan, until Ctrl-C.
fn ui(
    plan: orbitnet_model::Plan,
    from: SimTime,
    to: SimTime,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let name = plan.name.clone();
    let view =
        orbitnet_view::PlanView::new(std::sync::Arc::new(plan), orbitnet_view::SourceKind::Plan, from, to);
    let router = orbitnet_view::router(orbitnet_view::Source::Plan(view));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        println!("the view of {name:?}, t = {from} .. {to} s: http://{bound}/ (Ctrl-C to stop)");
        std::io::stdout().flush()?;
        orbitnet_view::serve_until_stopped(listener, router).await?;
        Ok(())
    })
}

fn rayon_threads(n: usize) -> anyhow::Result<()> {
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    orbitnet_offline::set_threads(n).context("cannot start the worker threads")
}

fn rayon_threads_now() -> usize {
    orbitnet_offline::threads()
}
