//! One constellation as this agent holds it in the kernel: the engine serving the network
//! namespaces of its pods here, and the agent's host for it (`PodHost`): link ends are veth
//! pairs between two pods here and VXLAN ends towards pods elsewhere, and the underlay's
//! own delay comes off the VXLAN ends' netem.
//!
//! The kernel is the memory: after any change of pods, placements or plan, the agent
//! rediscovers the ends already there (by their alias, `naming::alias`), deletes those no
//! longer wanted, hands what it kept to the engine, and the engine builds the missing ones
//! and reads back what was applied. That is also what a restarted agent does, so it neither
//! leaks nor duplicates.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use orbitnet_dataplane::apply::Wiring;
use orbitnet_dataplane::build::{self, Tunnel};
use orbitnet_dataplane::{Conn, Conns, Netns, link, naming};
use orbitnet_engine::{Built, Engine, Host, Incompatible, Settings, Tick};
use orbitnet_model::{LinkState, NodeIdx, Plan, SimTime};

use crate::pods::netns_inode;

/// How often the forwarding tables are read after a change of the graph, as `orbitnet run`
/// reads them by default.
const CONVERGENCE_EVERY: orbitnet_model::SpecDuration = orbitnet_model::SpecDuration::from_millis(50);
use crate::underlay;
use crate::wiring::{self, End, Placement};

/// A pod of this constellation on this node, with its namespace open.
struct LocalPod {
    uid: String,
    /// The namespace's inode: a restarted sandbox has a new one.
    inode: u64,
}

/// A local pod's UID and the path of its network namespace (`None` while none of its
/// processes is found: starting, or its sandbox restarting).
pub type LocalNs = (String, Option<PathBuf>);

/// What one sync did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    pub pods_added: usize,
    pub pods_removed: usize,
    pub ends_built: usize,
    pub ends_removed: usize,
    /// Problems this sync met that the last one did not (a failed build is retried every
    /// sync; its error is said once).
    pub new_errors: Vec<String>,
}

impl Synced {
    /// Whether pods or ends changed.
    pub fn changed(&self) -> bool {
        self.pods_added + self.pods_removed + self.ends_built + self.ends_removed > 0
    }
}

/// The pods of one constellation on this Kubernetes node, as the engine's host.
pub struct PodHost {
    here: String,
    port: u16,
    /// A connection in the namespace that reaches the other nodes (VXLAN sockets live there).
    underlay: Conn,
    pods: HashMap<NodeIdx, LocalPod>,
    namespaces: HashMap<NodeIdx, Netns>,
    placements: HashMap<NodeIdx, Placement>,
    /// The remote of each VXLAN end, by (node, peer): built here, or found in the kernel
    /// going to the wanted peer node.
    tunnels: HashMap<(NodeIdx, NodeIdx), IpAddr>,
    /// The underlay's one-way delay to each peer node, microseconds, by node address.
    one_way_us: HashMap<IpAddr, f64>,
    /// Each local pod's routing daemons' directory, once found (`cost: delay`).
    routing_dirs: HashMap<NodeIdx, PathBuf>,
}

impl Host for PodHost {
    fn routing_dir(&self, _plan: &Plan, node: NodeIdx) -> Option<PathBuf> {
        self.routing_dirs.get(&node).cloned()
    }

