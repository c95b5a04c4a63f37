//! `orbitnet crd`, `orbitnet operator` and `orbitnet agent`: the Kubernetes side, handed to
//! orbitnet-controller and orbitnet-agent.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use orbitnet_controller::leader::LeaseSettings;
use orbitnet_controller::{Options, Settings};

#[derive(clap::Args)]
pub struct OperatorArgs {
    /// Serve /metrics, /healthz and /readyz here.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Serve the browser view of every Constellation at http://ADDR/ui/<namespace>/<name>/
    /// (reach it with `kubectl port-forward`); "off" for none. It has no authentication: it
    /// listens on the pod's loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:8090")]
    ui: String,
    /// Watch Constellations in this namespace only (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Run without leader election (only safe with a single replica).
    #[arg(long)]
    no_leader_election: bool,
    /// Namespace of the leader lease (default: $POD_NAMESPACE, else "orbitnet-system").
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Seconds a deleted Constellation waits for the link agents before it goes anyway.
    #[arg(long, default_value_t = 120)]
    cleanup_timeout_s: u64,
    /// Seconds between status refreshes (sim time, faults) of a running Constellation.
    #[arg(long, default_value_t = 15)]
    resync_s: u64,
}

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The Kubernetes node this agent serves (in the DaemonSet: spec.nodeName, as $NODE_NAME).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// The host's /proc (the agent needs hostPID to find the pods' network namespaces).
    #[arg(long, default_value = "/proc")]
    proc_root: std::path::PathBuf,
    /// Seconds between round-trip measurements to each peer node (underlay compensation).
    #[arg(long, default_value_t = 10)]
    probe_s: u64,
    /// Serve the flows' and objectives' Prometheus metrics here (/metrics); "off" for none.
    #[arg(long, default_value = "0.0.0.0:9465")]
    metrics_addr: String,
}

pub fn crd() -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(orbitnet_api::crd::crd_yaml().as_bytes())?;
    Ok(())
}

/// Logs to stderr, filtered by $RUST_LOG (default: info). kube_client logs every failed
/// request at ERROR; the callers report the same once, so it is off by default.
fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // In a pod's log, colour codes would sit between each field's name and its value.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off")),
        )
        .init();
}

/// Completes on SIGINT or SIGTERM.
async fn stopped() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

async fn connect() -> anyhow::Result<kube::Client> {
    kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in the cluster, or with $KUBECONFIG / ~/.kube/config)")
}

pub fn agent(args: AgentArgs) -> anyhow::Result<()> {
    init_logging();
    let options = orbitnet_agent::run::Options {
        node_name: args.node_name,
        proc_root: args.proc_root,
        probe_every: Duration::from_secs(args.probe_s.max(1)),
        metrics_addr: match args.metrics_addr.as_str() {
            "off" => None,
            addr => Some(
                addr.parse()
                    .with_context(|| format!("--metrics-addr {addr:?}: an address and port, or off"))?,
            ),
        },
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async { Ok(orbitnet_agent::run::run(connect().await?, options, stopped()).await?) })
}

pub fn operator(args: OperatorArgs) -> anyhow::Result<()> {
    init_logging();
    let identity = orbitnet_controller::identity();
    let lease_namespace = args
        .lease_namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "orbitnet-system".into());
    let options = Options {
        metrics_addr: Some(args.metrics_addr),
        ui_addr: match args.ui.as_str() {
            "off" => None,
            addr => {
                Some(addr.parse().with_context(|| format!("--ui {addr:?}: an address and port, or off"))?)
            }
        },
        namespace: args.namespace,
        lease: (!args.no_leader_election).then(|| {
            let settings = LeaseSettings {
                name: "orbitnet-operator".into(),
                identity,
                duration: Duration::from_secs(15),
                retry: Duration::from_secs(2),
            };
            (lease_namespace, settings)
        }),
        settings: Settings {
            cleanup_timeout: Duration::from_secs(args.cleanup_timeout_s),
            resync: Duration::from_secs(args.resync_s),
        },
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async { Ok(orbitnet_controller::run(connect().await?, options, stopped()).await?) })
}
