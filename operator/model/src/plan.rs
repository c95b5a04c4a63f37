//! The compiled, validated form of a spec: every node with its motion, every inter-satellite
//! link the grid allows, faults resolved to node indices. Built once by `compile`; the
//! state at any time is then a pure function of the plan, the time and the previous tick.

use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::geo::{Geodetic, Vec3};
use crate::orbit::{CircularOrbit, TleOrbit};
use crate::spec::{FaultKind, GroundPolicy, PlatformKind, RouteTo, Routing};
use crate::time::{Epoch, SimTime, SpecDuration};
use crate::track::Track;

/// Index of a node in `Plan::nodes`: satellites first, then ground stations, then platforms.
pub type NodeIdx = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeKind {
    Satellite,
    GroundStation,
    Platform,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Satellite => "satellite",
            NodeKind::GroundStation => "groundStation",
            NodeKind::Platform => "platform",
        }
    }

    pub fn is_ground(self) -> bool {
        self != NodeKind::Satellite
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Lower-cased, a DNS label, unique in the constellation.
    pub name: String,
    pub kind: NodeKind,
    /// Ship, aircraft or vehicle, for platforms.
    pub platform: Option<PlatformKind>,
}

/// How a node moves.
#[derive(Clone, Debug)]
pub(crate) enum Motion {
    Circular(CircularOrbit),
    Tle(Box<TleOrbit>),
    Fixed { ecef: Vec3, site: Geodetic },
    Track(Track),
}

/// FNV-1a 64 (draft-eastlake-fnv's offset basis and prime) of `bytes`: a hash that is the
/// same in every process, build and version, for identities that must agree across them.
pub fn fnv1a_64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.into_iter().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// A link's identity: the same pair of node names gives the same id at every tick and in
/// every process (FNV-1a 64 of the two names in lexical order, NUL-separated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

impl LinkId {
    pub fn of(a: &str, b: &str) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        LinkId(fnv1a_64(lo.bytes().chain([0]).chain(hi.bytes())))
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for LinkId {
    type Err = std::num::ParseIntError;

    /// The 16 hex digits `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(LinkId)
    }
}

impl Serialize for LinkId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkKind {
    Isl,
    Gsl,
}

/// An inter-satellite link the grid allows; whether it is up depends on time.
#[derive(Clone, Debug, PartialEq)]
pub struct IslDef {
    pub id: LinkId,
    pub a: NodeIdx,
    pub b: NodeIdx,
    pub cross_plane: bool,
    /// Cross-plane links are down while either end's |geocentric latitude| exceeds this.
    pub max_lat_rad: Option<f64>,
    pub max_range_m: Option<f64>,
}

/// Parameters shared by a class of links.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassParams {
    pub rate_bps: u64,
    pub loss_frac: f64,
    pub processing_delay_ns: u64,
    pub jitter_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroundLinkParams {
    pub min_elevation_rad: f64,
    pub policy: GroundPolicy,
    pub antennas: usize,
    pub hysteresis_rad: f64,
    pub hysteresis_m: f64,
    pub zenith_loss_frac: f64,
}

/// What a fault touches.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultTarget {
    Node(NodeIdx),
    /// A node pair, lower index first.
    Link(NodeIdx, NodeIdx),
    Area {
        lat_rad: f64,
        lon_rad: f64,
        radius_m: f64,
    },
}

/// A fault with its names resolved; `spec_index` is its position in `spec.faults`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultDef {
    pub spec_index: usize,
    pub name: Option<String>,
    pub kind: FaultKind,
    pub target: FaultTarget,
    pub start: SimTime,
    /// Exclusive; `None` = until the end of the run.
    pub end: Option<SimTime>,
    pub extra_loss_frac: f64,
    pub extra_delay_ns: u64,
    pub rate_cap_bps: Option<u64>,
}

impl FaultDef {
    pub fn active_at(&self, t: SimTime) -> bool {
        t >= self.start && self.end.is_none_or(|end| t < end)
    }
}

