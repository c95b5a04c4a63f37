//! The `orbitnet` command: parses arguments and hands each subcommand to the crate that
//! owns it. Nothing here knows physics or netlink.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod kube;
mod local;
mod node;
mod plan;
mod routing;
mod validate;
mod verdict;

#[derive(Parser)]
#[command(
    name = "orbitnet",
    version,
    about = "Emulate a satellite backbone: links that follow orbital geometry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a Constellation file and say what it describes.
    Validate(validate::Args),
    /// Print the model's state (nodes, links, routes) at a time or over a range, offline.
    Plan(plan::Args),
    /// Emulate the constellation on this host in network namespaces, in real time (root).
    Run(local::RunArgs),
    /// Remove what a run left behind: its programs, namespaces and lock (root).
    Down(local::DownArgs),
    /// Summarise a run's telemetry and plot it (SVG).
    Report(local::ReportArgs),
    /// A Constellation's objectives as judged in a cluster: table, JUnit and exit status
    /// (0 all passed, 1 one failed, 2 one could not be judged).
    Verdict(verdict::Args),
    /// Print the Constellation CustomResourceDefinition (YAML).
    Crd,
    /// Run the Kubernetes operator: Constellations to pods, status and events.
    Operator(kube::OperatorArgs),
    /// Run the link agent of one Kubernetes node (privileged DaemonSet): wires and shapes
    /// the constellation pods there.
    Agent(kube::AgentArgs),
    /// The default program in a node: answers and sends probes, serves a status page.
    Node(node::Args),
    /// One node's routing daemons, started in this process's place: what a pod's `routing`
    /// container runs in `routing: ospf | isis`.
    Routing(routing::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Run(args) => local::run(args),
        Command::Down(args) => local::down(args),
        Command::Report(args) => local::report(args),
        Command::Verdict(args) => verdict::run(args),
        Command::Crd => kube::crd(),
        Command::Operator(args) => kube::operator(args),
        Command::Agent(args) => kube::agent(args),
        Command::Node(args) => node::run(args),
        Command::Routing(args) => routing::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Verdicts>().is_some() => {
            let Some(Verdicts(code)) = e.downcast_ref::<Verdicts>() else { unreachable!() };
            ExitCode::from(*code)
        }
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Objectives judged, not all passed: exit status 1 (one failed) or 2 (inconclusive); the
/// verdicts are printed already.
#[derive(Debug, thiserror::Error)]
#[error("objectives not met (exit status {0})")]
pub struct Verdicts(pub u8);

/// `Ok` when every objective passed, else the exit status the verdicts call for.
fn verdict_status(verdicts: &[orbitnet_mission::Verdict]) -> anyhow::Result<()> {
    match orbitnet_mission::exit_status(verdicts) {
        0 => Ok(()),
        code => Err(Verdicts(code as u8).into()),
    }
}

/// `orbitnet plan ... | head` closes our stdout early: that is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Reads and compiles a Constellation file, with the file's name on every error.
fn load(path: &std::path::Path) -> anyhow::Result<orbitnet_model::Plan> {
    use anyhow::Context;
    let yaml = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    orbitnet_model::compile_yaml(&yaml)
        .with_context(|| format!("{} is not a valid Constellation", path.display()))
}
