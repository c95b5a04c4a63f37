//! Quantiles of per-tick measurements (apply time, lateness).

#[derive(Clone, Debug, Default)]
pub struct Percentiles {
    values: Vec<f64>,
}

impl Percentiles {
    pub fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The q-quantile (nearest rank) of the last 10,000 values; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let recent = &self.values[self.values.len().saturating_sub(10_000)..];
        quantile_of(recent, q)
    }
}

/// The q-quantile (nearest rank) of `values`; 0 when empty.
pub fn quantile_of(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    *v.select_nth_unstable_by(rank, f64::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_of(&v, 0.5), 50.0);
        assert_eq!(quantile_of(&v, 0.99), 99.0);
        assert_eq!(quantile_of(&v, 1.0), 100.0);
        assert_eq!(quantile_of(&[], 0.5), 0.0);
        assert_eq!(quantile_of(&[7.0], 0.99), 7.0);
    }
}