/// A compiled constellation.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub epoch: Epoch,
    pub tick: SpecDuration,
    pub nodes: Vec<Node>,
    /// Nodes `0..n_sats` are satellites.
    pub n_sats: usize,
    pub(crate) motions: Vec<Motion>,
    pub isls: Vec<IslDef>,
    pub ground_links: GroundLinkParams,
    pub isl_class: ClassParams,
    pub gsl_class: ClassParams,
    pub routing: Routing,
    /// The daemons' settings when `routing` is a protocol.
    pub routing_protocol: Option<crate::spec::RoutingProtocol>,
    pub route_to: RouteTo,
    /// Route hysteresis (`Routes::compute_stable`); 0 = always the shortest paths.
    pub route_hysteresis_ns: u64,
    pub faults: Vec<FaultDef>,
    /// How long an experiment runs (`spec.duration`).
    pub duration: Option<SpecDuration>,
    pub flows: Vec<crate::mission::FlowDef>,
    pub objectives: Vec<crate::mission::ObjectiveDef>,
    /// Things that are allowed but probably not meant (e.g. a TLE far from the epoch).
    pub warnings: Vec<String>,
    pub addressing: crate::addressing::Addressing,
    /// What runs in the nodes, by role.
    pub node_templates: crate::spec::NodeTemplates,
    /// `spec.placement.groups`: see `placement`.
    pub placement_groups: u32,
    pub(crate) epoch_years_since_j2000: f64,
    pub(crate) index: HashMap<String, NodeIdx>,
    /// (lower, higher) node of each ISL -> its slot (its index in `isls`).
    pub(crate) isl_slots: HashMap<(NodeIdx, NodeIdx), u32>,
    /// The Walker shells, in the order of their satellites (TLE satellites are in none).
    pub shells: Vec<WalkerShell>,
}

/// A Walker shell's satellites: `planes x per_plane` nodes from `first`, plane by plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkerShell {
    pub name: String,
    pub first: NodeIdx,
    pub planes: u32,
    pub per_plane: u32,
}

impl WalkerShell {
    /// The plane of satellite `node`, if it is in this shell.
    pub fn plane_of(&self, node: NodeIdx) -> Option<u32> {
        let offset = node.checked_sub(self.first)?;
        (offset < self.planes * self.per_plane).then(|| offset / self.per_plane)
    }
}

