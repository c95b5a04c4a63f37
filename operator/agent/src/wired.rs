//! One constellation as this agent holds it in the kernel: the network namespaces of its
//! pods here, their link ends (veth between two pods here, VXLAN towards pods elsewhere) and
//! the applier that brings them to the model's state each tick.
//!
//! The kernel is the memory: after any change of pods, placements or plan, the agent
//! rediscovers the ends already there (by their alias, `naming::alias`), deletes those no
//! longer wanted, builds the missing ones, and reads back what was applied. That is also
//! what a restarted agent does, so it neither leaks nor duplicates.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use orbitnet_dataplane::apply::Wiring;
use orbitnet_dataplane::build::{self, Tunnel};
use orbitnet_dataplane::{Applier, ApplyReport, Conn, Netns, link, naming, sweep};
use orbitnet_model::{NodeIdx, Plan, SimTime, Timeline};

use crate::pods::netns_inode;
use crate::underlay;
use crate::wiring::{self, End, Placement};

/// Ground links are built for the ones the model chooses within this much emulation time.
const GROUND_WINDOW_S: i64 = 600;
/// A netem is changed when the wanted delay moved further than this (as the local runner).
const DELAY_TOLERANCE_NS: u64 = 10_000;

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

pub struct Wired {
    pub plan: Plan,
    here: String,
    port: u16,
    pods: HashMap<NodeIdx, LocalPod>,
    namespaces: HashMap<NodeIdx, Netns>,
    placements: HashMap<NodeIdx, Placement>,
    /// Holds the connections into the local pods' namespaces and the wiring.
    applier: Applier,
    /// The remote of each VXLAN end, by (node, peer): built by this process, or found in the
    /// kernel going to the wanted peer node.
    tunnels: HashMap<(NodeIdx, NodeIdx), IpAddr>,
    /// Ground links to have built, and the emulation time up to which they were chosen.
    ground: BTreeSet<(NodeIdx, NodeIdx)>,
    ground_until: Option<SimTime>,
    /// Problems of the last sync (pods not prepared, links not built): reported until the
    /// next sync succeeds.
    pub build_errors: Vec<String>,
    /// The wiring changed since the last apply.
    pub needs_apply: bool,
    /// The model's states, one tick after another.
    timeline: Timeline,
    stale: bool,
}

impl Wired {
    pub fn new(plan: Plan, here: &str, namespace: &str) -> Self {
        let port = wiring::vxlan_port(namespace, &plan.name);
        let timeline = plan.timeline();
        let mut applier = Applier::new(HashMap::new(), Wiring::default());
        applier.delay_tolerance_ns = DELAY_TOLERANCE_NS;
        Self {
            plan,
            here: here.to_owned(),
            port,
            pods: HashMap::new(),
            namespaces: HashMap::new(),
            placements: HashMap::new(),
            applier,
            tunnels: HashMap::new(),
            ground: BTreeSet::new(),
            ground_until: None,
            build_errors: Vec::new(),
            needs_apply: true,
            timeline,
            stale: true,
        }
    }

    /// Replaces the plan by one of the same shape (`Plan::incompatibility` is `None`): new
    /// faults, link classes, routing. The ground links are chosen again.
    pub fn replan(&mut self, plan: Plan) {
        self.timeline = plan.timeline();
        self.plan = plan;
        self.ground_until = None;
        self.needs_apply = true;
    }

    /// Local pods wired (their namespace prepared).
    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    /// Brings the kernel in line with the pods here (`local`) and the placements, at
    /// emulation time `t`.
    pub fn sync(
        &mut self,
        host: &mut Conn,
        local: &HashMap<NodeIdx, LocalNs>,
        placements: &HashMap<NodeIdx, Placement>,
        t: SimTime,
    ) -> Synced {
        let mut synced = Synced::default();
        let mut errors = Vec::new();
        self.sync_pods(local, &mut synced, &mut errors);
        if *placements != self.placements {
            self.placements = placements.clone();
            self.stale = true;
        }
        self.choose_ground(t);
        if !self.stale && !self.build_errors.is_empty() {
            // Retry what failed last time.
            self.stale = true;
        }
        if !self.stale {
            return synced;
        }
        self.stale = false;
        self.rewire(host, &mut synced, &mut errors);
        synced.new_errors = errors.iter().filter(|e| !self.build_errors.contains(e)).cloned().collect();
        self.build_errors = errors;
        self.needs_apply = true;
        synced
    }

