//! Platform tracks: great-circle legs between waypoints, flown at constant ground speed on
//! the mean-radius sphere, starting at the first waypoint at the epoch.

use crate::geo::{Geodetic, MEAN_EARTH_RADIUS_M, Vec3, central_angle_rad, slerp_lat_lon, unit_vector};

#[derive(Clone, Debug, PartialEq)]
struct Leg {
    from: Vec3,
    to: Vec3,
    from_alt_m: f64,
    to_alt_m: f64,
    length_m: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    start: Geodetic,
    legs: Vec<Leg>,
    total_m: f64,
    speed_m_s: f64,
    looped: bool,
}

impl Track {
    /// `points` are (latitude, longitude, altitude) in degrees and metres; at least one.
    pub fn new(points: &[(f64, f64, f64)], speed_m_s: f64, looped: bool) -> Self {
        let (lat0, lon0, alt0) = points.first().copied().unwrap_or((0.0, 0.0, 0.0));
        let mut stops: Vec<_> = points.to_vec();
        if looped && points.len() > 1 {
            stops.push(points[0]);
        }
        let legs: Vec<Leg> = stops
            .windows(2)
            .map(|w| {
                let from = unit_vector(w[0].0.to_radians(), w[0].1.to_radians());
                let to = unit_vector(w[1].0.to_radians(), w[1].1.to_radians());
                Leg {
                    from,
                    to,
                    from_alt_m: w[0].2,
                    to_alt_m: w[1].2,
                    length_m: central_angle_rad(from, to) * MEAN_EARTH_RADIUS_M,
                }
            })
            .collect();
        let total_m = legs.iter().map(|l| l.length_m).sum();
        Self { start: Geodetic::from_deg(lat0, lon0, alt0), legs, total_m, speed_m_s, looped }
    }

    /// Where the platform is `t_s` seconds after the epoch (at the start before it).
    pub fn at(&self, t_s: f64) -> Geodetic {
        if self.total_m <= 0.0 || t_s <= 0.0 {
            return self.start;
        }
        let travelled = self.speed_m_s * t_s;
        let mut s = if self.looped { travelled % self.total_m } else { travelled.min(self.total_m) };
        for leg in &self.legs {
            if s <= leg.length_m {
                let f = if leg.length_m > 0.0 { s / leg.length_m } else { 0.0 };
                let (lat_rad, lon_rad) = slerp_lat_lon(leg.from, leg.to, f);
                let alt_m = leg.from_alt_m + f * (leg.to_alt_m - leg.from_alt_m);
                return Geodetic { lat_rad, lon_rad, alt_m };
            }
            s -= leg.length_m;
        }
        // Rounding left a sliver past the last leg: the platform is at its end.
        let last = &self.legs[self.legs.len() - 1];
        let (lat_rad, lon_rad) = slerp_lat_lon(last.from, last.to, 1.0);
        Geodetic { lat_rad, lon_rad, alt_m: last.to_alt_m }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deg(g: Geodetic) -> (f64, f64) {
        (g.lat_rad.to_degrees(), g.lon_rad.to_degrees())
    }

    /// Along the equator one degree is R * pi / 180 = 111,195 m: at 10 m/s the platform
    /// reaches longitude 1 after 11,119.5 s, and stays at its last waypoint afterwards.
    #[test]
    fn moves_along_the_equator_at_its_speed_and_stops() {
        let track = Track::new(&[(0.0, 0.0, 0.0), (0.0, 2.0, 0.0)], 10.0, false);
        let one_degree_m = MEAN_EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        let (lat, lon) = deg(track.at(one_degree_m / 10.0));
        assert!(lat.abs() < 1e-9 && (lon - 1.0).abs() < 1e-9, "{lat} {lon}");
        let (_, lon) = deg(track.at(1e9));
        assert!((lon - 2.0).abs() < 1e-9);
        assert_eq!(deg(track.at(-5.0)), (0.0, 0.0));
    }

    #[test]
    fn a_looped_track_comes_back_to_its_start() {
        let track = Track::new(&[(0.0, 0.0, 0.0), (0.0, 1.0, 1000.0)], 100.0, true);
        let lap_s = 2.0 * MEAN_EARTH_RADIUS_M * 1f64.to_radians() / 100.0;
        let g = track.at(lap_s * 3.0 + lap_s / 4.0);
        let (lat, lon) = deg(g);
        assert!(lat.abs() < 1e-9 && (lon - 0.5).abs() < 1e-6, "{lat} {lon}");
        assert!((g.alt_m - 500.0).abs() < 1e-3);
    }

    #[test]
    fn a_single_waypoint_is_a_fixed_position() {
        let track = Track::new(&[(20.0, 140.0, 0.0)], 10.0, true);
        let (lat, lon) = deg(track.at(1000.0));
        assert!((lat - 20.0).abs() < 1e-12 && (lon - 140.0).abs() < 1e-12);
    }
}
