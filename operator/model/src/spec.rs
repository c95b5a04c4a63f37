//! The `Constellation` spec: one set of types that is the YAML file format, the custom
//! resource's `spec`, and the model's input. Field names are camelCase, as in Kubernetes.
//!
//! These types only describe; `crate::compile` checks them and says what is wrong. The
//! numeric bounds it checks are stated here too (`range`), for the CRD's schema.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::addressing::Ipv4Cidr;
use crate::compile::{
    MAX_ALT_M, MAX_ALTITUDE_KM, MAX_ANTENNAS, MAX_DELAY_US, MAX_HYSTERESIS_KM, MAX_ISL_RANGE_KM,
    MAX_JAMMING_RADIUS_KM, MAX_NAME_LEN, MAX_RATE_MBPS, MAX_SPEED_KMH, MAX_WALKER_COUNT, MIN_ALT_M,
    MIN_ALTITUDE_KM, NAME_PATTERN,
};
use crate::compile::{MAX_BFD_INTERVAL_MS, MAX_PROTOCOL_INTERVAL_S, MAX_SPF_MS, MIN_BFD_INTERVAL_MS};
use crate::error::SpecError;
use crate::mission::{
    MAX_DSCP, MAX_FLOWS, MAX_LATENCY_MS, MAX_OBJECTIVES, MAX_OUTAGE_S, MAX_PACKETS_PER_SECOND,
    MAX_SIZE_BYTES, MAX_STRETCH, MIN_SIZE_BYTES,
};
use crate::time::{Epoch, SpecDuration};

pub const API_VERSION: &str = "orbitnet.dev/v1alpha1";
pub const KIND: &str = "Constellation";

/// A whole `Constellation` document as written in a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ConstellationSpec,
}

/// The part of Kubernetes object metadata a file may carry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What a constellation is made of, how its nodes link, and what goes wrong when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstellationSpec {
    /// The UTC instant emulation time 0 stands for (RFC 3339).
    pub epoch: Epoch,
    /// Step of the emulation clock: link state is recomputed every tick. Default 1s.
    #[serde(default = "default_tick")]
    pub tick: SpecDuration,
    /// Groups of satellites: a Walker pattern, or a list of TLEs.
    #[serde(default)]
    pub shells: Vec<Shell>,
    #[serde(default)]
    pub ground_stations: Vec<GroundStation>,
    /// Moving ground nodes: ships, aircraft, vehicles.
    #[serde(default)]
    pub platforms: Vec<Platform>,
    #[serde(default)]
    pub ground_links: GroundLinks,
    #[serde(default)]
    pub link_classes: LinkClasses,
    #[serde(default)]
    pub routing: Routing,
    /// The routing daemons' settings, for `routing: ospf` and `routing: isis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_protocol: Option<RoutingProtocol>,
    /// Which nodes get routes when `routing` is `shortestPath`: `all` nodes, or only `ground`
    /// nodes (stations and platforms), as in Hypatia's workload. Default `all`.
    #[serde(default)]
    pub route_to: RouteTo,
    /// Route hysteresis: a node keeps its next hop towards a destination while that hop is
    /// still linked, closer to the destination, and its path at most this much longer than
    /// the shortest (so a path of h hops is at most h x this longer). Spares the flapping of
    /// near-equal paths as delays drift. Default 0: always the shortest paths.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = MAX_DELAY_US))]
    pub route_hysteresis_us: f64,
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// How long an experiment runs: the default of `orbitnet run --duration`; on Kubernetes,
    /// a Constellation with a duration ends (phase `Finished`) with its verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SpecDuration>,
    /// The mission's data: flows orbitnet sends and measures between nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_FLOWS))]
    pub traffic: Vec<Flow>,
    /// What the flows must achieve; `orbitnet run --check` and the operator give a verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_OBJECTIVES))]
    pub objectives: Vec<Objective>,
    /// Address ranges of the emulated network.
    #[serde(default)]
    pub addressing: AddressingSpec,
    /// What runs in the nodes, by role.
    #[serde(default)]
    pub nodes: NodeTemplates,
    /// How the operator spreads the pods over a cluster's nodes (the local runner, one
    /// host, has nothing to place).
    #[serde(default, skip_serializing_if = "Placement::is_default")]
    pub placement: Placement,
}

