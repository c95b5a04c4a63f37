//! The browser view of a run (`orbitnet run --ui`): every tick the engine applies, its
//! events and convergence, and the objectives judged on what the flows measured so far,
//! handed to the view's hub; the view's server does the rest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbitnet_engine::Tick;
use orbitnet_mission::{FlowSeries, RoutingEvent, Span};
use orbitnet_model::{Plan, SimTime};
use orbitnet_view::{LiveHub, ObjectiveView, Source, TimelineEvent};

/// How often the objectives are judged again (they are judged over the whole run so far).
const JUDGE_EVERY: Duration = Duration::from_secs(1);

pub struct Browser {
    hub: Arc<LiveHub>,
    start: SimTime,
    series: Vec<FlowSeries>,
    routing: Vec<RoutingEvent>,
    objectives: Vec<ObjectiveView>,
    judged: Option<Instant>,
}

impl Browser {
    /// Serves the view on `addr`; returns the address bound.
    pub fn start(
        addr: SocketAddr,
        plan: &Plan,
        start: SimTime,
        end: Option<SimTime>,
    ) -> std::io::Result<(Self, SocketAddr)> {
        let hub = LiveHub::new(plan, start, end);
        let bound = orbitnet_view::spawn(addr, orbitnet_view::router(Source::Live(Arc::clone(&hub))))?;
        let objectives = plan
            .objectives
            .iter()
            .map(|o| ObjectiveView::pending(&o.name, "judged once the flows have measured a tick"))
            .collect();
        let browser = Browser {
            hub,
            start,
            series: vec![FlowSeries::default(); plan.flows.len()],
            routing: Vec::new(),
            objectives,
            judged: None,
        };
        Ok((browser, bound))
    }

    /// The plan changed (a live edit).
    pub fn replanned(&self, plan: &Plan, end: Option<SimTime>) {
        self.hub.set_plan(plan, self.start, end);
    }

    pub fn tick(&mut self, plan: &Plan, tick: &Tick) {
        for (i, ft) in &tick.flows {
            if let Some(s) = self.series.get_mut(*i) {
                s.ticks.insert(ft.k, ft.clone());
            }
        }
        let mut extra = Vec::new();
        for c in &tick.convergence {
            let text = match c.forwarded_s {
                Some(s) => format!("{} ({}): every pair forwarded again after {s:.2} s", c.kind, c.what),
                None => {
                    format!("{} ({}): not every pair forwarded within {:.0} s", c.kind, c.what, c.watched_s)
                }
            };
            extra.push(TimelineEvent { t: c.t, kind: "convergence", text });
            self.routing.push(c.event());
        }
        let measured = !tick.flows.is_empty() || !tick.convergence.is_empty();
        if measured && self.judged.is_none_or(|at| at.elapsed() >= JUDGE_EVERY) {
            self.judged = Some(Instant::now());
            let run =
                Span { from: self.start.as_secs_f64(), to: tick.t.as_secs_f64() + plan.tick.as_secs_f64() };
            self.objectives = crate::runner::judge(plan, &self.series, &self.routing, run)
                .iter()
                .map(ObjectiveView::of)
                .collect();
        }
        self.hub.publish(tick.k, &tick.state, &tick.events, extra, self.objectives.clone());
    }
}
