//! Spec -> Plan: checks every field, collecting every problem (not only the first), and
//! builds the node table, motions, the +Grid inter-satellite links and resolved faults.

use std::collections::{HashMap, HashSet};

use crate::addressing::Addressing;
use crate::error::{Invalid, Problem, SpecError};
use crate::geo::Geodetic;
use crate::mission::{
    DEFAULT_PERCENTILE, FlowDef, MAX_DSCP, MAX_FLOWS, MAX_LATENCY_MS, MAX_OBJECTIVES, MAX_OUTAGE_S,
    MAX_PACKETS_PER_SECOND, MAX_SIZE_BYTES, MAX_STRETCH, MIN_SIZE_BYTES, ObjectiveDef, Requirement,
    WindowDef,
};
use crate::orbit::{CircularOrbit, TleOrbit};
use crate::plan::{
    ClassParams, FaultDef, FaultTarget, GroundLinkParams, IslDef, LinkId, Motion, Node, NodeIdx, NodeKind,
    Plan, WalkerShell,
};
use crate::spec::{
    self, ConstellationSpec, Document, FaultKind, FaultRef, Grid, ObjectiveKind, Shell, WalkerType,
};
use crate::time::{SimTime, SpecDuration};
use crate::track::Track;

// Bounds of spec fields. The schema states them too (`#[schemars(range)]` in spec.rs), so
// the API server refuses what `compile` would; `bounds` lists them for the test that keeps
// the two equal.

/// Largest constellation accepted: far above any real shell, low enough that a typo
/// (`planes: 72000`) is an error rather than an out-of-memory.
pub const MAX_NODES: usize = 100_000;
/// Planes, or satellites per plane, of a Walker shell: their product is at most `MAX_NODES`,
/// so neither is more.
pub const MAX_WALKER_COUNT: u32 = MAX_NODES as u32;
pub const MAX_ANTENNAS: u32 = 64;
pub const MAX_RATE_MBPS: f64 = 1e6;
/// netem's 64-bit delay still fits, but anything above a minute is surely a typo.
pub const MAX_DELAY_US: f64 = 60e6;
pub const MIN_ALTITUDE_KM: f64 = 100.0;
pub const MAX_ALTITUDE_KM: f64 = 100_000.0;
/// Height of ground stations, platforms and waypoints.
pub const MIN_ALT_M: f64 = -1_000.0;
pub const MAX_ALT_M: f64 = 100_000.0;
pub const MAX_SPEED_KMH: f64 = 30_000.0;
pub const MAX_ISL_RANGE_KM: f64 = 1e6;
pub const MAX_HYSTERESIS_KM: f64 = 100_000.0;
/// A jamming circle this wide covers the whole Earth (half its circumference is ~20,000 km).
pub const MAX_JAMMING_RADIUS_KM: f64 = 20_100.0;
const TLE_STALE_DAYS: f64 = 30.0;
/// A name's longest: a DNS label's.
pub const MAX_NAME_LEN: usize = 63;
/// Hello and dead intervals are 16-bit seconds in OSPF and IS-IS.
pub const MAX_PROTOCOL_INTERVAL_S: u32 = 65_535;
/// FRR's SPF throttle takes up to 600,000 ms.
pub const MAX_SPF_MS: u32 = 600_000;
/// bfdd's interval range, ms.
pub const MIN_BFD_INTERVAL_MS: u32 = 10;
pub const MAX_BFD_INTERVAL_MS: u32 = 60_000;
/// What `dns_label_problem` accepts once a name is lower-cased, as a regular expression for
/// the schema (`pattern`, with `minLength` 1 and `maxLength` `MAX_NAME_LEN`).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$";

/// Parses and compiles a YAML document.
pub fn compile_yaml(yaml: &str) -> Result<Plan, SpecError> {
    compile_document(&spec::parse_document(yaml)?)
}

/// Compiles a whole document, checking `apiVersion`, `kind` and `metadata.name` too.
pub fn compile_document(doc: &Document) -> Result<Plan, SpecError> {
    let mut c = Checker::default();
    if doc.api_version != spec::API_VERSION {
        c.push(
            "apiVersion",
            Problem::Unsupported { found: doc.api_version.clone(), expected: spec::API_VERSION },
        );
    }
    if doc.kind != spec::KIND {
        c.push("kind", Problem::Unsupported { found: doc.kind.clone(), expected: spec::KIND });
    }
    compile_checked(&doc.metadata.name, &doc.spec, &mut c)
}

/// Compiles the spec of a constellation named `name` (a DNS label).
pub fn compile(name: &str, spec: &ConstellationSpec) -> Result<Plan, SpecError> {
    compile_checked(name, spec, &mut Checker::default())
}

/// A numeric bound `compile` checks on a field of a spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The field as problems name it, e.g. `spec.groundStations[0].latDeg`.
    pub path: String,
    pub min: f64,
    /// `min` itself is refused: the value must be greater than `min`.
    pub min_exclusive: bool,
    pub max: f64,
}

/// The bounds `compile` checks on `spec`: on each field the spec sets, and on the defaults of
/// those it leaves out. A spec that sets every field gives every bound the model has.
pub fn bounds(spec: &ConstellationSpec) -> Vec<Bound> {
    checks(spec).bounds
}

/// The fields of `spec` that `compile` checks are names (`dns_label_problem`), as problems
/// name them (`spec.groundStations[0].name`). The constellation's own name, which Kubernetes
/// checks as an object's name, is not one of them.
pub fn names(spec: &ConstellationSpec) -> Vec<String> {
    checks(spec).names.into_iter().filter(|path| path.starts_with("spec.")).collect()
}

/// What `compile` checks, recorded rather than judged.
#[derive(Default)]
struct Checks {
    bounds: Vec<Bound>,
    names: Vec<String>,
}

fn checks(spec: &ConstellationSpec) -> Checks {
    let mut c = Checker { checks: Some(Checks::default()), ..Checker::default() };
    // Only the checks made are wanted, not the plan or the problems.
    let _ = compile_checked("checks", spec, &mut c);
    c.checks.unwrap_or_default()
}

fn compile_checked(name: &str, spec: &ConstellationSpec, c: &mut Checker) -> Result<Plan, SpecError> {
    c.name("metadata.name", name);
    let tick_ok = spec.tick >= SpecDuration::from_millis(1) && spec.tick <= SpecDuration::from_secs(3600);
    if !tick_ok {
        c.push("spec.tick", Problem::Conflict(format!("{} is outside 1ms..1h", spec.tick)));
    }
    let mut b = Builder {
        c,
        nodes: Vec::new(),
        motions: Vec::new(),
        isls: Vec::new(),
        warnings: Vec::new(),
        names: HashMap::new(),
        shells: Vec::new(),
    };
    for (i, shell) in spec.shells.iter().enumerate() {
        b.shell(i, shell, spec);
    }
    let n_sats = b.nodes.len();
    if n_sats == 0 && b.c.problems.is_empty() {
        b.c.push("spec.shells", Problem::Empty("add a shell with `walker` or `tles`"));
    }
    for (i, gs) in spec.ground_stations.iter().enumerate() {
        b.ground_station(i, gs);
    }
    for (i, p) in spec.platforms.iter().enumerate() {
        b.platform(i, p);
    }
    if b.nodes.len() > MAX_NODES {
        b.c.push(
            "spec",
            Problem::Conflict(format!(
                "{} nodes is more than the {MAX_NODES} orbitnet accepts",
                b.nodes.len()
            )),
        );
    }
    let ground_links = b.ground_links(&spec.ground_links);
    b.c.non_negative("spec.routeHysteresisUs", spec.route_hysteresis_us, MAX_DELAY_US);
    let groups = spec.placement.groups;
    if b.c.count("spec.placement.groups", groups, spec::MAX_PLACEMENT_GROUPS)
        && n_sats > 0
        && groups as usize > n_sats
    {
        b.c.push(
            "spec.placement.groups",
            Problem::Conflict(format!("{groups} groups is more than the {n_sats} satellites to put in them")),
        );
    }
    let isl_class = b.class("spec.linkClasses.isl", &spec.link_classes.isl);
    let gsl_class = b.class("spec.linkClasses.gsl", &spec.link_classes.gsl);
    let isl_pairs: HashSet<(NodeIdx, NodeIdx)> = b.isls.iter().map(|l| (l.a, l.b)).collect();
    let faults: Vec<FaultDef> =
        spec.faults.iter().enumerate().filter_map(|(i, f)| b.fault(i, f, n_sats, &isl_pairs)).collect();

    let routing_protocol = b.routing_protocol(spec);
    b.fault_names(&spec.faults);
    if spec.duration == Some(SpecDuration::ZERO) {
        b.c.push("spec.duration", Problem::NotPositive { value: 0.0 });
    }
    let flows: Vec<FlowDef> =
        spec.traffic.iter().enumerate().filter_map(|(i, f)| b.flow(i, f, spec, n_sats)).collect();
    b.flow_names(&spec.traffic);
    let objectives: Vec<ObjectiveDef> = spec
        .objectives
        .iter()
        .enumerate()
        .filter_map(|(i, o)| b.objective(i, o, spec, &flows, &faults))
        .collect();

    let addressing = b.addressing(&spec.addressing, spec.shells.is_empty());
    b.node_templates(&spec.nodes);
    let Builder { c, nodes, motions, isls, warnings, names, shells } = b;
    if !c.problems.is_empty() {
        return Err(SpecError::Invalid(std::mem::take(&mut c.problems)));
    }
    Ok(Plan {
        name: name.to_owned(),
        epoch: spec.epoch,
        tick: spec.tick,
        nodes,
        n_sats,
        motions,
        ground_links,
        isl_class,
        gsl_class,
        routing: spec.routing,
        routing_protocol,
        route_to: spec.route_to,
        route_hysteresis_ns: us_to_ns(spec.route_hysteresis_us),
        faults,
        duration: spec.duration,
        flows,
        objectives,
        warnings,
        addressing,
        node_templates: spec.nodes.clone(),
        placement_groups: spec.placement.groups,
        epoch_years_since_j2000: spec.epoch.julian_years_since_j2000(SimTime::ZERO),
        index: names.into_iter().map(|(name, (i, _))| (name, i)).collect(),
        isl_slots: isls.iter().enumerate().map(|(k, l)| ((l.a, l.b), k as u32)).collect(),
        isls,
        shells,
    })
}

