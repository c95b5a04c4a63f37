//! Emulation addresses, derived from the plan alone so that every runner and agent agrees
//! without asking: node i has the /32 `nodeCidr + i + 1`; the link in slot k (every link
//! that can ever exist has a slot) is the /31 `linkCidr + 2k`, its `a` end the even
//! address and its `b` end the odd one (RFC 3021 point-to-point /31).
//!
//! Slots: inter-satellite links 0..n_isl in grid order, then ground node g to satellite s
//! at n_isl + g * n_sats + s.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::plan::{NodeIdx, Plan};

/// An IPv4 prefix such as `100.64.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IPv4 prefix {input:?}: {reason}; write it as in \"100.64.0.0/16\"")]
pub struct CidrError {
    pub input: String,
    pub reason: &'static str,
}

impl Ipv4Cidr {
    /// How many addresses the prefix holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    /// The address `offset` places into the prefix (the caller keeps it below `size`).
    pub fn nth(&self, offset: u64) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network).wrapping_add(offset as u32))
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        let len = self.prefix_len.min(other.prefix_len);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
        u32::from(self.network) & mask == u32::from(other.network) & mask
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, CidrError> {
        let fail = |reason| CidrError { input: input.to_owned(), reason };
        let (addr, len) = input.split_once('/').ok_or_else(|| fail("it has no /length"))?;
        let network: Ipv4Addr = addr.parse().map_err(|_| fail("the address is not IPv4"))?;
        let prefix_len: u8 = len.parse().map_err(|_| fail("the length is not a number"))?;
        if prefix_len > 32 {
            return Err(fail("the length is above 32"));
        }
        let host_bits = if prefix_len == 0 { u32::MAX } else { !(u32::MAX << (32 - u32::from(prefix_len))) };
        if u32::from(network) & host_bits != 0 {
            return Err(fail("host bits are set below the length"));
        }
        Ok(Self { network, prefix_len })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Cow::<str>::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Ipv4Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Ipv4Cidr".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$",
            "description": "An IPv4 prefix, e.g. \"100.64.0.0/16\"."
        })
    }
}

/// The address ranges of a constellation, from its spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addressing {
    pub nodes: Ipv4Cidr,
    pub links: Ipv4Cidr,
}

impl Plan {
    /// Node i's own address (a /32 on its loopback).
    pub fn node_address(&self, node: NodeIdx) -> Ipv4Addr {
        self.addressing.nodes.nth(u64::from(node) + 1)
    }

    /// The node an address belongs to, if it is a node address of this plan.
    pub fn node_of_address(&self, addr: Ipv4Addr) -> Option<NodeIdx> {
        let offset = u32::from(addr).wrapping_sub(u32::from(self.addressing.nodes.network));
        let node = offset.checked_sub(1)?;
        ((node as usize) < self.nodes.len()).then_some(node)
    }

    /// The slot of the link between `a` and `b`, if they can ever be linked.
    pub fn link_slot(&self, a: NodeIdx, b: NodeIdx) -> Option<u32> {
        let (lo, hi) = (a.min(b), a.max(b));
        if self.is_ground(hi) && !self.is_ground(lo) {
            let ground = hi as usize - self.n_sats;
            let slot = self.isls.len() + ground * self.n_sats + lo as usize;
            return u32::try_from(slot).ok();
        }
        self.isl_slots.get(&(lo, hi)).copied()
    }

    /// The addresses of the two ends of the link in `slot`: (the `a` end, the `b` end).
    pub fn link_addresses(&self, slot: u32) -> (Ipv4Addr, Ipv4Addr) {
        let base = 2 * u64::from(slot);
        (self.addressing.links.nth(base), self.addressing.links.nth(base + 1))
    }

    /// The address of `node`'s end of its link to `peer`: the even address of the /31 goes
    /// to the link's `a` end (an ISL's lower index, a ground link's ground node).
    pub fn link_end_address(&self, node: NodeIdx, peer: NodeIdx) -> Option<Ipv4Addr> {
        let (even, odd) = self.link_addresses(self.link_slot(node, peer)?);
        let node_is_a =
            if self.is_ground(node) != self.is_ground(peer) { self.is_ground(node) } else { node < peer };
        Some(if node_is_a { even } else { odd })
    }

    /// Links that can ever exist: every ISL of the grid, every (ground node, satellite).
    pub fn link_slot_count(&self) -> u64 {
        self.isls.len() as u64 + (self.nodes.len() - self.n_sats) as u64 * self.n_sats as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{SHELL, plan};

    #[test]
    fn prefixes_parse_and_refuse_nonsense() {
        let c: Ipv4Cidr = "100.64.0.0/16".parse().unwrap();
        assert_eq!((c.size(), c.nth(5)), (65_536, Ipv4Addr::new(100, 64, 0, 5)));
        for bad in ["100.64.0.0", "100.64.0.1/16", "1.2.3/8", "1.2.3.4/33", "x/8"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        let a: Ipv4Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&"10.20.0.0/16".parse().unwrap()));
        assert!(!a.overlaps(&"11.0.0.0/8".parse().unwrap()));
    }

    #[test]
    fn nodes_and_links_get_distinct_stable_addresses() {
        let p = plan(&format!("{SHELL}\n  groundStations:\n  - {{name: g, latDeg: 0, lonDeg: 0}}"));
        assert_eq!(p.node_address(0), Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(p.node_of_address(Ipv4Addr::new(100, 64, 0, 25)), Some(24));
        assert_eq!(p.node_of_address(Ipv4Addr::new(100, 64, 0, 26)), None);
        let g = p.node_index("g").unwrap();
        // 48 ISL slots, then the ground node's 24 satellites.
        assert_eq!(p.link_slot(g, 3), Some(48 + 3));
        assert_eq!(p.link_slot(3, g), Some(51));
        assert_eq!(p.link_slot(0, 1), Some(0));
        assert_eq!(p.link_slot(0, 13), None, "not a grid neighbour");
        assert_eq!(p.link_addresses(51), (Ipv4Addr::new(100, 80, 0, 102), Ipv4Addr::new(100, 80, 0, 103)));
        assert_eq!(p.link_end_address(g, 3), Some(Ipv4Addr::new(100, 80, 0, 102)), "the ground end is even");
        assert_eq!(p.link_end_address(3, g), Some(Ipv4Addr::new(100, 80, 0, 103)));
        assert_eq!(
            p.link_end_address(1, 0),
            Some(Ipv4Addr::new(100, 80, 0, 1)),
            "the lower ISL index is even"
        );
        let mut seen = std::collections::HashSet::new();
        for slot in 0..p.link_slot_count() as u32 {
            let (a, b) = p.link_addresses(slot);
            assert!(seen.insert(a) && seen.insert(b));
        }
    }
}
