//! Interfaces: veth pairs across two namespaces, VXLAN, up/down, alias, listing, removal.
//! Each function builds one request; `Conn::batch` sends many at once.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use crate::netlink::{Conn, NlError, Request};

/// Longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// A veth pair: `name_a` in the namespace `ns_a`, `name_b` in `ns_b`. Any socket can send
/// it; each end is created directly in its namespace.
///
/// With `shared_mac`, both ends take that address and ARP off (IFF_NOARP): the kernel then
/// sends every frame to the sender's own address, which is the receiver's too
/// (net/ipv4/arp.c, arp_constructor). A satellite link is point to point: a route moved to a
/// new neighbour carries its first packet at once, with no neighbour resolution round trip
/// (one link RTT, hundreds of ms on a GSL path) and nothing to expire or to restore after
/// the link goes down and up.
pub fn veth_pair(
    name_a: &str,
    ns_a: BorrowedFd<'_>,
    name_b: &str,
    ns_b: BorrowedFd<'_>,
    mtu: Option<u32>,
    shared_mac: Option<[u8; 6]>,
) -> Request {
    let mut peer = LinkMessage::default();
    peer.attributes = vec![LinkAttribute::IfName(name_b.into()), LinkAttribute::NetNsFd(ns_b.as_raw_fd())];
    let mut msg = LinkMessage::default();
    msg.attributes = vec![LinkAttribute::IfName(name_a.into()), LinkAttribute::NetNsFd(ns_a.as_raw_fd())];
    if let Some(mac) = shared_mac {
        for end in [&mut msg, &mut peer] {
            end.attributes.push(LinkAttribute::Address(mac.to_vec()));
            end.header.flags = LinkFlags::Noarp;
            end.header.change_mask = LinkFlags::Noarp;
        }
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    Request::new(
        format!("creating veth {name_a}~{name_b}"),
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Where a VXLAN tunnel goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vxlan {
    pub vni: u32,
    pub remote: Ipv4Addr,
    pub local: Ipv4Addr,
    pub dst_port: u16,
    pub mtu: Option<u32>,
}

/// A VXLAN interface in the connection's namespace (or in `ns`, when given: the tunnel's UDP
/// socket stays in the connection's namespace, the interface goes to `ns`).
pub fn vxlan(name: &str, v: &Vxlan, ns: Option<BorrowedFd<'_>>) -> Request {
    let mut msg = LinkMessage::default();
    msg.attributes = vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(v.vni),
                InfoVxlan::Group(v.remote),
                InfoVxlan::Local(v.local),
                InfoVxlan::Port(v.dst_port),
                InfoVxlan::Learning(false),
            ])),
        ]),
    ];
    if let Some(ns) = ns {
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
    }
    if let Some(mtu) = v.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    Request::new(
        format!("creating vxlan {name} (vni {})", v.vni),
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

fn set(ifindex: u32, f: impl FnOnce(&mut LinkMessage)) -> RouteNetlinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    f(&mut msg);
    RouteNetlinkMessage::SetLink(msg)
}

/// Administratively up or down. A veth end that goes down takes its peer's carrier with it:
/// this is how a link is cut (not a 100 % loss netem).
pub fn set_up(what: impl Into<String>, ifindex: u32, up: bool) -> Request {
    let msg = set(ifindex, |m| {
        m.header.change_mask = LinkFlags::Up;
        m.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
    });
    Request::new(what, msg, 0)
}

/// The interface alias (IFLA_IFALIAS): orbitnet keeps the link id there.
pub fn set_alias(what: impl Into<String>, ifindex: u32, alias: &str) -> Request {
    Request::new(what, set(ifindex, |m| m.attributes.push(LinkAttribute::IfAlias(alias.into()))), 0)
}

pub fn delete(what: impl Into<String>, ifindex: u32) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    Request::new(what, RouteNetlinkMessage::DelLink(msg), 0)
}

/// ENODEV: the interface is gone (deleting one veth end takes the other with it).
pub const ENODEV: i32 = 19;

/// Deletes interface `ifindex`: `Ok(true)` if this deleted it, `Ok(false)` if it was gone.
pub fn delete_if_present(conn: &mut Conn, what: impl Into<String>, ifindex: u32) -> Result<bool, NlError> {
    match conn.execute(delete(what, ifindex)) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the kernel says about one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    /// Administratively up.
    pub up: bool,
    /// Carrier present (IFF_LOWER_UP).
    pub lower_up: bool,
    pub mtu: Option<u32>,
    /// For a VXLAN interface: its id, remote and UDP port, so that a restarted process can
    /// tell whether a tunnel still goes where it should.
    pub vxlan: Option<VxlanEnd>,
}

/// What the kernel says of a VXLAN interface's tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VxlanEnd {
    pub vni: u32,
    pub remote: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

fn vxlan_end(infos: &[LinkInfo]) -> Option<VxlanEnd> {
    let attrs = infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(attrs)) => Some(attrs),
        _ => None,
    })?;
    let mut end = VxlanEnd { vni: 0, remote: None, port: None };
    for a in attrs {
        match a {
            InfoVxlan::Id(v) => end.vni = *v,
            InfoVxlan::Group(ip) => end.remote = Some(*ip),
            InfoVxlan::Port(p) => end.port = Some(*p),
            _ => {}
        }
    }
    Some(end)
}

/// Every interface in the connection's namespace.
pub fn list(conn: &mut Conn) -> Result<Vec<Interface>, NlError> {
    let mut out = Vec::new();
    for msg in conn.query("listing interfaces", RouteNetlinkMessage::GetLink(LinkMessage::default()), true)? {
        let RouteNetlinkMessage::NewLink(link) = msg else { continue };
        let mut iface = Interface {
            index: link.header.index,
            name: String::new(),
            alias: None,
            up: link.header.flags.contains(LinkFlags::Up),
            lower_up: link.header.flags.contains(LinkFlags::LowerUp),
            mtu: None,
            vxlan: None,
        };
        for a in link.attributes {
            match a {
                LinkAttribute::IfName(n) => iface.name = n,
                LinkAttribute::IfAlias(s) => iface.alias = Some(s),
                LinkAttribute::Mtu(m) => iface.mtu = Some(m),
                LinkAttribute::LinkInfo(infos) => iface.vxlan = vxlan_end(&infos),
                _ => {}
            }
        }
        out.push(iface);
    }
    Ok(out)
}

/// The interface called `name`, if there is one.
pub fn by_name(conn: &mut Conn, name: &str) -> Result<Option<Interface>, NlError> {
    Ok(list(conn)?.into_iter().find(|i| i.name == name))
}