/// Pods of neighbouring satellites on the same Kubernetes node, so that few links cross
/// between nodes (each crossing is a VXLAN tunnel through the underlay, where a link within
/// a node is a veth pair).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    /// Split the satellites into this many groups of neighbours: runs of whole orbital
    /// planes when there are at least as many planes, else arcs of the planes. A group's
    /// pods all run on one Kubernetes node (required pod affinity: a group must fit on a
    /// node); groups prefer nodes without other groups. Set it to the number of nodes the
    /// constellation may use. Default 1: no hints, the scheduler places each pod alone.
    /// Ground stations and platforms are in no group: they move between satellites.
    #[serde(default = "default_groups")]
    #[schemars(range(min = 1, max = MAX_PLACEMENT_GROUPS))]
    pub groups: u32,
}

/// More groups than this would be more Kubernetes nodes than a cluster has.
pub const MAX_PLACEMENT_GROUPS: u32 = 5000;

fn default_groups() -> u32 {
    1
}

impl Default for Placement {
    fn default() -> Self {
        Self { groups: default_groups() }
    }
}

impl Placement {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What runs in each node of a role. A role without a template runs nothing (the node is
/// still a router).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeTemplates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satellite: Option<NodeTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_station: Option<NodeTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<NodeTemplate>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeTemplate {
    /// The program and its arguments. The local runner runs it inside the node's network
    /// namespace with ORBITNET_NODE, ORBITNET_ROLE, ORBITNET_ADDR, ORBITNET_NEIGHBOURS and
    /// ORBITNET_HOSTS set; Kubernetes runs it as the container's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Container image (Kubernetes only; the local runner runs host programs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl NodeTemplates {
    /// The template of a role, if the spec gives one.
    pub fn for_kind(&self, kind: crate::plan::NodeKind) -> Option<&NodeTemplate> {
        match kind {
            crate::plan::NodeKind::Satellite => self.satellite.as_ref(),
            crate::plan::NodeKind::GroundStation => self.ground_station.as_ref(),
            crate::plan::NodeKind::Platform => self.platform.as_ref(),
        }
    }
}

/// Node i gets `nodeCidr` + i + 1 as a /32; every link that can exist gets a /31 from
/// `linkCidr`. The defaults sit in 100.64.0.0/10 (RFC 6598), clear of the private ranges
/// clusters and containers use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressingSpec {
    #[serde(default = "default_node_cidr")]
    pub node_cidr: Ipv4Cidr,
    #[serde(default = "default_link_cidr")]
    pub link_cidr: Ipv4Cidr,
}

fn default_node_cidr() -> Ipv4Cidr {
    Ipv4Cidr { network: std::net::Ipv4Addr::new(100, 64, 0, 0), prefix_len: 16 }
}

fn default_link_cidr() -> Ipv4Cidr {
    Ipv4Cidr { network: std::net::Ipv4Addr::new(100, 80, 0, 0), prefix_len: 12 }
}

impl Default for AddressingSpec {
    fn default() -> Self {
        Self { node_cidr: default_node_cidr(), link_cidr: default_link_cidr() }
    }
}

fn default_tick() -> SpecDuration {
    SpecDuration::from_secs(1)
}

