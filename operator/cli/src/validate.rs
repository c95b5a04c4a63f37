//! `orbitnet validate FILE`: compile the spec, print what it describes or every problem.

use std::path::PathBuf;

use orbitnet_model::NodeKind;

#[derive(clap::Args)]
pub struct Args {
    /// A Constellation YAML file.
    file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = crate::load(&args.file)?;
    println!(
        "{}: ok: constellation {:?}: {} nodes ({} satellites, {} ground stations, {} platforms), {} inter-satellite links in the grid, {} faults, tick {}",
        args.file.display(),
        plan.name,
        plan.nodes.len(),
        plan.n_sats,
        plan.count(NodeKind::GroundStation),
        plan.count(NodeKind::Platform),
        plan.isls.len(),
        plan.faults.len(),
        plan.tick
    );
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
