//! Where every node is at time t (ECEF), and which satellites each ground node sees above
//! the minimum elevation. Depends only on the plan and t: ticks can be computed in any
//! order, in parallel.

use crate::geo::{Geodetic, Vec3, dot, sub};
use crate::orbit::teme_to_ecef;
use crate::plan::{Motion, NodeIdx, Plan};
use crate::time::{SimTime, gmst_rad};

/// A satellite a ground node can see.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub sat: NodeIdx,
    pub elevation_rad: f64,
    pub distance_m: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    pub t: SimTime,
    /// ECEF position of every node, m (zero for a lost satellite, see `alive`).
    pub ecef: Vec<Vec3>,
    /// False for a satellite SGP4 could not propagate to t (decayed): it has no links.
    pub alive: Vec<bool>,
    /// Geodetic position of every ground node, indexed from 0 = node `plan.n_sats`.
    pub ground_sites: Vec<Geodetic>,
    /// Satellites each ground node sees at or above the minimum elevation, by satellite
    /// index; indexed like `ground_sites`.
    pub visible: Vec<Vec<Candidate>>,
}

impl Plan {
    pub fn geometry(&self, t: SimTime) -> Geometry {
        let t_s = t.as_secs_f64();
        let gmst = gmst_rad(self.epoch_years_since_j2000 + t_s / (365.25 * 86_400.0));
        let n = self.nodes.len();
        let mut ecef = Vec::with_capacity(n);
        let mut alive = Vec::with_capacity(n);
        let mut ground_sites = Vec::with_capacity(n - self.n_sats);
        for motion in &self.motions {
            let (r, ok) = match motion {
                Motion::Circular(o) => (teme_to_ecef(o.position_teme(t_s), gmst), true),
                Motion::Tle(o) => match o.position_teme(t_s) {
                    Some(r) => (teme_to_ecef(r, gmst), true),
                    None => ([0.0; 3], false),
                },
                Motion::Fixed { ecef, site } => {
                    ground_sites.push(*site);
                    (*ecef, true)
                }
                Motion::Track(track) => {
                    let site = track.at(t_s);
                    ground_sites.push(site);
                    (site.to_ecef(), true)
                }
            };
            ecef.push(r);
            alive.push(ok);
        }
        let visible = ground_sites
            .iter()
            .enumerate()
            .map(|(g, site)| self.visible_from(ecef[self.n_sats + g], site.up(), &ecef, &alive))
            .collect();
        Geometry { t, ecef, alive, ground_sites, visible }
    }

    /// Satellites at or above the minimum elevation from a ground point.
    fn visible_from(&self, ground: Vec3, up: Vec3, ecef: &[Vec3], alive: &[bool]) -> Vec<Candidate> {
        let sin_min = self.ground_links.min_elevation_rad.sin();
        let sin2_min = sin_min * sin_min;
        let mut out = Vec::new();
        for (sat, r) in ecef[..self.n_sats].iter().enumerate() {
            let d = sub(*r, ground);
            let along_up = dot(d, up);
            // sin(el) = along_up / |d| >= sin(min), tested without a square root: this loop
            // runs ground nodes x satellites times per tick.
            let d2 = dot(d, d);
            if along_up < 0.0 || along_up * along_up < sin2_min * d2 || !alive[sat] {
                continue;
            }
            let distance_m = d2.sqrt();
            out.push(Candidate {
                sat: sat as NodeIdx,
                elevation_rad: (along_up / distance_m).clamp(-1.0, 1.0).asin(),
                distance_m,
            });
        }
        out
    }
}