/// A shell: either a Walker pattern (`walker`, `altitudeKm`, `inclinationDeg`) or `tles`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shell {
    /// Prefix of the satellites' names: `<name>-<plane>-<index>` for Walker shells.
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walker: Option<Walker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_ALTITUDE_KM, max = MAX_ALTITUDE_KM))]
    pub altitude_km: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 180.0))]
    pub inclination_deg: Option<f64>,
    /// Inter-satellite links of a Walker shell. Default `{grid: plus}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isl: Option<Isl>,
    /// Satellites given by two-line element sets, propagated with SGP4. No ISLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tles: Option<Vec<Tle>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Walker {
    /// `delta`: planes spread over 360 deg of RAAN; `star`: over 180 deg (polar shells),
    /// with a seam between the first and last plane, which fly in opposite directions.
    #[serde(rename = "type")]
    pub kind: WalkerType,
    #[schemars(range(min = 1, max = MAX_WALKER_COUNT))]
    pub planes: u32,
    #[schemars(range(min = 1, max = MAX_WALKER_COUNT))]
    pub sats_per_plane: u32,
    /// Walker phasing factor F, 0..planes-1: satellite s of plane p is at argument of
    /// latitude 360 (s / S + F p / (P S)) deg.
    #[serde(default)]
    pub phasing: u32,
    /// RAAN spread over all planes; default 360 for delta, 180 for star.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 360.0), extend("exclusiveMinimum" = true))]
    pub raan_spread_deg: Option<f64>,
    /// RAAN of plane 0 at the epoch. Default 0.
    #[serde(default)]
    #[schemars(range(min = -360.0, max = 360.0))]
    pub raan_offset_deg: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum WalkerType {
    Delta,
    Star,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Isl {
    /// `plus`: each satellite links to its two in-plane and two cross-plane neighbours.
    #[serde(default)]
    pub grid: Grid,
    /// Cross-plane links are down while either end is above this |latitude|.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 90.0))]
    pub cross_plane_max_lat_deg: Option<f64>,
    /// Links longer than this are down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_ISL_RANGE_KM), extend("exclusiveMinimum" = true))]
    pub max_range_km: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Grid {
    #[default]
    Plus,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tle {
    /// The satellite's node name (lower-cased).
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: String,
    pub line1: String,
    pub line2: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroundStation {
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: String,
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat_deg: f64,
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon_deg: f64,
    /// Height above the WGS84 ellipsoid. Default 0.
    #[serde(default)]
    #[schemars(range(min = MIN_ALT_M, max = MAX_ALT_M))]
    pub alt_m: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Platform {
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: String,
    pub kind: PlatformKind,
    /// Ground speed along the track.
    #[schemars(range(min = 0.0, max = MAX_SPEED_KMH), extend("exclusiveMinimum" = true))]
    pub speed_kmh: f64,
    /// The track: great-circle legs from one waypoint to the next, starting at the first
    /// waypoint at the epoch.
    pub waypoints: Vec<Waypoint>,
    /// Height above the ellipsoid where a waypoint does not give one. Default 0.
    #[serde(default)]
    #[schemars(range(min = MIN_ALT_M, max = MAX_ALT_M))]
    pub alt_m: f64,
    /// After the last waypoint, sail back to the first and go round again; otherwise stay at
    /// the last waypoint. Default false.
    #[serde(default, rename = "loop")]
    pub looped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlatformKind {
    Ship,
    Aircraft,
    Vehicle,
}

impl PlatformKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Ship => "ship",
            PlatformKind::Aircraft => "aircraft",
            PlatformKind::Vehicle => "vehicle",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Waypoint {
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat_deg: f64,
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon_deg: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_ALT_M, max = MAX_ALT_M))]
    pub alt_m: Option<f64>,
}

/// How ground stations and platforms pick the satellites they link to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroundLinks {
    /// A satellite is visible at or above this elevation. Default 25.
    #[serde(default = "default_min_elevation")]
    #[schemars(range(min = 0.0, max = 90.0))]
    pub min_elevation_deg: f64,
    /// `all` visible satellites, or the `antennas` best by `nearest` or `highestElevation`.
    #[serde(default)]
    pub policy: GroundPolicy,
    /// Links per ground node for `nearest` and `highestElevation`. Default 1.
    #[serde(default = "default_antennas")]
    #[schemars(range(min = 1, max = MAX_ANTENNAS))]
    pub antennas: u32,
    /// `highestElevation`: keep a satellite until another is this much higher. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 90.0))]
    pub hysteresis_deg: f64,
    /// `nearest`: keep a satellite until another is this much closer. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = MAX_HYSTERESIS_KM))]
    pub hysteresis_km: f64,
    /// Atmospheric loss at zenith; a link at elevation e loses this / sin(e) (air mass).
    /// Default 0.01.
    #[serde(default = "default_zenith_loss")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub atmospheric_loss_pct: f64,
}

fn default_min_elevation() -> f64 {
    25.0
}
fn default_antennas() -> u32 {
    1
}
fn default_zenith_loss() -> f64 {
    0.01
}

impl Default for GroundLinks {
    fn default() -> Self {
        Self {
            min_elevation_deg: default_min_elevation(),
            policy: GroundPolicy::default(),
            antennas: default_antennas(),
            hysteresis_deg: 0.0,
            hysteresis_km: 0.0,
            atmospheric_loss_pct: default_zenith_loss(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GroundPolicy {
    All,
    Nearest,
    #[default]
    HighestElevation,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkClasses {
    #[serde(default = "LinkClass::default_isl")]
    pub isl: LinkClass,
    #[serde(default = "LinkClass::default_gsl")]
    pub gsl: LinkClass,
}

impl Default for LinkClasses {
    fn default() -> Self {
        Self { isl: LinkClass::default_isl(), gsl: LinkClass::default_gsl() }
    }
}

/// Parameters every link of a class shares; distance adds the propagation delay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkClass {
    #[schemars(range(min = 0.0, max = MAX_RATE_MBPS), extend("exclusiveMinimum" = true))]
    pub rate_mbps: f64,
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub loss_pct: f64,
    /// Fixed one-way delay added to distance / c.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = MAX_DELAY_US))]
    pub processing_delay_us: f64,
    #[serde(default)]
    #[schemars(range(min = 0.0, max = MAX_DELAY_US))]
    pub jitter_us: f64,
}

impl LinkClass {
    fn default_isl() -> Self {
        Self { rate_mbps: 10_000.0, loss_pct: 0.0, processing_delay_us: 0.0, jitter_us: 0.0 }
    }
    fn default_gsl() -> Self {
        Self { rate_mbps: 1_000.0, loss_pct: 0.0, processing_delay_us: 0.0, jitter_us: 0.0 }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Routing {
    /// orbitnet installs shortest-path (by delay) next hops in every node every tick.
    #[default]
    ShortestPath,
    /// The node software routes; orbitnet only supplies links and addresses.
    None,
    /// OSPFv2 in every node, run by real daemons (`routingProtocol.daemon`: FRR or BIRD).
    Ospf,
    /// IS-IS in every node, run by FRR.
    Isis,
}

impl Routing {
    /// As the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::ShortestPath => "shortestPath",
            Routing::None => "none",
            Routing::Ospf => "ospf",
            Routing::Isis => "isis",
        }
    }

    /// Routing by daemons in the nodes.
    pub fn is_protocol(self) -> bool {
        matches!(self, Routing::Ospf | Routing::Isis)
    }
}

/// How the routing daemons run: which, their timers, BFD and link costs. Every field has a
/// default suited to links that come and go every few minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutingProtocol {
    /// `frr` (zebra with ospfd or isisd, bfdd for BFD) or `bird` (BIRD 2, OSPF only).
    /// Default `frr`.
    #[serde(default)]
    pub daemon: RoutingDaemon,
    /// Seconds between hellos on every link. Default 1.
    #[serde(default = "default_hello_s")]
    #[schemars(range(min = 1, max = MAX_PROTOCOL_INTERVAL_S))]
    pub hello_interval_s: u32,
    /// Seconds without a hello before a neighbour is declared down. Default 4.
    #[serde(default = "default_dead_s")]
    #[schemars(range(min = 1, max = MAX_PROTOCOL_INTERVAL_S))]
    pub dead_interval_s: u32,
    /// SPF throttling: the first run `delayMs` after a change, then at least `holdMs` apart,
    /// the gap doubling up to `maxHoldMs` while changes keep coming. Defaults 50, 200, 5000.
    #[serde(default)]
    pub spf: SpfThrottle,
    /// BFD on every link: a neighbour lost in `intervalMs` x `multiplier`. Default off.
    #[serde(default)]
    pub bfd: Bfd,
    /// Link costs: `unit` (every link 10) or `delay` (the link's one-way delay in 100 us
    /// steps when it comes up). Default `unit`.
    #[serde(default)]
    pub cost: LinkCost,
}

fn default_hello_s() -> u32 {
    1
}
fn default_dead_s() -> u32 {
    4
}

impl Default for RoutingProtocol {
    fn default() -> Self {
        Self {
            daemon: RoutingDaemon::default(),
            hello_interval_s: default_hello_s(),
            dead_interval_s: default_dead_s(),
            spf: SpfThrottle::default(),
            bfd: Bfd::default(),
            cost: LinkCost::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RoutingDaemon {
    #[default]
    Frr,
    Bird,
}

impl RoutingDaemon {
    /// As the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingDaemon::Frr => "frr",
            RoutingDaemon::Bird => "bird",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpfThrottle {
    #[serde(default = "default_spf_delay")]
    #[schemars(range(min = 0, max = MAX_SPF_MS))]
    pub delay_ms: u32,
    #[serde(default = "default_spf_hold")]
    #[schemars(range(min = 0, max = MAX_SPF_MS))]
    pub hold_ms: u32,
    #[serde(default = "default_spf_max_hold")]
    #[schemars(range(min = 0, max = MAX_SPF_MS))]
    pub max_hold_ms: u32,
}

fn default_spf_delay() -> u32 {
    50
}
fn default_spf_hold() -> u32 {
    200
}
fn default_spf_max_hold() -> u32 {
    5_000
}

impl Default for SpfThrottle {
    fn default() -> Self {
        Self {
            delay_ms: default_spf_delay(),
            hold_ms: default_spf_hold(),
            max_hold_ms: default_spf_max_hold(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bfd {
    #[serde(default)]
    pub enabled: bool,
    /// Milliseconds between BFD packets each way. Default 100.
    #[serde(default = "default_bfd_interval")]
    #[schemars(range(min = MIN_BFD_INTERVAL_MS, max = MAX_BFD_INTERVAL_MS))]
    pub interval_ms: u32,
    /// Packets missed before the neighbour is down. Default 3.
    #[serde(default = "default_bfd_multiplier")]
    #[schemars(range(min = 2, max = 255))]
    pub multiplier: u32,
}

fn default_bfd_interval() -> u32 {
    100
}
fn default_bfd_multiplier() -> u32 {
    3
}

impl Default for Bfd {
    fn default() -> Self {
        Self { enabled: false, interval_ms: default_bfd_interval(), multiplier: default_bfd_multiplier() }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LinkCost {
    #[default]
    Unit,
    Delay,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RouteTo {
    #[default]
    All,
    Ground,
}

/// A scheduled fault. Which fields apply depends on `kind`:
/// `nodeDown` and `stationDown`: `node`; `linkDown`: `a`, `b`;
/// `jamming`: `latDeg`, `lonDeg`, `radiusKm`, `lossPct`;
/// `degraded`: `a` and `b` (one link) or `node` (all its links), and any of `extraDelayUs`,
/// `lossPct`, `rateMbps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// A name objectives can refer to (`window.during`, `window.after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: Option<String>,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_JAMMING_RADIUS_KM), extend("exclusiveMinimum" = true))]
    pub radius_km: Option<f64>,
    /// Extra loss on the affected links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub loss_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_DELAY_US))]
    pub extra_delay_us: Option<f64>,
    /// Rate cap on the affected links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_RATE_MBPS), extend("exclusiveMinimum" = true))]
    pub rate_mbps: Option<f64>,
    /// When the fault begins, after the epoch.
    pub at: SpecDuration,
    /// How long it lasts; without it, until the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SpecDuration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// A node is lost: all its links are down; ground nodes re-home away from a satellite.
    NodeDown,
    /// One link is down.
    LinkDown,
    /// A ground station or platform is out: all its links are down.
    StationDown,
    /// Extra loss on every ground link whose ground end is within a radius of a point.
    Jamming,
    /// Extra delay / loss, or a lower rate, on one link or on all links of a node.
    Degraded,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::NodeDown,
        FaultKind::LinkDown,
        FaultKind::StationDown,
        FaultKind::Jamming,
        FaultKind::Degraded,
    ];

    /// The fields a fault of this kind may set, besides `kind`, `at` and `duration`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            FaultKind::NodeDown | FaultKind::StationDown => &["node"],
            FaultKind::LinkDown => &["a", "b"],
            FaultKind::Jamming => &["latDeg", "lonDeg", "radiusKm", "lossPct"],
            FaultKind::Degraded => &["node", "a", "b", "lossPct", "extraDelayUs", "rateMbps"],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::NodeDown => "nodeDown",
            FaultKind::LinkDown => "linkDown",
            FaultKind::StationDown => "stationDown",
            FaultKind::Jamming => "jamming",
            FaultKind::Degraded => "degraded",
        }
    }
}

/// A flow of the mission's data: UDP datagrams from one node to another at a steady rate,
/// each carrying a sequence number and its send time, so the receiving end measures one-way
/// delay, loss, reordering, duplicates and outages. orbitnet sends and receives them itself,
/// inside the nodes' network namespaces, whatever program the nodes run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flow {
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: String,
    /// The sending node: a ground station, platform or satellite.
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub from: String,
    /// The receiving node.
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub to: String,
    /// `udp` (the only protocol so far).
    #[serde(default)]
    pub protocol: FlowProtocol,
    /// Datagrams per second; or give `rateMbps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_PACKETS_PER_SECOND), extend("exclusiveMinimum" = true))]
    pub packets_per_second: Option<f64>,
    /// Bit rate of the UDP payloads, instead of `packetsPerSecond`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_RATE_MBPS), extend("exclusiveMinimum" = true))]
    pub rate_mbps: Option<f64>,
    /// UDP payload per datagram. Default 200.
    #[serde(default = "default_size_bytes")]
    #[schemars(range(min = MIN_SIZE_BYTES, max = MAX_SIZE_BYTES))]
    pub size_bytes: u32,
    /// DiffServ code point of the datagrams (e.g. 46, expedited forwarding). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = MAX_DSCP))]
    pub dscp: Option<u32>,
    /// When the flow begins sending, after the epoch. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<SpecDuration>,
    /// How long it sends; without it, until the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SpecDuration>,
}

fn default_size_bytes() -> u32 {
    200
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FlowProtocol {
    #[default]
    Udp,
}

/// A requirement on one flow over a window of the run. Which bound applies depends on
/// `kind`: `latency`: `maxMs` for the `percentile` (default 99; 100 is the maximum) of
/// one-way delay; `delivery`: `minPct` of the datagrams sent delivered; `outage`: `maxS`,
/// the longest time without delivery; `jitter`: `maxMs`, the mean difference of
/// consecutive one-way delays (RFC 3393's IPDV).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Objective {
    /// Names the objective in verdicts and JUnit; default `<flow>-<kind>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_NAME_LEN), pattern(NAME_PATTERN))]
    pub name: Option<String>,
    /// The flow (its name in `traffic`, exactly); none for `convergence` and `stretch`,
    /// which bound the routing of every ground pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_NAME_LEN))]
    pub flow: Option<String>,
    pub kind: ObjectiveKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub percentile: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_LATENCY_MS), extend("exclusiveMinimum" = true))]
    pub max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub min_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = MAX_OUTAGE_S))]
    pub max_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = MAX_STRETCH))]
    pub max_stretch: Option<f64>,
    /// When it must hold; without it, the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ObjectiveKind {
    Latency,
    Delivery,
    Outage,
    Jitter,
    /// After each change of the graph, every ground pair the model can reach is forwarded
    /// again within `maxS` (real seconds, read from the nodes' forwarding tables).
    Convergence,
    /// Once forwarding has settled after each change, no ground pair's path is slower
    /// than `maxStretch` times the model's.
    Stretch,
}

impl ObjectiveKind {
    pub const ALL: [ObjectiveKind; 6] = [
        ObjectiveKind::Latency,
        ObjectiveKind::Delivery,
        ObjectiveKind::Outage,
        ObjectiveKind::Jitter,
        ObjectiveKind::Convergence,
        ObjectiveKind::Stretch,
    ];

    /// Whether objectives of this kind bound one flow (else the routing of every pair).
    pub fn of_flow(self) -> bool {
        !matches!(self, ObjectiveKind::Convergence | ObjectiveKind::Stretch)
    }

    /// The bound fields an objective of this kind may set, besides `name`, `flow` and
    /// `window`; the first is required.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ObjectiveKind::Latency => &["maxMs", "percentile"],
            ObjectiveKind::Delivery => &["minPct"],
            ObjectiveKind::Outage => &["maxS"],
            ObjectiveKind::Jitter => &["maxMs"],
            ObjectiveKind::Convergence => &["maxS"],
            ObjectiveKind::Stretch => &["maxStretch"],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectiveKind::Latency => "latency",
            ObjectiveKind::Delivery => "delivery",
            ObjectiveKind::Outage => "outage",
            ObjectiveKind::Jitter => "jitter",
            ObjectiveKind::Convergence => "convergence",
            ObjectiveKind::Stretch => "stretch",
        }
    }
}

