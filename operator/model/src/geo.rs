//! Earth geometry: WGS84 geodetic <-> ECEF, look angles, great circles, plain 3-vectors.
//!
//! All lengths in metres, angles in radians unless the name says `_deg`.

/// WGS84 semi-major axis, m (NIMA TR8350.2, table 3.1).
pub const WGS84_A_M: f64 = 6_378_137.0;
/// WGS84 flattening (NIMA TR8350.2, table 3.1).
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// WGS84 first eccentricity squared, e^2 = f (2 - f).
pub const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);
/// IUGG mean Earth radius, m (Moritz, *Geodetic Reference System 1980*): great-circle
/// distances on the ground (platform tracks, jamming radius).
pub const MEAN_EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Speed of light in vacuum, m/s (SI definition).
pub const SPEED_OF_LIGHT_M_S: f64 = 299_792_458.0;

pub type Vec3 = [f64; 3];

#[inline]
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

#[inline]
pub fn distance(a: Vec3, b: Vec3) -> f64 {
    norm(sub(a, b))
}

/// A point on or above the WGS84 ellipsoid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geodetic {
    pub lat_rad: f64,
    pub lon_rad: f64,
    pub alt_m: f64,
}

impl Geodetic {
    pub fn from_deg(lat_deg: f64, lon_deg: f64, alt_m: f64) -> Self {
        Self { lat_rad: lat_deg.to_radians(), lon_rad: lon_deg.to_radians(), alt_m }
    }

    /// Earth-centred, Earth-fixed coordinates (Vallado, 4th ed., eq. 3-14).
    pub fn to_ecef(self) -> Vec3 {
        let (sin_lat, cos_lat) = self.lat_rad.sin_cos();
        let (sin_lon, cos_lon) = self.lon_rad.sin_cos();
        let n = WGS84_A_M / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
        [
            (n + self.alt_m) * cos_lat * cos_lon,
            (n + self.alt_m) * cos_lat * sin_lon,
            (n * (1.0 - WGS84_E2) + self.alt_m) * sin_lat,
        ]
    }

