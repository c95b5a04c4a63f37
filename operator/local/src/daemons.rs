//! Routing daemons in the nodes (`routing: ospf | isis`), supervised by the local runner.
//! Each node's daemons run under one launcher (a node program like any other: in the node's
//! namespace, dying with the runner) that gives them a PID namespace of their own, so they
//! all die with it even after FRR's daemons drop root (which clears the parent-death
//! signal), and a mount namespace where FRR's fixed paths (/run/frr, /var/tmp) are the
//! node's own. Their files (configuration, pid files, vty sockets) are in the node's state
//! directory under /run/orbitnet/<constellation>.routing/, their output in the workdir's
//! logs; a node whose daemons exit is reported and started again, a few times.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orbitnet_dataplane::Netns;
use orbitnet_model::spec::RoutingDaemon;
use orbitnet_model::{NodeIdx, Plan};

use orbitnet_routing::launcher::{self, Mounts};

use crate::procs::{self, NodeProcess};
use crate::topology::UpError;

/// A node's daemons are started again at most this many times.
pub const RESTARTS: u32 = 3;
/// ...and not sooner than this after they last started.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Where a constellation's daemons keep their state (removed by teardown and `down`).
pub fn state_dir(constellation: &str) -> PathBuf {
    Path::new(crate::lock::RUN_DIR).join(format!("{constellation}.routing"))
}

/// What the daemons need on this host, checked before anything is built.
pub fn preflight(plan: &Plan) -> Result<(), String> {
    let Some(p) = &plan.routing_protocol else { return Ok(()) };
    let (binary, package) = match p.daemon {
        RoutingDaemon::Frr => (format!("{}/zebra", orbitnet_routing::FRR_DIR), "frr"),
        RoutingDaemon::Bird => ("/usr/sbin/bird".to_owned(), "bird2"),
    };
    if !Path::new(&binary).exists() {
        return Err(format!(
            "routing: {} with daemon {} needs {binary}, which is not installed (apt-get install {package})",
            plan.routing.as_str(),
            p.daemon.as_str()
        ));
    }
    if p.daemon == RoutingDaemon::Frr && nix::unistd::User::from_name("frr").ok().flatten().is_none() {
        return Err("FRR's daemons run as user frr, which does not exist (reinstall the frr package)".into());
    }
    Ok(())
}

/// One node's daemons.
pub struct NodeDaemons {
    node: NodeIdx,
    process: NodeProcess,
    script: PathBuf,
    started: Instant,
    restarts: u32,
    /// How they exited, while they wait to be started again.
    pending: Option<String>,
}

/// A node's daemons exited: how, and whether they were started again (else they exited
/// once too often, or could not be started, and are left stopped).
pub struct Exit {
    pub node: String,
    pub status: String,
    pub log: PathBuf,
    pub restarted: bool,
}

/// Writes every node's files and starts its daemons.
pub fn start_all(
    plan: &Plan,
    namespaces: &HashMap<NodeIdx, Netns>,
    workdir: &Path,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<NodeDaemons>, UpError> {
    if plan.routing_protocol.is_none() {
        return Ok(Vec::new());
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| UpError::Io { path, source }
    };
    let root = state_dir(&plan.name);
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(io(&root))?;
    }
    let mut out = Vec::with_capacity(namespaces.len());
    for node in 0..plan.nodes.len() as NodeIdx {
        let name = &plan.node(node).name;
        let script = launcher::write(plan, node, &root.join(name), Mounts::Private)
            .map_err(|(path, source)| UpError::Io { path: path.display().to_string(), source })?;
        let Some(ns) = namespaces.get(&node) else { continue };
        let log = workdir.join("logs").join(format!("{name}.routing.log"));
        let process = spawn(name, ns, &script, workdir, log)?;
        out.push(NodeDaemons { node, process, script, started: Instant::now(), restarts: 0, pending: None });
        progress("routing daemons", out.len(), namespaces.len());
    }
    Ok(out)
}

fn spawn(
    name: &str,
    ns: &Netns,
    script: &Path,
    workdir: &Path,
    log: PathBuf,
) -> Result<NodeProcess, UpError> {
    // The launcher leads a PID namespace: when it dies (with the runner, by the parent
    // death signal unshare keeps), the kernel kills every daemon in it.
    let command: Vec<String> = ["unshare", "--pid", "--mount", "--fork", "--kill-child=SIGKILL", "bash"]
        .into_iter()
        .map(String::from)
        .chain([script.display().to_string()])
        .collect();
    Ok(procs::spawn(name, ns, &command, &BTreeMap::new(), workdir, log)?)
}

/// Stops every node's daemons and removes their state.
pub fn stop_all(plan: &Plan, all: Vec<NodeDaemons>, grace: Duration) {
    let mut processes: Vec<NodeProcess> = all.into_iter().map(|d| d.process).collect();
    procs::stop_all(&mut processes, grace);
    let _ = std::fs::remove_dir_all(state_dir(&plan.name));
}

/// Looks at every node's daemons: those that exited are started again (at most `RESTARTS`
/// times each, and not sooner than `RESTART_AFTER` after their last start: until then they
/// wait for a later look, so that the runner's tick never waits for them).
pub fn supervise(plan: &Plan, all: &mut [NodeDaemons], workdir: &Path) -> Vec<Exit> {
    let mut out = Vec::new();
    for d in all.iter_mut() {
        let name = |d: &NodeDaemons| plan.node(d.node).name.clone();
        if let Some(status) = d.process.newly_exited() {
            if d.restarts >= RESTARTS {
                let (node, log) = (name(d), d.process.log.clone());
                out.push(Exit { node, status: status.to_string(), log, restarted: false });
                continue;
            }
            d.pending = Some(status.to_string());
        }
        if d.started.elapsed() < RESTART_AFTER {
            continue;
        }
        let Some(status) = d.pending.take() else { continue };
        let (node, log) = (name(d), d.process.log.clone());
        let ns = orbitnet_dataplane::naming::netns_name(&plan.name, &node);
        let restarted = Netns::open_named(&ns)
            .map_err(|e| e.to_string())
            .and_then(|ns| spawn(&node, &ns, &d.script, workdir, log.clone()).map_err(|e| e.to_string()));
        let restarted = match restarted {
            Ok(p) => {
                d.process = p;
                d.started = Instant::now();
                d.restarts += 1;
                true
            }
            Err(_) => false,
        };
        out.push(Exit { node, status, log, restarted });
    }
    out
}