/// Part of a run: `from`/`to` (either may be left out: the run's start, its end), `during` a
/// fault, or `after` a fault ends plus `settle`. Faults are given by name or index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Window {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<SpecDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<SpecDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<FaultRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<FaultRef>,
    /// With `after`: the window begins this long after the fault ends. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<SpecDuration>,
}

/// A fault, by its index in `faults` or its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FaultRef {
    Index(u32),
    Name(String),
}

impl fmt::Display for FaultRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultRef::Index(i) => write!(f, "{i}"),
            FaultRef::Name(n) => write!(f, "{n:?}"),
        }
    }
}

impl JsonSchema for FaultRef {
    fn schema_name() -> Cow<'static, str> {
        "FaultRef".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "description": "A fault: its index in `faults` (from 0) or its name."
        })
    }
}

/// Parses a `Constellation` YAML document. Errors name the field path and, for syntax
/// errors, the line and column.
pub fn parse_document(yaml: &str) -> Result<Document, SpecError> {
    let de = serde_yaml::Deserializer::from_str(yaml);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let location = inner.location().map(|l| (l.line(), l.column()));
        let message = bare_message(&inner.to_string(), &path);
        SpecError::Syntax { path, message, location }
    })
}

/// serde_yaml decorates messages with "<path>: " before and " at line L column C" after;
/// both are reported apart.
fn bare_message(message: &str, path: &str) -> String {
    let message = message.strip_prefix(path).and_then(|m| m.strip_prefix(": ")).unwrap_or(message);
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
