//! Numbers as people read them in tables, messages and events.

/// `x` rounded to `decimals` decimal places.
pub fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// `10 Gbit/s`, `1 Gbit/s`, `25 Mbit/s`, `64 kbit/s`.
pub fn human_rate(bps: u64) -> String {
    let (value, unit) = match bps {
        b if b >= 1_000_000_000 => (b as f64 / 1e9, "Gbit/s"),
        b if b >= 1_000_000 => (b as f64 / 1e6, "Mbit/s"),
        b if b >= 1_000 => (b as f64 / 1e3, "kbit/s"),
        b => (b as f64, "bit/s"),
    };
    format!("{} {unit}", round_to(value, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_in_their_largest_whole_unit() {
        assert_eq!(human_rate(10_000_000_000), "10 Gbit/s");
        assert_eq!(human_rate(25_000_000), "25 Mbit/s");
        assert_eq!(human_rate(64_000), "64 kbit/s");
        assert_eq!(human_rate(1_234_567), "1.235 Mbit/s");
        assert_eq!(human_rate(999), "999 bit/s");
    }
}
