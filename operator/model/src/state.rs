//! The whole state at time t: positions, links, routes, active faults. A state composes
//! geometry -> faults -> ground-link choice -> link states -> routes; the choice (and, with
//! route hysteresis, the routes) chain from the tick before, anchored as `timeline` says.

use std::collections::BTreeSet;

use crate::faults::ActiveFaults;
use crate::geometry::Geometry;
use crate::links::{GroundChoice, LinkState};
use crate::plan::{NodeIdx, Plan};
use crate::routing::{Graph, Routes};
use crate::spec::Routing;
use crate::time::{SimTime, SpecDuration};

#[derive(Clone, Debug)]
pub struct State {
    pub t: SimTime,
    pub geometry: Geometry,
    pub links: Vec<LinkState>,
    pub ground_choice: GroundChoice,
    /// Ground links made this tick that the previous tick did not have (0 without one).
    pub handovers: usize,
    /// Indices into `spec.faults` of the faults active at t.
    pub active_faults: Vec<usize>,
    /// `None` when routing is `none`.
    pub routes: Option<Routes>,
}

impl State {
    pub fn links_up(&self) -> usize {
        self.links.iter().filter(|l| l.up).count()
    }
}

impl Plan {
    /// The state at a geometry with the faults active there and the ground-link choice
    /// already made, without routes; `previous` is the choice of the tick before, for the
    /// handover count.
    pub fn state_with_choice(
        &self,
        geometry: Geometry,
        faults: &ActiveFaults<'_>,
        ground_choice: GroundChoice,
        previous: Option<&GroundChoice>,
    ) -> State {
        let links = self.link_states(&geometry, faults, &ground_choice);
        let handovers = previous.map_or(0, |p| ground_choice.handovers_since(p));
        let active_faults = faults.active.iter().map(|f| f.spec_index).collect();
        State { t: geometry.t, geometry, links, ground_choice, handovers, active_faults, routes: None }
    }

    /// Routes over `links` to the plan's destinations; `None` when routing is `none`.
    /// `previous` (the tick before's routes) matters only with route hysteresis.
    pub fn routes_for(&self, links: &[LinkState], previous: Option<&Routes>) -> Option<Routes> {
        (self.routing == Routing::ShortestPath)
            .then(|| self.routes(links, &self.route_destinations(), previous))
    }

    /// Shortest-delay next hops towards `destinations` over the links that are up.
    pub fn routes(&self, links: &[LinkState], destinations: &[NodeIdx], previous: Option<&Routes>) -> Routes {
        let graph = Graph::from_links(self.nodes.len(), links);
        let relays: Vec<bool> = (0..self.nodes.len()).map(|i| !self.is_ground(i as NodeIdx)).collect();
        Routes::compute_stable(&graph, &relays, destinations, previous, self.route_hysteresis_ns)
    }

    /// The tick times from `from` to `to` inclusive, every `step`.
    pub fn tick_times(from: SimTime, to: SimTime, step: SpecDuration) -> impl Iterator<Item = SimTime> {
        let step = i128::from(step.as_nanos().max(1));
        let span = i128::from(to.as_nanos()) - i128::from(from.as_nanos());
        let count = if span < 0 { 0 } else { span / step + 1 };
        // Every k < count keeps from + k * step within from..=to, so within i64.
        (0..count).map(move |k| SimTime::from_nanos((i128::from(from.as_nanos()) + k * step) as i64))
    }

    /// Ground-link handovers at the ticks after `from` up to `to`. Geometry and ground-link
    /// choice only (no routes): cheap enough to count a minute of Starlink's ticks.
    pub fn handovers_between(&self, from: SimTime, to: SimTime) -> usize {
        self.timeline().without_routes().handovers_between(self, from, to)
    }

    /// Every (ground node, satellite) pair the model chooses at the ticks from `from` to
    /// `to`: the ground links a runner has to build for that window.
    pub fn ground_links_chosen(&self, from: SimTime, to: SimTime) -> BTreeSet<(NodeIdx, NodeIdx)> {
        self.timeline().without_routes().ground_links_chosen(self, from, to)
    }

