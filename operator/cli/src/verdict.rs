//! `orbitnet verdict NAME`: a Constellation's objectives as the operator judged them in its
//! status, for CI: the table, JUnit, and the exit status `run --check` gives (0 all passed,
//! 1 one failed, 2 one could not be judged), from the current kubeconfig's cluster.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::Api;
use orbitnet_api::crd::{Constellation, Phase};

#[derive(clap::Args)]
pub struct Args {
    /// The Constellation's name.
    name: String,
    /// Its namespace (default: the kubeconfig context's).
    #[arg(long, short)]
    namespace: Option<String>,
    /// Wait until the experiment is over (phase Finished) instead of failing while it runs.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits ("30m"), at most.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
    /// Write the verdicts as JUnit XML to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = s.parse::<orbitnet_model::SpecDuration>().map_err(|e| e.to_string())?;
    Ok(Duration::from_nanos(d.as_nanos()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let verdicts = rt.block_on(fetch(&args))?;
    print!("{}", orbitnet_mission::table(&verdicts));
    if let Some(path) = &args.junit {
        let xml = orbitnet_mission::junit::junit(
            &args.name,
            &verdicts,
            0.0,
            &chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        );
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
        println!("JUnit: {}", path.display());
    }
    crate::verdict_status(&verdicts)
}

/// The settled verdicts, once the Constellation is Finished.
async fn fetch(args: &Args) -> anyhow::Result<Vec<orbitnet_mission::Verdict>> {
    let client = kube::Client::try_default().await.context("connecting with the current kubeconfig")?;
    let api: Api<Constellation> = match &args.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let started = Instant::now();
    let mut said = None;
    loop {
        let cst =
            api.get(&args.name).await.with_context(|| format!("reading Constellation {:?}", args.name))?;
        if cst.spec.objectives.is_empty() {
            bail!("Constellation {:?} has no objectives (spec.objectives)", args.name);
        }
        let status = cst.status.unwrap_or_default();
        if status.phase == Some(Phase::Finished) {
            return status
                .objectives
                .iter()
                .map(|o| o.verdict().with_context(|| format!("objective {:?} has no final result", o.name)))
                .collect();
        }
        let phase = status.phase.map_or("no phase yet", Phase::as_str);
        if cst.spec.duration.is_none() {
            bail!(
                "Constellation {:?} has no spec.duration: it never finishes, so it gets no verdict",
                args.name
            );
        }
        if !args.wait {
            bail!("Constellation {:?} is {phase}, not Finished yet (use --wait)", args.name);
        }
        if status.phase == Some(Phase::Failed) {
            bail!("Constellation {:?} failed: see its Ready condition", args.name);
        }
        if started.elapsed() >= args.timeout {
            bail!("Constellation {:?} still {phase} after {:?}", args.name, args.timeout);
        }
        let line = format!("waiting: {phase}, emulation time {}", status.sim_time.as_deref().unwrap_or("-"));
        if said.as_ref() != Some(&line) {
            eprintln!("{line}");
            said = Some(line);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
