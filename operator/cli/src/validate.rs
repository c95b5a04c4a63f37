//! `orbitnet validate FILE`: compile the spec, print what it describes or every problem.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A Constellation YAML file.
    file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = crate::load(&args.file)?;
    println!(
        "{}: ok: constellation {:?}: {}, {} inter-satellite links in the grid, {} faults, {} flows, {} objectives, tick {}{}",
        args.file.display(),
        plan.name,
        plan.node_summary(),
        plan.isls.len(),
        plan.faults.len(),
        plan.flows.len(),
        plan.objectives.len(),
        plan.tick,
        plan.duration.map(|d| format!(", runs {d}")).unwrap_or_default()
    );
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
