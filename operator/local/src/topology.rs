//! Bringing a constellation up on this host: a network namespace per node (made ready by
//! the dataplane), every inter-satellite link of the grid, the ground links the model will
//! choose (a station can see thousands of satellites over a day, so ground links are built
//! for a look-ahead window and ahead of need, not for every pair), and the node programs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use orbitnet_dataplane::apply::Wiring;
use orbitnet_dataplane::build::{self, BuildError};
use orbitnet_dataplane::{Applier, Conn, Netns, NetnsError, NlError, naming};
use orbitnet_model::{NodeIdx, NodeKind, Plan, SimTime};

use crate::procs::{self, NodeProcess, SpawnError};

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Netlink(#[from] NlError),
    #[error("preparing node {node}: {source}")]
    Node { node: String, source: BuildError },
    #[error("{count} links could not be built; the first: {first}")]
    Links { count: usize, first: String },
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("writing {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// A constellation running on this host.
pub struct Emulation {
    pub plan: Plan,
    pub applier: Applier,
    pub procs: Vec<NodeProcess>,
    /// Ground links built so far, as (ground node, satellite).
    pub ground_built: HashSet<(NodeIdx, NodeIdx)>,
    pub workdir: PathBuf,
    pub timings: Timings,
}

/// How long each stage of bringing the constellation up took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub namespaces: std::time::Duration,
    pub links: std::time::Duration,
    pub programs: std::time::Duration,
}

impl Timings {
    pub fn total(&self) -> std::time::Duration {
        self.namespaces + self.links + self.programs
    }
}

/// Brings `plan` up: namespaces, links for the ground links chosen within `window` of
/// emulation time, programs. On error, what was created stays for the caller to sweep (by
/// namespace prefix).
pub fn up(
    plan: Plan,
    workdir: &Path,
    window: (SimTime, SimTime),
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Emulation, UpError> {
    let started = Instant::now();
    let n = plan.nodes.len();
    let (namespaces, mut conns) = make_namespaces(&plan, progress)?;
    let namespaces_done = Instant::now();

    let ground = plan.ground_links_chosen(window.0, window.1);
    let mut pairs: Vec<(NodeIdx, NodeIdx)> = plan.isls.iter().map(|l| (l.a, l.b)).collect();
    pairs.extend(ground.iter().copied());
    let (wiring, failed) = build::build_veths(&plan, &namespaces, &mut conns, &pairs, &mut |done, total| {
        progress("links", done, total)
    });
    let links_done = Instant::now();
    if let Some((a, b, e)) = failed.first() {
        return Err(UpError::Links {
            count: failed.len(),
            first: format!("{} - {}: {e}", plan.node(*a).name, plan.node(*b).name),
        });
    }

    let hosts = workdir.join("hosts");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| UpError::Io { path, source }
    };
    std::fs::create_dir_all(workdir).map_err(io(workdir))?;
    std::fs::write(&hosts, plan.hosts_table()).map_err(io(&hosts))?;

    let mut neighbours: HashMap<NodeIdx, Vec<NodeIdx>> = HashMap::new();
    for &(a, b) in &pairs {
        neighbours.entry(a).or_default().push(b);
        neighbours.entry(b).or_default().push(a);
    }
    let with_program: Vec<NodeIdx> = (0..n as NodeIdx)
        .filter(|&i| plan.node_templates.for_kind(plan.node(i).kind).is_some_and(|t| t.command.is_some()))
        .collect();
    let mut procs = Vec::with_capacity(with_program.len());
    for (k, &node) in with_program.iter().enumerate() {
        let kind: NodeKind = plan.node(node).kind;
        // Proven by the filter above: the template and its command exist.
        let Some(template) = plan.node_templates.for_kind(kind) else { continue };
        let Some(command) = &template.command else { continue };
        let mut env: std::collections::BTreeMap<String, String> = plan
            .node_env(
                node,
                neighbours.get(&node).map_or(&[][..], Vec::as_slice),
                &hosts.display().to_string(),
            )
            .into_iter()
            .collect();
        env.extend(template.env.clone());
        let name = &plan.node(node).name;
        let log = workdir.join("logs").join(format!("{name}.log"));
        procs.push(procs::spawn(name, &namespaces[&node], command, &env, workdir, log)?);
        progress("programs", k + 1, with_program.len());
    }
    // Namespaces stay alive through their bind mounts, sockets and programs; the handles
    // are not needed any more (a large constellation would otherwise hold thousands).
    drop(namespaces);
    Ok(Emulation {
        applier: Applier::new(conns, wiring),
        ground_built: ground.into_iter().collect(),
        plan,
        procs,
        workdir: workdir.to_owned(),
        timings: Timings {
            namespaces: namespaces_done - started,
            links: links_done - namespaces_done,
            programs: links_done.elapsed(),
        },
    })
}

type Namespaces = HashMap<NodeIdx, Netns>;

/// Creates and prepares every node's namespace, on all cores (namespace creation is mostly
/// kernel work that runs in parallel), reporting progress from this thread.
fn make_namespaces(
    plan: &Plan,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<(Namespaces, HashMap<NodeIdx, Conn>), UpError> {
    let n = plan.nodes.len();
    let workers = std::thread::available_parallelism().map_or(1, |w| w.get()).clamp(1, 4);
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (done, failed) = (&done, &failed);
                scope.spawn(move || -> Result<Vec<(NodeIdx, Netns, Conn)>, UpError> {
                    let mut mine = Vec::new();
                    for node in (w..n).step_by(workers).map(|i| i as NodeIdx) {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let name = &plan.node(node).name;
                        let made = (|| {
                            let ns = Netns::create(&naming::netns_name(&plan.name, name))?;
                            let mut conn = Conn::open_in(&ns)?;
                            build::prepare_node(plan, node, &ns, &mut conn)
                                .map_err(|source| UpError::Node { node: name.clone(), source })?;
                            Ok::<_, UpError>((node, ns, conn))
                        })();
                        match made {
                            Ok(m) => mine.push(m),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(mine)
                })
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) {
            progress("namespaces", done.load(Ordering::Relaxed), n);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        progress("namespaces", done.load(Ordering::Relaxed), n);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Vec<_>>()
    });
    let (mut namespaces, mut conns) = (HashMap::with_capacity(n), HashMap::with_capacity(n));
    for r in results {
        for (node, ns, conn) in r? {
            namespaces.insert(node, ns);
            conns.insert(node, conn);
        }
    }
    Ok((namespaces, conns))
}

impl Emulation {
    /// Builds the ground links among `pairs` that do not exist yet; returns how many were
    /// built and the failures.
    pub fn ensure_ground_links(&mut self, pairs: &[(NodeIdx, NodeIdx)]) -> (usize, Vec<String>) {
        let missing: Vec<(NodeIdx, NodeIdx)> = pairs
            .iter()
            .copied()
            .filter(|p| !self.ground_built.contains(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return (0, Vec::new());
        }
        let mut namespaces = HashMap::new();
        let mut failures = Vec::new();
        for node in missing.iter().flat_map(|&(a, b)| [a, b]) {
            if let std::collections::hash_map::Entry::Vacant(slot) = namespaces.entry(node) {
                match Netns::open_named(&naming::netns_name(&self.plan.name, &self.plan.node(node).name)) {
                    Ok(ns) => {
                        slot.insert(ns);
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        let (wiring, failed): (Wiring, _) =
            build::build_veths(&self.plan, &namespaces, &mut self.applier.conns, &missing, &mut |_, _| {});
        let built = wiring.links();
        for end in wiring.ends() {
            self.applier.wiring.add(end.clone());
        }
        for &pair in &missing {
            if !failed.iter().any(|(a, b, _)| (*a, *b) == pair || (*b, *a) == pair) {
                self.ground_built.insert(pair);
            }
        }
        failures.extend(
            failed
                .into_iter()
                .map(|(a, b, e)| format!("{} - {}: {e}", self.plan.node(a).name, self.plan.node(b).name)),
        );
        (built, failures)
    }

    /// Stops the programs and removes the namespaces (and with them every interface).
    pub fn teardown(mut self) -> Vec<String> {
        procs::stop_all(&mut self.procs, std::time::Duration::from_secs(3));
        let name = self.plan.name.clone();
        // Sockets hold their namespaces: close them first.
        drop(self.applier);
        let mut swept = orbitnet_dataplane::sweep::Swept::default();
        orbitnet_dataplane::sweep::namespaces(&naming::netns_prefix(&name), &mut swept);
        swept.failures
    }
}
