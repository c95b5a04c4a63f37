//! IPv4 addresses and routes. orbitnet's routes carry their own protocol number, so they
//! can be listed and swept without touching anyone else's.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::netlink::{Conn, NlError, Request};

/// rtm_protocol of every route orbitnet installs (unassigned in iproute2's rt_protos).
pub const ORBITNET_ROUTE_PROTOCOL: u8 = 99;

/// Adds `addr/prefix_len` to an interface; adding it again is not an error.
pub fn add_address(what: impl Into<String>, ifindex: u32, addr: Ipv4Addr, prefix_len: u8) -> Request {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = prefix_len;
    msg.header.index = ifindex;
    msg.attributes =
        vec![AddressAttribute::Local(IpAddr::V4(addr)), AddressAttribute::Address(IpAddr::V4(addr))];
    Request::new(what, RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_REPLACE)
}

/// A route to a single address (/32) through a neighbour on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub ifindex: u32,
    /// Source address for traffic this node sends (its own node address).
    pub source: Option<Ipv4Addr>,
}

fn host_route(destination: Ipv4Addr) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header = RouteHeader {
        address_family: AddressFamily::Inet,
        destination_prefix_length: 32,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Other(ORBITNET_ROUTE_PROTOCOL),
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..RouteHeader::default()
    };
    msg.attributes.push(RouteAttribute::Destination(RouteAddress::Inet(destination)));
    msg
}

/// Installs or replaces the route to `route.destination` (one request, no delete-and-add).
pub fn replace(what: impl Into<String>, route: &Route) -> Request {
    let mut msg = host_route(route.destination);
    msg.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(route.gateway)));
    msg.attributes.push(RouteAttribute::Oif(route.ifindex));
    if let Some(src) = route.source {
        msg.attributes.push(RouteAttribute::PrefSource(RouteAddress::Inet(src)));
    }
    Request::new(what, RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_REPLACE)
}

/// Removes orbitnet's route to `destination`.
pub fn delete(what: impl Into<String>, destination: Ipv4Addr) -> Request {
    Request::new(what, RouteNetlinkMessage::DelRoute(host_route(destination)), 0)
}

/// orbitnet's routes in the connection's namespace.
pub fn list(conn: &mut Conn) -> Result<Vec<Route>, NlError> {
    let mut dump = RouteMessage::default();
    dump.header.address_family = AddressFamily::Inet;
    let mut out = Vec::new();
    for msg in conn.query("listing routes", RouteNetlinkMessage::GetRoute(dump), true)? {
        let RouteNetlinkMessage::NewRoute(r) = msg else { continue };
        if r.header.protocol != RouteProtocol::Other(ORBITNET_ROUTE_PROTOCOL) {
            continue;
        }
        let mut route = Route {
            destination: Ipv4Addr::UNSPECIFIED,
            gateway: Ipv4Addr::UNSPECIFIED,
            ifindex: 0,
            source: None,
        };
        for a in r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => route.destination = d,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => route.gateway = g,
                RouteAttribute::Oif(i) => route.ifindex = i,
                RouteAttribute::PrefSource(RouteAddress::Inet(s)) => route.source = Some(s),
                _ => {}
            }
        }
        out.push(route);
    }
    Ok(out)
}

/// One route of the main table as the kernel forwards by it, whoever installed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarding {
    pub destination: Ipv4Addr,
    pub prefix_len: u8,
    /// The interfaces it leaves by (several under ECMP); empty for a route that drops
    /// (blackhole, unreachable, prohibit).
    pub ifindices: Vec<u32>,
}

/// Every IPv4 route of the main table in the connection's namespace: the forwarding
/// table, to see where packets go whatever installed the routes (orbitnet or a daemon).
pub fn forwarding(conn: &mut Conn) -> Result<Vec<Forwarding>, NlError> {
    let mut dump = RouteMessage::default();
    dump.header.address_family = AddressFamily::Inet;
    let mut out = Vec::new();
    for msg in conn.query("dumping the forwarding table", RouteNetlinkMessage::GetRoute(dump), true)? {
        let RouteNetlinkMessage::NewRoute(r) = msg else { continue };
        let table = r
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(r.header.table));
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
            continue;
        }
        let drops =
            matches!(r.header.kind, RouteType::BlackHole | RouteType::Unreachable | RouteType::Prohibit);
        if r.header.kind != RouteType::Unicast && !drops {
            continue;
        }
        let mut route = Forwarding {
            destination: Ipv4Addr::UNSPECIFIED,
            prefix_len: r.header.destination_prefix_length,
            ifindices: Vec::new(),
        };
        for a in r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => route.destination = d,
                RouteAttribute::Oif(i) if !drops => route.ifindices.push(i),
                RouteAttribute::MultiPath(hops) if !drops => {
                    route.ifindices.extend(hops.iter().map(|h| h.interface_index))
                }
                _ => {}
            }
        }
        out.push(route);
    }
    Ok(out)
}

/// The route the kernel would pick for `addr` in `table` (longest prefix; metrics aside).
pub fn longest_match(table: &[Forwarding], addr: Ipv4Addr) -> Option<&Forwarding> {
    let bits = u32::from(addr);
    table
        .iter()
        .filter(|r| {
            let mask = if r.prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(r.prefix_len.min(32))) };
            bits & mask == u32::from(r.destination) & mask
        })
        .max_by_key(|r| r.prefix_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dest: [u8; 4], prefix_len: u8, ifindex: u32) -> Forwarding {
        Forwarding { destination: Ipv4Addr::from(dest), prefix_len, ifindices: vec![ifindex] }
    }

    #[test]
    fn the_longest_prefix_wins() {
        let table = [r([0, 0, 0, 0], 0, 1), r([100, 64, 0, 0], 16, 2), r([100, 64, 0, 9], 32, 3)];
        assert_eq!(longest_match(&table, Ipv4Addr::new(100, 64, 0, 9)).map(|r| r.ifindices[0]), Some(3));
        assert_eq!(longest_match(&table, Ipv4Addr::new(100, 64, 0, 8)).map(|r| r.ifindices[0]), Some(2));
        assert_eq!(longest_match(&table, Ipv4Addr::new(10, 0, 0, 1)).map(|r| r.ifindices[0]), Some(1));
        assert_eq!(longest_match(&table[1..], Ipv4Addr::new(10, 0, 0, 1)), None);
    }
}
