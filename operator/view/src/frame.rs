//! What the page draws, as JSON (docs/ui.md): the scene (what does not change), a frame
//! (the state at one tick, quantized to what the eye can tell apart) and the diff between
//! two frames. Pure functions of the plan and its states; no I/O.

use std::collections::{BTreeMap, HashMap};

use orbitnet_mission::Verdict;
use orbitnet_model::events::Event;
use orbitnet_model::geo::Geodetic;
use orbitnet_model::plan::FaultTarget;
use orbitnet_model::spec::{FaultKind, PlatformKind};
use orbitnet_model::{LinkKind, NodeIdx, Plan, Routes, SimTime, State};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

/// Samples of a platform's track in the scene.
const TRACK_SAMPLES: i64 = 120;

/// Who serves the page: `plan`, `live` (`orbitnet run`) or `cluster` (the operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Plan,
    Live,
    Cluster,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scene {
    name: String,
    source: SourceKind,
    epoch: String,
    tick_s: f64,
    from_s: f64,
    to_s: Option<f64>,
    nodes: Vec<SceneNode>,
    shells: Vec<String>,
    tracks: BTreeMap<NodeIdx, Vec<f64>>,
    faults: Vec<SceneFault>,
    flows: Vec<SceneFlow>,
    objectives: Vec<SceneObjective>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SceneNode {
    name: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plane: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SceneFault {
    name: Option<String>,
    kind: &'static str,
    start_s: f64,
    end_s: Option<f64>,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeIdx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<[NodeIdx; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    area: Option<Area>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Area {
    lat_deg: f64,
    lon_deg: f64,
    radius_km: f64,
}

#[derive(Serialize)]
struct SceneFlow {
    name: String,
    from: NodeIdx,
    to: NodeIdx,
}

#[derive(Serialize)]
struct SceneObjective {
    name: String,
    flow: Option<String>,
    requirement: String,
}

impl Scene {
    /// The scene of `plan` shown from `from` to `to` (`None`: a run without an end).
    pub fn of(plan: &Plan, source: SourceKind, from: SimTime, to: Option<SimTime>) -> Scene {
        let nodes = plan
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let slot = plan
                    .shells
                    .iter()
                    .enumerate()
                    .find_map(|(s, shell)| shell.plane_of(i as NodeIdx).map(|p| (s, p)));
                SceneNode {
                    name: n.name.clone(),
                    kind: n.kind.as_str(),
                    shell: slot.map(|(s, _)| s),
                    plane: slot.map(|(_, p)| p),
                    platform: n.platform.map(PlatformKind::as_str),
                }
            })
            .collect();
        let faults = plan
            .faults
            .iter()
            .map(|f| {
                let (node, link, area) = match f.target {
                    FaultTarget::Node(n) => (Some(n), None, None),
                    FaultTarget::Link(a, b) => (None, Some([a, b]), None),
                    FaultTarget::Area { lat_rad, lon_rad, radius_m } => (
                        None,
                        None,
                        Some(Area {
                            lat_deg: lat_rad.to_degrees(),
                            lon_deg: lon_rad.to_degrees(),
                            radius_km: radius_m / 1e3,
                        }),
                    ),
                };
                SceneFault {
                    name: f.name.clone(),
                    kind: f.kind.as_str(),
                    start_s: f.start.as_secs_f64(),
                    end_s: f.end.map(SimTime::as_secs_f64),
                    text: fault_text(plan, f.spec_index),
                    node,
                    link,
                    area,
                }
            })
            .collect();
        Scene {
            name: plan.name.clone(),
            source,
            epoch: plan.epoch.to_string(),
            tick_s: plan.tick.as_secs_f64(),
            from_s: from.as_secs_f64(),
            to_s: to.map(SimTime::as_secs_f64),
            nodes,
            shells: plan.shells.iter().map(|s| s.name.clone()).collect(),
            tracks: tracks(plan, from, to.unwrap_or(from)),
            faults,
            flows: plan
                .flows
                .iter()
                .map(|f| SceneFlow { name: f.name.clone(), from: f.from, to: f.to })
                .collect(),
            objectives: plan
                .objectives
                .iter()
                .map(|o| SceneObjective {
                    name: o.name.clone(),
                    flow: o.flow.map(|f| plan.flows[f].name.clone()),
                    requirement: o.requirement.to_string(),
                })
                .collect(),
        }
    }
}

/// Each platform's way from `from` to `to` (an hour from `from` when the span is shorter).
fn tracks(plan: &Plan, from: SimTime, to: SimTime) -> BTreeMap<NodeIdx, Vec<f64>> {
    let platforms: Vec<usize> = plan.ground_range().filter(|&i| plan.nodes[i].platform.is_some()).collect();
    if platforms.is_empty() {
        return BTreeMap::new();
    }
    let span_ns = (to.as_nanos() - from.as_nanos()).max(3_600_000_000_000);
    let mut out: BTreeMap<NodeIdx, Vec<f64>> = BTreeMap::new();
    for s in 0..=TRACK_SAMPLES {
        let t = SimTime::from_nanos(from.as_nanos() + span_ns / TRACK_SAMPLES * s);
        let g = plan.geometry(t);
        for &i in &platforms {
            let site = g.ground_sites[i - plan.n_sats];
            let track = out.entry(i as NodeIdx).or_default();
            track.push(hundredths(site.lat_rad.to_degrees()) as f64 / 100.0);
            track.push(hundredths(site.lon_rad.to_degrees()) as f64 / 100.0);
        }
    }
    out
}

/// A fault as one line: "laser-cut: linkDown on polar-0-0 - polar-0-1".
pub fn fault_text(plan: &Plan, spec_index: usize) -> String {
    match plan.faults.iter().find(|f| f.spec_index == spec_index) {
        Some(f) => match &f.name {
            Some(name) => format!("{name}: {}", f.describe(plan)),
            None => f.describe(plan),
        },
        None => format!("fault {spec_index}"),
    }
}

fn hundredths(x: f64) -> i32 {
    (x * 100.0).round() as i32
}

/// A node's place as the page draws it: latitude and longitude in hundredths of a degree,
/// altitude in tenths of a km.
type Place = Option<[i32; 3]>;

/// A link as the page draws it: delay in hundredths of a ms, loss in hundredths of a percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkView {
    pub a: NodeIdx,
    pub b: NodeIdx,
    pub gsl: bool,
    pub up: bool,
    delay_cms: u32,
    loss_cpct: u32,
}

impl LinkView {
    fn key(&self) -> (NodeIdx, NodeIdx) {
        (self.a, self.b)
    }
}

impl Serialize for LinkView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(6))?;
        seq.serialize_element(&self.a)?;
        seq.serialize_element(&self.b)?;
        seq.serialize_element(&u8::from(self.gsl))?;
        seq.serialize_element(&u8::from(self.up))?;
        seq.serialize_element(&(f64::from(self.delay_cms) / 100.0))?;
        seq.serialize_element(&(f64::from(self.loss_cpct) / 100.0))?;
        seq.end()
    }
}

