//! Names orbitnet gives kernel objects, so that a restarted process (or `orbitnet down`)
//! finds what exists: interfaces named by link kind and peer, the link id in the alias,
//! namespaces under a per-constellation prefix.

use orbitnet_model::{LinkId, LinkKind, NodeIdx};

/// Every alias orbitnet sets starts with this.
pub const ALIAS_PREFIX: &str = "orbitnet:";
/// Every namespace the local runner creates starts with this.
pub const NETNS_PREFIX: &str = "orbitnet-";

/// The interface of a node's end of the link to `peer`: `isl<peer>` or `gsl<peer>`. Unique in
/// the node's namespace (one link per pair), at most 15 characters for any u32 peer.
pub fn iface_name(kind: LinkKind, peer: NodeIdx) -> String {
    match kind {
        LinkKind::Isl => format!("isl{peer}"),
        LinkKind::Gsl => format!("gsl{peer}"),
    }
}

/// `orbitnet:<constellation>:<link id>:<peer>`.
pub fn alias(constellation: &str, link: LinkId, peer: &str) -> String {
    format!("{ALIAS_PREFIX}{constellation}:{link}:{peer}")
}

/// What an orbitnet alias says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub constellation: String,
    pub link: LinkId,
    pub peer: String,
}

pub fn parse_alias(alias: &str) -> Option<Alias> {
    let mut parts = alias.strip_prefix(ALIAS_PREFIX)?.splitn(3, ':');
    let constellation = parts.next()?.to_owned();
    let link = parts.next()?.parse().ok()?;
    let peer = parts.next()?.to_owned();
    Some(Alias { constellation, link, peer })
}

/// The MAC address both ends of a link share: locally administered, unicast, from the link
/// id. With the same address at both ends and ARP off, a frame's destination is always the
/// receiver's own address, so no neighbour is ever resolved (see `link::veth_pair`).
pub fn link_mac(link: LinkId) -> [u8; 6] {
    let b = link.0.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// The local runner's namespace of a node: `orbitnet-<constellation>-<node>`.
pub fn netns_name(constellation: &str, node: &str) -> String {
    format!("{NETNS_PREFIX}{constellation}-{node}")
}

/// The prefix of all of a constellation's namespaces.
pub fn netns_prefix(constellation: &str) -> String {
    format!("{NETNS_PREFIX}{constellation}-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz() {
        assert_eq!(iface_name(LinkKind::Isl, 12), "isl12");
        assert!(iface_name(LinkKind::Gsl, u32::MAX).len() <= crate::link::MAX_IFNAME_LEN);
    }

    #[test]
    fn link_macs_are_local_unicast_and_differ_between_links() {
        let a = link_mac(LinkId::of("polar-0-0", "polar-0-1"));
        assert_eq!(a[0] & 0b11, 0b10, "locally administered, unicast: {a:x?}");
        assert_eq!(a, link_mac(LinkId::of("polar-0-1", "polar-0-0")));
        assert_ne!(a, link_mac(LinkId::of("polar-0-0", "polar-0-2")));
    }

    #[test]
    fn aliases_round_trip() {
        let id = LinkId::of("polar-0-0", "polar-0-1");
        let a = alias("backbone", id, "polar-0-1");
        assert_eq!(a, format!("orbitnet:backbone:{id}:polar-0-1"));
        assert_eq!(
            parse_alias(&a),
            Some(Alias { constellation: "backbone".into(), link: id, peer: "polar-0-1".into() })
        );
        assert_eq!(parse_alias("something else"), None);
        assert_eq!(parse_alias("orbitnet:x:nothex:y"), None);
    }
}