    /// The states at `from`, `from + step`, ... up to `to` inclusive.
    pub fn states(&self, from: SimTime, to: SimTime, step: SpecDuration) -> impl Iterator<Item = State> + '_ {
        let mut timeline = self.timeline();
        Self::tick_times(from, to, step).map(move |t| timeline.state_at(self, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::{SPEED_OF_LIGHT_M_S, Vec3, WGS84_A_M, central_angle_rad, norm};
    use crate::links::LinkState;
    use crate::plan::{LinkKind, NodeKind};
    use crate::testutil::{SHELL, at, plan};

    /// 96 satellites at 1,200 km: a station at 30 deg sees about four above 10 deg.
    const DENSE: &str = "  shells:\n  - {name: d, walker: {type: delta, planes: 8, satsPerPlane: 12, phasing: 1}, altitudeKm: 1200, inclinationDeg: 60}";

    fn unit(r: Vec3) -> Vec3 {
        let n = norm(r);
        [r[0] / n, r[1] / n, r[2] / n]
    }

    fn cross(a: Vec3, b: Vec3) -> Vec3 {
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    }

    fn link<'a>(p: &Plan, s: &'a State, a: &str, b: &str) -> &'a LinkState {
        let id = crate::LinkId::of(a, b);
        s.links.iter().find(|l| l.id == id).unwrap_or_else(|| panic!("no link {a} - {b} in {}", p.name))
    }

    /// Longitude of the ascending node of the plane through two satellites of it.
    fn node_longitude_rad(r0: Vec3, r1: Vec3) -> f64 {
        let n = cross(r0, r1);
        // The ascending node lies along z x n.
        let node = cross([0.0, 0.0, 1.0], n);
        node[1].atan2(node[0])
    }

    fn wrap_deg(x: f64) -> f64 {
        (x + 540.0).rem_euclid(360.0) - 180.0
    }

    /// Closed-form facts of a Walker pattern, at the epoch and an hour later: satellites of
    /// a plane are 360/S apart, planes' nodes are spread/P apart, and adjacent satellites of
    /// a plane are 2 (R + h) sin(pi / S) apart.
    #[test]
    fn walker_geometry_matches_closed_form() {
        for (kind, spread) in [("delta", 360.0), ("star", 180.0)] {
            let p = plan(&format!(
                "  shells:\n  - {{name: w, walker: {{type: {kind}, planes: 6, satsPerPlane: 11, phasing: 2}}, altitudeKm: 780, inclinationDeg: 86.4}}"
            ));
            for t in [0.0, 3600.0] {
                let s = p.state_at(at(t));
                let r = |plane: u32, sat: u32| s.geometry.ecef[(plane * 11 + sat) as usize];
                for plane in 0..6 {
                    for sat in 0..11 {
                        let angle = central_angle_rad(unit(r(plane, sat)), unit(r(plane, (sat + 1) % 11)))
                            .to_degrees();
                        assert!((angle - 360.0 / 11.0).abs() < 1e-6, "{kind} in-plane {angle}");
                    }
                    if plane + 1 < 6 {
                        let d = wrap_deg(
                            (node_longitude_rad(r(plane + 1, 0), r(plane + 1, 1))
                                - node_longitude_rad(r(plane, 0), r(plane, 1)))
                            .to_degrees(),
                        );
                        assert!((d - spread / 6.0).abs() < 1e-6, "{kind} plane spacing {d}");
                    }
                }
                let want_m = 2.0 * (WGS84_A_M + 780e3) * (std::f64::consts::PI / 11.0).sin();
                let l = link(&p, &s, "w-3-4", "w-3-5");
                assert!((l.distance_m - want_m).abs() < 1e-3, "{kind} ISL {} vs {want_m}", l.distance_m);
                assert!((want_m / 1e3 - 4033.4).abs() < 0.1);
            }
        }
    }

