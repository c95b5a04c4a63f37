//! The ground links the model will choose soon, worked out off the tick's thread: a window
//! of emulation time at a time, the next one started when time is halfway through the last.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};

use orbitnet_model::{NodeIdx, Plan, SimTime, SpecDuration};

/// (ground node, satellite) pairs.
pub(crate) type Pairs = BTreeSet<(NodeIdx, NodeIdx)>;

pub(crate) struct Lookahead {
    window_ns: i64,
    /// Windows stop here (the end of a run), if anywhere.
    until: Option<SimTime>,
    /// The end of the last window asked for.
    asked_until: SimTime,
    pending: Option<Receiver<Pairs>>,
}

impl Lookahead {
    /// A look-ahead from `t`, and the pairs of its first window, worked out now: whoever
    /// starts needs them before its first tick.
    pub(crate) fn start(
        plan: &Plan,
        t: SimTime,
        window: SpecDuration,
        until: Option<SimTime>,
    ) -> (Self, Pairs) {
        let window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        let mut ahead = Self { window_ns, until, asked_until: t, pending: None };
        let end = ahead.window_end(t);
        ahead.asked_until = end;
        (ahead, plan.ground_links_chosen(t, end))
    }

    fn window_end(&self, from: SimTime) -> SimTime {
        let end = SimTime::from_nanos(from.as_nanos().saturating_add(self.window_ns));
        self.until.map_or(end, |until| end.min(until))
    }

    /// The pairs of a window finished since the last call, if one did; starts the next
    /// window when `t` is halfway through the last one asked for.
    pub(crate) fn poll(&mut self, plan: &Arc<Plan>, t: SimTime) -> Option<Pairs> {
        let mut ready = None;
        if let Some(rx) = &self.pending {
            match rx.try_recv() {
                Ok(pairs) => {
                    ready = Some(pairs);
                    self.pending = None;
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    tracing::warn!("the look-ahead of ground links stopped; it starts again");
                    self.pending = None;
                }
            }
        }
        let halfway = self.asked_until.as_nanos().saturating_sub(self.window_ns / 2);
        let more = self.until.is_none_or(|until| self.asked_until < until);
        if self.pending.is_none() && more && t.as_nanos() >= halfway {
            let from = self.asked_until;
            let to = self.window_end(from);
            let (tx, rx) = mpsc::channel();
            let plan = Arc::clone(plan);
            let spawned = std::thread::Builder::new().name("lookahead".into()).spawn(move || {
                let _ = tx.send(plan.ground_links_chosen(from, to));
            });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the look-ahead of ground links");
            }
            self.asked_until = to;
            self.pending = Some(rx);
        }
        ready
    }
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
        let (mut ahead, first) = Lookahead::start(&plan, s(0), window, Some(s(1000)));
        assert_eq!(first, plan.ground_links_chosen(s(0), s(600)));
        assert!(ahead.poll(&plan, s(100)).is_none(), "not halfway yet");
        assert!(ahead.poll(&plan, s(300)).is_none(), "the next window starts now");
        let next = loop {
            if let Some(p) = ahead.poll(&plan, s(301)) {
                break p;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(next, plan.ground_links_chosen(s(600), s(1000)), "the second window ends with the run");
        assert!(ahead.poll(&plan, s(999)).is_none());
        assert!(ahead.pending.is_none(), "nothing after the run's end");
    }
}
