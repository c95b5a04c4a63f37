//! Where frames come from. A [`PlanView`] computes any tick of a plan on demand (for
//! `orbitnet plan --ui` and the operator); a [`LiveHub`] holds what a running engine
//! applied last and hands each tick's diff to every page that follows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use orbitnet_mission::{ModelTick, Predictor};
use orbitnet_model::events::Event;
use orbitnet_model::{Plan, SimTime, State};
use tokio::sync::{broadcast, mpsc};

use crate::frame::{Frame, ObjectiveView, PathError, PathView, Scene, SourceKind, TimelineEvent};

/// A message of the stream: `frame`, `diff` or `end`, and its JSON.
#[derive(Clone, Debug)]
pub struct Message {
    pub event: &'static str,
    /// The tick it brings the page to.
    pub k: i64,
    pub data: Arc<str>,
}

/// JSON of plain data: structs, strings, numbers and maps with string keys, which
/// serde_json always serializes (it fails only on maps with other keys, or a failing
/// `Serialize` impl, which these types do not have).
pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn message(event: &'static str, k: i64, value: &impl serde::Serialize) -> Message {
    Message { event, k, data: to_json(value).into() }
}

/// A whole frame, for a page that has none or fell behind.
pub fn frame_message(frame: &Frame) -> Message {
    message("frame", frame.k, frame)
}

/// Locks a mutex whose holder may have panicked: what it guards is only ever replaced
/// whole, so it is never half-written.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The timeline of a plan, found by one scan of its ticks in the background.
#[derive(Default)]
struct Scan {
    events: Vec<TimelineEvent>,
    /// The model's view of each flow at each tick scanned, for the objectives.
    flows: Vec<Vec<(f64, ModelTick)>>,
    /// The last tick scanned.
    upto: Option<SimTime>,
    complete: bool,
    error: Option<String>,
}

/// The speeds a plan plays at, emulation seconds per second.
pub const SPEEDS: std::ops::RangeInclusive<f64> = 0.1..=3600.0;

/// Any tick of a plan, from `from` to `to`.
pub struct PlanView {
    plan: Arc<Plan>,
    source: SourceKind,
    from: SimTime,
    to: SimTime,
    scene: Arc<str>,
    scan: Arc<Mutex<Scan>>,
    cluster: Mutex<Cluster>,
}

/// What a cluster says of a constellation: its time now, and its objectives' verdicts.
#[derive(Default)]
struct Cluster {
    now: Option<SimTime>,
    objectives: Option<Vec<ObjectiveView>>,
}