#[derive(Default)]
struct Checker {
    problems: Vec<Invalid>,
    /// Every check made, when the caller asked for them (`bounds`, `names`).
    checks: Option<Checks>,
}

impl Checker {
    fn push(&mut self, path: impl Into<String>, problem: Problem) {
        self.problems.push(Invalid { path: path.into(), problem });
    }

    fn bound(&mut self, path: &str, min: f64, min_exclusive: bool, max: f64) {
        if let Some(checks) = &mut self.checks {
            checks.bounds.push(Bound { path: path.to_owned(), min, min_exclusive, max });
        }
    }

    /// `value` is finite and within `min..=max`.
    fn range(&mut self, path: impl Into<String>, value: f64, min: f64, max: f64) -> bool {
        let path = path.into();
        self.bound(&path, min, false, max);
        self.within(path, value, min, max)
    }

    /// The test of `range`, for the checks that state their bound themselves.
    fn within(&mut self, path: String, value: f64, min: f64, max: f64) -> bool {
        if !value.is_finite() {
            self.push(path, Problem::NotFinite { value });
            false
        } else if value < min || value > max {
            self.push(path, Problem::OutOfRange { value, min, max });
            false
        } else {
            true
        }
    }

    /// `value` is finite and > 0 (and at most `max`).
    fn positive(&mut self, path: impl Into<String>, value: f64, max: f64) -> bool {
        let path = path.into();
        self.bound(&path, 0.0, true, max);
        if !value.is_finite() {
            self.push(path, Problem::NotFinite { value });
            false
        } else if value <= 0.0 {
            self.push(path, Problem::NotPositive { value });
            false
        } else {
            self.within(path, value, f64::MIN_POSITIVE, max)
        }
    }

    /// `value` is finite and >= 0 (and at most `max`).
    fn non_negative(&mut self, path: impl Into<String>, value: f64, max: f64) -> bool {
        let path = path.into();
        self.bound(&path, 0.0, false, max);
        if value.is_finite() && value < 0.0 {
            self.push(path, Problem::Negative { value });
            false
        } else {
            self.within(path, value, 0.0, max)
        }
    }

    /// `value` is at least 1 and at most `max`.
    fn count(&mut self, path: impl Into<String>, value: u32, max: u32) -> bool {
        let path = path.into();
        self.bound(&path, 1.0, false, f64::from(max));
        if value == 0 {
            self.push(path, Problem::NotPositive { value: 0.0 });
            false
        } else if value > max {
            self.push(path, Problem::OutOfRange { value: f64::from(value), min: 1.0, max: f64::from(max) });
            false
        } else {
            true
        }
    }

    /// A DNS label once lower-cased; returns the lower-cased name.
    fn name(&mut self, path: impl Into<String>, name: &str) -> Option<String> {
        let path = path.into();
        if let Some(checks) = &mut self.checks {
            checks.names.push(path.clone());
        }
        let lower = name.to_ascii_lowercase();
        match dns_label_problem(&lower) {
            None => Some(lower),
            Some(reason) => {
                self.push(path, Problem::BadName { name: name.to_owned(), reason });
                None
            }
        }
    }
}

/// Why `name` is not an RFC 1123 DNS label, or `None` if it is one.
pub fn dns_label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 63 characters")
    } else if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Some("it has a character other than a-z, 0-9 and '-'")
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it starts or ends with '-'")
    } else {
        None
    }
}

struct Builder<'c> {
    c: &'c mut Checker,
    nodes: Vec<Node>,
    motions: Vec<Motion>,
    isls: Vec<IslDef>,
    warnings: Vec<String>,
    /// Lower-cased node name -> (index, the spec path that defined it).
    names: HashMap<String, (NodeIdx, String)>,
    shells: Vec<WalkerShell>,
}

