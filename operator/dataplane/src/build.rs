//! Building the topology on one host: a node's namespace made ready (loopback up with the
//! node's /32, forwarding on), and veth pairs for links between local nodes, named, tagged
//! with the link id in their alias, addressed from the plan's /31s, point to point (one
//! MAC at both ends, no ARP), left down until applied.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::os::fd::AsFd;

use orbitnet_model::{LinkKind, NodeIdx, Plan};

use crate::apply::{End, Wiring};
use crate::netlink::{Conn, NlError};
use crate::netns::Netns;
use crate::route::add_address;
use crate::{link, naming, sysctl};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Netlink(#[from] NlError),
    #[error(transparent)]
    Sysctl(#[from] sysctl::SysctlError),
    #[error("{a} and {b} can never be linked (not a grid neighbour, nor a ground node and a satellite)")]
    NotALink { a: String, b: String },
    #[error("namespace {netns} has no interface {name} after creating it")]
    Missing { netns: String, name: String },
}

/// Makes a node's namespace ready: loopback up with the node's address, IPv4 forwarding on
/// (nodes relay traffic), reverse-path filtering off (paths change every tick and need
/// not be symmetric), IPv6 off on new interfaces (the emulation is IPv4; thousands of link
/// ends would otherwise each run neighbour discovery and multicast-listener timers), and
/// ICMP echo sockets open to every group, so `ping` works for a node program or a person in
/// a pod that runs as an unprivileged user (the default node image's user is 65532).
pub fn prepare_node(plan: &Plan, node: NodeIdx, ns: &Netns, conn: &mut Conn) -> Result<(), BuildError> {
    let lo = link::by_name(conn, "lo")?
        .ok_or_else(|| BuildError::Missing { netns: ns.label(), name: "lo".into() })?;
    for result in conn.batch(vec![
        link::set_up("loopback up", lo.index, true),
        add_address("node address on loopback", lo.index, plan.node_address(node), 32),
    ]) {
        result?;
    }
    let mut settings = vec![
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
        ("net.ipv4.ping_group_range", "0 2147483647"),
    ];
    if sysctl::exists("net.ipv6.conf.default.disable_ipv6") {
        settings
            .extend([("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1")]);
    }
    sysctl::set_all(ns, &settings)?;
    Ok(())
}

/// A link with a ground end is a ground-to-satellite link.
fn link_kind(plan: &Plan, a: NodeIdx, b: NodeIdx) -> LinkKind {
    if plan.is_ground(a) || plan.is_ground(b) { LinkKind::Gsl } else { LinkKind::Isl }
}

/// Creates veth pairs for `links` (node pairs) between local namespaces, and returns their
/// wiring and the links that failed, each with its reason (one failure stops no other).
/// `progress(done, total)` is called as links are built.
pub fn build_veths(
    plan: &Plan,
    namespaces: &HashMap<NodeIdx, Netns>,
    conns: &mut HashMap<NodeIdx, Conn>,
    links: &[(NodeIdx, NodeIdx)],
    progress: &mut dyn FnMut(usize, usize),
) -> (Wiring, Vec<(NodeIdx, NodeIdx, BuildError)>) {
    let mut failed = Vec::new();
    let kind = |a, b| link_kind(plan, a, b);
    // Creation requests go out through the `a` node's socket, batched per node.
    let mut by_sender: HashMap<NodeIdx, Vec<(NodeIdx, NodeIdx)>> = HashMap::new();
    let mut wanted = Vec::new();
    for &(a, b) in links {
        let (Some(_), Some(_)) = (namespaces.get(&a), namespaces.get(&b)) else { continue };
        if plan.link_slot(a, b).is_none() {
            let name = |n: NodeIdx| plan.node(n).name.clone();
            failed.push((a, b, BuildError::NotALink { a: name(a), b: name(b) }));
            continue;
        }
        by_sender.entry(a).or_default().push((a, b));
        wanted.push((a, b));
    }
    let total = wanted.len();
    let mut created = Vec::with_capacity(total);
    for (sender, pairs) in by_sender {
        let Some(conn) = conns.get_mut(&sender) else { continue };
        let requests = pairs
            .iter()
            .map(|&(a, b)| {
                let k = kind(a, b);
                link::veth_pair(
                    &naming::iface_name(k, b),
                    namespaces[&a].as_fd(),
                    &naming::iface_name(k, a),
                    namespaces[&b].as_fd(),
                    None,
                    Some(naming::link_mac(plan.link_id(a, b))),
                )
            })
            .collect();
        for (&(a, b), result) in pairs.iter().zip(conn.batch(requests)) {
            match result {
                Ok(()) => created.push((a, b)),
                Err(e) => failed.push((a, b, e.into())),
            }
        }
        progress(created.len() + failed.len(), total);
    }

    let ends: Vec<(NodeIdx, NodeIdx)> = created.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect();
    let wiring = tag_ends(plan, namespaces, conns, &ends, &mut failed);
    (wiring, failed)
}

/// Names the interface of each end (`node`, `peer`) just created: looks up its index, sets
/// the alias (the link id, so a restarted process finds it) and the /31 address. Ends that
/// fail go to `failed`; the others make up the wiring.
fn tag_ends(
    plan: &Plan,
    namespaces: &HashMap<NodeIdx, Netns>,
    conns: &mut HashMap<NodeIdx, Conn>,
    ends: &[(NodeIdx, NodeIdx)],
    failed: &mut Vec<(NodeIdx, NodeIdx, BuildError)>,
) -> Wiring {
    let kind = |a, b| link_kind(plan, a, b);
    // Name -> index in every namespace that got an end, then alias and address each end.
    let mut wiring = Wiring::default();
    let mut index_of: HashMap<NodeIdx, HashMap<String, u32>> = HashMap::new();
    let mut per_node: HashMap<NodeIdx, Vec<(End, std::net::Ipv4Addr)>> = HashMap::new();
    for &(node, peer) in ends {
        let link_id = plan.link_id(node, peer);
        // Every created end has a slot (checked before creating it).
        let Some(addr) = plan.link_end_address(node, peer) else { continue };
        let name = naming::iface_name(kind(node, peer), peer);
        if let Entry::Vacant(slot) = index_of.entry(node) {
            match conns.get_mut(&node).map(link::list).transpose() {
                Ok(list) => {
                    slot.insert(list.unwrap_or_default().into_iter().map(|i| (i.name, i.index)).collect());
                }
                Err(e) => {
                    failed.push((node, peer, e.into()));
                    continue;
                }
            }
        }
        match index_of[&node].get(&name) {
            Some(&ifindex) => {
                per_node
                    .entry(node)
                    .or_default()
                    .push((End { link: link_id, node, peer, ifindex, name }, addr));
            }
            None => failed.push((node, peer, BuildError::Missing { netns: namespaces[&node].label(), name })),
        }
    }
    for (node, ends) in per_node {
        let Some(conn) = conns.get_mut(&node) else { continue };
        let mut requests = Vec::with_capacity(2 * ends.len());
        for (end, addr) in &ends {
            let peer = &plan.node(end.peer).name;
            requests.push(link::set_alias(
                format!("alias of {}", end.name),
                end.ifindex,
                &naming::alias(&plan.name, end.link, peer),
            ));
            requests.push(add_address(format!("address of {}", end.name), end.ifindex, *addr, 31));
        }
        let mut results = conn.batch(requests).into_iter();
        for (end, _) in ends {
            // Two requests per end: the alias, then the address.
            match (results.next(), results.next()) {
                (Some(Err(e)), _) | (_, Some(Err(e))) => failed.push((end.node, end.peer, e.into())),
                _ => wiring.add(end),
            }
        }
    }
    wiring
}

/// One end of a link whose other end is on another host: a VXLAN interface in `node`'s
/// namespace, tunnelled over the hosts' network from `local` to `remote`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub node: NodeIdx,
    pub peer: NodeIdx,
    pub vni: u32,
    pub port: u16,
    pub local: std::net::Ipv4Addr,
    pub remote: std::net::Ipv4Addr,
}

