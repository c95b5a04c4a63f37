//! `orbitnet node`: the default node program, handed to orbitnet-node.

use std::net::SocketAddr;

#[derive(clap::Args)]
pub struct Args {
    /// Serve the status page (/, /json, /healthz) here.
    #[arg(long, default_value = "0.0.0.0:8080")]
    status_addr: SocketAddr,
    /// Answer and send probes on this UDP port.
    #[arg(long, default_value_t = 7007)]
    probe_port: u16,
    /// Seconds between probe rounds.
    #[arg(long, default_value_t = 1.0)]
    interval_s: f64,
    /// Also probe this node (by name, from ORBITNET_HOSTS); repeatable.
    #[arg(long)]
    probe: Vec<String>,
    /// Probe every node of the constellation.
    #[arg(long)]
    probe_all: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.interval_s.is_finite() && args.interval_s >= 0.01,
        "--interval-s {} must be at least 0.01",
        args.interval_s
    );
    let options = orbitnet_node::Options {
        status_addr: args.status_addr,
        probe_port: args.probe_port,
        interval: std::time::Duration::from_secs_f64(args.interval_s),
        probe: args.probe,
        probe_all: args.probe_all,
    };
    let node = orbitnet_node::start(&options)?;
    eprintln!("{}", node.summary());
    match node.probe_forever()? {}
}