impl Builder<'_> {
    fn add_node(&mut self, path: String, name: String, node: Node, motion: Motion) -> Option<NodeIdx> {
        if let Some((_, first)) = self.names.get(&name) {
            self.c.push(path, Problem::Duplicate { name, first: first.clone() });
            return None;
        }
        if self.nodes.len() >= MAX_NODES {
            // Counted and reported once the whole spec is read; stop storing.
            self.nodes.push(node);
            return None;
        }
        let i = self.nodes.len() as NodeIdx;
        self.names.insert(name, (i, path));
        self.nodes.push(node);
        self.motions.push(motion);
        Some(i)
    }

    fn shell(&mut self, i: usize, shell: &Shell, spec: &ConstellationSpec) {
        let path = format!("spec.shells[{i}]");
        let Some(shell_name) = self.c.name(format!("{path}.name"), &shell.name) else {
            return;
        };
        match (&shell.walker, &shell.tles) {
            (Some(_), Some(_)) => self
                .c
                .push(&path, Problem::Conflict("a shell has either `walker` or `tles`, not both".into())),
            (None, None) => self.c.push(&path, Problem::Required("(a shell needs `walker` or `tles`)")),
            (Some(w), None) => self.walker_shell(&path, &shell_name, w, shell),
            (None, Some(tles)) => {
                for (field, set) in [
                    ("altitudeKm", shell.altitude_km.is_some()),
                    ("inclinationDeg", shell.inclination_deg.is_some()),
                ] {
                    if set {
                        self.c.push(
                            format!("{path}.{field}"),
                            Problem::NotUsed("by a TLE shell (the TLE gives the orbit)"),
                        );
                    }
                }
                if shell.isl.as_ref().is_some_and(|isl| isl.grid != Grid::None) {
                    self.c.push(
                        format!("{path}.isl.grid"),
                        Problem::NotUsed("by a TLE shell: only Walker shells have a grid"),
                    );
                }
                if tles.is_empty() {
                    self.c.push(format!("{path}.tles"), Problem::Required("to list at least one TLE"));
                }
                for (j, tle) in tles.iter().enumerate() {
                    self.tle(&format!("{path}.tles[{j}]"), tle, spec);
                }
            }
        }
    }

    fn walker_shell(&mut self, path: &str, shell_name: &str, w: &spec::Walker, shell: &Shell) {
        let mut ok = true;
        let altitude_km = shell.altitude_km.unwrap_or(f64::NAN);
        if shell.altitude_km.is_none() {
            self.c.push(format!("{path}.altitudeKm"), Problem::Required("for a Walker shell"));
            ok = false;
        } else {
            ok &= self.c.range(format!("{path}.altitudeKm"), altitude_km, MIN_ALTITUDE_KM, MAX_ALTITUDE_KM);
        }
        let inclination_deg = shell.inclination_deg.unwrap_or(f64::NAN);
        if shell.inclination_deg.is_none() {
            self.c.push(format!("{path}.inclinationDeg"), Problem::Required("for a Walker shell"));
            ok = false;
        } else {
            ok &= self.c.range(format!("{path}.inclinationDeg"), inclination_deg, 0.0, 180.0);
        }
        ok &= self.c.count(format!("{path}.walker.planes"), w.planes, MAX_WALKER_COUNT);
        ok &= self.c.count(format!("{path}.walker.satsPerPlane"), w.sats_per_plane, MAX_WALKER_COUNT);
        let total = u64::from(w.planes) * u64::from(w.sats_per_plane);
        if total > MAX_NODES as u64 {
            self.c.push(
                format!("{path}.walker"),
                Problem::Conflict(format!(
                    "{} x {} = {total} satellites is more than the {MAX_NODES} orbitnet accepts",
                    w.planes, w.sats_per_plane
                )),
            );
            return;
        }
        if w.planes > 0 && w.phasing >= w.planes {
            self.c.push(
                format!("{path}.walker.phasing"),
                Problem::OutOfRange { value: f64::from(w.phasing), min: 0.0, max: f64::from(w.planes - 1) },
            );
            ok = false;
        }
        let default_spread = match w.kind {
            WalkerType::Delta => 360.0,
            WalkerType::Star => 180.0,
        };
        let spread_deg = w.raan_spread_deg.unwrap_or(default_spread);
        ok &= self.c.positive(format!("{path}.walker.raanSpreadDeg"), spread_deg, 360.0);
        ok &= self.c.range(format!("{path}.walker.raanOffsetDeg"), w.raan_offset_deg, -360.0, 360.0);
        let isl = shell.isl.clone().unwrap_or(spec::Isl {
            grid: Grid::Plus,
            cross_plane_max_lat_deg: None,
            max_range_km: None,
        });
        if let Some(lat) = isl.cross_plane_max_lat_deg {
            ok &= self.c.range(format!("{path}.isl.crossPlaneMaxLatDeg"), lat, 0.0, 90.0);
        }
        if let Some(range) = isl.max_range_km {
            ok &= self.c.positive(format!("{path}.isl.maxRangeKm"), range, MAX_ISL_RANGE_KM);
        }
        let longest =
            format!("{shell_name}-{}-{}", w.planes.saturating_sub(1), w.sats_per_plane.saturating_sub(1));
        if longest.len() > MAX_NAME_LEN {
            self.c.push(
                format!("{path}.name"),
                Problem::BadName {
                    name: longest,
                    reason: "satellite names <shell>-<plane>-<index> would exceed 63 characters",
                },
            );
            ok = false;
        }
        if !ok {
            return;
        }

        let (planes, per_plane) = (w.planes, w.sats_per_plane);
        let first = self.nodes.len() as NodeIdx;
        self.shells.push(WalkerShell { name: shell_name.to_owned(), first, planes, per_plane });
        let inclination_rad = inclination_deg.to_radians();
        for p in 0..planes {
            let raan0 = (w.raan_offset_deg + spread_deg * f64::from(p) / f64::from(planes)).to_radians();
            for s in 0..per_plane {
                let u0 = std::f64::consts::TAU
                    * (f64::from(s) / f64::from(per_plane)
                        + f64::from(w.phasing) * f64::from(p) / (f64::from(planes) * f64::from(per_plane)));
                let orbit = CircularOrbit::new(altitude_km * 1e3, inclination_rad, raan0, u0);
                let node =
                    Node { name: format!("{shell_name}-{p}-{s}"), kind: NodeKind::Satellite, platform: None };
                let name = node.name.clone();
                if self.add_node(path.to_owned(), name, node, Motion::Circular(orbit)).is_none() {
                    return;
                }
            }
        }
        if isl.grid == Grid::None {
            return;
        }
        let idx = |p: u32, s: u32| first + p * per_plane + s;
        let max_lat_rad = isl.cross_plane_max_lat_deg.map(f64::to_radians);
        let max_range_m = isl.max_range_km.map(|km| km * 1e3);
        let mut seen = HashSet::new();
        let mut add = |this: &mut Self, a: NodeIdx, b: NodeIdx, cross_plane: bool| {
            let (a, b) = (a.min(b), a.max(b));
            if a != b && seen.insert((a, b)) {
                let id = LinkId::of(&this.nodes[a as usize].name, &this.nodes[b as usize].name);
                let max_lat_rad = if cross_plane { max_lat_rad } else { None };
                this.isls.push(IslDef { id, a, b, cross_plane, max_lat_rad, max_range_m });
            }
        };
        for p in 0..planes {
            for s in 0..per_plane {
                add(self, idx(p, s), idx(p, (s + 1) % per_plane), false);
                if p + 1 < planes {
                    add(self, idx(p, s), idx(p + 1, s), true);
                } else if w.kind == WalkerType::Delta && planes > 1 {
                    // Plane P would be plane 0 shifted by F slots: close the ring there.
                    add(self, idx(p, s), idx(0, (s + w.phasing) % per_plane), true);
                }
                // Walker star: the first and last planes counter-rotate (the seam): no link.
            }
        }
    }

    fn tle(&mut self, path: &str, tle: &spec::Tle, spec: &ConstellationSpec) {
        let Some(name) = self.c.name(format!("{path}.name"), &tle.name) else {
            return;
        };
        match TleOrbit::new(&tle.line1, &tle.line2, spec.epoch) {
            Ok(orbit) => {
                let days = orbit.age_at_epoch_days().abs();
                if days > TLE_STALE_DAYS {
                    self.warnings.push(format!(
                        "{path}: TLE {name:?} is {days:.0} days from the epoch; SGP4 drifts by kilometres per day that far out"
                    ));
                }
                let node = Node { name: name.clone(), kind: NodeKind::Satellite, platform: None };
                self.add_node(path.to_owned(), name, node, Motion::Tle(Box::new(orbit)));
            }
            Err(e) => {
                let field = match &e {
                    crate::orbit::TleError::Length { line, .. }
                    | crate::orbit::TleError::LineNumber { line, .. }
                    | crate::orbit::TleError::Checksum { line, .. } => format!("{path}.line{line}"),
                    _ => path.to_owned(),
                };
                self.c.push(field, Problem::Tle { name: tle.name.clone(), message: e.to_string() });
            }
        }
    }

    fn ground_station(&mut self, i: usize, gs: &spec::GroundStation) {
        let path = format!("spec.groundStations[{i}]");
        let name = self.c.name(format!("{path}.name"), &gs.name);
        let ok = self.c.range(format!("{path}.latDeg"), gs.lat_deg, -90.0, 90.0)
            & self.c.range(format!("{path}.lonDeg"), gs.lon_deg, -180.0, 180.0)
            & self.c.range(format!("{path}.altM"), gs.alt_m, MIN_ALT_M, MAX_ALT_M);
        let (Some(name), true) = (name, ok) else {
            return;
        };
        let site = Geodetic::from_deg(gs.lat_deg, gs.lon_deg, gs.alt_m);
        let node = Node { name: name.clone(), kind: NodeKind::GroundStation, platform: None };
        self.add_node(path, name, node, Motion::Fixed { ecef: site.to_ecef(), site });
    }

    fn platform(&mut self, i: usize, p: &spec::Platform) {
        let path = format!("spec.platforms[{i}]");
        let name = self.c.name(format!("{path}.name"), &p.name);
        let mut ok = self.c.positive(format!("{path}.speedKmh"), p.speed_kmh, MAX_SPEED_KMH);
        ok &= self.c.range(format!("{path}.altM"), p.alt_m, MIN_ALT_M, MAX_ALT_M);
        if p.waypoints.is_empty() {
            self.c.push(format!("{path}.waypoints"), Problem::Required("(at least one waypoint)"));
            ok = false;
        }
        let mut points = Vec::with_capacity(p.waypoints.len());
        for (j, w) in p.waypoints.iter().enumerate() {
            let wp = format!("{path}.waypoints[{j}]");
            let alt_m = w.alt_m.unwrap_or(p.alt_m);
            ok &= self.c.range(format!("{wp}.latDeg"), w.lat_deg, -90.0, 90.0)
                & self.c.range(format!("{wp}.lonDeg"), w.lon_deg, -180.0, 180.0)
                & self.c.range(format!("{wp}.altM"), alt_m, MIN_ALT_M, MAX_ALT_M);
            points.push((w.lat_deg, w.lon_deg, alt_m));
        }
        let (Some(name), true) = (name, ok) else {
            return;
        };
        let track = Track::new(&points, p.speed_kmh / 3.6, p.looped);
        let node = Node { name: name.clone(), kind: NodeKind::Platform, platform: Some(p.kind) };
        self.add_node(path, name, node, Motion::Track(track));
    }

    fn ground_links(&mut self, g: &spec::GroundLinks) -> GroundLinkParams {
        let path = "spec.groundLinks";
        self.c.range(format!("{path}.minElevationDeg"), g.min_elevation_deg, 0.0, 90.0);
        self.c.count(format!("{path}.antennas"), g.antennas, MAX_ANTENNAS);
        self.c.non_negative(format!("{path}.hysteresisDeg"), g.hysteresis_deg, 90.0);
        self.c.non_negative(format!("{path}.hysteresisKm"), g.hysteresis_km, MAX_HYSTERESIS_KM);
        self.c.range(format!("{path}.atmosphericLossPct"), g.atmospheric_loss_pct, 0.0, 100.0);
        GroundLinkParams {
            min_elevation_rad: g.min_elevation_deg.to_radians(),
            policy: g.policy,
            antennas: g.antennas as usize,
            hysteresis_rad: g.hysteresis_deg.to_radians(),
            hysteresis_m: g.hysteresis_km * 1e3,
            zenith_loss_frac: g.atmospheric_loss_pct / 100.0,
        }
    }

    fn node_templates(&mut self, t: &spec::NodeTemplates) {
        for (role, template) in
            [("satellite", &t.satellite), ("groundStation", &t.ground_station), ("platform", &t.platform)]
        {
            let Some(template) = template else { continue };
            let path = format!("spec.nodes.{role}");
            if template.command.as_ref().is_some_and(|c| c.is_empty() || c[0].is_empty()) {
                self.c.push(
                    format!("{path}.command"),
                    Problem::Conflict("is empty: give the program to run first".into()),
                );
            }
            for key in template.env.keys() {
                let valid = !key.is_empty() && !key.contains('=') && !key.contains('\0');
                if !valid {
                    self.c.push(
                        format!("{path}.env"),
                        Problem::Conflict(format!("{key:?} is not a valid variable name")),
                    );
                }
            }
        }
    }

    /// The address ranges, checked to hold every node and every link that can exist.
    fn addressing(&mut self, a: &spec::AddressingSpec, nothing_to_address: bool) -> Addressing {
        let path = "spec.addressing";
        if a.node_cidr.overlaps(&a.link_cidr) {
            self.c.push(
                format!("{path}.linkCidr"),
                Problem::Conflict(format!("{} overlaps nodeCidr {}", a.link_cidr, a.node_cidr)),
            );
        }
        if !nothing_to_address {
            let nodes = self.nodes.len() as u64;
            if nodes + 2 > a.node_cidr.size() {
                self.c.push(
                    format!("{path}.nodeCidr"),
                    Problem::Conflict(format!(
                        "{} holds {} node addresses, the constellation has {nodes} nodes",
                        a.node_cidr,
                        a.node_cidr.size().saturating_sub(2)
                    )),
                );
            }
            let n_sats = self.nodes.iter().filter(|n| n.kind == NodeKind::Satellite).count() as u64;
            let links = self.isls.len() as u64 + (nodes - n_sats) * n_sats;
            if 2 * links > a.link_cidr.size() {
                self.c.push(
                    format!("{path}.linkCidr"),
                    Problem::Conflict(format!(
                        "{} holds {} /31 links, the constellation can form {links}; give a shorter prefix",
                        a.link_cidr,
                        a.link_cidr.size() / 2
                    )),
                );
            }
        }
        Addressing { nodes: a.node_cidr, links: a.link_cidr }
    }

    fn class(&mut self, path: &str, class: &spec::LinkClass) -> ClassParams {
        self.c.positive(format!("{path}.rateMbps"), class.rate_mbps, MAX_RATE_MBPS);
        self.c.range(format!("{path}.lossPct"), class.loss_pct, 0.0, 100.0);
        self.c.non_negative(format!("{path}.processingDelayUs"), class.processing_delay_us, MAX_DELAY_US);
        self.c.non_negative(format!("{path}.jitterUs"), class.jitter_us, MAX_DELAY_US);
        ClassParams {
            rate_bps: mbps_to_bps(class.rate_mbps),
            loss_frac: class.loss_pct / 100.0,
            processing_delay_ns: us_to_ns(class.processing_delay_us),
            jitter_ns: us_to_ns(class.jitter_us),
        }
    }

    fn node_ref(&mut self, path: String, name: &str) -> Option<NodeIdx> {
        let lower = name.to_ascii_lowercase();
        match self.names.get(&lower) {
            Some(&(i, _)) => Some(i),
            None => {
                let suggestion = closest_name(&lower, self.names.keys());
                self.c.push(path, Problem::UnknownNode { name: name.to_owned(), suggestion });
                None
            }
        }
    }

    fn fault(
        &mut self,
        i: usize,
        f: &spec::Fault,
        n_sats: usize,
        isl_pairs: &HashSet<(NodeIdx, NodeIdx)>,
    ) -> Option<FaultDef> {
        let path = format!("spec.faults[{i}]");
        let problems_before = self.c.problems.len();
        let kind_name = f.kind.as_str();
        let present = [
            ("node", f.node.is_some()),
            ("a", f.a.is_some()),
            ("b", f.b.is_some()),
            ("latDeg", f.lat_deg.is_some()),
            ("lonDeg", f.lon_deg.is_some()),
            ("radiusKm", f.radius_km.is_some()),
            ("lossPct", f.loss_pct.is_some()),
            ("extraDelayUs", f.extra_delay_us.is_some()),
            ("rateMbps", f.rate_mbps.is_some()),
        ];
        for (field, set) in present {
            if set && !f.kind.fields().contains(&field) {
                self.c.push(
                    format!("{path}.{field}"),
                    Problem::Conflict(format!("is not used by a {kind_name} fault")),
                );
            }
        }
        if f.duration == Some(SpecDuration::ZERO) {
            self.c.push(format!("{path}.duration"), Problem::NotPositive { value: 0.0 });
        }
        let start = SimTime::ZERO.checked_add(f.at);
        let end = f.duration.map(|d| start.and_then(|s| s.checked_add(d)));
        if start.is_none() || end.is_some_and(|e| e.is_none()) {
            self.c.push(format!("{path}.at"), Problem::Conflict("at + duration is beyond 292 years".into()));
        }

        let required = |this: &mut Self, field: &str, v: &Option<String>| -> Option<NodeIdx> {
            match v {
                Some(name) => this.node_ref(format!("{path}.{field}"), name),
                None => {
                    this.c.push(format!("{path}.{field}"), Problem::Required(required_hint(f.kind)));
                    None
                }
            }
        };
        let mut extra_loss_frac = 0.0;
        let mut extra_delay_ns = 0;
        let mut rate_cap_bps = None;
        let target = match f.kind {
            FaultKind::NodeDown => required(self, "node", &f.node).map(FaultTarget::Node),
            FaultKind::StationDown => {
                let node = required(self, "node", &f.node)?;
                if (node as usize) < n_sats {
                    self.c.push(
                        format!("{path}.node"),
                        Problem::WrongNodeKind {
                            node: self.nodes[node as usize].name.clone(),
                            actual: "satellite",
                            wanted: "stationDown takes a ground station or platform (use nodeDown for a satellite)",
                        },
                    );
                }
                Some(FaultTarget::Node(node))
            }
            FaultKind::LinkDown => {
                let (a, b) = (required(self, "a", &f.a), required(self, "b", &f.b));
                self.link_target(&path, a, b, n_sats, isl_pairs)
            }
            FaultKind::Jamming => {
                let need = |this: &mut Self, field: &str, v: Option<f64>| -> f64 {
                    if v.is_none() {
                        this.c.push(format!("{path}.{field}"), Problem::Required(required_hint(f.kind)));
                    }
                    v.unwrap_or(f64::NAN)
                };
                let (lat, lon) = (need(self, "latDeg", f.lat_deg), need(self, "lonDeg", f.lon_deg));
                let (radius, loss) = (need(self, "radiusKm", f.radius_km), need(self, "lossPct", f.loss_pct));
                if f.lat_deg.is_some() {
                    self.c.range(format!("{path}.latDeg"), lat, -90.0, 90.0);
                }
                if f.lon_deg.is_some() {
                    self.c.range(format!("{path}.lonDeg"), lon, -180.0, 180.0);
                }
                if f.radius_km.is_some() {
                    self.c.positive(format!("{path}.radiusKm"), radius, MAX_JAMMING_RADIUS_KM);
                }
                if f.loss_pct.is_some() {
                    self.c.range(format!("{path}.lossPct"), loss, 0.0, 100.0);
                }
                extra_loss_frac = loss / 100.0;
                Some(FaultTarget::Area {
                    lat_rad: lat.to_radians(),
                    lon_rad: lon.to_radians(),
                    radius_m: radius * 1e3,
                })
            }
            FaultKind::Degraded => {
                if f.loss_pct.is_none() && f.extra_delay_us.is_none() && f.rate_mbps.is_none() {
                    self.c.push(
                        &path,
                        Problem::Required("(a degraded fault needs extraDelayUs, lossPct or rateMbps)"),
                    );
                }
                if let Some(loss) = f.loss_pct {
                    self.c.range(format!("{path}.lossPct"), loss, 0.0, 100.0);
                    extra_loss_frac = loss / 100.0;
                }
                if let Some(us) = f.extra_delay_us {
                    self.c.non_negative(format!("{path}.extraDelayUs"), us, MAX_DELAY_US);
                    extra_delay_ns = us_to_ns(us);
                }
                if let Some(rate) = f.rate_mbps {
                    self.c.positive(format!("{path}.rateMbps"), rate, MAX_RATE_MBPS);
                    rate_cap_bps = Some(mbps_to_bps(rate));
                }
                match (&f.node, &f.a, &f.b) {
                    (Some(node), None, None) => {
                        self.node_ref(format!("{path}.node"), node).map(FaultTarget::Node)
                    }
                    (None, Some(_), Some(_)) => {
                        let (a, b) = (required(self, "a", &f.a), required(self, "b", &f.b));
                        self.link_target(&path, a, b, n_sats, isl_pairs)
                    }
                    _ => {
                        self.c.push(
                            &path,
                            Problem::Required("(a degraded fault needs `node`, or `a` and `b`)"),
                        );
                        None
                    }
                }
            }
        };
        if self.c.problems.len() > problems_before {
            return None;
        }
        Some(FaultDef {
            spec_index: i,
            name: f.name.as_ref().map(|n| n.to_ascii_lowercase()),
            kind: f.kind,
            target: target?,
            start: start?,
            end: end.flatten(),
            extra_loss_frac,
            extra_delay_ns,
            rate_cap_bps,
        })
    }

    /// A pair of nodes that can ever be linked: an ISL of the grid, or a ground node and a
    /// satellite.
    fn link_target(
        &mut self,
        path: &str,
        a: Option<NodeIdx>,
        b: Option<NodeIdx>,
        n_sats: usize,
        isl_pairs: &HashSet<(NodeIdx, NodeIdx)>,
    ) -> Option<FaultTarget> {
        let (a, b) = (a?, b?);
        let (lo, hi) = (a.min(b), a.max(b));
        let name = |i: NodeIdx| self.nodes[i as usize].name.clone();
        let reason = if a == b {
            Some("a link joins two different nodes")
        } else if (hi as usize) < n_sats && !isl_pairs.contains(&(lo, hi)) {
            Some("no inter-satellite link of the grid joins them")
        } else if (lo as usize) >= n_sats {
            Some("ground nodes link only to satellites")
        } else {
            None
        };
        if let Some(reason) = reason {
            let problem = Problem::NotLinked { a: name(a), b: name(b), reason };
            self.c.push(format!("{path}.b"), problem);
            return None;
        }
        Some(FaultTarget::Link(lo, hi))
    }
}