    fn build(
        &mut self,
        plan: &Plan,
        conns: &mut Conns,
        pairs: &[(NodeIdx, NodeIdx)],
        _progress: &mut dyn FnMut(usize, usize),
    ) -> Built {
        let mut failed = Vec::new();
        let (mut veths, mut tunnels) = (Vec::new(), Vec::new());
        // Ends are named by (node, peer) below; failures go back under the pair as asked.
        let mut asked: HashMap<(NodeIdx, NodeIdx), (NodeIdx, NodeIdx)> = HashMap::new();
        for &(a, b) in pairs {
            asked.insert((a, b), (a, b));
            asked.insert((b, a), (a, b));
            match wiring::ends_here(plan, a, b, &self.placements, &self.here, self.port) {
                Err(e) => failed.push(((a, b), e.to_string())),
                Ok(ends) => {
                    for end in ends {
                        match end {
                            End::Veth { a, b } => veths.push((a, b)),
                            End::Vxlan {
                                node,
                                peer,
                                vni,
                                port,
                                local: IpAddr::V4(local),
                                remote: IpAddr::V4(remote),
                            } => {
                                tunnels.push(Tunnel { node, peer, vni, port, local, remote });
                            }
                            End::Vxlan { local, remote, .. } => failed.push((
                                (a, b),
                                format!(
                                    "VXLAN over IPv6 node addresses ({local} - {remote}) is not supported"
                                ),
                            )),
                        }
                    }
                }
            }
        }
        let mut wiring = Wiring::default();
        let mut errors = Vec::new();
        if !veths.is_empty() {
            let (built, veth_errors) =
                build::build_veths(plan, &self.namespaces, conns, &veths, &mut |_, _| {});
            errors.extend(veth_errors);
            for end in built.ends() {
                wiring.add(end.clone());
            }
        }
        if !tunnels.is_empty() {
            let (built, tunnel_errors) =
                build::build_vxlans(plan, &mut self.underlay, &self.namespaces, conns, &tunnels);
            errors.extend(tunnel_errors);
            for end in built.ends() {
                if let Some(t) = tunnels.iter().find(|t| (t.node, t.peer) == (end.node, end.peer)) {
                    self.tunnels.insert((t.node, t.peer), IpAddr::V4(t.remote));
                }
                wiring.add(end.clone());
            }
        }
        for (node, peer, e) in errors {
            let pair = asked.get(&(node, peer)).copied().unwrap_or((node, peer));
            failed.push((pair, e.to_string()));
        }
        Built { wiring, failed }
    }

    /// The delay of each VXLAN end shortened by the underlay's one-way delay to its peer's
    /// node; the links whose underlay alone is slower than the model wants are said.
    fn shape(&mut self, plan: &Plan, links: &[LinkState]) -> Option<(Vec<LinkState>, Vec<String>)> {
        if self.tunnels.is_empty() {
            return None;
        }
        let mut shaped = links.to_vec();
        let mut slow = Vec::new();
        for l in &mut shaped {
            let remote = [(l.a, l.b), (l.b, l.a)].iter().find_map(|pair| self.tunnels.get(pair));
            let Some(underlay) = remote.and_then(|ip| self.one_way_us.get(ip)) else { continue };
            let c = underlay::compensate(l.delay_ns as f64 / 1e3, *underlay);
            l.delay_ns = (c.netem_delay_us * 1e3).round() as u64;
            if c.excess_us > 0.0 {
                slow.push(format!(
                    "{} - {}: the underlay takes {:.0} us one way, {:.0} us more than the link's delay",
                    plan.node(l.a).name,
                    plan.node(l.b).name,
                    underlay,
                    c.excess_us
                ));
            }
        }
        Some((shaped, slow))
    }
}

/// One constellation wired on this node.
pub struct Wired {
    engine: Engine<PodHost>,
    /// Problems of the last sync (pods not prepared, ends not read or removed, links not
    /// built): reported until a sync no longer meets them.
    pub build_errors: Vec<String>,
    /// Pods or placements changed since the kernel's ends were last reconciled.
    stale: bool,
}