impl Plan {
    pub fn node_index(&self, name: &str) -> Option<NodeIdx> {
        self.index.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn node(&self, i: NodeIdx) -> &Node {
        &self.nodes[i as usize]
    }

    pub fn is_ground(&self, i: NodeIdx) -> bool {
        i as usize >= self.n_sats
    }

    /// Nodes `n_sats..` are ground stations and platforms.
    pub fn ground_range(&self) -> std::ops::Range<usize> {
        self.n_sats..self.nodes.len()
    }

    /// The nodes that get routes when routing is `shortestPath`.
    pub fn route_destinations(&self) -> Vec<NodeIdx> {
        let from = match self.route_to {
            RouteTo::All => 0,
            RouteTo::Ground => self.n_sats,
        };
        (from..self.nodes.len()).map(|i| i as NodeIdx).collect()
    }

    /// The link id of a node pair.
    pub fn link_id(&self, a: NodeIdx, b: NodeIdx) -> LinkId {
        LinkId::of(&self.node(a).name, &self.node(b).name)
    }

    /// Why `new` cannot replace this plan in a running emulation (its shape: nodes, grid,
    /// addresses, tick, programs), if it cannot.
    pub fn incompatibility(&self, new: &Plan) -> Option<String> {
        let old = self;
        if old.name != new.name {
            return Some(format!("metadata.name changed from {:?} to {:?}", old.name, new.name));
        }
        if old.nodes != new.nodes {
            return Some("the nodes changed (shells, stations or platforms)".into());
        }
        if old.isls != new.isls {
            return Some("the inter-satellite grid changed".into());
        }
        if old.addressing != new.addressing {
            return Some("spec.addressing changed".into());
        }
        if old.tick != new.tick || old.epoch != new.epoch {
            return Some("spec.tick or spec.epoch changed".into());
        }
        if old.node_templates != new.node_templates {
            return Some("spec.nodes (the programs nodes run) changed".into());
        }
        if old.flows != new.flows {
            return Some("spec.traffic changed".into());
        }
        if (old.routing.is_protocol() || new.routing.is_protocol())
            && (old.routing != new.routing || old.routing_protocol != new.routing_protocol)
        {
            return Some(
                "spec.routing or spec.routingProtocol changed (the routing daemons' configuration)".into(),
            );
        }
        None
    }

    pub fn count(&self, kind: NodeKind) -> usize {
        self.nodes.iter().filter(|n| n.kind == kind).count()
    }

    /// `address<TAB>name` for every node, one per line, as /etc/hosts reads them.
    pub fn hosts_table(&self) -> String {
        (0..self.nodes.len() as NodeIdx)
            .map(|i| format!("{}\t{}\n", self.node_address(i), self.node(i).name))
            .collect()
    }

    /// The environment a node's program starts with, whichever runner starts it:
    /// `neighbours` are the nodes it may link to, `hosts` where `hosts_table` is readable.
    pub fn node_env(&self, node: NodeIdx, neighbours: &[NodeIdx], hosts: &str) -> Vec<(String, String)> {
        let n = self.node(node);
        let list: Vec<String> =
            neighbours.iter().map(|&p| format!("{}={}", self.node(p).name, self.node_address(p))).collect();
        vec![
            ("ORBITNET_CONSTELLATION".into(), self.name.clone()),
            ("ORBITNET_NODE".into(), n.name.clone()),
            ("ORBITNET_ROLE".into(), n.kind.as_str().into()),
            ("ORBITNET_ADDR".into(), self.node_address(node).to_string()),
            ("ORBITNET_NEIGHBOURS".into(), list.join(",")),
            ("ORBITNET_HOSTS".into(), hosts.to_owned()),
        ]
    }

    /// "71 nodes (67 satellites, 3 ground stations, 1 platform)".
    pub fn node_summary(&self) -> String {
        let n = |count: usize, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
        format!(
            "{} ({}, {}, {})",
            n(self.nodes.len(), "node"),
            n(self.n_sats, "satellite"),
            n(self.count(NodeKind::GroundStation), "ground station"),
            n(self.count(NodeKind::Platform), "platform")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_ids_ignore_order_and_differ_between_pairs() {
        assert_eq!(LinkId::of("polar-0-0", "polar-0-1"), LinkId::of("polar-0-1", "polar-0-0"));
        assert_ne!(LinkId::of("polar-0-0", "polar-0-1"), LinkId::of("polar-0-0", "polar-0-2"));
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(LinkId::of("ab", "c"), LinkId::of("a", "bc"));
    }

    /// FNV-1a 64 of "a\0b" from the published offset basis and prime (draft-eastlake-fnv),
    /// computed independently in Python: the value is fixed forever, since ids must agree
    /// across processes and versions.
    #[test]
    fn link_id_is_fnv1a_and_stable() {
        assert_eq!(LinkId::of("a", "b").to_string(), "e5d29919042666b2");
    }

    #[test]
    fn walker_shells_know_their_satellites_planes() {
        let p = crate::testutil::plan(crate::testutil::SHELL);
        assert_eq!(p.shells.len(), 1);
        let shell = &p.shells[0];
        assert_eq!((shell.name.as_str(), shell.first, shell.planes, shell.per_plane), ("s", 0, 4, 6));
        for (i, node) in p.nodes.iter().enumerate().take(p.n_sats) {
            let plane: u32 = node.name.split('-').nth(1).unwrap().parse().unwrap();
            assert_eq!(shell.plane_of(i as NodeIdx), Some(plane), "{}", node.name);
        }
        assert_eq!(shell.plane_of(p.n_sats as NodeIdx), None);
    }
}