impl Builder<'_> {
    /// The daemons' settings for `routing: ospf` or `isis` (defaults when the spec gives
    /// none), checked; `None` for central or no routing.
    fn routing_protocol(&mut self, spec: &ConstellationSpec) -> Option<spec::RoutingProtocol> {
        let path = "spec.routingProtocol";
        if !spec.routing.is_protocol() {
            if spec.routing_protocol.is_some() {
                self.c.push(
                    path,
                    Problem::Conflict("is used only with `routing: ospf` or `routing: isis`".into()),
                );
            }
            return None;
        }
        let p = spec.routing_protocol.clone().unwrap_or_default();
        if spec.routing == spec::Routing::Isis && p.daemon == spec::RoutingDaemon::Bird {
            self.c.push(
                format!("{path}.daemon"),
                Problem::Conflict(
                    "BIRD 2 does not speak IS-IS: use `daemon: frr`, or `routing: ospf`".into(),
                ),
            );
        }
        let u = |x: u32| f64::from(x);
        let hello_ok = self.c.range(
            format!("{path}.helloIntervalS"),
            u(p.hello_interval_s),
            1.0,
            u(MAX_PROTOCOL_INTERVAL_S),
        );
        let dead_ok = self.c.range(
            format!("{path}.deadIntervalS"),
            u(p.dead_interval_s),
            1.0,
            u(MAX_PROTOCOL_INTERVAL_S),
        );
        if hello_ok && dead_ok && p.dead_interval_s <= p.hello_interval_s {
            self.c.push(
                format!("{path}.deadIntervalS"),
                Problem::Conflict(format!(
                    "{} s is not longer than helloIntervalS ({} s): every neighbour would flap",
                    p.dead_interval_s, p.hello_interval_s
                )),
            );
        }
        for (field, v) in
            [("delayMs", p.spf.delay_ms), ("holdMs", p.spf.hold_ms), ("maxHoldMs", p.spf.max_hold_ms)]
        {
            self.c.range(format!("{path}.spf.{field}"), u(v), 0.0, u(MAX_SPF_MS));
        }
        if p.spf.hold_ms > p.spf.max_hold_ms {
            self.c.push(
                format!("{path}.spf.maxHoldMs"),
                Problem::Conflict(format!("{} ms is below holdMs ({} ms)", p.spf.max_hold_ms, p.spf.hold_ms)),
            );
        }
        self.c.range(
            format!("{path}.bfd.intervalMs"),
            u(p.bfd.interval_ms),
            u(MIN_BFD_INTERVAL_MS),
            u(MAX_BFD_INTERVAL_MS),
        );
        self.c.range(format!("{path}.bfd.multiplier"), u(p.bfd.multiplier), 2.0, 255.0);
        Some(p)
    }
}