impl PlanView {
    /// Starts the scan of the timeline on a thread of its own; it stops when the view is
    /// dropped.
    pub fn new(plan: Arc<Plan>, source: SourceKind, from: SimTime, to: SimTime) -> Arc<Self> {
        let from = plan.tick_time(plan.tick_index(from));
        let scene = to_json(&Scene::of(&plan, source, from, Some(to)));
        let scan =
            Arc::new(Mutex::new(Scan { flows: vec![Vec::new(); plan.flows.len()], ..Scan::default() }));
        let view = Arc::new(PlanView {
            plan: Arc::clone(&plan),
            source,
            from,
            to,
            scene: scene.into(),
            scan,
            cluster: Mutex::default(),
        });
        let weak = Arc::downgrade(&view.scan);
        let spawned = std::thread::Builder::new()
            .name("view-scan".into())
            .spawn(move || scan_timeline(&plan, source, from, to, &weak));
        if let Err(e) = spawned {
            lock(&view.scan).error = Some(format!("cannot start the scan of the timeline: {e}"));
        }
        view
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn source(&self) -> SourceKind {
        self.source
    }

    pub fn scene(&self) -> Arc<str> {
        Arc::clone(&self.scene)
    }

    /// What the cluster says: the constellation's time now (`None`: not started), and its
    /// objectives' verdicts, shown instead of the model's.
    pub fn set_cluster(&self, now: Option<SimTime>, objectives: Vec<ObjectiveView>) {
        *lock(&self.cluster) = Cluster { now, objectives: Some(objectives) };
    }

    /// Where the page starts without a time: the cluster's time now, else the start.
    pub fn now(&self) -> f64 {
        lock(&self.cluster).now.unwrap_or(self.from).as_secs_f64()
    }

    /// `t` within the view, on a tick.
    fn clamp(&self, t: f64) -> SimTime {
        let t = SimTime::from_nanos(
            (t.clamp(self.from.as_secs_f64(), self.to.as_secs_f64()) * 1e9).round() as i64
        );
        self.plan.tick_time(self.plan.tick_index(t))
    }

    pub fn frame_at(&self, t: f64) -> Frame {
        let t = self.clamp(t);
        let state = self.plan.timeline().without_routes().state_at(&self.plan, t);
        Frame::of(&self.plan, self.plan.tick_index(t), &state, self.objectives(t))
    }

    pub fn path(&self, a: &str, b: &str, t: f64) -> Result<PathView, PathError> {
        let state = self.plan.state_at(self.clamp(t));
        PathView::of(&self.plan, state.t, state.routes.as_ref(), a, b)
    }

    /// What the model's paths allow each objective from `from` to `t` (as `orbitnet plan
    /// --objectives`), or PENDING while the scan has not reached `t`; in a cluster, what
    /// the cluster judged.
    fn objectives(&self, t: SimTime) -> Vec<ObjectiveView> {
        if let Some(told) = &lock(&self.cluster).objectives {
            return told.clone();
        }
        let plan = &self.plan;
        let scan = lock(&self.scan);
        if scan.upto.is_none_or(|upto| upto < t) {
            let why = scan.error.as_deref().unwrap_or("the model's ticks up to here are still being scanned");
            return plan.objectives.iter().map(|o| ObjectiveView::pending(&o.name, why)).collect();
        }
        let t_s = t.as_secs_f64();
        plan.objectives
            .iter()
            .map(|o| {
                let ticks = o.flow.map_or(&[][..], |f| {
                    let all = &scan.flows[f];
                    &all[..all.partition_point(|(at, _)| *at <= t_s)]
                });
                ObjectiveView::of(&orbitnet_mission::predict(plan, o, ticks, t_s + plan.tick.as_secs_f64()))
            })
            .collect()
    }

    /// `(events, complete)`.
    pub fn timeline(&self) -> (Vec<TimelineEvent>, bool) {
        let scan = lock(&self.scan);
        (scan.events.clone(), scan.complete)
    }

    fn events_between(&self, after: f64, upto: f64) -> Vec<TimelineEvent> {
        lock(&self.scan).events.iter().filter(|e| e.t > after && e.t <= upto).cloned().collect()
    }

    /// Streams the plan from `t` at `speed` emulation seconds per second (within
    /// `SPEEDS`) into `tx`, on a thread of its own, until `to` (then an `end` message) or
    /// until `tx` is closed.
    pub fn stream(self: &Arc<Self>, t: f64, speed: f64, tx: mpsc::Sender<Message>) -> std::io::Result<()> {
        let view = Arc::clone(self);
        let speed = if speed.is_finite() { speed.clamp(*SPEEDS.start(), *SPEEDS.end()) } else { 1.0 };
        std::thread::Builder::new().name("view-stream".into()).spawn(move || {
            let plan = &view.plan;
            let mut timeline = plan.timeline().without_routes();
            let first = plan.tick_index(view.clamp(t));
            let last = plan.tick_index(view.to);
            let started = Instant::now();
            let mut before: Option<Frame> = None;
            for k in first..=last {
                let due =
                    started + Duration::from_secs_f64((k - first) as f64 * plan.tick.as_secs_f64() / speed);
                // In slices: a page that went away frees this thread within one.
                while let Some(left) = due.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                    if tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(250)));
                }
                let t = plan.tick_time(k);
                let frame = Frame::of(plan, k, &timeline.state_at(plan, t), view.objectives(t));
                let msg = match &before {
                    None => frame_message(&frame),
                    Some(b) => message("diff", k, &frame.diff(b, view.events_between(b.t, frame.t))),
                };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
                before = Some(frame);
            }
            let _ = tx.blocking_send(Message { event: "end", k: last, data: "{}".into() });
        })?;
        Ok(())
    }
}

/// Scans the ticks from `from` to `to` for the timeline's events and the flows' model
/// ticks (not for a cluster's, whose objectives the cluster judges), while the view lives.
fn scan_timeline(plan: &Plan, source: SourceKind, from: SimTime, to: SimTime, scan: &Weak<Mutex<Scan>>) {
    let with_routes = source != SourceKind::Cluster && !plan.flows.is_empty();
    let mut before: Option<(orbitnet_model::GroundChoice, Vec<usize>)> = None;
    // One tick after the other on this thread: the page does not wait for it.
    let mut timeline = if with_routes { plan.timeline() } else { plan.timeline().without_routes() };
    let result = Plan::tick_times(from, to, plan.tick).try_for_each(|t| {
        let state = timeline.state_at(plan, t);
        let Some(scan) = scan.upgrade() else { return Err("the view is gone".to_owned()) };
        let events = match &before {
            Some((choice, faults)) => orbitnet_model::events::between(plan, choice, faults, &state),
            // The first tick: the faults already active.
            None => orbitnet_model::events::between(plan, &state.ground_choice, &[], &state),
        };
        let flows: Vec<ModelTick> = if with_routes {
            let mut predictor = Predictor::new(plan, &state);
            plan.flows.iter().map(|f| predictor.flow(f)).collect()
        } else {
            Vec::new()
        };
        let mut s = lock(&scan);
        s.events.extend(TimelineEvent::of_tick(plan, state.t, &events));
        for (i, m) in flows.into_iter().enumerate() {
            s.flows[i].push((state.t.as_secs_f64(), m));
        }
        s.upto = Some(state.t);
        drop(s);
        before = Some((state.ground_choice, state.active_faults));
        Ok(())
    });
    if let Some(scan) = scan.upgrade() {
        let mut s = lock(&scan);
        match result {
            Ok(()) => s.complete = true,
            Err(e) => s.error = Some(e),
        }
    }
}