/// An objective's result so far.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectiveView {
    pub name: String,
    /// PASS, FAIL, INCONCLUSIVE or PENDING.
    pub result: String,
    pub value: Option<f64>,
    pub detail: String,
}

impl ObjectiveView {
    pub fn of(v: &Verdict) -> Self {
        let judged = v.measured.as_ref().unwrap_or(&v.predicted);
        ObjectiveView {
            name: v.objective.clone(),
            result: v.outcome().to_string(),
            value: judged.value,
            detail: judged.detail.clone(),
        }
    }

    pub fn pending(name: &str, detail: &str) -> Self {
        ObjectiveView {
            name: name.to_owned(),
            result: "PENDING".into(),
            value: None,
            detail: detail.to_owned(),
        }
    }
}

/// An event of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEvent {
    pub t: f64,
    pub kind: &'static str,
    pub text: String,
}

impl TimelineEvent {
    /// The events of one tick: each fault beginning or ending, and the handovers as one.
    pub fn of_tick(plan: &Plan, t: SimTime, events: &[Event]) -> Vec<TimelineEvent> {
        let t = t.as_secs_f64();
        let mut out = Vec::new();
        let mut handed: Vec<&str> = Vec::new();
        for e in events {
            match e {
                Event::Handover { node, .. } => handed.push(node),
                Event::FaultBegan { index, .. } => {
                    out.push(TimelineEvent { t, kind: "faultStart", text: fault_text(plan, *index) })
                }
                Event::FaultEnded { index, .. } => out.push(TimelineEvent {
                    t,
                    kind: "faultEnd",
                    text: format!("ended: {}", fault_text(plan, *index)),
                }),
            }
        }
        if !handed.is_empty() {
            let shown: Vec<&str> = handed.iter().take(3).copied().collect();
            let more =
                if handed.len() > 3 { format!(" and {} more", handed.len() - 3) } else { String::new() };
            let text = match handed.len() {
                1 => format!("handover at {}", handed[0]),
                n => format!("{n} handovers: {}{more}", shown.join(", ")),
            };
            out.push(TimelineEvent { t, kind: "handover", text });
        }
        out
    }
}

