//! Link state at time t: which satellites each ground node links to (policy, antennas,
//! hysteresis against the previous tick's choice), and every link's up/down, delay, loss
//! and rate.
//!
//! Losses from independent causes (class, atmosphere, faults) combine as independent drop
//! processes: 1 - (1 - p1)(1 - p2)..., which equals their sum while they are small and
//! never exceeds 100 %.

use crate::faults::ActiveFaults;
use crate::geo::{SPEED_OF_LIGHT_M_S, Vec3, distance, norm, segment_min_radius_m};
use crate::geometry::{Candidate, Geometry};
use crate::plan::{ClassParams, IslDef, LinkId, LinkKind, NodeIdx, Plan};
use crate::spec::GroundPolicy;

/// Height above which a line of sight clears the atmosphere (Hypatia, Kassing et al. 2020,
/// after the 80 km mesopause), above the WGS84 equatorial radius.
pub const GRAZING_HEIGHT_M: f64 = 80_000.0;

/// The satellites each ground node links to, sorted; indexed from 0 = node `plan.n_sats`.
/// The only state carried from one tick to the next (for hysteresis).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroundChoice {
    pub per_ground: Vec<Vec<NodeIdx>>,
}

impl GroundChoice {
    /// Ground links made this tick that the previous choice did not have (handovers in).
    pub fn handovers_since(&self, previous: &GroundChoice) -> usize {
        self.per_ground
            .iter()
            .zip(&previous.per_ground)
            .map(|(now, before)| now.iter().filter(|s| !before.contains(s)).count())
            .sum()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkState {
    pub id: LinkId,
    /// For ground links, `a` is the ground node and `b` the satellite.
    pub a: NodeIdx,
    pub b: NodeIdx,
    pub kind: LinkKind,
    pub up: bool,
    pub distance_m: f64,
    /// Elevation of the satellite seen from the ground end (ground links only).
    pub elevation_deg: Option<f64>,
    /// One-way, each direction: distance / c + processing + faults.
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub loss_pct: f64,
    pub rate_bps: u64,
}

impl Plan {
    /// Ground-link choice at this geometry, keeping `previous`'s satellites while hysteresis
    /// allows. `previous` must come from this plan (a missing or mismatched one = none).
    pub fn choose_ground_links(
        &self,
        geometry: &Geometry,
        faults: &ActiveFaults<'_>,
        previous: Option<&GroundChoice>,
    ) -> GroundChoice {
        let g = &self.ground_links;
        let per_ground = geometry
            .visible
            .iter()
            .enumerate()
            .map(|(i, visible)| {
                let ground = (self.n_sats + i) as NodeIdx;
                let mut cands: Vec<Candidate> =
                    visible.iter().copied().filter(|c| faults.selectable(c.sat, ground)).collect();
                let before = previous.and_then(|p| p.per_ground.get(i)).map(Vec::as_slice).unwrap_or(&[]);
                let mut chosen: Vec<NodeIdx> = match g.policy {
                    GroundPolicy::All => cands.iter().map(|c| c.sat).collect(),
                    GroundPolicy::HighestElevation => {
                        pick_best(&mut cands, before, g.antennas, g.hysteresis_rad, |c| c.elevation_rad)
                    }
                    GroundPolicy::Nearest => {
                        pick_best(&mut cands, before, g.antennas, g.hysteresis_m, |c| -c.distance_m)
                    }
                };
                chosen.sort_unstable();
                chosen
            })
            .collect();
        GroundChoice { per_ground }
    }

    /// Every inter-satellite link of the grid and every chosen ground link, with its state.
    pub fn link_states(
        &self,
        geometry: &Geometry,
        faults: &ActiveFaults<'_>,
        choice: &GroundChoice,
    ) -> Vec<LinkState> {
        let mut out =
            Vec::with_capacity(self.isls.len() + choice.per_ground.iter().map(Vec::len).sum::<usize>());
        for isl in &self.isls {
            out.push(self.isl_state(isl, geometry, faults));
        }
        for (i, sats) in choice.per_ground.iter().enumerate() {
            let ground = (self.n_sats + i) as NodeIdx;
            let site = &geometry.ground_sites[i];
            let (rg, up_vec) = (geometry.ecef[ground as usize], site.up());
            for &sat in sats {
                let rs = geometry.ecef[sat as usize];
                let distance_m = distance(rg, rs);
                let elevation_rad = crate::geo::elevation_rad(rg, up_vec, rs);
                let up = geometry.alive[sat as usize] && !faults.link_down(ground, sat);
                // Air mass ~ 1 / sin(elevation); the visibility test keeps elevation > 0 but
                // a zero minimum elevation can still graze the horizon: cap the air mass.
                let air_mass = 1.0 / elevation_rad.sin().max(0.01);
                let atmosphere_loss = (self.ground_links.zenith_loss_frac * air_mass).min(1.0);
                let imp = faults.impairment(ground, sat, Some(site));
                out.push(finish(
                    self.link_id(ground, sat),
                    (ground, sat),
                    LinkKind::Gsl,
                    up,
                    distance_m,
                    Some(elevation_rad.to_degrees()),
                    &self.gsl_class,
                    (1.0 - atmosphere_loss) * imp.keep_loss_frac,
                    imp,
                ));
            }
        }
        out
    }

    fn isl_state(&self, isl: &IslDef, geometry: &Geometry, faults: &ActiveFaults<'_>) -> LinkState {
        let (ra, rb) = (geometry.ecef[isl.a as usize], geometry.ecef[isl.b as usize]);
        let distance_m = distance(ra, rb);
        let alive = geometry.alive[isl.a as usize] && geometry.alive[isl.b as usize];
        let in_range = isl.max_range_m.is_none_or(|max| distance_m <= max);
        let clear = segment_min_radius_m(ra, rb) > crate::geo::WGS84_A_M + GRAZING_HEIGHT_M;
        let low_enough = isl
            .max_lat_rad
            .is_none_or(|max| geocentric_lat_rad(ra).abs() <= max && geocentric_lat_rad(rb).abs() <= max);
        let up = alive && in_range && clear && low_enough && !faults.link_down(isl.a, isl.b);
        let imp = faults.impairment(isl.a, isl.b, None);
        finish(
            isl.id,
            (isl.a, isl.b),
            LinkKind::Isl,
            up,
            distance_m,
            None,
            &self.isl_class,
            imp.keep_loss_frac,
            imp,
        )
    }
}

#[allow(clippy::too_many_arguments)] // one constructor for both link kinds, called twice
fn finish(
    id: LinkId,
    (a, b): (NodeIdx, NodeIdx),
    kind: LinkKind,
    up: bool,
    distance_m: f64,
    elevation_deg: Option<f64>,
    class: &ClassParams,
    keep_frac: f64,
    imp: crate::faults::Impairment,
) -> LinkState {
    let propagation_ns = (distance_m / SPEED_OF_LIGHT_M_S * 1e9).round() as u64;
    let keep = (1.0 - class.loss_frac) * keep_frac;
    LinkState {
        id,
        a,
        b,
        kind,
        up,
        distance_m,
        elevation_deg,
        delay_ns: propagation_ns + class.processing_delay_ns + imp.extra_delay_ns,
        jitter_ns: class.jitter_ns,
        loss_pct: ((1.0 - keep) * 100.0).clamp(0.0, 100.0),
        rate_bps: imp.rate_cap_bps.map_or(class.rate_bps, |cap| cap.min(class.rate_bps)),
    }
}

fn geocentric_lat_rad(r: Vec3) -> f64 {
    (r[2] / norm(r)).clamp(-1.0, 1.0).asin()
}

/// The `k` best candidates by `score`, keeping those of `before` that are still candidates
/// unless a challenger beats the worst kept one by more than `margin`. Deterministic: equal
/// scores go to the lower satellite index.
fn pick_best(
    cands: &mut [Candidate],
    before: &[NodeIdx],
    k: usize,
    margin: f64,
    score: impl Fn(&Candidate) -> f64,
) -> Vec<NodeIdx> {
    cands.sort_unstable_by(|x, y| score(y).total_cmp(&score(x)).then(x.sat.cmp(&y.sat)));
    // Incumbents still visible, best first; a shrunken `k` keeps the best of them.
    let mut kept: Vec<(NodeIdx, f64)> =
        cands.iter().filter(|c| before.contains(&c.sat)).map(|c| (c.sat, score(c))).take(k).collect();
    for c in cands.iter() {
        if kept.iter().any(|(s, _)| *s == c.sat) {
            continue;
        }
        if kept.len() < k {
            kept.push((c.sat, score(c)));
            continue;
        }
        // `kept` is full: replace its worst if this challenger beats it by the margin.
        let Some((worst, _)) = kept.iter().enumerate().min_by(|x, y| x.1.1.total_cmp(&y.1.1)) else {
            break;
        };
        if score(c) > kept[worst].1 + margin {
            kept[worst] = (c.sat, score(c));
        } else {
            // Challengers come best first: none later can win either.
            break;
        }
    }
    kept.into_iter().map(|(s, _)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(sat: NodeIdx, elevation_deg: f64) -> Candidate {
        Candidate { sat, elevation_rad: elevation_deg.to_radians(), distance_m: 1e6 / elevation_deg }
    }

    fn pick(cands: &[Candidate], before: &[NodeIdx], k: usize, margin_deg: f64) -> Vec<NodeIdx> {
        let mut c = cands.to_vec();
        let mut out = pick_best(&mut c, before, k, margin_deg.to_radians(), |c| c.elevation_rad);
        out.sort_unstable();
        out
    }

    #[test]
    fn without_history_the_best_k_win() {
        let c = [cand(1, 30.0), cand(2, 60.0), cand(3, 45.0)];
        assert_eq!(pick(&c, &[], 1, 2.0), vec![2]);
        assert_eq!(pick(&c, &[], 2, 2.0), vec![2, 3]);
        assert_eq!(pick(&c, &[], 5, 2.0), vec![1, 2, 3]);
    }

    #[test]
    fn an_incumbent_stays_until_beaten_by_the_margin() {
        let c = [cand(1, 50.0), cand(2, 51.5)];
        assert_eq!(pick(&c, &[1], 1, 2.0), vec![1], "1.5 deg better is within the 2 deg margin");
        let c = [cand(1, 50.0), cand(2, 52.5)];
        assert_eq!(pick(&c, &[1], 1, 2.0), vec![2], "2.5 deg better beats the margin");
    }

    #[test]
    fn a_lost_incumbent_is_replaced_at_once() {
        let c = [cand(2, 30.0), cand(3, 40.0)];
        assert_eq!(pick(&c, &[1], 1, 10.0), vec![3]);
    }

    #[test]
    fn only_the_worst_incumbent_is_challenged() {
        let c = [cand(1, 80.0), cand(2, 40.0), cand(3, 43.0)];
        assert_eq!(pick(&c, &[1, 2], 2, 2.0), vec![1, 3]);
        assert_eq!(pick(&c, &[1, 2], 2, 5.0), vec![1, 2]);
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let c = [cand(7, 45.0), cand(3, 45.0)];
        assert_eq!(pick(&c, &[], 1, 0.0), vec![3]);
    }
}