/// Creates the VXLAN ends of `tunnels` through `host` (a connection in the namespace that
/// reaches the other hosts: the tunnels' UDP sockets live there) into the nodes'
/// namespaces, named, tagged and addressed as veth ends are. Returns their wiring and the
/// ends that failed.
pub fn build_vxlans(
    plan: &Plan,
    host: &mut Conn,
    namespaces: &HashMap<NodeIdx, Netns>,
    conns: &mut HashMap<NodeIdx, Conn>,
    tunnels: &[Tunnel],
) -> (Wiring, Vec<(NodeIdx, NodeIdx, BuildError)>) {
    let mut failed = Vec::new();
    let mut wanted = Vec::new();
    let mut requests = Vec::new();
    for t in tunnels {
        let Some(ns) = namespaces.get(&t.node) else { continue };
        if plan.link_slot(t.node, t.peer).is_none() {
            let name = |n: NodeIdx| plan.node(n).name.clone();
            failed.push((t.node, t.peer, BuildError::NotALink { a: name(t.node), b: name(t.peer) }));
            continue;
        }
        let kind = link_kind(plan, t.node, t.peer);
        let v = link::Vxlan { vni: t.vni, remote: t.remote, local: t.local, dst_port: t.port, mtu: None };
        // No shared MAC here, unlike veth ends: VXLAN drops frames whose source address is
        // its own (loop prevention, drivers/net/vxlan), so the two ends resolve each other
        // by ARP, once, through the tunnel.
        requests.push(link::vxlan(&naming::iface_name(kind, t.peer), &v, Some(ns.as_fd())));
        wanted.push((t.node, t.peer));
    }
    let mut created = Vec::with_capacity(wanted.len());
    for (end, result) in wanted.into_iter().zip(host.batch(requests)) {
        match result {
            Ok(()) => created.push(end),
            Err(e) => failed.push((end.0, end.1, e.into())),
        }
    }
    let wiring = tag_ends(plan, namespaces, conns, &created, &mut failed);
    (wiring, failed)
}