/// The state at one tick as the page draws it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frame {
    pub k: i64,
    pub t: f64,
    #[serde(serialize_with = "places")]
    pos: Vec<Place>,
    links: Vec<LinkView>,
    /// Indices into the scene's faults.
    faults: Vec<usize>,
    down: Vec<NodeIdx>,
    handovers: usize,
    objectives: Vec<ObjectiveView>,
}

fn places<S: Serializer>(pos: &[Place], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(pos.len() * 3))?;
    for p in pos {
        place(&mut seq, p)?;
    }
    seq.end()
}

/// A place as three numbers (`null`s for a node that does not exist).
fn place<S: SerializeSeq>(seq: &mut S, p: &Place) -> Result<(), S::Error> {
    match p {
        Some([lat, lon, alt]) => {
            seq.serialize_element(&(f64::from(*lat) / 100.0))?;
            seq.serialize_element(&(f64::from(*lon) / 100.0))?;
            seq.serialize_element(&(f64::from(*alt) / 10.0))
        }
        None => (0..3).try_for_each(|_| seq.serialize_element(&())),
    }
}

impl Frame {
    pub fn of(plan: &Plan, k: i64, state: &State, objectives: Vec<ObjectiveView>) -> Frame {
        let g = &state.geometry;
        let pos = (0..plan.nodes.len())
            .map(|i| {
                g.alive[i].then(|| {
                    let site = match i.checked_sub(plan.n_sats) {
                        Some(ground) => g.ground_sites[ground],
                        None => Geodetic::from_ecef(g.ecef[i]),
                    };
                    [
                        hundredths(site.lat_rad.to_degrees()),
                        hundredths(site.lon_rad.to_degrees()),
                        (site.alt_m / 100.0).round() as i32,
                    ]
                })
            })
            .collect();
        let links = state
            .links
            .iter()
            .map(|l| LinkView {
                a: l.a,
                b: l.b,
                gsl: l.kind == LinkKind::Gsl,
                up: l.up,
                delay_cms: u32::try_from((l.delay_ns + 5_000) / 10_000).unwrap_or(u32::MAX),
                loss_cpct: (l.loss_pct * 100.0).round() as u32,
            })
            .collect();
        // The faults active at t, as (index in the scene, definition).
        let active: Vec<(usize, &orbitnet_model::plan::FaultDef)> = plan
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| state.active_faults.contains(&f.spec_index))
            .collect();
        let faults = active.iter().map(|(i, _)| *i).collect();
        let mut down: Vec<NodeIdx> = active
            .iter()
            .map(|(_, f)| f)
            .filter(|f| matches!(f.kind, FaultKind::NodeDown | FaultKind::StationDown))
            .filter_map(|f| match f.target {
                FaultTarget::Node(n) => Some(n),
                _ => None,
            })
            .collect();
        down.sort_unstable();
        down.dedup();
        Frame {
            k,
            t: state.t.as_secs_f64(),
            pos,
            links,
            faults,
            down,
            handovers: state.handovers,
            objectives,
        }
    }

    /// What changed from `before` to this frame, with the events between them.
    pub fn diff(&self, before: &Frame, events: Vec<TimelineEvent>) -> Diff {
        let pos = self
            .pos
            .iter()
            .zip(&before.pos)
            .enumerate()
            .filter(|(_, (now, was))| now != was)
            .map(|(i, (now, _))| (i as NodeIdx, *now))
            .collect();
        let was: HashMap<(NodeIdx, NodeIdx), &LinkView> = before.links.iter().map(|l| (l.key(), l)).collect();
        let set = self.links.iter().filter(|l| was.get(&l.key()) != Some(l)).copied().collect();
        let now: HashMap<(NodeIdx, NodeIdx), &LinkView> = self.links.iter().map(|l| (l.key(), l)).collect();
        let del = before.links.iter().map(LinkView::key).filter(|key| !now.contains_key(key)).collect();
        Diff {
            k: self.k,
            t: self.t,
            pos,
            links: LinksDiff { set, del },
            faults: (self.faults != before.faults).then(|| self.faults.clone()),
            down: (self.down != before.down).then(|| self.down.clone()),
            handovers: self.handovers,
            objectives: (self.objectives != before.objectives).then(|| self.objectives.clone()),
            events,
        }
    }
}

