//! Bringing a constellation up on this host: a network namespace per node (made ready by
//! the dataplane), the engine serving all of them, every link it wants built (the grid's and
//! the ground links of its first look-ahead window), and the node programs. Links between
//! nodes here are veth pairs: `LocalHost` is the engine's host.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orbitnet_dataplane::build::{self, BuildError};
use orbitnet_dataplane::{Conn, Conns, Netns, NetnsError, NlError, naming};
use orbitnet_engine::{Built, Engine, Host, Settings};
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

/// This host's namespaces, as the engine's host: links are veth pairs between them.
pub struct LocalHost {
    /// Namespace handles: every node's while bringing up, then only those a build needs,
    /// for as long as it needs them (a large constellation would otherwise hold thousands).
    open: HashMap<NodeIdx, Netns>,
    hold: bool,
}

impl LocalHost {
    fn release_handles(&mut self) {
        self.open.clear();
        self.hold = false;
    }
}

impl Host for LocalHost {
    fn routing_dir(&self, plan: &Plan, node: NodeIdx) -> Option<std::path::PathBuf> {
        plan.routing_protocol.as_ref()?;
        Some(crate::daemons::state_dir(&plan.name).join(&plan.node(node).name))
    }

    fn build(
        &mut self,
        plan: &Plan,
        conns: &mut Conns,
        pairs: &[(NodeIdx, NodeIdx)],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Built {
        let mut failed = Vec::new();
        for node in pairs.iter().flat_map(|&(a, b)| [a, b]) {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.open.entry(node) {
                match Netns::open_named(&naming::netns_name(&plan.name, &plan.node(node).name)) {
                    Ok(ns) => {
                        slot.insert(ns);
                    }
                    Err(e) => failed.extend(
                        pairs.iter().filter(|p| p.0 == node || p.1 == node).map(|&p| (p, e.to_string())),
                    ),
                }
            }
        }
        let (wiring, errors) = build::build_veths(plan, &self.open, conns, pairs, progress);
        failed.extend(errors.into_iter().map(|(a, b, e)| ((a, b), e.to_string())));
        if !self.hold {
            self.open.clear();
        }
        Built { wiring, failed }
    }
}

/// A constellation running on this host.
pub struct Emulation {
    pub engine: Engine<LocalHost>,
    pub procs: Vec<NodeProcess>,
    /// Each node's routing daemons (`routing: ospf | isis`).
    pub daemons: Vec<crate::daemons::NodeDaemons>,
    pub workdir: PathBuf,
    pub timings: Timings,
}

/// How long each stage of bringing the constellation up took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub namespaces: Duration,
    pub links: Duration,
    pub programs: Duration,
}

impl Timings {
    pub fn total(&self) -> Duration {
        self.namespaces + self.links + self.programs
    }
}

/// Brings `plan` up from emulation time `start` (a run ending at `until`, if it does):
/// namespaces, the links the engine wants now, programs. On error, what was created stays
/// for the caller to sweep (by namespace prefix).
pub fn up(
    plan: Plan,
    settings: Settings,
    workdir: &Path,
    (start, until): (SimTime, Option<SimTime>),
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Emulation, UpError> {
    let started = Instant::now();
    // Made first: its replay of the model's chains to the start runs while the namespaces
    // are made.
    let host = LocalHost { open: HashMap::new(), hold: true };
    let mut engine = Engine::new(plan, host, Conns::new(), settings, start, until);
    let (namespaces, conns) = make_namespaces(engine.plan(), progress)?;
    let namespaces_done = Instant::now();
    engine.host_mut().open = namespaces;
    for (node, conn) in conns {
        engine.attach(node, conn);
    }
    let built = engine.build_all(&mut |done, total| progress("links", done, total));
    let links_done = Instant::now();
    if let Some(first) = built.failed.first() {
        return Err(UpError::Links { count: built.failed.len(), first: first.clone() });
    }

    let plan = engine.plan();
    let hosts = workdir.join("hosts");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| UpError::Io { path, source }
    };
    std::fs::create_dir_all(workdir).map_err(io(workdir))?;
    std::fs::write(&hosts, plan.hosts_table()).map_err(io(&hosts))?;

    let mut neighbours: HashMap<NodeIdx, Vec<NodeIdx>> = HashMap::new();
    for (a, b) in engine.wanted() {
        neighbours.entry(a).or_default().push(b);
        neighbours.entry(b).or_default().push(a);
    }
    let with_program: Vec<NodeIdx> = (0..plan.nodes.len() as NodeIdx)
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
        let ns = &engine.host().open[&node];
        procs.push(procs::spawn(name, ns, command, &env, workdir, log)?);
        progress("programs", k + 1, with_program.len());
    }
    let daemons = crate::daemons::start_all(engine.plan(), &engine.host().open, workdir, progress)?;
    // Namespaces stay alive through their bind mounts, sockets and programs.
    engine.host_mut().release_handles();
    Ok(Emulation {
        engine,
        procs,
        daemons,
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
) -> Result<(Namespaces, Conns), UpError> {
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
            std::thread::sleep(Duration::from_millis(100));
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
    /// Stops the programs and removes the namespaces (and with them every interface).
    pub fn teardown(mut self) -> Vec<String> {
        procs::stop_all(&mut self.procs, Duration::from_secs(3));
        crate::daemons::stop_all(
            self.engine.plan(),
            std::mem::take(&mut self.daemons),
            Duration::from_secs(3),
        );
        let prefix = naming::netns_prefix(&self.engine.plan().name);
        // Sockets hold their namespaces: close them first.
        drop(self.engine.into_host());
        let mut swept = orbitnet_dataplane::sweep::Swept::default();
        orbitnet_dataplane::sweep::namespaces(&prefix, &mut swept);
        swept.failures
    }
}