    fn sync_pods(
        &mut self,
        local: &HashMap<NodeIdx, LocalNs>,
        synced: &mut Synced,
        errors: &mut Vec<String>,
    ) {
        let gone: Vec<NodeIdx> = self
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
            self.pods.remove(&node);
            self.namespaces.remove(&node);
            self.applier.conns.remove(&node);
            synced.pods_removed += 1;
            self.stale = true;
        }
        for (&node, (uid, path)) in local {
            let Some(path) = path else { continue };
            if self.pods.contains_key(&node) {
                continue;
            }
            let name = &self.plan.node(node).name;
            let opened = (|| -> Result<(Netns, Conn, u64), String> {
                let inode = netns_inode(path).ok_or_else(|| format!("{} is gone", path.display()))?;
                let ns = Netns::open(path).map_err(|e| e.to_string())?;
                let mut conn = Conn::open_in(&ns).map_err(|e| e.to_string())?;
                build::prepare_node(&self.plan, node, &ns, &mut conn).map_err(|e| e.to_string())?;
                Ok((ns, conn, inode))
            })();
            match opened {
                Ok((ns, conn, inode)) => {
                    self.pods.insert(node, LocalPod { uid: uid.clone(), inode });
                    self.namespaces.insert(node, ns);
                    self.applier.conns.insert(node, conn);
                    synced.pods_added += 1;
                    self.stale = true;
                }
                Err(e) => errors.push(format!("pod of {name}: {e}")),
            }
        }
    }

    /// Chooses the ground links of the window starting at `t`, once `t` is halfway through
    /// the last window (or the plan changed).
    fn choose_ground(&mut self, t: SimTime) {
        const WINDOW_NS: i64 = GROUND_WINDOW_S * 1_000_000_000;
        let due = self.ground_until.is_none_or(|until| t.as_nanos() + WINDOW_NS / 2 >= until.as_nanos());
        if !due {
            return;
        }
        let until = SimTime::from_nanos(t.as_nanos() + WINDOW_NS);
        let chosen = self.plan.ground_links_chosen(t, until);
        if chosen.iter().any(|pair| !self.ground.contains(pair)) {
            self.stale = true;
        }
        // Links chosen earlier stay built: a station often returns to the same satellites.
        self.ground.extend(chosen);
        self.ground_until = Some(until);
    }

    /// Deletes unwanted ends, builds missing ones, and renews the applier's memory.
    fn rewire(&mut self, host: &mut Conn, synced: &mut Synced, errors: &mut Vec<String>) {
        let plan = &self.plan;
        let pairs = plan.isls.iter().map(|l| (l.a, l.b)).chain(self.ground.iter().copied());
        let mut wanted = Vec::new();
        for (a, b) in pairs {
            match wiring::ends_here(plan, a, b, &self.placements, &self.here, self.port) {
                Ok(ends) => wanted.extend(ends),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let veths: HashSet<(NodeIdx, NodeIdx)> = wanted
            .iter()
            .filter_map(|e| match *e {
                End::Veth { a, b } => Some((a, b)),
                End::Vxlan { .. } => None,
            })
            .collect();
        let vxlans: HashMap<(NodeIdx, NodeIdx), &End> = wanted
            .iter()
            .filter_map(|e| match e {
                End::Vxlan { node, peer, .. } => Some(((*node, *peer), e)),
                End::Veth { .. } => None,
            })
            .collect();

        // One listing per namespace serves three ends: the wiring found, where each VXLAN
        // end tunnels to (as the kernel says), and half-built ends (created, never tagged:
        // a build stopped between the two steps), which would fail every later build of
        // their link with EEXIST and are removed.
        let mut found = Wiring::default();
        let mut kernel_tunnels: HashMap<(NodeIdx, u32), link::VxlanEnd> = HashMap::new();
        for (&node, conn) in self.applier.conns.iter_mut() {
            let ifaces = match link::list(conn) {
                Ok(ifaces) => ifaces,
                Err(e) => {
                    errors.push(format!("reading the link ends back: {e}"));
                    return;
                }
            };
            found.add_found(plan, node, &ifaces);
            for iface in ifaces {
                let tagged = iface.alias.as_deref().and_then(naming::parse_alias).is_some();
                if let Some(v) = iface.vxlan.filter(|_| tagged) {
                    kernel_tunnels.insert((node, iface.index), v);
                }
                if tagged || !(iface.name.starts_with("isl") || iface.name.starts_with("gsl")) {
                    continue;
                }
                match link::delete_if_present(conn, format!("untagged link end {}", iface.name), iface.index)
                {
                    Ok(deleted) => synced.ends_removed += usize::from(deleted),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        // Ends no longer wanted: a veth whose other pod left this node, a VXLAN end whose
        // peer moved, or whose tunnel is not the wanted one (a previous agent's, perhaps).
        let tunnels_built = &mut self.tunnels;
        let mut keep = |node: NodeIdx, peer: NodeIdx, ifindex: u32| {
            if veths.contains(&(node.min(peer), node.max(peer))) {
                return true;
            }
            let Some(&&End::Vxlan { vni, port, remote, .. }) = vxlans.get(&(node, peer)) else {
                return false;
            };
            let in_kernel = kernel_tunnels.get(&(node, ifindex)).is_some_and(|v| {
                v.vni == vni && v.port == Some(port) && v.remote.map(IpAddr::V4) == Some(remote)
            });
            if in_kernel {
                tunnels_built.insert((node, peer), remote);
            }
            in_kernel
        };
        let (kept, unwanted): (Vec<_>, Vec<_>) = found.ends().partition(|e| keep(e.node, e.peer, e.ifindex));
        let present: HashSet<(NodeIdx, NodeIdx)> = kept.iter().map(|e| (e.node, e.peer)).collect();
        for end in unwanted {
            self.tunnels.remove(&(end.node, end.peer));
            let Some(conn) = self.applier.conns.get_mut(&end.node) else { continue };
            match link::delete_if_present(conn, format!("unwanted link end {}", end.name), end.ifindex) {
                Ok(deleted) => synced.ends_removed += usize::from(deleted),
                Err(e) => errors.push(e.to_string()),
            }
        }

        let missing_veths: Vec<(NodeIdx, NodeIdx)> = veths
            .iter()
            .copied()
            .filter(|&(a, b)| !(present.contains(&(a, b)) && present.contains(&(b, a))))
            .collect();
        let name = |n: NodeIdx| plan.node(n).name.clone();
        if !missing_veths.is_empty() {
            // A half-present veth cannot be (its ends live and die together); rebuild whole.
            let (built, failed) = build::build_veths(
                plan,
                &self.namespaces,
                &mut self.applier.conns,
                &missing_veths,
                &mut |_, _| {},
            );
            synced.ends_built += built.ends().count();
            errors.extend(failed.into_iter().map(|(a, b, e)| format!("{} - {}: {e}", name(a), name(b))));
        }
        let mut tunnels = Vec::new();
        for (&(node, peer), end) in &vxlans {
            if present.contains(&(node, peer)) {
                continue;
            }
            let End::Vxlan { vni, port, local, remote, .. } = **end else { continue };
            match (local, remote) {
                (IpAddr::V4(local), IpAddr::V4(remote)) => {
                    tunnels.push(Tunnel { node, peer, vni, port, local, remote });
                }
                _ => errors.push(format!(
                    "{} - {}: VXLAN over IPv6 node addresses ({local} - {remote}) is not supported",
                    name(node),
                    name(peer)
                )),
            }
        }
        if !tunnels.is_empty() {
            let (built, failed) =
                build::build_vxlans(plan, host, &self.namespaces, &mut self.applier.conns, &tunnels);
            for end in built.ends() {
                if let Some(t) = tunnels.iter().find(|t| (t.node, t.peer) == (end.node, end.peer)) {
                    self.tunnels.insert((t.node, t.peer), IpAddr::V4(t.remote));
                }
                synced.ends_built += 1;
            }
            errors.extend(failed.into_iter().map(|(a, b, e)| format!("{} - {}: {e}", name(a), name(b))));
        }

        // The wiring as the kernel now holds it, and what it has applied.
        match Wiring::discover(plan, &mut self.applier.conns) {
            Ok(wiring) => {
                let conns = std::mem::take(&mut self.applier.conns);
                let mut applier = Applier::new(conns, wiring);
                applier.delay_tolerance_ns = DELAY_TOLERANCE_NS;
                if let Err(e) = applier.read_back() {
                    errors.push(format!("reading applied state back: {e}"));
                }
                self.applier = applier;
            }
            Err(e) => errors.push(format!("reading the link ends back: {e}")),
        }
    }

    /// Applies the model's state at `t`, the delay of each VXLAN end shortened by the
    /// underlay's one-way delay to its peer's node (`one_way_us` by node address). Returns the
    /// report and the links whose underlay alone is slower than the model wants.
    pub fn apply(&mut self, t: SimTime, one_way_us: &HashMap<IpAddr, f64>) -> (ApplyReport, Vec<String>) {
        let state = self.timeline.state_at(&self.plan, t);
        let mut slow = Vec::new();
        let report = if self.tunnels.is_empty() {
            self.applier.apply(&self.plan, &state)
        } else {
            let mut shaped = state.clone();
            for l in &mut shaped.links {
                let remote = [(l.a, l.b), (l.b, l.a)].iter().find_map(|pair| self.tunnels.get(pair));
                let Some(underlay) = remote.and_then(|ip| one_way_us.get(ip)) else { continue };
                let c = underlay::compensate(l.delay_ns as f64 / 1e3, *underlay);
                l.delay_ns = (c.netem_delay_us * 1e3).round() as u64;
                if c.excess_us > 0.0 {
                    slow.push(format!(
                        "{} - {}: the underlay takes {:.0} us one way, {:.0} us more than the link's delay",
                        self.plan.node(l.a).name,
                        self.plan.node(l.b).name,
                        underlay,
                        c.excess_us
                    ));
                }
            }
            self.applier.apply(&self.plan, &shaped)
        };
        self.needs_apply = false;
        (report, slow)
    }

    /// Links with an end here, and of those the ones applied up.
    pub fn links(&self) -> (usize, usize) {
        let wiring = &self.applier.wiring;
        let up: HashSet<_> = wiring
            .ends()
            .filter(|e| self.applier.applied.ends.get(&(e.node, e.ifindex)).is_some_and(|s| s.up))
            .map(|e| e.link)
            .collect();
        (wiring.links(), up.len())
    }

    /// The peer nodes' addresses the VXLAN ends tunnel to: the underlay to measure.
    pub fn peers(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.tunnels.values().copied()
    }

    /// Removes every link end of this constellation from the local pods, and their routes
    /// (qdiscs go with the ends), as `orbitnet down` sweeps. Returns what could not be
    /// removed.
    pub fn teardown(&mut self) -> Vec<String> {
        let mut swept = sweep::Swept::default();
        for conn in self.applier.conns.values_mut() {
            if let Err(e) = sweep::interfaces_and_routes(conn, Some(&self.plan.name), &mut swept) {
                swept.failures.push(format!("reading the link ends back: {e}"));
            }
        }
        self.tunnels.clear();
        self.applier = Applier::new(HashMap::new(), Wiring::default());
        self.pods.clear();
        self.namespaces.clear();
        self.stale = true;
        swept.failures
    }
}
