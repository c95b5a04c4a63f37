//! Counts over a run, for `--summary` (benchmarks) and the end of a report.

use std::fmt;

use orbitnet_model::{LinkKind, Plan, SimTime, State};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub ticks: u64,
    pub first: Option<SimTime>,
    pub last: Option<SimTime>,
    pub isl_up_sum: u64,
    pub isl_total: u64,
    pub gsl_up_sum: u64,
    /// Ground links made since the sample before, summed.
    pub handovers: u64,
    pub route_entries_sum: u64,
    pub unreachable_pairs_sum: u64,
    /// Next hops that differ from the tick before's, summed.
    pub route_changes_sum: u64,
    /// The most next hops that changed in one tick.
    pub route_changes_max: u64,
    previous_routes: Option<orbitnet_model::Routes>,
    previous_choice: Option<orbitnet_model::GroundChoice>,
}

impl Summary {
    pub fn add(&mut self, state: &State) {
        self.ticks += 1;
        self.first.get_or_insert(state.t);
        self.last = Some(state.t);
        self.isl_total = state.links.iter().filter(|l| l.kind == LinkKind::Isl).count() as u64;
        self.isl_up_sum += state.links.iter().filter(|l| l.kind == LinkKind::Isl && l.up).count() as u64;
        self.gsl_up_sum += state.links.iter().filter(|l| l.kind == LinkKind::Gsl && l.up).count() as u64;
        if let Some(before) = &self.previous_choice {
            self.handovers += state.ground_choice.handovers_since(before) as u64;
        }
        self.previous_choice = Some(state.ground_choice.clone());
        if let Some(routes) = &state.routes {
            let entries = routes.len() as u64;
            let pairs = routes.destinations.len() as u64 * (state.geometry.ecef.len() as u64 - 1);
            self.route_entries_sum += entries;
            self.unreachable_pairs_sum += pairs.saturating_sub(entries);
            if let Some(changed) = self.previous_routes.as_ref().and_then(|p| routes.changed_since(p)) {
                self.route_changes_sum += changed.len() as u64;
                self.route_changes_max = self.route_changes_max.max(changed.len() as u64);
            }
            self.previous_routes = Some(routes.clone());
        }
    }

    fn mean(&self, sum: u64) -> f64 {
        if self.ticks == 0 { 0.0 } else { sum as f64 / self.ticks as f64 }
    }
}

/// Summary lines of a run of `plan`.
pub struct Report<'a> {
    pub plan: &'a Plan,
    pub summary: &'a Summary,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, s) = (self.plan, self.summary);
        let span = match (s.first, s.last) {
            (Some(a), Some(b)) => format!("t = {a} .. {b} s"),
            _ => "no ticks".into(),
        };
        writeln!(f, "constellation {}: {} ticks, {span}", p.name, s.ticks)?;
        writeln!(f, "nodes: {}", p.node_summary())?;
        writeln!(
            f,
            "links: {} ISLs in the grid, {:.1} up on average; {:.1} ground links on average; {} handovers",
            s.isl_total,
            s.mean(s.isl_up_sum),
            s.mean(s.gsl_up_sum),
            s.handovers
        )?;
        if s.route_entries_sum > 0 || s.unreachable_pairs_sum > 0 {
            writeln!(
                f,
                "routes: {:.1} next hops per tick on average; {:.1} (node, destination) pairs unreachable; {:.1} next hops change per tick on average, {} at most",
                s.mean(s.route_entries_sum),
                s.mean(s.unreachable_pairs_sum),
                s.route_changes_sum as f64 / s.ticks.saturating_sub(1).max(1) as f64,
                s.route_changes_max
            )?;
        }
        Ok(())
    }
}