impl Wired {
    /// `underlay` is a connection in the namespace that reaches the other Kubernetes nodes
    /// (the host's), where VXLAN ends are created; `t` the emulation time now.
    pub fn new(plan: Plan, here: &str, namespace: &str, underlay: Conn, t: SimTime) -> Self {
        let port = wiring::vxlan_port(namespace, &plan.name);
        let host = PodHost {
            here: here.to_owned(),
            port,
            underlay,
            pods: HashMap::new(),
            namespaces: HashMap::new(),
            placements: HashMap::new(),
            tunnels: HashMap::new(),
            one_way_us: HashMap::new(),
            routing_dirs: HashMap::new(),
        };
        // The forwarding is watched only when an objective asks for it: each read dumps
        // every local pod's table.
        let watch = plan.objectives.iter().any(|o| o.flow.is_none());
        let settings =
            Settings { convergence_every: watch.then_some(CONVERGENCE_EVERY), ..Settings::default() };
        let engine = Engine::new(plan, host, Conns::new(), settings, t, None);
        Self { engine, build_errors: Vec::new(), stale: true }
    }

    pub fn plan(&self) -> &Plan {
        self.engine.plan()
    }

    /// Takes a plan of the same shape (new faults, link classes, routing) from `t` on.
    pub fn replan(&mut self, plan: Plan, t: SimTime) -> Result<(), Incompatible> {
        self.engine.replan(plan, t, None)
    }

    /// Local pods wired (their namespace prepared).
    pub fn pods(&self) -> usize {
        self.engine.host().pods.len()
    }

    /// Brings the kernel in line with the pods here (`local`) and the placements: ends no
    /// longer wanted removed, missing ones built.
    pub fn sync(
        &mut self,
        local: &HashMap<NodeIdx, LocalNs>,
        placements: &HashMap<NodeIdx, Placement>,
    ) -> Synced {
        let mut synced = Synced::default();
        let mut errors = Vec::new();
        self.sync_pods(local, &mut synced, &mut errors);
        if *placements != self.engine.host().placements {
            self.engine.host_mut().placements = placements.clone();
            self.stale = true;
        }
        if !self.stale && self.build_errors.is_empty() {
            return synced;
        }
        self.stale = false;
        self.prune(&mut synced, &mut errors);
        let built = self.engine.build_all(&mut |_, _| {});
        synced.ends_built += built.ends;
        errors.extend(built.failed);
        synced.new_errors = errors.iter().filter(|e| !self.build_errors.contains(e)).cloned().collect();
        self.build_errors = errors;
        synced
    }

    fn sync_pods(
        &mut self,
        local: &HashMap<NodeIdx, LocalNs>,
        synced: &mut Synced,
        errors: &mut Vec<String>,
    ) {
        let gone: Vec<NodeIdx> = self
            .engine
            .host()
            .pods
            .iter()
            .filter(|(node, pod)| {
                // A pod whose processes are not found right now keeps its namespace until one
                // is found again: the same one, or its restarted sandbox's.
                local.get(node).is_none_or(|(uid, path)| {
                    *uid != pod.uid || path.as_deref().is_some_and(|p| netns_inode(p) != Some(pod.inode))
                })
            })
            .map(|(&node, _)| node)
            .collect();
        for node in gone {
            let host = self.engine.host_mut();
            host.pods.remove(&node);
            host.namespaces.remove(&node);
            host.tunnels.retain(|&(n, _), _| n != node);
            self.engine.detach(node);
            synced.pods_removed += 1;
            self.stale = true;
        }
        for (&node, (uid, path)) in local {
            let Some(path) = path else { continue };
            if self.engine.host().pods.contains_key(&node) {
                continue;
            }
            let name = &self.engine.plan().node(node).name;
            let opened = (|| -> Result<(Netns, Conn, u64), String> {
                let inode = netns_inode(path).ok_or_else(|| format!("{} is gone", path.display()))?;
                let ns = Netns::open(path).map_err(|e| e.to_string())?;
                let mut conn = Conn::open_in(&ns).map_err(|e| e.to_string())?;
                build::prepare_node(self.engine.plan(), node, &ns, &mut conn).map_err(|e| e.to_string())?;
                Ok((ns, conn, inode))
            })();
            match opened {
                Ok((ns, conn, inode)) => {
                    let host = self.engine.host_mut();
                    host.pods.insert(node, LocalPod { uid: uid.clone(), inode });
                    host.namespaces.insert(node, ns);
                    self.engine.attach(node, conn);
                    synced.pods_added += 1;
                    self.stale = true;
                }
                Err(e) => errors.push(format!("pod of {name}: {e}")),
            }
        }
    }