    #[test]
    fn handovers_between_counts_what_the_chained_states_count() {
        let p = plan(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: g1, latDeg: 10, lonDeg: 20}}\n  - {{name: g2, latDeg: -30, lonDeg: 100}}"
        ));
        let (from, to) = (SimTime::ZERO, at(1800.0));
        let chained: usize = p.states(from, to, p.tick).map(|s| s.handovers).sum();
        assert!(chained > 0, "the window must hold handovers to compare");
        assert_eq!(p.handovers_between(from, to), chained);
    }

    #[test]
    fn walker_phasing_offsets_neighbouring_planes() {
        // Satellite s of plane p is at argument of latitude 360 (s / S + F p / (P S)).
        let p = plan(
            "  shells:\n  - {name: w, walker: {type: delta, planes: 4, satsPerPlane: 5, phasing: 3}, altitudeKm: 1000, inclinationDeg: 0}",
        );
        let s = p.state_at(SimTime::ZERO);
        // Equatorial: all in one plane, so angles are comparable directly.
        let lon = |i: usize| s.geometry.ecef[i][1].atan2(s.geometry.ecef[i][0]).to_degrees();
        // Plane 1's node is 90 deg further east, and its satellite 0 is F / (P S) of a turn
        // ahead: 90 + 360 x 3 / 20 = 144 deg.
        let d = wrap_deg(lon(5) - lon(0));
        assert!((d - 144.0).abs() < 1e-6, "{d}");
    }

    #[test]
    fn the_star_seam_has_no_links_and_delta_closes_the_ring() {
        for (kind, seam_links) in [("star", 0), ("delta", 11)] {
            let p = plan(&format!(
                "  shells:\n  - {{name: w, walker: {{type: {kind}, planes: 6, satsPerPlane: 11, phasing: 2}}, altitudeKm: 780, inclinationDeg: 86.4}}"
            ));
            let across = p.isls.iter().filter(|l| l.a < 11 && l.b >= 55).count();
            assert_eq!(across, seam_links, "{kind}");
        }
    }

    #[test]
    fn cross_plane_links_switch_off_above_the_latitude_bound() {
        let p = plan(
            "  shells:\n  - {name: w, walker: {type: star, planes: 6, satsPerPlane: 11, phasing: 2}, altitudeKm: 780, inclinationDeg: 86.4, isl: {crossPlaneMaxLatDeg: 60}}",
        );
        let (mut down, mut up) = (0, 0);
        for t in [0.0, 600.0, 1200.0] {
            let s = p.state_at(at(t));
            for (l, def) in s.links.iter().zip(&p.isls) {
                let lat = |i: u32| {
                    let r = s.geometry.ecef[i as usize];
                    (r[2] / norm(r)).asin().to_degrees().abs()
                };
                let high = lat(def.a) > 60.0 || lat(def.b) > 60.0;
                if def.cross_plane {
                    assert_eq!(l.up, !high, "{} - {} at {t}", p.node(l.a).name, p.node(l.b).name);
                    if high { down += 1 } else { up += 1 }
                } else {
                    assert!(l.up, "in-plane links ignore the bound");
                }
            }
        }
        assert!(down > 0 && up > 0);
    }

    #[test]
    fn links_beyond_max_range_are_down() {
        let p = plan(
            "  shells:\n  - {name: w, walker: {type: delta, planes: 4, satsPerPlane: 10, phasing: 1}, altitudeKm: 1000, inclinationDeg: 55, isl: {maxRangeKm: 6000}}",
        );
        let s = p.state_at(at(300.0));
        assert!(s.links.iter().any(|l| l.up) && s.links.iter().any(|l| !l.up));
        for l in &s.links {
            assert_eq!(l.up, l.distance_m <= 6_000e3, "{} m", l.distance_m);
        }
    }

    /// Three satellites per plane at 500 km are 120 deg apart: the chord between them dips
    /// to (R + h) cos 60 = 3,439 km from the centre, through the Earth. Twenty are 18 deg
    /// apart: the chord stays at (R + h) cos 9 = 6,793 km, above the 80 km limit.
    #[test]
    fn links_through_the_atmosphere_are_down() {
        let p = plan(
            "  shells:\n  - {name: w, walker: {type: delta, planes: 1, satsPerPlane: 3}, altitudeKm: 500, inclinationDeg: 30}",
        );
        assert!(p.state_at(SimTime::ZERO).links.iter().all(|l| !l.up));
        let p = plan(
            "  shells:\n  - {name: w, walker: {type: delta, planes: 1, satsPerPlane: 20}, altitudeKm: 500, inclinationDeg: 30}",
        );
        assert!(p.state_at(SimTime::ZERO).links.iter().all(|l| l.up));
    }

    #[test]
    fn delay_is_distance_over_c_plus_processing_and_loss_grows_as_elevation_falls() {
        let p = plan(&format!(
            "{SHELL}\n  groundStations:\n  - {{name: g, latDeg: 10, lonDeg: 20}}\n  groundLinks: {{minElevationDeg: 5, policy: all, atmosphericLossPct: 1}}\n  linkClasses:\n    isl: {{rateMbps: 100}}\n    gsl: {{rateMbps: 20, lossPct: 0.5, processingDelayUs: 250}}"
        ));
        let mut gsl_seen = Vec::new();
        for t in (0..20).map(|k| f64::from(k) * 300.0) {
            let s = p.state_at(at(t));
            for l in &s.links {
                let propagation = (l.distance_m / SPEED_OF_LIGHT_M_S * 1e9).round() as u64;
                match l.kind {
                    LinkKind::Isl => {
                        assert_eq!(l.delay_ns, propagation);
                        assert_eq!((l.rate_bps, l.loss_pct), (100_000_000, 0.0));
                    }
                    LinkKind::Gsl => {
                        assert_eq!(l.delay_ns, propagation + 250_000);
                        let el = l.elevation_deg.unwrap();
                        assert!(el >= 5.0);
                        let want = 100.0 * (1.0 - 0.995 * (1.0 - 0.01 / el.to_radians().sin()));
                        assert!((l.loss_pct - want).abs() < 1e-9, "{} vs {want}", l.loss_pct);
                        assert_eq!(l.rate_bps, 20_000_000);
                        gsl_seen.push((el, l.loss_pct));
                    }
                }
            }
        }
        gsl_seen.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(gsl_seen.len() > 10);
        assert!(gsl_seen.windows(2).all(|w| w[0].1 >= w[1].1), "loss must fall as elevation rises");
    }

    fn elevation(s: &State, ground: usize, sat: u32) -> f64 {
        let site = &s.geometry.ground_sites[ground];
        crate::geo::elevation_rad(site.to_ecef(), site.up(), s.geometry.ecef[sat as usize]).to_degrees()
    }

    #[test]
    fn ground_link_policies_pick_what_they_say() {
        let base = |policy: &str, antennas: u32| {
            plan(&format!(
                "{DENSE}\n  groundStations:\n  - {{name: g, latDeg: 30, lonDeg: 0}}\n  groundLinks: {{minElevationDeg: 10, policy: {policy}, antennas: {antennas}}}"
            ))
        };
        let (all, high, near) = (base("all", 1), base("highestElevation", 2), base("nearest", 2));
        let mut compared = 0;
        for t in (0..30).map(|k| f64::from(k) * 240.0) {
            let visible = &all.geometry(at(t)).visible[0];
            let s_all = all.state_at(at(t));
            assert_eq!(
                s_all.ground_choice.per_ground[0].len(),
                visible.len(),
                "all = every visible satellite"
            );
            for c in visible {
                assert!((elevation(&s_all, 0, c.sat) - c.elevation_rad.to_degrees()).abs() < 1e-9);
                assert!(c.elevation_rad.to_degrees() >= 10.0);
            }
            if visible.len() < 3 {
                continue;
            }
            compared += 1;
            let mut by_el: Vec<_> = visible.iter().map(|c| (c.elevation_rad, c.sat)).collect();
            by_el.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut want: Vec<u32> = by_el[..2].iter().map(|x| x.1).collect();
            want.sort();
            assert_eq!(high.state_at(at(t)).ground_choice.per_ground[0], want);
            let mut by_d: Vec<_> = visible.iter().map(|c| (c.distance_m, c.sat)).collect();
            by_d.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut want: Vec<u32> = by_d[..2].iter().map(|x| x.1).collect();
            want.sort();
            assert_eq!(near.state_at(at(t)).ground_choice.per_ground[0], want);
        }
        assert!(compared > 5, "the test must see several satellites at once ({compared})");
    }

    /// Hysteresis saves handovers over a pass, and a state asked for alone (a process that
    /// starts there) is the state the tick-by-tick timeline reaches.
    #[test]
    fn hysteresis_saves_handovers_and_every_tick_is_the_same_alone_or_chained() {
        let with = |deg: f64| {
            plan(&format!(
                "{DENSE}\n  groundStations:\n  - {{name: g, latDeg: 30, lonDeg: 0}}\n  groundLinks: {{minElevationDeg: 10, antennas: 1, hysteresisDeg: {deg}}}\n  routing: none"
            ))
        };
        let (sticky, eager) = (with(10.0), with(0.0));
        let (from, to) = (SimTime::ZERO, at(7200.0));
        let (kept, switched) = (sticky.handovers_between(from, to), eager.handovers_between(from, to));
        assert!(kept < switched, "hysteresis 10 deg: {kept} handovers, none: {switched}");
        let states: Vec<State> = sticky.states(from, to, sticky.tick).collect();
        let fresh = |s: &State| {
            let faults = sticky.active_faults(s.t);
            sticky.choose_ground_links(&s.geometry, &faults, None)
        };
        assert!(
            states.iter().any(|s| fresh(s) != s.ground_choice),
            "some tick keeps a satellite a fresh choice would not"
        );
        for s in states.iter().step_by(97) {
            let alone = sticky.state_at(s.t);
            assert_eq!(
                (&alone.ground_choice, alone.handovers),
                (&s.ground_choice, s.handovers),
                "at {} s",
                s.t
            );
        }
    }

    #[test]
    fn the_same_input_gives_the_same_state_and_link_ids() {
        let yaml = include_str!("../../../scenarios/backbone.yaml");
        let (p1, p2) = (crate::compile_yaml(yaml).unwrap(), crate::compile_yaml(yaml).unwrap());
        let s1: Vec<State> = p1.states(SimTime::ZERO, at(120.0), SpecDuration::from_secs(30)).collect();
        let s2: Vec<State> = p2.states(SimTime::ZERO, at(120.0), SpecDuration::from_secs(30)).collect();
        for (a, b) in s1.iter().zip(&s2) {
            assert_eq!(a.links, b.links);
            assert_eq!(a.routes, b.routes);
            assert_eq!(a.geometry, b.geometry);
        }
        // The same pair has the same id at every tick.
        let ids: Vec<_> =
            s1[0].links.iter().filter(|l| l.kind == LinkKind::Isl).map(|l| (l.a, l.b, l.id)).collect();
        let later: Vec<_> =
            s1[4].links.iter().filter(|l| l.kind == LinkKind::Isl).map(|l| (l.a, l.b, l.id)).collect();
        assert_eq!(ids, later);
    }

    #[test]
    fn a_platform_sails_its_track_at_its_speed() {
        let p = plan(&format!(
            "{SHELL}\n  platforms:\n  - {{name: ship, kind: ship, speedKmh: 36, waypoints: [{{latDeg: 0, lonDeg: 0}}, {{latDeg: 0, lonDeg: 10}}]}}"
        ));
        let g0 = p.geometry(SimTime::ZERO).ground_sites[0];
        let g1 = p.geometry(at(3600.0)).ground_sites[0];
        let km = crate::geo::great_circle_m(g0.lat_rad, g0.lon_rad, g1.lat_rad, g1.lon_rad) / 1e3;
        assert!((km - 36.0).abs() < 1e-6, "{km}");
        assert_eq!(p.node(p.n_sats as u32).kind, NodeKind::Platform);
    }

    #[test]
    fn a_tle_satellite_flies_at_its_altitude() {
        let p = crate::compile_yaml(include_str!("../../../scenarios/backbone.yaml")).unwrap();
        let sat = p.node_index("sat-a").unwrap() as usize;
        for t in [0.0, 1000.0, 5000.0] {
            let alt_km = (norm(p.geometry(at(t)).ecef[sat]) - WGS84_A_M) / 1e3;
            // 15.5 revolutions a day is a ~340-420 km orbit (with the Earth's flattening).
            assert!((330.0..430.0).contains(&alt_km), "{alt_km}");
        }
    }

    #[test]
    fn routes_follow_up_links_only_and_avoid_ground_relays() {
        let p = crate::compile_yaml(include_str!("../../../scenarios/backbone.yaml")).unwrap();
        let mut checked = 0;
        for s in p.states(SimTime::ZERO, at(1800.0), SpecDuration::from_secs(180)) {
            let routes = s.routes.as_ref().unwrap();
            for from in 0..p.nodes.len() as u32 {
                for &to in routes.destinations.iter().filter(|&&to| to != from) {
                    let Some(path) = routes.path(from, to) else { continue };
                    let mut delay = 0;
                    for w in path.windows(2) {
                        let joins =
                            |l: &&LinkState| (l.a == w[0] && l.b == w[1]) || (l.a == w[1] && l.b == w[0]);
                        let l = s.links.iter().filter(|l| l.up).find(joins);
                        delay += l.unwrap_or_else(|| panic!("hop {} - {} is not up", w[0], w[1])).delay_ns;
                    }
                    assert_eq!(Some(delay), routes.delay_ns(from, to));
                    assert!(path[1..path.len() - 1].iter().all(|&v| !p.is_ground(v)));
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
    }

    #[test]
    fn routing_none_computes_no_routes_and_route_to_ground_only_ground() {
        let none = plan(&format!("{SHELL}\n  routing: none"));
        assert!(none.state_at(SimTime::ZERO).routes.is_none());
        let ground = plan(&format!(
            "{SHELL}\n  routeTo: ground\n  groundStations:\n  - {{name: g, latDeg: 0, lonDeg: 0}}"
        ));
        let s = ground.state_at(SimTime::ZERO);
        assert_eq!(s.routes.unwrap().destinations, vec![ground.n_sats as u32]);
    }

    #[test]
    fn tick_times_are_exact_multiples_of_the_step() {
        let times: Vec<_> =
            Plan::tick_times(SimTime::ZERO, at(1.0), SpecDuration::from_millis(100)).collect();
        assert_eq!(times.len(), 11);
        assert_eq!(times[10], at(1.0));
        assert_eq!(times[3].as_nanos(), 300_000_000);
        assert_eq!(Plan::tick_times(at(5.0), at(1.0), SpecDuration::from_secs(1)).count(), 0);
    }
}
