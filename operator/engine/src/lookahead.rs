//! The ground links the model will choose soon, worked out off the tick's thread: a window
//! of emulation time at a time, the first at once, the next one asked for when time is
//! halfway through the last. One thread does it, stepping its own timeline from window to
//! window, so no window replays the hysteresis chains, and nobody waits for one: a tick
//! builds the links it needs itself. The same thread first replays the chains to the start
//! (the one replay a start costs) and hands a copy of that timeline to the engine, so the
//! replay runs while the runner makes its namespaces.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};

use orbitnet_model::geometry::Geometry;
use orbitnet_model::{NodeIdx, Plan, SimTime, SpecDuration, Timeline};

/// (ground node, satellite) pairs.
pub(crate) type Pairs = BTreeSet<(NodeIdx, NodeIdx)>;

pub(crate) struct Lookahead {
    window_ns: i64,
    /// Windows stop here (the end of a run), if anywhere.
    until: Option<SimTime>,
    /// The end of the last window asked for.
    asked_until: SimTime,
    /// Asks the thread for the window (from, to); `None` once the thread is gone.
    ask: Option<Sender<(SimTime, SimTime)>>,
    answers: Option<Receiver<Pairs>>,
    pending: bool,
}

impl Lookahead {
    /// A look-ahead from `t`, its first window asked for at once, and where the engine's
    /// timeline, stepped to `t`'s tick, will come from (`None` if no thread could start).
    pub(crate) fn start(
        plan: &Arc<Plan>,
        t: SimTime,
        window: SpecDuration,
        until: Option<SimTime>,
    ) -> (Self, Option<Receiver<Timeline>>) {
        let window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        let mut ahead = Self { window_ns, until, asked_until: t, ask: None, answers: None, pending: false };
        let (ask, asked) = mpsc::channel::<(SimTime, SimTime)>();
        let (tell, answers) = mpsc::channel();
        let (hand, timeline_rx) = mpsc::channel();
        let plan = Arc::clone(plan);
        let spawned = std::thread::Builder::new().name("lookahead".into()).spawn(move || {
            let mut timeline = plan.timeline();
            let on_all_cores = &mut |times: &[SimTime]| geometries(&plan, times);
            timeline.step_to_tick_with(&plan, plan.tick_index(t), on_all_cores);
            let _ = hand.send(timeline.clone());
            let mut timeline = timeline.without_routes();
            for (from, to) in asked {
                if tell.send(timeline.ground_links_chosen(&plan, from, to)).is_err() {
                    return;
                }
            }
        });
        let timeline = match spawned {
            Ok(_) => {
                ahead.ask = Some(ask);
                ahead.answers = Some(answers);
                Some(timeline_rx)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start the look-ahead of ground links");
                None
            }
        };
        ahead.ask_next();
        (ahead, timeline)
    }

    /// Asks for the window after the last one asked for.
    fn ask_next(&mut self) {
        let Some(ask) = &self.ask else { return };
        let from = self.asked_until;
        let to = self.window_end(from);
        self.pending = ask.send((from, to)).is_ok();
        self.asked_until = to;
    }

    fn window_end(&self, from: SimTime) -> SimTime {
        let end = SimTime::from_nanos(from.as_nanos().saturating_add(self.window_ns));
        self.until.map_or(end, |until| end.min(until))
    }

    /// The pairs of a window finished since the last call, if one did; asks for the next
    /// window when `t` is halfway through the last one asked for.
    pub(crate) fn poll(&mut self, t: SimTime) -> Option<Pairs> {
        let mut ready = None;
        if self.pending {
            match self.answers.as_ref().map(Receiver::try_recv) {
                Some(Ok(pairs)) => {
                    ready = Some(pairs);
                    self.pending = false;
                }
                Some(Err(TryRecvError::Empty)) => return None,
                Some(Err(TryRecvError::Disconnected)) | None => {
                    tracing::warn!(
                        "the look-ahead of ground links stopped; links are built when a tick needs them"
                    );
                    self.ask = None;
                    self.pending = false;
                }
            }
        }
        let halfway = self.asked_until.as_nanos().saturating_sub(self.window_ns / 2);
        let more = self.until.is_none_or(|until| self.asked_until < until);
        if !self.pending && more && t.as_nanos() >= halfway {
            self.ask_next();
        }
        ready
    }
}

/// The geometries at `times`, on every core (a replay's geometries are most of its work,
/// and each depends on its time alone).
fn geometries(plan: &Plan, times: &[SimTime]) -> Vec<Geometry> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(times.len()).max(1);
    let per_worker = times.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let parts: Vec<_> = times
            .chunks(per_worker.max(1))
            .map(|part| scope.spawn(move || part.iter().map(|&t| plan.geometry(t)).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_time_and_stop_at_the_end() {
        let plan =
            Arc::new(orbitnet_model::compile_yaml(include_str!("../../../scenarios/tiny.yaml")).unwrap());
        let s = |secs: i64| SimTime::from_nanos(secs * 1_000_000_000);
        let window = SpecDuration::from_secs(600);
        let (mut ahead, timeline) = Lookahead::start(&plan, s(0), window, Some(s(1000)));
        let mut replayed = timeline.unwrap().recv().expect("a timeline at the start for the engine");
        assert_eq!(replayed.state_at(&plan, s(0)).ground_choice, plan.state_at(s(0)).ground_choice);
        let answer = |ahead: &mut Lookahead, t: SimTime| loop {
            if let Some(p) = ahead.poll(t) {
                break p;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(
            answer(&mut ahead, s(0)),
            plan.ground_links_chosen(s(0), s(600)),
            "the first window comes at once"
        );
        assert!(ahead.poll(s(100)).is_none(), "not halfway yet");
        assert!(ahead.poll(s(300)).is_none(), "the next window is asked for now");
        let next = answer(&mut ahead, s(301));
        assert_eq!(next, plan.ground_links_chosen(s(600), s(1000)), "the second window ends with the run");
        assert!(ahead.poll(s(999)).is_none());
        assert!(!ahead.pending, "nothing after the run's end");
    }
}