    /// Finds the ends the kernel holds in the local pods, deletes those whose wiring is no
    /// longer right (and half-built ones), and hands the rest to the engine. An end is
    /// judged by where the pods run, not by whether the model wants its link soon: a ground
    /// link built once is kept, as the engine keeps it, and a restarted agent takes over
    /// every end a predecessor built.
    fn prune(&mut self, synced: &mut Synced, errors: &mut Vec<String>) {
        // One listing per namespace serves three ends: the wiring found, where each VXLAN
        // end tunnels to (as the kernel says), and half-built ends (created, never tagged:
        // a build stopped between the two steps), which would fail every later build of
        // their link with EEXIST and are removed.
        let mut listed = Vec::new();
        for (&node, conn) in self.engine.conns_mut().iter_mut() {
            match link::list(conn) {
                Ok(ifaces) => listed.push((node, ifaces)),
                Err(e) => {
                    errors.push(format!("reading the link ends back: {e}"));
                    return;
                }
            }
        }
        let (plan, host) = (self.engine.plan(), self.engine.host());
        let mut found = Wiring::default();
        let mut half_built = Vec::new();
        let mut kernel_tunnels: HashMap<(NodeIdx, u32), link::VxlanEnd> = HashMap::new();
        for (node, ifaces) in &listed {
            found.add_found(plan, *node, ifaces);
            for iface in ifaces {
                let tagged = iface.alias.as_deref().and_then(naming::parse_alias).is_some();
                if let Some(v) = iface.vxlan.filter(|_| tagged) {
                    kernel_tunnels.insert((*node, iface.index), v);
                }
                if !tagged && (iface.name.starts_with("isl") || iface.name.starts_with("gsl")) {
                    half_built.push((*node, iface.index, format!("untagged link end {}", iface.name)));
                }
            }
        }
        // Ends wired wrong now: a veth whose other pod left this node, a VXLAN end whose
        // peer moved, or whose tunnel is not the one wanted (a previous agent's, perhaps).
        let mut tunnels = HashMap::new();
        let mut wiring = Wiring::default();
        let mut unwanted = half_built;
        for end in found.ends() {
            let (a, b) = (end.node.min(end.peer), end.node.max(end.peer));
            let right = match wiring::ends_here(plan, a, b, &host.placements, &host.here, host.port) {
                Ok(ends) => ends.into_iter().any(|want| match want {
                    End::Veth { .. } => !kernel_tunnels.contains_key(&(end.node, end.ifindex)),
                    End::Vxlan { node, peer, vni, port, remote, .. } => {
                        let same = (node, peer) == (end.node, end.peer)
                            && kernel_tunnels.get(&(end.node, end.ifindex)).is_some_and(|v| {
                                v.vni == vni
                                    && v.port == Some(port)
                                    && v.remote.map(IpAddr::V4) == Some(remote)
                            });
                        if same {
                            tunnels.insert((node, peer), remote);
                        }
                        same
                    }
                }),
                Err(e) => {
                    errors.push(e.to_string());
                    false
                }
            };
            if right {
                wiring.add(end.clone());
            } else {
                unwanted.push((end.node, end.ifindex, format!("unwanted link end {}", end.name)));
            }
        }
        for (node, ifindex, what) in unwanted {
            let Some(conn) = self.engine.conns_mut().get_mut(&node) else { continue };
            match link::delete_if_present(conn, what, ifindex) {
                Ok(deleted) => synced.ends_removed += usize::from(deleted),
                Err(e) => errors.push(e.to_string()),
            }
        }
        self.engine.host_mut().tunnels = tunnels;
        if let Err(e) = self.engine.rewire(wiring) {
            errors.push(format!("reading applied state back: {e}"));
        }
    }