/// The mission's flows and objectives.
impl Builder<'_> {
    /// Fault names are DNS labels, unique among the faults.
    fn fault_names(&mut self, faults: &[spec::Fault]) {
        let names = faults.iter().enumerate().filter_map(|(i, f)| Some((i, f.name.as_deref()?)));
        self.unique_names("spec.faults", names);
    }

    /// Flow names are DNS labels, unique among the flows.
    fn flow_names(&mut self, flows: &[spec::Flow]) {
        self.unique_names("spec.traffic", flows.iter().enumerate().map(|(i, f)| (i, f.name.as_str())));
    }

    /// The `name`s of `list`'s items (index, name) are DNS labels, unique once lower-cased;
    /// a repeat points at the first use.
    fn unique_names<'n>(&mut self, list: &str, names: impl Iterator<Item = (usize, &'n str)>) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, name) in names {
            let path = format!("{list}[{i}].name");
            let Some(lower) = self.c.name(&path, name) else { continue };
            match seen.get(&lower) {
                Some(first) => {
                    let first = format!("{list}[{first}].name");
                    self.c.push(path, Problem::Duplicate { name: name.to_owned(), first });
                }
                None => {
                    seen.insert(lower, i);
                }
            }
        }
    }

    fn flow(&mut self, i: usize, f: &spec::Flow, spec: &ConstellationSpec, n_sats: usize) -> Option<FlowDef> {
        let path = format!("spec.traffic[{i}]");
        let before = self.c.problems.len();
        if i >= MAX_FLOWS as usize {
            self.c.push("spec.traffic", Problem::Conflict(format!("at most {MAX_FLOWS} flows")));
            return None;
        }
        let from = self.node_ref(format!("{path}.from"), &f.from);
        let to = self.node_ref(format!("{path}.to"), &f.to);
        if from.is_some() && from == to {
            self.c.push(
                format!("{path}.to"),
                Problem::Conflict(format!("{:?} is also `from`: a flow joins two different nodes", f.to)),
            );
        }
        if let Some(to) = to
            && (to as usize) < n_sats
            && spec.routing == spec::Routing::ShortestPath
            && spec.route_to == spec::RouteTo::Ground
        {
            self.c.push(
                format!("{path}.to"),
                Problem::Conflict(format!(
                    "{:?} is a satellite, and with `routeTo: ground` no node has a route to a satellite",
                    f.to
                )),
            );
        }
        let size = f.size_bytes;
        self.c.bound(
            &format!("{path}.sizeBytes"),
            f64::from(MIN_SIZE_BYTES),
            false,
            f64::from(MAX_SIZE_BYTES),
        );
        if !(MIN_SIZE_BYTES..=MAX_SIZE_BYTES).contains(&size) {
            self.c.push(
                format!("{path}.sizeBytes"),
                Problem::OutOfRange {
                    value: f64::from(size),
                    min: f64::from(MIN_SIZE_BYTES),
                    max: f64::from(MAX_SIZE_BYTES),
                },
            );
        }
        if let Some(dscp) = f.dscp {
            self.c.bound(&format!("{path}.dscp"), 0.0, false, f64::from(MAX_DSCP));
            if dscp > MAX_DSCP {
                self.c.push(
                    format!("{path}.dscp"),
                    Problem::OutOfRange { value: f64::from(dscp), min: 0.0, max: f64::from(MAX_DSCP) },
                );
            }
        }
        let pps = match (f.packets_per_second, f.rate_mbps) {
            (Some(pps), None) => self
                .c
                .positive(format!("{path}.packetsPerSecond"), pps, MAX_PACKETS_PER_SECOND)
                .then_some(pps),
            (None, Some(mbps)) => {
                let ok = self.c.positive(format!("{path}.rateMbps"), mbps, MAX_RATE_MBPS);
                let pps = mbps * 1e6 / (f64::from(size.max(1)) * 8.0);
                if ok && pps > MAX_PACKETS_PER_SECOND {
                    self.c.push(
                        format!("{path}.rateMbps"),
                        Problem::Conflict(format!(
                            "{mbps} Mbit/s of {size}-byte datagrams is {pps:.0} datagrams/s, more than {MAX_PACKETS_PER_SECOND}: use larger datagrams"
                        )),
                    );
                }
                ok.then_some(pps)
            }
            (Some(_), Some(_)) => {
                self.c.push(
                    format!("{path}.rateMbps"),
                    Problem::Conflict("give `packetsPerSecond` or `rateMbps`, not both".into()),
                );
                None
            }
            (None, None) => {
                self.c.push(
                    format!("{path}.packetsPerSecond"),
                    Problem::Required("(or `rateMbps`): a flow needs a rate"),
                );
                None
            }
        };
        if f.duration == Some(SpecDuration::ZERO) {
            self.c.push(format!("{path}.duration"), Problem::NotPositive { value: 0.0 });
        }
        let start = SimTime::ZERO.checked_add(f.start.unwrap_or(SpecDuration::ZERO));
        let end = f.duration.map(|d| start.and_then(|s| s.checked_add(d)));
        if start.is_none() || end.is_some_and(|e| e.is_none()) {
            self.c.push(
                format!("{path}.start"),
                Problem::Conflict("start + duration is beyond 292 years".into()),
            );
        }
        if let (Some(run), Some(start)) = (spec.duration, f.start)
            && start >= run
        {
            self.c.push(
                format!("{path}.start"),
                Problem::Conflict(format!(
                    "the flow starts at {start}, not before the run ends (spec.duration {run})"
                )),
            );
        }
        if self.c.problems.len() > before {
            return None;
        }
        Some(FlowDef {
            name: f.name.to_ascii_lowercase(),
            from: from?,
            to: to?,
            packets_per_second: pps?,
            size_bytes: size,
            dscp: f.dscp.unwrap_or(0) as u8,
            start: start?,
            end: end.flatten(),
        })
    }

    fn objective(
        &mut self,
        i: usize,
        o: &spec::Objective,
        spec: &ConstellationSpec,
        flows: &[FlowDef],
        faults: &[FaultDef],
    ) -> Option<ObjectiveDef> {
        let path = format!("spec.objectives[{i}]");
        let before = self.c.problems.len();
        if i >= MAX_OBJECTIVES as usize {
            self.c.push("spec.objectives", Problem::Conflict(format!("at most {MAX_OBJECTIVES} objectives")));
            return None;
        }
        let name = match (&o.name, &o.flow) {
            (Some(n), _) => self.c.name(format!("{path}.name"), n),
            (None, Some(flow)) => Some(format!("{}-{}", flow.to_ascii_lowercase(), o.kind.as_str())),
            (None, None) => Some(o.kind.as_str().to_owned()),
        };
        let flow = match (&o.flow, o.kind.of_flow()) {
            (Some(_), false) => {
                self.c.push(
                    format!("{path}.flow"),
                    Problem::Conflict(format!(
                        "{} objectives bound every ground pair's routing and take no flow",
                        o.kind.as_str()
                    )),
                );
                None
            }
            (None, true) => {
                self.c.push(format!("{path}.flow"), Problem::Required(required_objective_hint(o.kind)));
                None
            }
            (None, false) => Some(None),
            (Some(name), true) => {
                // By the name exactly as written: cheap enough for the CRD's rule to check too.
                let spec_flow = spec.traffic.iter().position(|f| &f.name == name);
                if spec_flow.is_none() {
                    let known: Vec<String> = spec.traffic.iter().map(|f| f.name.clone()).collect();
                    let hint = closest_name(name, known.iter())
                        .map(|s| format!(" (did you mean {s:?}?)"))
                        .unwrap_or_default();
                    self.c.push(
                        format!("{path}.flow"),
                        Problem::Conflict(format!("no flow named {name:?} in spec.traffic{hint}")),
                    );
                }
                spec_flow
                    .and_then(|i| {
                        flows.iter().position(|f| f.name == spec.traffic[i].name.to_ascii_lowercase())
                    })
                    .map(Some)
            }
        };
        let kind = o.kind.as_str();
        let present = [
            ("percentile", o.percentile.is_some()),
            ("maxMs", o.max_ms.is_some()),
            ("minPct", o.min_pct.is_some()),
            ("maxS", o.max_s.is_some()),
            ("maxStretch", o.max_stretch.is_some()),
        ];
        for (field, set) in present {
            if set && !o.kind.fields().contains(&field) {
                self.c.push(
                    format!("{path}.{field}"),
                    Problem::Conflict(format!("is not used by {kind} objectives")),
                );
            }
        }
        let need = |this: &mut Self, field: &str, v: Option<f64>| -> f64 {
            if v.is_none() {
                this.c.push(format!("{path}.{field}"), Problem::Required(required_objective_hint(o.kind)));
            }
            v.unwrap_or(f64::NAN)
        };
        let bound = match o.kind {
            ObjectiveKind::Latency => {
                let max_ms = need(self, "maxMs", o.max_ms);
                let percentile = o.percentile.unwrap_or(DEFAULT_PERCENTILE);
                let ok = self.c.range(format!("{path}.percentile"), percentile, 0.0, 100.0);
                let ok = o.max_ms.is_some()
                    && self.c.positive(format!("{path}.maxMs"), max_ms, MAX_LATENCY_MS)
                    && ok;
                ok.then_some(Requirement::Latency { percentile, max_ms })
            }
            ObjectiveKind::Jitter => {
                let max_ms = need(self, "maxMs", o.max_ms);
                let ok =
                    o.max_ms.is_some() && self.c.positive(format!("{path}.maxMs"), max_ms, MAX_LATENCY_MS);
                ok.then_some(Requirement::Jitter { max_ms })
            }
            ObjectiveKind::Delivery => {
                let min_pct = need(self, "minPct", o.min_pct);
                let ok = o.min_pct.is_some() && self.c.range(format!("{path}.minPct"), min_pct, 0.0, 100.0);
                ok.then_some(Requirement::Delivery { min_pct })
            }
            ObjectiveKind::Outage | ObjectiveKind::Convergence => {
                let max_s = need(self, "maxS", o.max_s);
                let ok =
                    o.max_s.is_some() && self.c.non_negative(format!("{path}.maxS"), max_s, MAX_OUTAGE_S);
                ok.then_some(if o.kind == ObjectiveKind::Outage {
                    Requirement::Outage { max_s }
                } else {
                    Requirement::Convergence { max_s }
                })
            }
            ObjectiveKind::Stretch => {
                let max = need(self, "maxStretch", o.max_stretch);
                let ok = o.max_stretch.is_some()
                    && self.c.range(format!("{path}.maxStretch"), max, 1.0, MAX_STRETCH);
                ok.then_some(Requirement::Stretch { max })
            }
        };
        let window = self.window(&format!("{path}.window"), o.window.as_ref(), spec, faults);
        if self.c.problems.len() > before {
            return None;
        }
        Some(ObjectiveDef { name: name?, flow: flow?, requirement: bound?, window: window? })
    }

    fn window(
        &mut self,
        path: &str,
        w: Option<&spec::Window>,
        spec: &ConstellationSpec,
        faults: &[FaultDef],
    ) -> Option<WindowDef> {
        let Some(w) = w else {
            return Some(WindowDef { from: SimTime::ZERO, to: None, describe: "the whole run".into() });
        };
        let times = w.from.is_some() || w.to.is_some();
        let kinds = usize::from(times) + usize::from(w.during.is_some()) + usize::from(w.after.is_some());
        if kinds != 1 {
            self.c.push(
                path,
                Problem::Conflict("a window is `from`/`to`, `during` a fault, or `after` a fault (with `settle`): exactly one".into()),
            );
            return None;
        }
        if w.settle.is_some() && w.after.is_none() {
            self.c.push(format!("{path}.settle"), Problem::Conflict("is used only with `after`".into()));
            return None;
        }
        let window = if times {
            let from = SimTime::ZERO.checked_add(w.from.unwrap_or(SpecDuration::ZERO))?;
            let to = match w.to {
                Some(to) => Some(SimTime::ZERO.checked_add(to)?),
                None => None,
            };
            if to.is_some_and(|to| to <= from) {
                self.c.push(
                    format!("{path}.to"),
                    Problem::Conflict(format!(
                        "{} is not after `from` ({})",
                        w.to?,
                        w.from.unwrap_or_default()
                    )),
                );
                return None;
            }
            let describe = match (w.from, w.to) {
                (Some(f), Some(t)) => format!("from {f} to {t}"),
                (Some(f), None) => format!("from {f} to the end"),
                (None, Some(t)) => format!("from the start to {t}"),
                (None, None) => unreachable!("`times` is set by one of them"),
            };
            WindowDef { from, to, describe }
        } else {
            let (field, r) = match (&w.during, &w.after) {
                (Some(r), _) => ("during", r),
                (_, Some(r)) => ("after", r),
                _ => unreachable!("one of them is set (kinds == 1, !times)"),
            };
            let fault = self.fault_ref(&format!("{path}.{field}"), r, spec, faults)?;
            let label = match &fault.name {
                Some(n) => format!("fault {} ({n})", fault.spec_index),
                None => format!("fault {}", fault.spec_index),
            };
            if field == "during" {
                WindowDef { from: fault.start, to: fault.end, describe: format!("during {label}") }
            } else {
                let Some(end) = fault.end else {
                    self.c.push(
                        format!("{path}.after"),
                        Problem::Conflict(format!("{label} has no `duration`: it never ends")),
                    );
                    return None;
                };
                let settle = w.settle.unwrap_or_default();
                let from = end.checked_add(settle)?;
                WindowDef { from, to: None, describe: format!("{settle} after {label} ends") }
            }
        };
        if let Some(run) = spec.duration {
            let end = SimTime::ZERO.checked_add(run)?;
            if window.from >= end {
                self.c.push(
                    path,
                    Problem::Conflict(format!(
                        "the window ({}) begins at {} s, not before the run ends (spec.duration {run})",
                        window.describe, window.from
                    )),
                );
                return None;
            }
            if window.to.is_some_and(|to| to > end) {
                self.c.push(
                    path,
                    Problem::Conflict(format!(
                        "the window ({}) ends at {} s, after the run (spec.duration {run})",
                        window.describe, window.to?
                    )),
                );
                return None;
            }
        }
        Some(window)
    }

    fn fault_ref<'f>(
        &mut self,
        path: &str,
        r: &FaultRef,
        spec: &ConstellationSpec,
        faults: &'f [FaultDef],
    ) -> Option<&'f FaultDef> {
        let index = match r {
            FaultRef::Index(i) => {
                let i = *i as usize;
                if i >= spec.faults.len() {
                    self.c.push(
                        path,
                        Problem::Conflict(format!(
                            "there is no fault {i}: spec.faults has {}",
                            spec.faults.len()
                        )),
                    );
                    return None;
                }
                i
            }
            FaultRef::Name(name) => {
                match spec
                    .faults
                    .iter()
                    .position(|f| f.name.as_ref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                {
                    Some(i) => i,
                    None => {
                        let known: Vec<String> = spec
                            .faults
                            .iter()
                            .filter_map(|f| f.name.as_ref().map(|n| n.to_ascii_lowercase()))
                            .collect();
                        let hint = closest_name(&name.to_ascii_lowercase(), known.iter())
                            .map(|s| format!(" (did you mean {s:?}?)"))
                            .unwrap_or_default();
                        self.c.push(path, Problem::Conflict(format!("no fault named {name:?}{hint}")));
                        return None;
                    }
                }
            }
        };
        // A fault that did not compile has its own problem already.
        faults.iter().find(|f| f.spec_index == index)
    }
}