/// What changed from one frame to the next.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub k: i64,
    pub t: f64,
    #[serde(serialize_with = "moved")]
    pos: Vec<(NodeIdx, Place)>,
    links: LinksDiff,
    #[serde(skip_serializing_if = "Option::is_none")]
    faults: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    down: Option<Vec<NodeIdx>>,
    handovers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    objectives: Option<Vec<ObjectiveView>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<TimelineEvent>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct LinksDiff {
    set: Vec<LinkView>,
    del: Vec<(NodeIdx, NodeIdx)>,
}

fn moved<S: Serializer>(pos: &[(NodeIdx, Place)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(pos.len() * 4))?;
    for (i, p) in pos {
        seq.serialize_element(i)?;
        place(&mut seq, p)?;
    }
    seq.end()
}

impl Diff {
    /// `before` with this diff applied: what the page does with it.
    pub fn apply(&self, before: &Frame) -> Frame {
        let mut f = before.clone();
        f.k = self.k;
        f.t = self.t;
        for (i, p) in &self.pos {
            f.pos[*i as usize] = *p;
        }
        // In the page's order: links set, then links deleted.
        for l in &self.links.set {
            match f.links.iter_mut().find(|m| m.key() == l.key()) {
                Some(m) => *m = *l,
                None => f.links.push(*l),
            }
        }
        let del: std::collections::HashSet<_> = self.links.del.iter().copied().collect();
        f.links.retain(|l| !del.contains(&l.key()));
        if let Some(x) = &self.faults {
            f.faults = x.clone();
        }
        if let Some(x) = &self.down {
            f.down = x.clone();
        }
        if let Some(x) = &self.objectives {
            f.objectives = x.clone();
        }
        f.handovers = self.handovers;
        f
    }
}

/// The model's path between two nodes at one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathView {
    pub t: f64,
    pub from: String,
    pub to: String,
    pub nodes: Vec<String>,
    pub delay_ms: f64,
}

/// Why there is no path to show.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    #[error("no node {0:?} in this constellation")]
    Unknown(String),
    #[error("routing is {0}: the model computes no routes (the daemons choose the paths)")]
    NoRoutes(String),
    #[error("no path from {0} to {1} at t = {2} s")]
    Unreachable(String, String, f64),
}

