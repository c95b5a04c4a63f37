//! `orbitnet routing`: one node's routing daemons, where nothing else starts them. The
//! operator runs it as the `routing` container of every pod of a constellation in
//! `routing: ospf | isis`: the node's files are written from the constellation (the same
//! files the local runner writes), then the node's launcher takes this process's place. It
//! ends when a daemon does, and the kubelet starts the container again.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use orbitnet_routing::launcher::{self, Mounts};

#[derive(clap::Args)]
pub struct Args {
    /// The Constellation, as `orbitnet run` takes it (JSON is YAML too); in a pod, the copy
    /// the operator mounts.
    #[arg(long, default_value = "/etc/orbitnet/constellation.json")]
    file: PathBuf,
    /// The node whose daemons run here.
    #[arg(long, env = "ORBITNET_NODE")]
    node: String,
    /// The daemons' state directory (configuration, pid files, vty sockets). FRR keeps a
    /// few files at /run/frr whatever it is told: in a container of its own, /run/frr.
    #[arg(long, default_value = "/run/frr")]
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let plan = crate::load(&args.file)?;
    let protocol = plan.routing_protocol.as_ref().ok_or_else(|| {
        anyhow!(
            "{}: routing: {} runs no routing daemons in the nodes",
            args.file.display(),
            plan.routing.as_str()
        )
    })?;
    let node = plan
        .node_index(&args.node)
        .ok_or_else(|| anyhow!("{}: the constellation has no node {:?}", args.file.display(), args.node))?;
    let start = launcher::write(&plan, node, &args.dir, Mounts::AsIs)
        .map_err(|(path, e)| anyhow!(e).context(format!("cannot write {}", path.display())))?;
    eprintln!(
        "orbitnet routing: {} of {}: routing: {} by {}, files in {}",
        args.node,
        plan.name,
        plan.routing.as_str(),
        protocol.daemon.as_str(),
        args.dir.display()
    );
    let error = std::process::Command::new("bash").arg(&start).exec();
    Err(error).with_context(|| format!("cannot start bash {}", start.display()))
}