fn required_objective_hint(kind: ObjectiveKind) -> &'static str {
    match kind {
        ObjectiveKind::Latency => "for a latency objective",
        ObjectiveKind::Delivery => "for a delivery objective",
        ObjectiveKind::Outage => "for an outage objective",
        ObjectiveKind::Jitter => "for a jitter objective",
        ObjectiveKind::Convergence => "for a convergence objective",
        ObjectiveKind::Stretch => "for a stretch objective",
    }
}

fn required_hint(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::NodeDown => "for a nodeDown fault",
        FaultKind::StationDown => "for a stationDown fault",
        FaultKind::LinkDown => "for a linkDown fault",
        FaultKind::Jamming => "for a jamming fault",
        FaultKind::Degraded => "for a degraded fault",
    }
}

fn mbps_to_bps(mbps: f64) -> u64 {
    // Validated finite and within 0..1e6 Mbps before use; the saturating cast covers the rest.
    (mbps * 1e6).round() as u64
}

fn us_to_ns(us: f64) -> u64 {
    (us * 1e3).round() as u64
}

/// The known name nearest to `name` by edit distance, if it is close (a likely typo).
fn closest_name<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<String> {
    known
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, _)| *d <= 2.max(name.len() / 4))
        .min_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(y.1)))
        .map(|(_, k)| k.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{SHELL, assert_problem, plan, problems};

    /// Every scenario under scenarios/ compiles, without warnings.
    #[test]
    fn every_scenario_compiles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let yaml = std::fs::read_to_string(&path).unwrap();
                let plan = compile_yaml(&yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(plan.warnings.is_empty(), "{}: {:?}", path.display(), plan.warnings);
                seen += 1;
            }
        }
        assert!(seen >= 4, "only {seen} scenarios found in {}", dir.display());
    }

    #[test]
    fn backbone_has_the_nodes_and_links_of_its_spec() {
        let yaml = include_str!("../../../scenarios/backbone.yaml");
        let plan = compile_yaml(yaml).unwrap();
        assert_eq!(plan.name, "backbone");
        assert_eq!(plan.n_sats, 67);
        assert_eq!(plan.node(0).name, "polar-0-0");
        assert_eq!(plan.node(65).name, "polar-5-10");
        assert_eq!(plan.node(66).name, "sat-a", "TLE names are lower-cased");
        assert_eq!(plan.node_index("SAT-A"), Some(66));
        assert_eq!(plan.node(67).name, "thule");
        assert_eq!(plan.node(70).name, "carrier-1");
        assert_eq!(plan.node(70).kind, NodeKind::Platform);
        // Walker star 6 x 11: 66 in-plane links, 5 x 11 cross-plane (no seam link).
        assert_eq!(plan.isls.len(), 66 + 55);
        assert_eq!(plan.node(71).name, "isr-1");
        assert_eq!(plan.faults.len(), 4);
        assert_eq!((plan.flows.len(), plan.objectives.len()), (3, 6));
        assert_eq!(plan.tick, SpecDuration::from_secs(1));
    }

    #[test]
    fn walker_delta_closes_the_ring_with_the_phasing_offset() {
        let p = plan(SHELL);
        // 4 x 6 delta: 24 in-plane + 24 cross-plane, the last plane linked back to plane 0.
        assert_eq!(p.isls.len(), 48);
        let (a, b) = (p.node_index("s-3-0").unwrap(), p.node_index("s-0-1").unwrap());
        assert!(p.isls.iter().any(|l| (l.a, l.b) == (a.min(b), a.max(b)) && l.cross_plane));
    }

    #[test]
    fn the_empty_constellation_is_refused() {
        assert_problem(&problems(""), &["spec.shells", "empty"]);
        assert_problem(&problems("  shells: []"), &["spec.shells", "empty"]);
    }

    #[test]
    fn out_of_range_values_name_the_field_and_the_value() {
        let p = problems(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: thule, latDeg: 91.2, lonDeg: -68.7}}"
        ));
        assert_problem(&p, &["spec.groundStations[0].latDeg", "91.2", "-90..90"]);
        let p = problems(&format!("{SHELL}\n  groundStations:\n  - {{name: x, latDeg: 0, lonDeg: 200}}"));
        assert_problem(&p, &["spec.groundStations[0].lonDeg", "200"]);
        let p = problems(
            "  shells:\n  - {name: s, walker: {type: star, planes: 2, satsPerPlane: 2}, altitudeKm: 50, inclinationDeg: 190}",
        );
        assert_problem(&p, &["spec.shells[0].altitudeKm", "50"]);
        assert_problem(&p, &["spec.shells[0].inclinationDeg", "190"]);
    }

    #[test]
    fn zero_planes_and_bad_phasing_are_refused() {
        let p = problems(
            "  shells:\n  - {name: s, walker: {type: delta, planes: 0, satsPerPlane: 4}, altitudeKm: 500, inclinationDeg: 50}",
        );
        assert_problem(&p, &["spec.shells[0].walker.planes", "0", "greater than 0"]);
        let p = problems(
            "  shells:\n  - {name: s, walker: {type: delta, planes: 3, satsPerPlane: 4, phasing: 3}, altitudeKm: 500, inclinationDeg: 50}",
        );
        assert_problem(&p, &["spec.shells[0].walker.phasing", "3", "0..2"]);
        let p = problems(
            "  shells:\n  - {name: s, walker: {type: delta, planes: -1, satsPerPlane: 4}, altitudeKm: 500, inclinationDeg: 50}",
        );
        assert_problem(&p, &["spec.shells[0].walker.planes", "-1"]);
    }

    #[test]
    fn negative_rates_and_losses_are_refused() {
        let p = problems(&format!(
            "{SHELL}\n  linkClasses:\n    isl: {{rateMbps: -5}}\n    gsl: {{rateMbps: 10, lossPct: 120}}"
        ));
        assert_problem(&p, &["spec.linkClasses.isl.rateMbps", "-5", "greater than 0"]);
        assert_problem(&p, &["spec.linkClasses.gsl.lossPct", "120"]);
        let p =
            problems(&format!("{SHELL}\n  linkClasses:\n    isl: {{rateMbps: 5, processingDelayUs: -1}}"));
        assert_problem(&p, &["spec.linkClasses.isl.processingDelayUs", "-1", "negative"]);
    }

    #[test]
    fn not_a_number_is_refused() {
        let p = problems(&format!("{SHELL}\n  groundStations:\n  - {{name: x, latDeg: .nan, lonDeg: .inf}}"));
        assert_problem(&p, &["spec.groundStations[0].latDeg", "NaN"]);
        assert_problem(&p, &["spec.groundStations[0].lonDeg", "inf"]);
    }

    #[test]
    fn duplicate_names_point_at_the_first_use() {
        let p = problems(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: thule, latDeg: 0, lonDeg: 0}}\n  - {{name: Thule, latDeg: 1, lonDeg: 1}}"
        ));
        assert_problem(&p, &["spec.groundStations[1]", "\"thule\"", "spec.groundStations[0]"]);
        let p = problems(&format!("{SHELL}\n  groundStations:\n  - {{name: s-0-0, latDeg: 0, lonDeg: 0}}"));
        assert_problem(&p, &["spec.groundStations[0]", "s-0-0", "spec.shells[0]"]);
    }

    #[test]
    fn names_must_be_dns_labels() {
        let p = problems(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: thule air base, latDeg: 0, lonDeg: 0}}"
        ));
        assert_problem(&p, &["spec.groundStations[0].name", "thule air base", "DNS label"]);
        let p = problems(&format!("{SHELL}\n  groundStations:\n  - {{name: -x, latDeg: 0, lonDeg: 0}}"));
        assert_problem(&p, &["spec.groundStations[0].name", "'-'"]);
        let long = "a".repeat(60);
        let p = problems(&format!(
            "  shells:\n  - {{name: {long}, walker: {{type: delta, planes: 10, satsPerPlane: 10}}, altitudeKm: 500, inclinationDeg: 50}}"
        ));
        assert_problem(&p, &["spec.shells[0].name", "63"]);
    }

    #[test]
    fn a_malformed_tle_reports_its_checksum() {
        let p = problems(
            "  shells:\n  - name: t\n    tles:\n    - name: SAT-A\n      line1: \"1 25544U 98067A   26328.50000000  .00016717  00000-0  10270-3 0  9995\"\n      line2: \"2 25544  51.6400 208.9163 0006317  69.9862  25.2906 15.50000000 10000\"",
        );
        assert_problem(&p, &["spec.shells[0].tles[0].line1", "SAT-A", "checksum digit is '5'", "sum to 1"]);
        let p = problems(
            "  shells:\n  - name: t\n    tles:\n    - {name: x, line1: \"1 short\", line2: \"2 short\"}",
        );
        assert_problem(&p, &["spec.shells[0].tles[0].line1", "7 characters"]);
    }

    #[test]
    fn a_shell_is_walker_or_tles() {
        let p = problems("  shells:\n  - {name: s}");
        assert_problem(&p, &["spec.shells[0]", "walker", "tles"]);
        let p = problems(
            "  shells:\n  - {name: s, walker: {type: delta, planes: 1, satsPerPlane: 2}, inclinationDeg: 10}",
        );
        assert_problem(&p, &["spec.shells[0].altitudeKm", "required"]);
    }

    #[test]
    fn durations_that_do_not_parse_name_the_field() {
        let p = problems(&format!("{SHELL}\n  tick: 1 second"));
        assert_problem(&p, &["spec.tick", "\"1 second\"", "line"]);
        let p = problems(&format!("{SHELL}\n  faults:\n  - {{kind: nodeDown, node: s-0-0, at: 5min}}"));
        assert_problem(&p, &["spec.faults[0].at", "\"5min\""]);
        let p = problems(&format!("{SHELL}\n  tick: 2h"));
        assert_problem(&p, &["spec.tick", "2h", "1ms..1h"]);
    }

    #[test]
    fn unknown_fields_and_wrong_enums_are_syntax_errors_with_a_path() {
        let p = problems(&format!("{SHELL}\n  groundStation: []"));
        assert_problem(&p, &["spec", "unknown field `groundStation`", "groundStations"]);
        let p = problems(&format!("{SHELL}\n  routing: rip"));
        assert_problem(&p, &["spec.routing", "rip", "shortestPath"]);
    }

    #[test]
    fn address_ranges_must_hold_the_constellation_and_not_overlap() {
        let p = problems(&format!("{SHELL}\n  addressing: {{nodeCidr: 10.0.0.0/28, linkCidr: 10.0.0.0/24}}"));
        assert_problem(&p, &["spec.addressing.linkCidr", "overlaps nodeCidr 10.0.0.0/28"]);
        assert_problem(&p, &["spec.addressing.nodeCidr", "10.0.0.0/28 holds 14 node addresses", "24 nodes"]);
        let p = problems(&format!("{SHELL}\n  addressing: {{linkCidr: 10.1.0.0/26}}"));
        assert_problem(&p, &["spec.addressing.linkCidr", "32 /31 links", "can form 48"]);
        let p = problems(&format!("{SHELL}\n  addressing: {{nodeCidr: 10.0.0.1/16}}"));
        assert_problem(&p, &["spec.addressing.nodeCidr", "host bits"]);
    }

    #[test]
    fn node_templates_need_a_program_and_valid_variable_names() {
        let p = problems(&format!(
            "{SHELL}\n  nodes:\n    satellite: {{command: []}}\n    groundStation: {{command: [sleep, '1'], env: {{'A=B': x}}}}"
        ));
        assert_problem(&p, &["spec.nodes.satellite.command", "empty"]);
        assert_problem(&p, &["spec.nodes.groundStation.env", "\"A=B\""]);
        let ok = plan(&format!(
            "{SHELL}\n  nodes:\n    satellite: {{command: [sleep, infinity], env: {{MODE: relay}}}}"
        ));
        let t = ok.node_templates.for_kind(NodeKind::Satellite).unwrap();
        assert_eq!(t.command.as_deref(), Some(&["sleep".to_owned(), "infinity".to_owned()][..]));
        assert!(ok.node_templates.for_kind(NodeKind::Platform).is_none());
    }

    #[test]
    fn wrong_api_version_and_kind_are_refused() {
        let yaml = crate::testutil::spec_with(SHELL)
            .replace("orbitnet.dev/v1alpha1", "v1")
            .replace("Constellation", "Pod");
        let p = compile_yaml(&yaml).unwrap_err().problems();
        assert_problem(&p, &["apiVersion", "\"v1\""]);
        assert_problem(&p, &["kind", "\"Pod\""]);
    }

    #[test]
    fn faults_must_name_existing_nodes_and_links() {
        let p = problems(&format!("{SHELL}\n  faults:\n  - {{kind: nodeDown, node: s-9-0, at: 1m}}"));
        assert_problem(&p, &["spec.faults[0].node", "no node named \"s-9-0\"", "did you mean"]);
        let p = problems(&format!("{SHELL}\n  faults:\n  - {{kind: linkDown, a: s-0-0, b: s-0-3, at: 1m}}"));
        assert_problem(&p, &["spec.faults[0].b", "s-0-0", "s-0-3", "never linked"]);
        let p = problems(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: g, latDeg: 0, lonDeg: 0}}\n  - {{name: h, latDeg: 1, lonDeg: 0}}\n  faults:\n  - {{kind: linkDown, a: g, b: h, at: 1m}}"
        ));
        assert_problem(&p, &["spec.faults[0].b", "ground nodes link only to satellites"]);
        let p = problems(&format!("{SHELL}\n  faults:\n  - {{kind: stationDown, node: s-0-0, at: 1m}}"));
        assert_problem(&p, &["spec.faults[0].node", "satellite", "nodeDown"]);
    }

    /// A shell, two stations, a named fault and one flow, then `extra` under `spec`.
    fn mission(extra: &str) -> Vec<String> {
        problems(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: g, latDeg: 0, lonDeg: 0}}\n  - {{name: h, latDeg: 1, lonDeg: 0}}\n  faults:\n  - {{name: cut, kind: nodeDown, node: s-0-0, at: 1m, duration: 1m}}\n  - {{kind: nodeDown, node: s-0-1, at: 5m}}\n  duration: 10m\n{extra}"
        ))
    }

    const FLOW: &str = "  traffic:\n  - {name: tracks, from: g, to: h, packetsPerSecond: 50}\n";

    #[test]
    fn flows_name_two_different_existing_nodes_and_one_rate() {
        let p = mission("  traffic:\n  - {name: tracks, from: g, to: hh, packetsPerSecond: 50}");
        assert_problem(&p, &["spec.traffic[0].to", "no node named \"hh\"", "did you mean \"h\""]);
        let p = mission("  traffic:\n  - {name: tracks, from: g, to: G, packetsPerSecond: 50}");
        assert_problem(&p, &["spec.traffic[0].to", "a flow joins two different nodes"]);
        let p = mission("  traffic:\n  - {name: tracks, from: g, to: h}");
        assert_problem(&p, &["spec.traffic[0].packetsPerSecond", "needs a rate"]);
        let p = mission("  traffic:\n  - {name: tracks, from: g, to: h, packetsPerSecond: 5, rateMbps: 1}");
        assert_problem(&p, &["spec.traffic[0].rateMbps", "not both"]);
        let p = mission("  traffic:\n  - {name: tracks, from: g, to: h, rateMbps: 1000, sizeBytes: 100}");
        assert_problem(&p, &["spec.traffic[0].rateMbps", "1250000 datagrams/s", "larger datagrams"]);
        let p = mission(
            "  traffic:\n  - {name: tracks, from: g, to: h, packetsPerSecond: 5, sizeBytes: 8, dscp: 64}",
        );
        assert_problem(&p, &["spec.traffic[0].sizeBytes", "8 is outside 48..1472"]);
        assert_problem(&p, &["spec.traffic[0].dscp", "64 is outside 0..63"]);
        let p = mission(
            "  traffic:\n  - {name: a, from: g, to: h, packetsPerSecond: 5}\n  - {name: A, from: h, to: g, packetsPerSecond: 5}",
        );
        assert_problem(&p, &["spec.traffic[1].name", "already used by spec.traffic[0].name"]);
        let p = mission("  traffic:\n  - {name: a, from: g, to: h, packetsPerSecond: 5, start: 10m}");
        assert_problem(&p, &["spec.traffic[0].start", "not before the run ends"]);
        let p = problems(&format!(
            "{SHELL}\n  routeTo: ground\n  groundStations:\n  - {{name: g, latDeg: 0, lonDeg: 0}}\n  traffic:\n  - {{name: a, from: g, to: s-0-0, packetsPerSecond: 5}}"
        ));
        assert_problem(&p, &["spec.traffic[0].to", "routeTo: ground"]);
    }

    #[test]
    fn routing_objectives_take_no_flow_and_flow_objectives_need_one() {
        let p = mission(&format!("{FLOW}  objectives:\n  - {{kind: delivery, minPct: 99}}"));
        assert_problem(&p, &["spec.objectives[0].flow", "is required for a delivery objective"]);
        let p = mission(&format!("{FLOW}  objectives:\n  - {{flow: tracks, kind: convergence, maxS: 5}}"));
        assert_problem(
            &p,
            &["spec.objectives[0].flow", "convergence objectives bound every ground pair's routing"],
        );
        let p = mission(&format!("{FLOW}  objectives:\n  - {{kind: stretch, maxStretch: 0.5}}"));
        assert_problem(&p, &["spec.objectives[0].maxStretch", "0.5 is outside 1..1000"]);
        let p = mission(&format!("{FLOW}  objectives:\n  - {{kind: stretch, maxS: 3}}"));
        assert_problem(&p, &["spec.objectives[0].maxS", "is not used by stretch objectives"]);
        assert_problem(&p, &["spec.objectives[0].maxStretch", "is required for a stretch objective"]);
    }

    #[test]
    fn objectives_name_their_flow_fault_and_a_window_inside_the_run() {
        let p = mission(&format!("{FLOW}  objectives:\n  - {{flow: track, kind: delivery, minPct: 99}}"));
        assert_problem(
            &p,
            &["spec.objectives[0].flow", "no flow named \"track\"", "did you mean \"tracks\""],
        );
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: latency, percentile: 101, maxMs: 5}}"
        ));
        assert_problem(&p, &["spec.objectives[0].percentile", "101 is outside 0..100"]);
        let p = mission(&format!("{FLOW}  objectives:\n  - {{flow: tracks, kind: latency}}"));
        assert_problem(&p, &["spec.objectives[0].maxMs", "is required for a latency objective"]);
        let p =
            mission(&format!("{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, minPct: 5}}"));
        assert_problem(&p, &["spec.objectives[0].minPct", "is not used by outage objectives"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{during: kut}}}}"
        ));
        assert_problem(
            &p,
            &["spec.objectives[0].window.during", "no fault named \"kut\"", "did you mean \"cut\""],
        );
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{during: 2}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window.during", "there is no fault 2"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{after: 1}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window.after", "fault 1 has no `duration`"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{after: cut, settle: 9m}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window", "begins at 660 s, not before the run ends"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{from: 1m, to: 11m}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window", "after the run"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{from: 2m, to: 1m}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window.to", "not after"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{during: cut, from: 1m}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window", "exactly one"]);
        let p = mission(&format!(
            "{FLOW}  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1, window: {{from: 1m, settle: 1s}}}}"
        ));
        assert_problem(&p, &["spec.objectives[0].window.settle", "only with `after`"]);
    }

    #[test]
    fn a_mission_compiles_to_flows_and_objectives_with_resolved_windows() {
        let plan = crate::testutil::plan(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: g, latDeg: 0, lonDeg: 0}}\n  - {{name: h, latDeg: 1, lonDeg: 0}}\n  faults:\n  - {{name: cut, kind: nodeDown, node: s-0-0, at: 1m, duration: 1m}}\n{FLOW}  objectives:\n  - {{name: fresh, flow: tracks, kind: latency, maxMs: 150, window: {{during: cut}}}}\n  - {{flow: tracks, kind: outage, maxS: 2, window: {{after: 0, settle: 30s}}}}"
        ));
        let f = &plan.flows[0];
        assert_eq!((f.name.as_str(), f.packets_per_second, f.size_bytes, f.end), ("tracks", 50.0, 200, None));
        let o = &plan.objectives;
        assert_eq!(o[0].name, "fresh");
        assert_eq!(o[0].requirement, Requirement::Latency { percentile: 99.0, max_ms: 150.0 });
        assert_eq!(
            (o[0].window.from.as_secs_f64(), o[0].window.to.map(|t| t.as_secs_f64())),
            (60.0, Some(120.0))
        );
        assert_eq!(o[0].window.describe, "during fault 0 (cut)");
        assert_eq!(o[1].name, "tracks-outage");
        assert_eq!((o[1].window.from.as_secs_f64(), o[1].window.to), (150.0, None));
    }

    #[test]
    fn fault_fields_must_fit_the_kind() {
        let p = problems(&format!("{SHELL}\n  faults:\n  - {{kind: jamming, latDeg: 10, at: 1m}}"));
        assert_problem(&p, &["spec.faults[0].lonDeg", "required for a jamming fault"]);
        assert_problem(&p, &["spec.faults[0].radiusKm", "required"]);
        let p =
            problems(&format!("{SHELL}\n  faults:\n  - {{kind: nodeDown, node: s-0-0, lossPct: 5, at: 1m}}"));
        assert_problem(&p, &["spec.faults[0].lossPct", "not used by a nodeDown fault"]);
        let p = problems(&format!("{SHELL}\n  faults:\n  - {{kind: degraded, node: s-0-0, at: 1m}}"));
        assert_problem(&p, &["spec.faults[0]", "extraDelayUs, lossPct or rateMbps"]);
        let p = problems(&format!(
            "{SHELL}\n  faults:\n  - {{kind: nodeDown, node: s-0-0, at: 1m, duration: 0s}}"
        ));
        assert_problem(&p, &["spec.faults[0].duration", "greater than 0"]);
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let p = problems(
            "  tick: 0s\n  shells:\n  - {name: s, walker: {type: delta, planes: 0, satsPerPlane: 0}, altitudeKm: 1, inclinationDeg: 0}\n  groundStations:\n  - {name: g, latDeg: 100, lonDeg: 0}",
        );
        assert!(p.len() >= 5, "{p:#?}");
    }

    #[test]
    fn a_typo_in_a_walker_shell_suggests_nothing_far_fetched() {
        assert_eq!(
            closest_name("polar-2-5", ["polar-2-6".to_owned(), "thule".to_owned()].iter()),
            Some("polar-2-6".into())
        );
        assert_eq!(closest_name("vandenberg", ["thule".to_owned()].iter()), None);
    }
}