    /// Unit vector along the ellipsoid normal ("up") at this point, in ECEF.
    pub fn up(self) -> Vec3 {
        let (sin_lat, cos_lat) = self.lat_rad.sin_cos();
        let (sin_lon, cos_lon) = self.lon_rad.sin_cos();
        [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
    }

    /// Geodetic coordinates of an ECEF point, by Bowring's iteration (Vallado, 4th ed.,
    /// algorithm 12); converges to < 1 mm in three rounds for any point above ~10 km depth.
    pub fn from_ecef(r: Vec3) -> Self {
        let p = r[0].hypot(r[1]);
        let lon_rad = r[1].atan2(r[0]);
        let mut lat_rad = r[2].atan2(p * (1.0 - WGS84_E2));
        let mut alt_m = 0.0;
        for _ in 0..5 {
            let sin_lat = lat_rad.sin();
            let n = WGS84_A_M / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
            alt_m = if lat_rad.cos().abs() > 1e-9 {
                p / lat_rad.cos() - n
            } else {
                r[2].abs() - n * (1.0 - WGS84_E2)
            };
            lat_rad = r[2].atan2(p * (1.0 - WGS84_E2 * n / (n + alt_m)));
        }
        Self { lat_rad, lon_rad, alt_m }
    }
}

/// Elevation of `target` seen from `observer` (whose ellipsoid normal is `up`), radians.
#[inline]
pub fn elevation_rad(observer: Vec3, up: Vec3, target: Vec3) -> f64 {
    let d = sub(target, observer);
    (dot(d, up) / norm(d)).clamp(-1.0, 1.0).asin()
}

/// Smallest distance from the Earth's centre to the segment `a`-`b`, m.
pub fn segment_min_radius_m(a: Vec3, b: Vec3) -> f64 {
    let ab = sub(b, a);
    let len2 = dot(ab, ab);
    if len2 == 0.0 {
        return norm(a);
    }
    let s = (-dot(a, ab) / len2).clamp(0.0, 1.0);
    norm([a[0] + s * ab[0], a[1] + s * ab[1], a[2] + s * ab[2]])
}

/// Unit vector of a latitude / longitude on a sphere.
pub fn unit_vector(lat_rad: f64, lon_rad: f64) -> Vec3 {
    let (sin_lat, cos_lat) = lat_rad.sin_cos();
    let (sin_lon, cos_lon) = lon_rad.sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// Central angle between two unit vectors, radians (atan2 form: exact near 0 and pi).
pub fn central_angle_rad(u: Vec3, v: Vec3) -> f64 {
    let c = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    norm(c).atan2(dot(u, v))
}

/// Great-circle distance on the mean-radius sphere, m.
pub fn great_circle_m(lat1_rad: f64, lon1_rad: f64, lat2_rad: f64, lon2_rad: f64) -> f64 {
    central_angle_rad(unit_vector(lat1_rad, lon1_rad), unit_vector(lat2_rad, lon2_rad)) * MEAN_EARTH_RADIUS_M
}

/// The point a fraction `f` (0..1) of the way along the great circle from `u` to `v`
/// (spherical linear interpolation of unit vectors), as latitude / longitude in radians.
pub fn slerp_lat_lon(u: Vec3, v: Vec3, f: f64) -> (f64, f64) {
    let omega = central_angle_rad(u, v);
    let p = if omega < 1e-12 {
        u
    } else {
        let (wa, wb) = (((1.0 - f) * omega).sin() / omega.sin(), (f * omega).sin() / omega.sin());
        [wa * u[0] + wb * v[0], wa * u[1] + wb * v[1], wa * u[2] + wb * v[2]]
    };
    (p[2].atan2(p[0].hypot(p[1])), p[1].atan2(p[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vallado, 4th ed., Example 7-1: the site at geodetic (39.007 deg, -104.883 deg, 2187 m)
    /// is at ECEF (-1275.1219, -4797.9890, 3994.2975) km; PROJ 9 (pyproj, EPSG:4979 ->
    /// EPSG:4978) prints the same to 0.1 m.
    #[test]
    fn geodetic_to_ecef_matches_vallado_example() {
        let r = Geodetic::from_deg(39.007, -104.883, 2187.0).to_ecef();
        let want = [-1_275_121.9, -4_797_989.0, 3_994_297.5];
        for i in 0..3 {
            assert!((r[i] - want[i]).abs() < 1.0, "{r:?}");
        }
    }

    #[test]
    fn ecef_to_geodetic_inverts_to_ecef() {
        for &(lat, lon, alt) in
            &[(0.0, 0.0, 0.0), (89.9, 10.0, 550e3), (-45.0, -170.0, 10e3), (76.53, -68.7, 80.0)]
        {
            let g = Geodetic::from_deg(lat, lon, alt);
            let back = Geodetic::from_ecef(g.to_ecef());
            assert!((back.lat_rad - g.lat_rad).abs() < 1e-9);
            assert!((back.lon_rad - g.lon_rad).abs() < 1e-9);
            assert!((back.alt_m - g.alt_m).abs() < 1e-3, "{back:?}");
        }
    }

    /// Hand-worked: an observer on the equator at longitude 0 and a satellite over the
    /// equator at longitude 20 deg, altitude h. On the equator the WGS84 normal is radial, so
    /// in the equatorial plane tan(el) = (cos(dlon) - a / (a + h)) / sin(dlon).
    /// With h = 550 km: cos 20 = 0.9396926, a/(a+h) = 0.9206136, sin 20 = 0.3420201
    /// -> tan(el) = 0.0557834 -> el = 3.19284 deg.
    #[test]
    fn elevation_matches_hand_worked_case() {
        let obs = Geodetic::from_deg(0.0, 0.0, 0.0);
        let sat = Geodetic::from_deg(0.0, 20.0, 550e3).to_ecef();
        let el = elevation_rad(obs.to_ecef(), obs.up(), sat).to_degrees();
        assert!((el - 3.19284).abs() < 1e-4, "{el}");
        let zenith = Geodetic::from_deg(0.0, 0.0, 550e3).to_ecef();
        assert!((elevation_rad(obs.to_ecef(), obs.up(), zenith).to_degrees() - 90.0).abs() < 1e-9);
    }

    #[test]
    fn great_circle_distance_of_a_quarter_meridian() {
        let d = great_circle_m(0.0, 0.0, std::f64::consts::FRAC_PI_2, 0.0);
        assert!((d - MEAN_EARTH_RADIUS_M * std::f64::consts::FRAC_PI_2).abs() < 1e-6);
    }

    #[test]
    fn segment_radius_is_the_perpendicular_foot_or_an_end() {
        let r = segment_min_radius_m([7e6, -1e6, 0.0], [7e6, 1e6, 0.0]);
        assert!((r - 7e6).abs() < 1e-6);
        let r = segment_min_radius_m([7e6, 0.0, 0.0], [8e6, 0.0, 0.0]);
        assert!((r - 7e6).abs() < 1e-6);
    }

    #[test]
    fn slerp_halfway_along_the_equator() {
        let (lat, lon) = slerp_lat_lon(unit_vector(0.0, 0.0), unit_vector(0.0, 1.0), 0.5);
        assert!(lat.abs() < 1e-12 && (lon - 0.5).abs() < 1e-12);
    }
}