/// What a running engine applied last, for every page that follows the run.
pub struct LiveHub {
    state: Mutex<Live>,
    tx: broadcast::Sender<Message>,
    /// Woken at every tick published.
    published: tokio::sync::Notify,
}

struct Live {
    plan: Arc<Plan>,
    scene: Arc<str>,
    frame: Option<Arc<Frame>>,
    events: Vec<TimelineEvent>,
    /// The paths pages asked for, found again at every tick from the engine's own routes
    /// (not a copy of them: at Starlink scale they are tens of MB).
    asked: HashMap<(String, String), Asked>,
}

struct Asked {
    at: Instant,
    path: Option<Result<PathView, PathError>>,
}

/// Diffs a page may fall behind by before it is sent a whole frame again.
const LIVE_BACKLOG: usize = 64;

/// A path nobody asked for again in this long is no longer looked for.
const ASKED_FOR: Duration = Duration::from_secs(10);

impl LiveHub {
    pub fn new(plan: &Plan, start: SimTime, end: Option<SimTime>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(LIVE_BACKLOG);
        Arc::new(LiveHub {
            state: Mutex::new(Live {
                plan: Arc::new(plan.clone()),
                scene: to_json(&Scene::of(plan, SourceKind::Live, start, end)).into(),
                frame: None,
                events: Vec::new(),
                asked: HashMap::new(),
            }),
            tx,
            published: tokio::sync::Notify::new(),
        })
    }

    /// The plan changed (a live edit): open pages are told to load the new scene, and the
    /// next tick starts the frames over.
    pub fn set_plan(&self, plan: &Plan, start: SimTime, end: Option<SimTime>) {
        let mut live = lock(&self.state);
        live.plan = Arc::new(plan.clone());
        live.scene = to_json(&Scene::of(plan, SourceKind::Live, start, end)).into();
        live.frame = None;
        live.asked.clear();
        let _ = self.tx.send(Message { event: "scene", k: i64::MAX, data: "{}".into() });
    }

    /// The state the engine applied at tick `k`, what happened since the tick before
    /// (`events`, and `extra` the runner measured), and the objectives so far.
    pub fn publish(
        &self,
        k: i64,
        state: &State,
        events: &[Event],
        extra: Vec<TimelineEvent>,
        objectives: Vec<ObjectiveView>,
    ) {
        let mut live = lock(&self.state);
        let plan = Arc::clone(&live.plan);
        let frame = Arc::new(Frame::of(&plan, k, state, objectives));
        let mut new_events = TimelineEvent::of_tick(&plan, state.t, events);
        new_events.extend(extra);
        live.events.extend(new_events.iter().cloned());
        if self.tx.receiver_count() > 0
            && let Some(before) = &live.frame
        {
            let _ = self.tx.send(message("diff", k, &frame.diff(before, new_events)));
        }
        live.frame = Some(frame);
        live.asked.retain(|_, a| a.at.elapsed() < ASKED_FOR);
        for ((a, b), asked) in &mut live.asked {
            asked.path = Some(PathView::of(&plan, state.t, state.routes.as_ref(), a, b));
        }
        drop(live);
        self.published.notify_waiters();
    }

    pub fn scene(&self) -> Arc<str> {
        Arc::clone(&lock(&self.state).scene)
    }

    pub fn frame(&self) -> Option<Arc<Frame>> {
        lock(&self.state).frame.clone()
    }

    pub fn timeline(&self) -> Vec<TimelineEvent> {
        lock(&self.state).events.clone()
    }

    /// The path from `a` to `b` at the latest tick, waiting up to `wait` for the next tick
    /// when it was not asked for before.
    pub async fn path(&self, a: &str, b: &str, wait: Duration) -> Option<Result<PathView, PathError>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Created before the look: a tick published in between still wakes it.
            let published = self.published.notified();
            {
                let mut live = lock(&self.state);
                let asked = live
                    .asked
                    .entry((a.to_owned(), b.to_owned()))
                    .or_insert(Asked { at: Instant::now(), path: None });
                asked.at = Instant::now();
                if let Some(path) = &asked.path {
                    return Some(path.clone());
                }
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return None;
            }
        }
    }

    /// The latest frame, then every tick's diff, until the page goes away.
    pub fn subscribe(&self) -> (Option<Arc<Frame>>, broadcast::Receiver<Message>) {
        // Subscribed under the lock: no diff falls between the frame and the first one.
        let live = lock(&self.state);
        (live.frame.clone(), self.tx.subscribe())
    }
}