impl PathView {
    /// The path from `a` to `b` in a state with routes: as `orbitnet plan --routes` prints
    /// it (from the lower node index to the higher, and reversed when asked the other way).
    pub fn of(
        plan: &Plan,
        t: SimTime,
        routes: Option<&Routes>,
        a: &str,
        b: &str,
    ) -> Result<PathView, PathError> {
        let index = |n: &str| plan.node_index(n).ok_or_else(|| PathError::Unknown(n.to_owned()));
        let (ia, ib) = (index(a)?, index(b)?);
        let routes = routes.ok_or_else(|| PathError::NoRoutes(plan.routing.as_str().to_owned()))?;
        let (lo, hi) = (ia.min(ib), ia.max(ib));
        let t = t.as_secs_f64();
        let unreachable =
            || PathError::Unreachable(plan.node(ia).name.clone(), plan.node(ib).name.clone(), t);
        let mut path = routes.path(lo, hi).ok_or_else(unreachable)?;
        let delay_ns = routes.delay_ns(lo, hi).ok_or_else(unreachable)?;
        if ia > ib {
            path.reverse();
        }
        Ok(PathView {
            t,
            from: plan.node(ia).name.clone(),
            to: plan.node(ib).name.clone(),
            nodes: path.iter().map(|&n| plan.node(n).name.clone()).collect(),
            delay_ms: delay_ns as f64 / 1e6,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitnet_model::SpecDuration;

    const BACKBONE: &str = include_str!("../../../scenarios/backbone.yaml");

    fn backbone() -> Plan {
        orbitnet_model::compile_yaml(BACKBONE).unwrap()
    }

    fn secs(s: i64) -> SimTime {
        SimTime::from_nanos(s * 1_000_000_000)
    }

    #[test]
    fn a_frame_has_every_node_and_link_of_the_state() {
        let p = backbone();
        let s = p.state_at(secs(200));
        let f = Frame::of(&p, 200, &s, Vec::new());
        assert_eq!(f.pos.len(), p.nodes.len());
        assert_eq!(f.links.len(), s.links.len());
        assert_eq!(f.links.iter().filter(|l| l.up).count(), s.links_up());
        // sat-lost (nodeDown polar-1-3) is active from 3 min to 5 min.
        let lost = p.node_index("polar-1-3").unwrap();
        assert_eq!(f.down, vec![lost]);
        assert_eq!(f.faults, vec![0]);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["pos"].as_array().unwrap().len(), 3 * p.nodes.len());
        assert_eq!(json["links"][0].as_array().unwrap().len(), 6);
    }

    /// Applying each tick's diff to the frame before gives that tick's frame: the page,
    /// which only ever gets diffs after the first frame, draws the model's state.
    #[test]
    fn diffs_rebuild_every_frame() {
        let p = backbone();
        let mut before: Option<Frame> = None;
        let mut diffs = 0;
        for (k, s) in p.states(secs(50), secs(400), SpecDuration::from_secs(10)).enumerate() {
            let f = Frame::of(&p, k as i64, &s, Vec::new());
            if let Some(b) = &before {
                let d = f.diff(b, Vec::new());
                let mut rebuilt = d.apply(b);
                rebuilt.links.sort_by_key(LinkView::key);
                let mut want = f.clone();
                want.links.sort_by_key(LinkView::key);
                assert_eq!(rebuilt, want, "tick {k}");
                diffs += 1;
            }
            before = Some(f);
        }
        assert_eq!(diffs, 35);
    }

    #[test]
    fn an_unchanged_frame_diffs_to_nothing() {
        let p = backbone();
        let f = Frame::of(&p, 3, &p.state_at(secs(3)), Vec::new());
        let d = f.diff(&f, Vec::new());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"k": 3, "t": 3.0, "pos": [], "links": {"set": [], "del": []}, "handovers": f.handovers})
        );
    }

    #[test]
    fn the_scene_names_shells_planes_platforms_and_faults() {
        let p = backbone();
        let scene = serde_json::to_value(Scene::of(&p, SourceKind::Plan, secs(0), Some(secs(600)))).unwrap();
        assert_eq!(scene["nodes"].as_array().unwrap().len(), p.nodes.len());
        let sat = &scene["nodes"][p.node_index("polar-1-3").unwrap() as usize];
        assert_eq!(scene["shells"][sat["shell"].as_u64().unwrap() as usize], "polar");
        assert_eq!(sat["plane"], 1);
        let carrier = p.node_index("carrier-1").unwrap();
        assert_eq!(scene["nodes"][carrier as usize]["platform"], "ship");
        assert_eq!(
            scene["tracks"][carrier.to_string()].as_array().unwrap().len(),
            2 * (TRACK_SAMPLES as usize + 1)
        );
        let jam = scene["faults"].as_array().unwrap().iter().find(|f| f["kind"] == "jamming").unwrap();
        assert_eq!(jam["area"]["radiusKm"], 800.0);
        assert_eq!(jam["startS"], 360.0);
    }

    #[test]
    fn the_path_is_the_planners() {
        let p = backbone();
        let s = p.state_at(secs(100));
        let fwd = PathView::of(&p, s.t, s.routes.as_ref(), "thule", "vandenberg").unwrap();
        let back = PathView::of(&p, s.t, s.routes.as_ref(), "vandenberg", "thule").unwrap();
        assert_eq!(fwd.nodes.first().map(String::as_str), Some("thule"));
        assert_eq!(fwd.nodes.iter().rev().collect::<Vec<_>>(), back.nodes.iter().collect::<Vec<_>>());
        assert_eq!(fwd.delay_ms, back.delay_ms);
        let routes = s.routes.as_ref().unwrap();
        let (a, b) = (p.node_index("thule").unwrap(), p.node_index("vandenberg").unwrap());
        assert_eq!(fwd.delay_ms, routes.delay_ns(a.min(b), a.max(b)).unwrap() as f64 / 1e6);
        assert_eq!(
            PathView::of(&p, s.t, s.routes.as_ref(), "thule", "atlantis"),
            Err(PathError::Unknown("atlantis".into()))
        );
    }

    #[test]
    fn a_ticks_events_read_as_one_line_each() {
        let p = backbone();
        let before = p.state_at(secs(59));
        let now = p.state_at(secs(60));
        let events = orbitnet_model::events::between(&p, &before.ground_choice, &before.active_faults, &now);
        let lines = TimelineEvent::of_tick(&p, now.t, &events);
        let cut = lines.iter().find(|e| e.kind == "faultStart").unwrap();
        assert!(cut.text.starts_with("laser-cut: linkDown"), "{}", cut.text);
        assert_eq!(cut.t, 60.0);
    }
}
