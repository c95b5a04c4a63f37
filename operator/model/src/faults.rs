//! Which faults are active at time t, in a form the link evaluation can query cheaply.

use std::collections::HashSet;

use crate::geo::Geodetic;
use crate::geo::great_circle_m;
use crate::plan::{FaultDef, FaultTarget, NodeIdx, Plan};
use crate::time::SimTime;
use crate::units::{human_rate, round_to};

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
        !self.node_down.contains(&sat) && !self.link_down.contains(&(sat.min(ground), sat.max(ground)))
    }

    /// Jamming and degradation on the link `a`-`b`; `ground_site` is the ground end of a
    /// ground link (jamming touches only those).
    pub fn impairment(&self, a: NodeIdx, b: NodeIdx, ground_site: Option<&Geodetic>) -> Impairment {
        let mut imp = Impairment { keep_loss_frac: 1.0, ..Impairment::default() };
        let pair = (a.min(b), a.max(b));
        for f in &self.active {
            let hit = match &f.target {
                FaultTarget::Node(n) => *n == a || *n == b,
                FaultTarget::Link(x, y) => (*x, *y) == pair,
                FaultTarget::Area { lat_rad, lon_rad, radius_m } => ground_site
                    .is_some_and(|g| great_circle_m(g.lat_rad, g.lon_rad, *lat_rad, *lon_rad) <= *radius_m),
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

impl FaultDef {
    /// One line saying what the fault does, e.g. `jamming +60% loss within 800 km of 25.00,
    /// 145.00`.
    pub fn describe(&self, plan: &Plan) -> String {
        let name = |i: u32| plan.node(i).name.as_str();
        let mut effects = Vec::new();
        if self.extra_loss_frac > 0.0 {
            effects.push(format!("+{}% loss", round_to(self.extra_loss_frac * 100.0, 6)));
        }
        if self.extra_delay_ns > 0 {
            effects.push(format!("+{} us delay", self.extra_delay_ns as f64 / 1e3));
        }
        if let Some(rate) = self.rate_cap_bps {
            effects.push(format!("rate <= {}", human_rate(rate)));
        }
        let effects = if effects.is_empty() { String::new() } else { format!(" {}", effects.join(", ")) };
        let target = match &self.target {
            FaultTarget::Node(n) => format!("on {}", name(*n)),
            FaultTarget::Link(a, b) => format!("on {} - {}", name(*a), name(*b)),
            FaultTarget::Area { lat_rad, lon_rad, radius_m } => format!(
                "within {} km of {:.2}, {:.2}",
                round_to(radius_m / 1e3, 3),
                lat_rad.to_degrees(),
                lon_rad.to_degrees()
            ),
        };
        format!("{}{effects} {target}", self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::State;
    use crate::links::LinkState;
    use crate::plan::{LinkKind, Plan};
    use crate::testutil::{at, plan};

    /// 96 satellites at 1,200 km; two stations 770 km apart, one 6,000 km away; two ground
    /// links each, no atmospheric loss (so class and fault losses are exact).
    const BASE: &str = "  shells:\n  - {name: d, walker: {type: delta, planes: 8, satsPerPlane: 12, phasing: 1}, altitudeKm: 1200, inclinationDeg: 60}\n  groundStations:\n  - {name: near, latDeg: 30, lonDeg: 0}\n  - {name: also-near, latDeg: 30, lonDeg: 8}\n  - {name: far, latDeg: -20, lonDeg: 40}\n  linkClasses:\n    isl: {rateMbps: 1000}\n    gsl: {rateMbps: 100, lossPct: 1, processingDelayUs: 100}";

    fn with_faults(faults: &str) -> Plan {
        plan(&format!(
            "{BASE}\n  groundLinks: {{minElevationDeg: 10, policy: highestElevation, antennas: 2, atmosphericLossPct: 0}}\n  faults:\n{faults}"
        ))
    }

    fn links_of(s: &State, node: u32) -> impl Iterator<Item = &LinkState> {
        s.links.iter().filter(move |l| l.a == node || l.b == node)
    }

    #[test]
    fn node_down_cuts_a_satellite_for_its_window_and_ground_nodes_re_home() {
        // The satellite "near" uses at t = 100 goes down from t = 100 for 60 s.
        let probe = with_faults("  - {kind: nodeDown, node: d-0-0, at: 1d}");
        let sat = probe.state_at(at(100.0)).ground_choice.per_ground[0][0];
        let name = probe.node(sat).name.clone();
        let p = with_faults(&format!("  - {{kind: nodeDown, node: {name}, at: 100s, duration: 60s}}"));
        let before = p.state_at(at(99.0));
        assert!(links_of(&before, sat).any(|l| l.up));
        for t in [100.0, 130.0, 159.9] {
            let s = p.state_at(at(t));
            assert!(links_of(&s, sat).all(|l| !l.up), "{name} must be down at {t}");
            assert!(
                s.ground_choice.per_ground.iter().all(|c| !c.contains(&sat)),
                "nobody may pick {name} at {t}"
            );
            assert_eq!(s.ground_choice.per_ground[0].len(), 2, "near re-homes to two other satellites");
            assert_eq!(s.active_faults, vec![0]);
        }
        let after = p.state_at(at(160.0));
        assert!(after.active_faults.is_empty(), "the window ends at at + duration, exclusive");
        assert!(links_of(&after, sat).filter(|l| l.kind == LinkKind::Isl).all(|l| l.up));
    }

    #[test]
    fn a_downed_satellite_is_routed_around() {
        let p = with_faults("  - {kind: nodeDown, node: d-3-5, at: 0s}");
        let s = p.state_at(at(500.0));
        let routes = s.routes.as_ref().unwrap();
        let down = p.node_index("d-3-5").unwrap();
        for from in 0..p.nodes.len() as u32 {
            for to in p.ground_range().map(|g| g as u32).filter(|&to| to != from && from != down) {
                if let Some(path) = routes.path(from, to) {
                    assert!(!path.contains(&down));
                }
            }
        }
        assert_eq!(routes.next_hop(down, p.node_index("far").unwrap()), None);
        // Without a duration the fault lasts to the end of the run.
        assert_eq!(p.state_at(at(1e6)).active_faults, vec![0]);
    }

    #[test]
    fn link_down_cuts_one_link_only() {
        let p = with_faults("  - {kind: linkDown, a: d-2-3, b: d-2-4, at: 1m, duration: 30s}");
        let (a, b) = (p.node_index("d-2-3").unwrap(), p.node_index("d-2-4").unwrap());
        for (t, want_down) in [(59.0, 0), (60.0, 1), (89.0, 1), (90.0, 0)] {
            let s = p.state_at(at(t));
            let isl_down: Vec<_> = s.links.iter().filter(|l| l.kind == LinkKind::Isl && !l.up).collect();
            assert_eq!(isl_down.len(), want_down, "at {t}");
            if want_down == 1 {
                assert_eq!((isl_down[0].a, isl_down[0].b), (a, b));
            }
        }
    }

    #[test]
    fn a_cut_ground_link_makes_the_station_pick_another_satellite() {
        let probe = with_faults("  - {kind: nodeDown, node: d-0-0, at: 1d}");
        let sat = probe.state_at(at(300.0)).ground_choice.per_ground[2][0];
        let name = probe.node(sat).name.clone();
        let p = with_faults(&format!("  - {{kind: linkDown, a: far, b: {name}, at: 0s}}"));
        let s = p.state_at(at(300.0));
        assert!(!s.ground_choice.per_ground[2].contains(&sat));
        assert_eq!(s.ground_choice.per_ground[2].len(), 2);
        assert_eq!(s.ground_choice.per_ground[0], probe.state_at(at(300.0)).ground_choice.per_ground[0]);
    }

    #[test]
    fn station_down_keeps_its_links_listed_but_down() {
        let p = with_faults("  - {kind: stationDown, node: near, at: 10s, duration: 10s}");
        let near = p.node_index("near").unwrap();
        let during = p.state_at(at(15.0));
        let gsl: Vec<_> = links_of(&during, near).collect();
        assert_eq!(gsl.len(), 2);
        assert!(gsl.iter().all(|l| !l.up));
        assert!(links_of(&during, p.node_index("far").unwrap()).all(|l| l.up));
        assert!(links_of(&p.state_at(at(20.0)), near).all(|l| l.up));
        let routes = during.routes.unwrap();
        assert_eq!(routes.path(p.node_index("far").unwrap(), near), None);
    }

    #[test]
    fn jamming_adds_loss_to_ground_links_inside_its_radius_only() {
        let p = with_faults("  - {kind: jamming, latDeg: 30, lonDeg: 4, radiusKm: 500, lossPct: 60, at: 0s}");
        let s = p.state_at(at(0.0));
        let jammed = 100.0 * (1.0 - 0.99 * 0.4);
        for l in &s.links {
            let name = p.node(l.a).name.as_str();
            match (l.kind, name) {
                (LinkKind::Gsl, "near" | "also-near") => {
                    assert!((l.loss_pct - jammed).abs() < 1e-9, "{}", l.loss_pct)
                }
                (LinkKind::Gsl, _) => assert!((l.loss_pct - 1.0).abs() < 1e-9, "{name}: {}", l.loss_pct),
                (LinkKind::Isl, _) => assert_eq!(l.loss_pct, 0.0),
            }
        }
        // 400 km from the centre is inside, "far" (6,000 km) is not.
        assert_eq!(s.links.iter().filter(|l| l.loss_pct > 50.0).count(), 4);
    }

    #[test]
    fn degraded_adds_delay_and_loss_and_caps_the_rate() {
        let p = with_faults(
            "  - {kind: degraded, a: d-1-1, b: d-1-2, extraDelayUs: 2500, lossPct: 5, rateMbps: 10, at: 0s}\n  - {kind: degraded, node: d-5-5, rateMbps: 1, at: 0s}",
        );
        let clean = with_faults("  - {kind: nodeDown, node: d-0-0, at: 1d}");
        let (s, c) = (p.state_at(at(42.0)), clean.state_at(at(42.0)));
        let find = |s: &State, a: &str, b: &str| {
            let id = crate::LinkId::of(a, b);
            s.links.iter().find(|l| l.id == id).cloned().unwrap()
        };
        let (l, base) = (find(&s, "d-1-1", "d-1-2"), find(&c, "d-1-1", "d-1-2"));
        assert_eq!(l.delay_ns, base.delay_ns + 2_500_000);
        assert!((l.loss_pct - 5.0).abs() < 1e-9);
        assert_eq!(l.rate_bps, 10_000_000);
        let node = p.node_index("d-5-5").unwrap();
        assert!(links_of(&s, node).all(|l| l.rate_bps == 1_000_000 && l.up));
        let untouched = find(&s, "d-3-3", "d-3-4");
        assert_eq!(untouched.rate_bps, 1_000_000_000);
    }
}
