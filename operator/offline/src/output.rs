//! How a state is written: one JSON object per tick, CSV rows, or a table for people.

use std::io::{self, Write};

use orbitnet_model::geo::Geodetic;
use orbitnet_model::plan::FaultDef;
use orbitnet_model::units::{human_rate, round_to};
use orbitnet_model::{LinkKind, LinkState, Plan, State};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Serializes a state as the planner's JSON object:
/// `{"t", "time", "nodes": [...], "links": [...], "faults": [...], "routes"?: {...}}`.
pub struct JsonState<'a> {
    pub plan: &'a Plan,
    pub state: &'a State,
    pub with_routes: bool,
}

impl Serialize for JsonState<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (plan, state) = (self.plan, self.state);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("t", &state.t.as_secs_f64())?;
        if let Some(at) = plan.epoch.at(state.t) {
            map.serialize_entry("time", &orbitnet_model::Epoch(at).to_string())?;
        }
        map.serialize_entry("nodes", &Nodes { plan, state })?;
        map.serialize_entry("links", &Links { plan, links: &state.links })?;
        let faults: Vec<_> = state
            .active_faults
            .iter()
            .filter_map(|&i| plan.faults.iter().find(|f| f.spec_index == i))
            .map(|f| JsonFault { plan, fault: f })
            .collect();
        map.serialize_entry("faults", &faults)?;
        if self.with_routes {
            map.serialize_entry("routes", &JsonRoutes { plan, state })?;
        }
        map.end()
    }
}

struct Nodes<'a> {
    plan: &'a Plan,
    state: &'a State,
}

impl Serialize for Nodes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Node<'a> {
            name: &'a str,
            kind: &'static str,
            ecef_m: Option<[f64; 3]>,
            lat_deg: Option<f64>,
            lon_deg: Option<f64>,
            alt_m: Option<f64>,
        }
        let g = &self.state.geometry;
        let mut seq = serializer.serialize_seq(Some(self.plan.nodes.len()))?;
        for (i, node) in self.plan.nodes.iter().enumerate() {
            let alive = g.alive[i];
            let r = g.ecef[i];
            let geo = alive.then(|| match i.checked_sub(self.plan.n_sats) {
                Some(ground) => g.ground_sites[ground],
                None => Geodetic::from_ecef(r),
            });
            seq.serialize_element(&Node {
                name: &node.name,
                kind: node.kind.as_str(),
                ecef_m: alive.then(|| r.map(|c| round_to(c, 3))),
                lat_deg: geo.map(|p| round_to(p.lat_rad.to_degrees(), 6)),
                lon_deg: geo.map(|p| round_to(p.lon_rad.to_degrees(), 6)),
                alt_m: geo.map(|p| round_to(p.alt_m, 3)),
            })?;
        }
        seq.end()
    }
}

struct Links<'a> {
    plan: &'a Plan,
    links: &'a [LinkState],
}

impl Serialize for Links<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Link<'a> {
            id: orbitnet_model::LinkId,
            a: &'a str,
            b: &'a str,
            kind: LinkKind,
            up: bool,
            distance_m: f64,
            #[serde(skip_serializing_if = "Option::is_none")]
            elevation_deg: Option<f64>,
            delay_us: f64,
            jitter_us: f64,
            loss_pct: f64,
            rate_bps: u64,
        }
        let mut seq = serializer.serialize_seq(Some(self.links.len()))?;
        for l in self.links {
            seq.serialize_element(&Link {
                id: l.id,
                a: &self.plan.node(l.a).name,
                b: &self.plan.node(l.b).name,
                kind: l.kind,
                up: l.up,
                distance_m: round_to(l.distance_m, 3),
                elevation_deg: l.elevation_deg.map(|e| round_to(e, 4)),
                delay_us: l.delay_ns as f64 / 1e3,
                jitter_us: l.jitter_ns as f64 / 1e3,
                loss_pct: round_to(l.loss_pct, 6),
                rate_bps: l.rate_bps,
            })?;
        }
        seq.end()
    }
}

struct JsonFault<'a> {
    plan: &'a Plan,
    fault: &'a FaultDef,
}

impl Serialize for JsonFault<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.fault;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("index", &f.spec_index)?;
        map.serialize_entry("kind", f.kind.as_str())?;
        map.serialize_entry("from", &f.start.as_secs_f64())?;
        map.serialize_entry("until", &f.end.map(|e| e.as_secs_f64()))?;
        map.serialize_entry("description", &f.describe(self.plan))?;
        map.end()
    }
}

struct JsonRoutes<'a> {
    plan: &'a Plan,
    state: &'a State,
}

impl Serialize for JsonRoutes<'_> {
    /// `{"<node>": {"<destination>": "<next hop>"}}`, nodes and destinations in node order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Row<'a> {
            plan: &'a Plan,
            routes: &'a orbitnet_model::Routes,
            from: u32,
        }
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                for &dest in &self.routes.destinations {
                    if let Some(hop) = self.routes.next_hop(self.from, dest) {
                        map.serialize_entry(&self.plan.node(dest).name, &self.plan.node(hop).name)?;
                    }
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(None)?;
        if let Some(routes) = &self.state.routes {
            for (i, node) in self.plan.nodes.iter().enumerate() {
                map.serialize_entry(&node.name, &Row { plan: self.plan, routes, from: i as u32 })?;
            }
        }
        map.end()
    }
}