    /// Whether tick `k` (or the wiring) is not applied yet.
    pub fn due(&self, k: i64) -> bool {
        self.engine.stale() || self.engine.applied_tick() != Some(k)
    }

    /// Applies tick `k`, the delay of each VXLAN end shortened by the underlay's one-way
    /// delay to its peer's node (`one_way_us` by node address).
    pub fn apply(&mut self, k: i64, one_way_us: HashMap<IpAddr, f64>) -> Tick {
        self.engine.host_mut().one_way_us = one_way_us;
        self.engine.apply(k)
    }

    /// Reads the pods' forwarding tables if the convergence watch is due to; returns when
    /// it is next due (`None`: nothing is being watched).
    pub fn watch_convergence(&mut self) -> Option<std::time::Instant> {
        self.engine.watch_convergence()
    }

    pub fn watches_convergence(&self) -> bool {
        self.engine.watches_convergence()
    }

    /// Why the watch's last read of the forwarding tables failed, while reads fail.
    pub fn convergence_read_error(&self) -> Option<&str> {
        self.engine.convergence_cost().and_then(|(_, _, error)| error)
    }

    /// Ends the watch under way (the run is over); returns the watches ended since the
    /// last tick.
    pub fn finish_convergence(&mut self) -> Vec<orbitnet_routing::convergence::Convergence> {
        self.engine.finish_convergence()
    }

    /// Whether the daemons in the pods take their link costs from the agent (`cost: delay`).
    pub fn keeps_costs(&self) -> bool {
        self.plan().routing_protocol.as_ref().is_some_and(|p| p.cost == orbitnet_model::spec::LinkCost::Delay)
    }

    /// The local pods' routing daemons' directories (`pods::find_routing_dirs`), by node.
    pub fn set_routing_dirs(&mut self, dirs: HashMap<NodeIdx, PathBuf>) {
        self.engine.host_mut().routing_dirs = dirs;
    }

    /// Links with an end here, and of those the ones applied up.
    pub fn links(&self) -> (usize, usize) {
        self.engine.links()
    }

    /// Starts the plan's flows with an end in the pods of `local` (their namespaces); the
    /// engine measures them from then on. `clock` tells emulation time.
    pub fn start_traffic(
        &mut self,
        local: &HashMap<NodeIdx, LocalNs>,
        clock: orbitnet_engine::Clock,
    ) -> Result<(), orbitnet_engine::FlowError> {
        let namespace = |node: NodeIdx| {
            let path = local.get(&node)?.1.as_ref()?;
            orbitnet_dataplane::netns::Netns::open(path).ok()
        };
        self.engine.start_traffic(&namespace, clock)
    }

    pub fn traffic_started(&self) -> bool {
        self.engine.traffic_started()
    }

    /// What the flows measured so far.
    pub fn traffic_snapshot(&self) -> Vec<orbitnet_mission::FlowSeries> {
        self.engine.traffic_snapshot()
    }

    /// Stops the flows at once and returns what they measured (what was sent in the last
    /// `IN_FLIGHT` is cut short: the caller judges only up to before it).
    pub fn finish_traffic(&mut self) -> Vec<orbitnet_mission::FlowSeries> {
        self.engine.finish_traffic(false)
    }

    /// The peer nodes' addresses the VXLAN ends tunnel to: the underlay to measure.
    pub fn peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.engine.host().tunnels.values().copied()
    }

    /// Removes every link end of this constellation from the local pods, and their routes,
    /// as `orbitnet down` sweeps. Returns what could not be removed.
    pub fn teardown(&mut self) -> Vec<String> {
        let failures = self.engine.remove_links();
        let nodes: Vec<NodeIdx> = self.engine.host().pods.keys().copied().collect();
        for node in nodes {
            self.engine.detach(node);
        }
        let host = self.engine.host_mut();
        host.tunnels.clear();
        host.pods.clear();
        host.namespaces.clear();
        self.stale = true;
        failures
    }
}
