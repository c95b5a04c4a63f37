//! Which faults are active at time t, in a form the link evaluation can query cheaply.

use std::collections::HashSet;

use crate::geo::Geodetic;
use crate::geo::great_circle_m;
use crate::plan::{FaultDef, FaultTarget, NodeIdx, Plan};
use crate::time::SimTime;

/// Extra impairment a fault adds to a link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    pub keep_loss_frac: f64,
    pub extra_delay_ns: u64,
    pub rate_cap_bps: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct ActiveFaults<'p> {
    /// The active faults, in spec order.
    pub active: Vec<&'p FaultDef>,
    node_down: HashSet<NodeIdx>,
    link_down: HashSet<(NodeIdx, NodeIdx)>,
}

impl Plan {
    pub fn active_faults(&self, t: SimTime) -> ActiveFaults<'_> {
        let mut out = ActiveFaults::default();
        for f in self.faults.iter().filter(|f| f.active_at(t)) {
            use crate::spec::FaultKind::*;
            match (f.kind, &f.target) {
                (NodeDown | StationDown, FaultTarget::Node(n)) => {
                    out.node_down.insert(*n);
                }
                (LinkDown, FaultTarget::Link(a, b)) => {
                    out.link_down.insert((*a, *b));
                }
                _ => {}
            }
            out.active.push(f);
        }
        out
    }
}

impl ActiveFaults<'_> {
    pub fn node_down(&self, n: NodeIdx) -> bool {
        self.node_down.contains(&n)
    }

    /// Down by a fault: either end down, or the link itself.
    pub fn link_down(&self, a: NodeIdx, b: NodeIdx) -> bool {
        self.node_down.contains(&a)
            || self.node_down.contains(&b)
            || self.link_down.contains(&(a.min(b), a.max(b)))
    }

    /// May a ground node pick this satellite? Not if the satellite is lost or the link is
    /// cut: the ground node re-homes instead. (A ground node that is itself down keeps
    /// pointing; its links are down.)
    pub fn selectable(&self, sat: NodeIdx, ground: NodeIdx) -> bool {
        !self.node_down.contains(&sat)
            && !self.link_down.contains(&(sat.min(ground), sat.max(ground)))
    }

    /// Jamming and degradation on the link `a`-`b`; `ground_site` is the ground end of a
    /// ground link (jamming touches only those).
    pub fn impairment(&self, a: NodeIdx, b: NodeIdx, ground_site: Option<&Geodetic>) -> Impairment {
        let mut imp = Impairment {
            keep_loss_frac: 1.0,
            ..Impairment::default()
        };
        let pair = (a.min(b), a.max(b));
        for f in &self.active {
            let hit = match &f.target {
                FaultTarget::Node(n) => *n == a || *n == b,
                FaultTarget::Link(x, y) => (*x, *y) == pair,
                FaultTarget::Area {
                    lat_rad,
                    lon_rad,
                    radius_m,
                } => ground_site.is_some_and(|g| {
                    great_circle_m(g.lat_rad, g.lon_rad, *lat_rad, *lon_rad) <= *radius_m
                }),
            };
            if !hit {
                continue;
            }
            imp.keep_loss_frac *= 1.0 - f.extra_loss_frac;
            imp.extra_delay_ns += f.extra_delay_ns;
            if let Some(cap) = f.rate_cap_bps {
                imp.rate_cap_bps = Some(imp.rate_cap_bps.map_or(cap, |c| c.min(cap)));
            }
        }
        imp
    }
}