/// The CSV header of `write_csv_rows`.
pub const CSV_HEADER: &str = "t,id,a,b,kind,up,distanceM,elevationDeg,delayUs,jitterUs,lossPct,rateBps";

/// One CSV row per link.
pub fn write_csv_rows(out: &mut impl Write, plan: &Plan, state: &State) -> io::Result<()> {
    for l in &state.links {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            state.t,
            l.id,
            plan.node(l.a).name,
            plan.node(l.b).name,
            kind_str(l.kind),
            l.up,
            round_to(l.distance_m, 3),
            l.elevation_deg.map(|e| round_to(e, 4).to_string()).unwrap_or_default(),
            l.delay_ns as f64 / 1e3,
            l.jitter_ns as f64 / 1e3,
            round_to(l.loss_pct, 6),
            l.rate_bps
        )?;
    }
    Ok(())
}

fn kind_str(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Isl => "isl",
        LinkKind::Gsl => "gsl",
    }
}

/// What a table shows besides the header, faults and ground links.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableOptions {
    /// The path between every pair of ground nodes.
    pub routes: bool,
    /// A row per inter-satellite link, not only the names of those that are down.
    pub all_links: bool,
}

/// A readable block for one tick: a header line, active faults, the ground links (every
/// link with `all_links`, otherwise only the names of the inter-satellite links that are
/// down), and with `routes` the path between every pair of ground nodes.
pub fn write_table(out: &mut impl Write, plan: &Plan, state: &State, opts: TableOptions) -> io::Result<()> {
    let is_isl = |l: &&LinkState| l.kind == LinkKind::Isl;
    let isl_total = state.links.iter().filter(is_isl).count();
    let isl_up = state.links.iter().filter(is_isl).filter(|l| l.up).count();
    let gsl_total = state.links.len() - isl_total;
    let gsl_up = state.links.iter().filter(|l| l.kind == LinkKind::Gsl && l.up).count();
    let time = plan.epoch.at(state.t).map(|t| orbitnet_model::Epoch(t).to_string()).unwrap_or_default();
    writeln!(
        out,
        "t = {} s ({time})   links up {}/{} (ISL {isl_up}/{isl_total}, GSL {gsl_up}/{gsl_total})   handovers {}",
        state.t,
        isl_up + gsl_up,
        state.links.len(),
        state.handovers
    )?;
    for &i in &state.active_faults {
        if let Some(f) = plan.faults.iter().find(|f| f.spec_index == i) {
            let until = f.end.map(|e| format!("until t = {e} s")).unwrap_or_else(|| "until the end".into());
            writeln!(out, "  fault [{i}] {} ({until})", f.describe(plan))?;
        }
    }
    if !opts.all_links {
        let down: Vec<String> = state
            .links
            .iter()
            .filter(is_isl)
            .filter(|l| !l.up)
            .map(|l| format!("{}~{}", plan.node(l.a).name, plan.node(l.b).name))
            .collect();
        if !down.is_empty() {
            writeln!(out, "  ISLs down: {}", down.join(" "))?;
        }
    }
    let width = plan.nodes.iter().map(|n| n.name.len()).max().unwrap_or(1).max(4);
    writeln!(
        out,
        "  {:<4} {:<width$} {:<width$} {:<4} {:>9} {:>6} {:>9} {:>7} {:>12}",
        "KIND", "A", "B", "UP", "DIST km", "ELEV", "DELAY ms", "LOSS %", "RATE"
    )?;
    for l in state.links.iter().filter(|l| opts.all_links || l.kind == LinkKind::Gsl) {
        writeln!(
            out,
            "  {:<4} {:<width$} {:<width$} {:<4} {:>9.1} {:>6} {:>9.3} {:>7.3} {:>12}",
            kind_str(l.kind),
            plan.node(l.a).name,
            plan.node(l.b).name,
            if l.up { "up" } else { "DOWN" },
            l.distance_m / 1e3,
            l.elevation_deg.map(|e| format!("{e:.1}")).unwrap_or_else(|| "-".into()),
            l.delay_ns as f64 / 1e6,
            l.loss_pct,
            human_rate(l.rate_bps)
        )?;
    }
    if let (true, Some(routes)) = (opts.routes, &state.routes) {
        writeln!(out, "  paths between ground nodes (one-way delay; the way back is the same):")?;
        let ground = plan.ground_range().map(|g| g as u32);
        let mut unreachable = Vec::new();
        for from in ground.clone() {
            for to in ground.clone().filter(|&to| to > from) {
                let name = |n: u32| plan.node(n).name.as_str();
                match (routes.path(from, to), routes.delay_ns(from, to)) {
                    (Some(path), Some(delay)) => {
                        let hops: Vec<&str> = path.iter().map(|&n| name(n)).collect();
                        writeln!(out, "    {:>9.3} ms  {}", delay as f64 / 1e6, hops.join(" > "))?;
                    }
                    _ => unreachable.push(format!("{}~{}", name(from), name(to))),
                }
            }
        }
        if !unreachable.is_empty() {
            writeln!(out, "    unreachable: {}", unreachable.join(" "))?;
        }
    }
    writeln!(out)
}
