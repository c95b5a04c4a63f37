//! The operator's part of a constellation's status, as a pure function of what it observed:
//! the spec (compiled or not), the pods, the agents' reports and the time. No API calls.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use orbitnet_model::spec::GroundPolicy;
use orbitnet_model::{Plan, SimTime, SpecDuration};

use orbitnet_api::crd::{AgentReport, Condition, ConstellationStatus, ObjectiveStatus, Phase};

pub const READY: &str = "Ready";
pub const DEGRADED: &str = "Degraded";
/// Only for a spec with objectives: Unknown while the run lasts, then True or False.
pub const OBJECTIVES_MET: &str = "ObjectivesMet";

/// How long after the end of an experiment the operator waits for the agents' final
/// verdicts before it calls the missing ones inconclusive.
pub const VERDICT_GRACE: SpecDuration = SpecDuration::from_secs(60);

/// A pod as the status needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// The Kubernetes node it is scheduled on, if any.
    pub host: Option<String>,
    /// The pod's phase (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: String,
}

impl PodView {
    fn running(&self) -> bool {
        self.phase == "Running"
    }
}

/// What one reconcile saw.
#[derive(Clone)]
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub previous: Option<&'a ConstellationStatus>,
    /// The compiled spec, or why it does not compile.
    pub plan: Result<&'a Plan, String>,
    pub pods: &'a [PodView],
    /// The Kubernetes nodes among the pods' hosts that are not Ready, and why.
    pub unready_nodes: &'a BTreeMap<String, String>,
    pub now: DateTime<Utc>,
}

/// The status the operator writes: everything but `agents`, which the agents own.
pub fn compute(o: &Observed) -> ConstellationStatus {
    let previous = o.previous.cloned().unwrap_or_default();
    let plan = match &o.plan {
        Ok(plan) => *plan,
        Err(problems) => {
            let conditions = vec![
                condition(&previous, READY, false, "InvalidSpec", problems, o),
                condition(&previous, DEGRADED, true, "InvalidSpec", problems, o),
            ];
            return ConstellationStatus {
                observed_generation: o.generation,
                phase: Some(Phase::Failed),
                conditions,
                started_at: previous.started_at,
                ..ConstellationStatus::default()
            };
        }
    };
    let nodes = plan.nodes.len();
    let running = o.pods.iter().filter(|p| p.running()).count();
    let pods_problem = nodes_problem(o.pods, o.unready_nodes).or_else(|| pods_problem(nodes, o.pods));
    let agents_problem = if pods_problem.is_none() {
        agents_problem(o.generation.unwrap_or_default(), o.pods, &previous.agents)
    } else {
        None
    };
    let ready = pods_problem.is_none() && agents_problem.is_none();
    let started_at = previous.started_at.clone().or_else(|| ready.then(|| rfc3339(o.now)));
    // A spec change being rolled out (this reconcile is the first of a new generation, or an
    // agent has not applied it yet) is not damage: Creating, not Degraded.
    let generation = o.generation.unwrap_or_default();
    let updating = started_at.is_some()
        && !ready
        && (previous.observed_generation.is_some_and(|g| g < generation)
            || previous.agents.iter().any(|a| a.observed_generation < generation));
    let sim = orbitnet_api::sim_time(started_at.as_deref(), o.now);
    let (objectives, finished) = objectives(plan, &previous, sim, generation);
    let phase = if finished {
        Phase::Finished
    } else if ready {
        Phase::Running
    } else if updating {
        Phase::Creating
    } else if started_at.is_some() {
        Phase::Degraded
    } else if o.pods.is_empty() {
        Phase::Pending
    } else {
        Phase::Creating
    };
    let (ready_reason, ready_message) = match (&pods_problem, &agents_problem) {
        _ if updating => (
            "Updating",
            format!(
                "rolling out generation {generation}: {}",
                pods_problem.as_ref().or(agents_problem.as_ref()).map_or("", |(_, m)| m.as_str())
            ),
        ),
        (Some((reason, message)), _) | (None, Some((reason, message))) => (*reason, message.clone()),
        (None, None) => ("Running", format!("{nodes} pods running, every agent has applied its links")),
    };
    let degraded = phase == Phase::Degraded;
    let (degraded_reason, degraded_message) =
        if degraded { (ready_reason, ready_message.clone()) } else { ("AsExpected", String::new()) };
    let mut conditions = vec![
        condition(&previous, READY, ready, ready_reason, &ready_message, o),
        condition(&previous, DEGRADED, degraded, degraded_reason, &degraded_message, o),
    ];
    if !plan.objectives.is_empty() {
        conditions.push(objectives_condition(&previous, &objectives, finished, o));
    }

    let t = sim.unwrap_or(SimTime::ZERO);
    let state = plan.state_at(t);
    let active_faults = state
        .active_faults
        .iter()
        .filter_map(|&i| plan.faults.iter().find(|f| f.spec_index == i))
        .map(|f| f.describe(plan))
        .collect();

    ConstellationStatus {
        observed_generation: o.generation,
        phase: Some(phase),
        conditions,
        nodes: Some(count(nodes)),
        pods: Some(count(o.pods.len())),
        pods_running: Some(count(running)),
        links: Some(count(plan.isls.len() + possible_ground_links(plan))),
        links_up: Some(count(state.links_up())),
        started_at,
        sim_time: sim.map(|t| {
            SpecDuration::from_secs(u64::try_from(t.as_nanos() / 1_000_000_000).unwrap_or(0)).to_string()
        }),
        active_faults,
        objectives,
        agents: Vec::new(),
    }
}

/// Each objective as the agent receiving its flow last judged it (pending until one has),
/// and whether the experiment is over: its `duration` has passed and every verdict is
/// final, or `VERDICT_GRACE` more has passed (the verdicts still missing are then
/// inconclusive). Once finished, a generation stays finished.
fn objectives(
    plan: &Plan,
    previous: &ConstellationStatus,
    sim: Option<SimTime>,
    generation: i64,
) -> (Vec<ObjectiveStatus>, bool) {
    let reported = |name: &str| {
        previous
            .agents
            .iter()
            .filter(|a| a.observed_generation == generation)
            .find_map(|a| a.objectives.iter().find(|s| s.name == name))
    };
    let mut list: Vec<ObjectiveStatus> = plan
        .objectives
        .iter()
        .map(|o| {
            let (flow, waiting) = match o.flow {
                Some(f) => {
                    (plan.flows[f].name.clone(), "no verdict yet from the agent of the flow's receiving node")
                }
                None => (
                    orbitnet_model::mission::ROUTING.to_owned(),
                    "no verdict yet from the link agent, which watches the pods' forwarding tables",
                ),
            };
            reported(&o.name).cloned().unwrap_or_else(|| ObjectiveStatus {
                name: o.name.clone(),
                flow,
                requirement: o.requirement.to_string(),
                window: o.window.describe.clone(),
                result: "PENDING".into(),
                detail: waiting.into(),
                ..ObjectiveStatus::default()
            })
        })
        .collect();
    let Some(duration) = plan.duration else { return (list, false) };
    let was_finished =
        previous.phase == Some(Phase::Finished) && previous.observed_generation == Some(generation);
    let end = SimTime::ZERO.checked_add(duration);
    let over = |extra: SpecDuration| {
        sim.zip(end.and_then(|e| e.checked_add(extra))).is_some_and(|(now, end)| now >= end)
    };
    let all_settled = list.iter().all(|s| s.settled);
    let finished = was_finished || (over(SpecDuration::ZERO) && all_settled) || over(VERDICT_GRACE);
    if finished {
        for s in list.iter_mut().filter(|s| !s.settled) {
            s.result = "INCONCLUSIVE".into();
            s.detail = format!(
                "no final verdict from a link agent within {VERDICT_GRACE} of the end ({})",
                s.detail
            );
            s.settled = true;
        }
    }
    (list, finished)
}

/// `ObjectivesMet`: Unknown while the run lasts; then True if every objective passed,
/// False (reason `Failed` or `Inconclusive`) otherwise, naming them.
fn objectives_condition(
    previous: &ConstellationStatus,
    objectives: &[ObjectiveStatus],
    finished: bool,
    o: &Observed,
) -> Condition {
    let named = |result: &str| -> Vec<String> {
        objectives
            .iter()
            .filter(|s| s.result == result)
            .map(|s| format!("{}: {}", s.name, s.detail))
            .collect()
    };
    let (status, reason, message) = if !finished {
        let judged = objectives.iter().filter(|s| s.result != "PENDING").count();
        (
            "Unknown",
            "Running",
            format!("the run lasts; {judged} of {} objectives judged so far", objectives.len()),
        )
    } else if !named("FAIL").is_empty() {
        ("False", "Failed", named("FAIL").join("; "))
    } else if !named("INCONCLUSIVE").is_empty() {
        ("False", "Inconclusive", named("INCONCLUSIVE").join("; "))
    } else {
        ("True", "AllPassed", format!("all {} objectives passed", objectives.len()))
    };
    condition_of(previous, OBJECTIVES_MET, status, reason, &message, o)
}

/// Ground links that can exist at once: each ground node links to at most `antennas`
/// satellites, or to every satellite in sight under the `all` policy.
fn possible_ground_links(plan: &Plan) -> usize {
    let per_ground = match plan.ground_links.policy {
        GroundPolicy::All => plan.n_sats,
        GroundPolicy::Nearest | GroundPolicy::HighestElevation => plan.ground_links.antennas.min(plan.n_sats),
    };
    plan.ground_range().len() * per_ground
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Which pods run on nodes that are not Ready: their containers may be gone or cut off
/// while the API still says Running (until the node controller evicts them).
fn nodes_problem(pods: &[PodView], unready: &BTreeMap<String, String>) -> Option<(&'static str, String)> {
    let mut stranded: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for pod in pods {
        if let Some(host) = pod.host.as_deref().filter(|h| unready.contains_key(*h)) {
            stranded.entry(host).or_default().push(&pod.name);
        }
    }
    if stranded.is_empty() {
        return None;
    }
    let message = stranded
        .iter()
        .map(|(host, names)| {
            let shown: Vec<&str> = names.iter().take(5).copied().collect();
            let more = if names.len() > shown.len() { ", ..." } else { "" };
            format!(
                "node {host} is not Ready: {}; its {} pods: {}{more}",
                unready[*host],
                names.len(),
                shown.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(("NodeNotReady", message))
}

/// Why the pods are not all running, naming the first few that are not.
fn pods_problem(nodes: usize, pods: &[PodView]) -> Option<(&'static str, String)> {
    let running = pods.iter().filter(|p| p.running()).count();
    if running == nodes && pods.len() == nodes {
        return None;
    }
    let failed: Vec<&PodView> = pods.iter().filter(|p| p.phase == "Failed").collect();
    let waiting: Vec<String> =
        pods.iter().filter(|p| !p.running()).take(5).map(|p| format!("{} ({})", p.name, p.phase)).collect();
    let mut message = format!("{running} of {nodes} pods running");
    if pods.len() < nodes {
        message.push_str(&format!(", {} not created yet", nodes - pods.len()));
    }
    if !waiting.is_empty() {
        message.push_str(&format!("; not running: {}", waiting.join(", ")));
        if pods.len() - running > waiting.len() {
            message.push_str(", ...");
        }
    }
    let reason = if failed.is_empty() { "PodsNotRunning" } else { "PodsFailed" };
    Some((reason, message))
}

/// Why the agents have not (all) applied the links of the running pods.
fn agents_problem(
    generation: i64,
    pods: &[PodView],
    agents: &[AgentReport],
) -> Option<(&'static str, String)> {
    let mut per_host: BTreeMap<&str, u32> = BTreeMap::new();
    for pod in pods {
        *per_host.entry(pod.host.as_deref().unwrap_or("(unscheduled)")).or_default() += 1;
    }
    let mut silent = Vec::new();
    let mut behind = Vec::new();
    let mut failing = Vec::new();
    for (&host, &wanted) in &per_host {
        match agents.iter().find(|a| a.node == host) {
            None => silent.push(host.to_owned()),
            Some(a) if a.errors > 0 => failing.push(format!(
                "{host}: {} errors{}",
                a.errors,
                a.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            )),
            Some(a) if a.observed_generation < generation || a.pods < wanted => behind.push(format!(
                "{host}: {} of {wanted} pods wired at generation {}",
                a.pods, a.observed_generation
            )),
            Some(_) => {}
        }
    }
    if !failing.is_empty() {
        return Some(("AgentErrors", format!("link agents report errors: {}", failing.join("; "))));
    }
    if !silent.is_empty() {
        return Some((
            "WaitingForAgents",
            format!("pods running; no link agent has reported for nodes: {}", silent.join(", ")),
        ));
    }
    if !behind.is_empty() {
        return Some(("WaitingForAgents", format!("links not applied yet: {}", behind.join("; "))));
    }
    None
}

/// A condition, keeping the previous transition time while its status is unchanged.
fn condition(
    previous: &ConstellationStatus,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    o: &Observed,
) -> Condition {
    condition_of(previous, type_, if status { "True" } else { "False" }, reason, message, o)
}

/// A condition of any status ("True", "False", "Unknown"), keeping the previous transition
/// time while its status is unchanged.
fn condition_of(
    previous: &ConstellationStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    o: &Observed,
) -> Condition {
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| rfc3339(o.now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time,
        observed_generation: o.generation,
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{TINY, constellation};

    static NONE: BTreeMap<String, String> = BTreeMap::new();

    fn pods(plan: &Plan, phase: &str, host: Option<&str>) -> Vec<PodView> {
        plan.nodes
            .iter()
            .map(|n| PodView {
                name: format!("tiny-{}", n.name),
                host: host.map(str::to_owned),
                phase: phase.to_owned(),
            })
            .collect()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn agent(node: &str, pods: u32) -> AgentReport {
        AgentReport { node: node.into(), observed_generation: 1, pods, ..AgentReport::default() }
    }

    /// Running at generation 1 since `now()`, with these agents' reports.
    fn started(agents: Vec<AgentReport>) -> ConstellationStatus {
        ConstellationStatus {
            started_at: Some("2026-11-24T12:00:00Z".into()),
            phase: Some(Phase::Running),
            observed_generation: Some(1),
            agents,
            ..ConstellationStatus::default()
        }
    }

    fn get<'a>(s: &'a ConstellationStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    /// tiny with a 60 s experiment: one flow from alpha to bravo, two objectives.
    const MISSION: &str = "  duration: 60s\n  traffic:\n  - {name: tracks, from: alpha, to: bravo, packetsPerSecond: 10}\n  objectives:\n  - {flow: tracks, kind: delivery, minPct: 99}\n  - {flow: tracks, kind: outage, maxS: 1}\n";

    fn judged(name: &str, result: &str, settled: bool) -> ObjectiveStatus {
        ObjectiveStatus {
            name: name.into(),
            flow: "tracks".into(),
            result: result.into(),
            value: Some(99.5),
            detail: format!("{name} measured"),
            settled,
            ..ObjectiveStatus::default()
        }
    }

    #[test]
    fn an_experiment_finishes_with_the_agents_verdicts_in_the_status() {
        let (_, plan) = constellation(&format!("{TINY}{MISSION}"));
        let running = pods(&plan, "Running", Some("worker-1"));
        let mut previous = started(Vec::new());
        let at = |s: i64| now() + chrono::Duration::seconds(s);
        let o = Observed {
            generation: Some(1),
            previous: None,
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: at(30),
        };
        // Half-way: no verdict yet, then the receiving agent's running figures.
        previous.agents = vec![agent("worker-1", 10)];
        let s = compute(&Observed { previous: Some(&previous), ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(s.objectives.len(), 2);
        assert!(s.objectives.iter().all(|o| o.result == "PENDING" && !o.settled), "{:?}", s.objectives);
        let met = get(&s, OBJECTIVES_MET);
        assert_eq!((met.status.as_str(), met.reason.as_str()), ("Unknown", "Running"));

        // After the end, final verdicts: one failed.
        previous.agents[0].objectives =
            vec![judged("tracks-delivery", "PASS", true), judged("tracks-outage", "FAIL", true)];
        let s = compute(&Observed { previous: Some(&previous), now: at(65), ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Finished));
        let met = get(&s, OBJECTIVES_MET);
        assert_eq!((met.status.as_str(), met.reason.as_str()), ("False", "Failed"));
        assert!(met.message.contains("tracks-outage: tracks-outage measured"), "{}", met.message);
        assert_eq!(s.objectives[0].verdict().unwrap().outcome(), orbitnet_mission::Outcome::Pass);

        // All passed: True; and a finished generation stays finished.
        previous.agents[0].objectives =
            vec![judged("tracks-delivery", "PASS", true), judged("tracks-outage", "PASS", true)];
        let s = compute(&Observed { previous: Some(&previous), now: at(65), ..o.clone() });
        assert_eq!((get(&s, OBJECTIVES_MET).status.as_str(), s.phase), ("True", Some(Phase::Finished)));
        let s = compute(&Observed { previous: Some(&s), now: at(300), ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Finished));
    }

    #[test]
    fn verdicts_missing_after_the_grace_period_are_inconclusive() {
        let (_, plan) = constellation(&format!("{TINY}{MISSION}"));
        let running = pods(&plan, "Running", Some("worker-1"));
        let mut previous = started(vec![agent("worker-1", 10)]);
        previous.agents[0].objectives = vec![judged("tracks-delivery", "PENDING", false)];
        let at = |s: i64| now() + chrono::Duration::seconds(s);
        let o = Observed {
            generation: Some(1),
            previous: Some(&previous),
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: at(90),
        };
        assert_eq!(compute(&o).phase, Some(Phase::Running), "still within the grace period");
        let s = compute(&Observed { now: at(121), ..o });
        assert_eq!(s.phase, Some(Phase::Finished));
        assert!(s.objectives.iter().all(|o| o.result == "INCONCLUSIVE" && o.settled), "{:?}", s.objectives);
        let met = get(&s, OBJECTIVES_MET);
        assert_eq!((met.status.as_str(), met.reason.as_str()), ("False", "Inconclusive"));
    }

    #[test]
    fn routing_objectives_are_pending_until_the_link_agent_judges_them() {
        let routing = "  - {name: reroute, kind: convergence, maxS: 5}\n";
        let (_, plan) = constellation(&format!("{TINY}{MISSION}{routing}"));
        let running = pods(&plan, "Running", Some("worker-1"));
        let mut previous = started(vec![agent("worker-1", 10)]);
        let o = Observed {
            generation: Some(1),
            previous: Some(&previous),
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: now(),
        };
        let s = compute(&o);
        let reroute = s.objectives.iter().find(|o| o.name == "reroute").unwrap();
        assert_eq!((reroute.result.as_str(), reroute.flow.as_str()), ("PENDING", "routing"));
        assert!(reroute.detail.contains("link agent"), "{}", reroute.detail);
        previous.agents[0].objectives =
            vec![ObjectiveStatus { flow: "routing".into(), ..judged("reroute", "PASS", true) }];
        let s = compute(&Observed {
            previous: Some(&previous),
            plan: Ok(&plan),
            pods: &running,
            generation: Some(1),
            unready_nodes: &NONE,
            now: now(),
        });
        let reroute = s.objectives.iter().find(|o| o.name == "reroute").unwrap();
        assert_eq!((reroute.result.as_str(), reroute.settled), ("PASS", true), "the agent's verdict");
    }

    #[test]
    fn no_pods_is_pending_and_some_pods_creating() {
        let (_, plan) = constellation(TINY);
        let o = Observed {
            generation: Some(1),
            previous: None,
            plan: Ok(&plan),
            pods: &[],
            unready_nodes: &NONE,
            now: now(),
        };
        let s = compute(&o);
        assert_eq!(s.phase, Some(Phase::Pending));
        assert_eq!((s.nodes, s.pods, s.pods_running), (Some(10), Some(0), Some(0)));
        let ready = get(&s, READY);
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "PodsNotRunning"));
        assert!(ready.message.contains("0 of 10 pods running, 10 not created yet"), "{}", ready.message);
        let pending = pods(&plan, "Pending", None);
        let s = compute(&Observed { pods: &pending, ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Creating));
        assert!(get(&s, READY).message.contains("not running: tiny-ring-0-0 (Pending)"));
        assert_eq!(s.started_at, None);
        assert_eq!(s.sim_time, None);
    }

    #[test]
    fn running_pods_wait_for_the_agents_then_are_ready_once_and_for_all() {
        let (_, plan) = constellation(TINY);
        let running = pods(&plan, "Running", Some("worker-1"));
        let o = Observed {
            generation: Some(1),
            previous: None,
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: now(),
        };
        let s = compute(&o);
        assert_eq!(s.phase, Some(Phase::Creating));
        let ready = get(&s, READY);
        assert_eq!(ready.reason, "WaitingForAgents");
        assert!(ready.message.contains("worker-1"), "{}", ready.message);

        let mut previous = s.clone();
        previous.agents = vec![agent("worker-1", 10)];
        let s = compute(&Observed { previous: Some(&previous), ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(get(&s, READY).status, "True");
        assert_eq!(get(&s, DEGRADED).status, "False");
        assert_eq!(s.started_at.as_deref(), Some("2026-11-24T12:00:00Z"));
        assert_eq!(s.sim_time.as_deref(), Some("0s"));

        // 90 s later a pod fails: Degraded, and the clock's zero stays.
        let mut previous = s.clone();
        previous.agents = vec![agent("worker-1", 10)];
        let mut later = running.clone();
        later[3].phase = "Failed".into();
        let then = now() + chrono::Duration::seconds(90);
        let s = compute(&Observed { previous: Some(&previous), pods: &later, now: then, ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.started_at.as_deref(), Some("2026-11-24T12:00:00Z"));
        assert_eq!(s.sim_time.as_deref(), Some("1m30s"));
        let degraded = get(&s, DEGRADED);
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "PodsFailed"));
        assert_eq!(degraded.last_transition_time, "2026-11-24T12:01:30Z");
        assert_eq!(get(&s, READY).last_transition_time, "2026-11-24T12:01:30Z");
    }

    #[test]
    fn pods_on_a_node_that_is_not_ready_degrade_it_naming_the_node_until_it_returns() {
        let (_, plan) = constellation(TINY);
        let mut running = pods(&plan, "Running", Some("worker-1"));
        for pod in running.iter_mut().skip(6) {
            pod.host = Some("worker-2".into());
        }
        let previous = started(vec![agent("worker-1", 6), agent("worker-2", 4)]);
        let o = Observed {
            generation: Some(1),
            previous: Some(&previous),
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: now() + chrono::Duration::seconds(60),
        };
        assert_eq!(compute(&o).phase, Some(Phase::Running));

        // The second node's kubelet stops: its pods are still Running in the API.
        let lost = BTreeMap::from([(
            "worker-2".to_owned(),
            "Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.)".to_owned(),
        )]);
        let s = compute(&Observed { unready_nodes: &lost, ..o.clone() });
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.pods_running, Some(10));
        let degraded = get(&s, DEGRADED);
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "NodeNotReady"));
        assert_eq!(
            degraded.message,
            "node worker-2 is not Ready: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.); \
             its 4 pods: tiny-ring-0-6, tiny-ring-0-7, tiny-alpha, tiny-bravo"
        );
        assert_eq!(get(&s, READY).reason, "NodeNotReady");

        // A node that is not Ready but has none of the pods does not matter.
        let elsewhere = BTreeMap::from([("worker-3".to_owned(), "Ready=False".to_owned())]);
        assert_eq!(compute(&Observed { unready_nodes: &elsewhere, ..o.clone() }).phase, Some(Phase::Running));

        // The node returns: Running again, the clock's zero unchanged.
        let s = compute(&Observed { previous: Some(&s), ..o.clone() });
        let mut back = s.clone();
        back.agents = previous.agents.clone();
        let s = compute(&Observed { previous: Some(&back), ..o });
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!(s.started_at.as_deref(), Some("2026-11-24T12:00:00Z"));
    }

    #[test]
    fn a_spec_change_rolling_out_is_creating_not_degraded() {
        let (_, plan) = constellation(TINY);
        let running = pods(&plan, "Running", Some("w1"));
        let previous = ConstellationStatus {
            observed_generation: Some(1),
            phase: Some(Phase::Running),
            started_at: Some("2026-11-24T11:00:00Z".into()),
            agents: vec![agent("w1", 10)],
            ..Default::default()
        };
        let o = Observed {
            generation: Some(2),
            previous: Some(&previous),
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: now(),
        };
        let s = compute(&o);
        assert_eq!(s.phase, Some(Phase::Creating));
        let ready = get(&s, READY);
        assert_eq!(ready.reason, "Updating", "{}", ready.message);
        assert!(ready.message.contains("rolling out generation 2"), "{}", ready.message);
        assert_eq!(get(&s, DEGRADED).status, "False");
        assert_eq!(s.started_at.as_deref(), Some("2026-11-24T11:00:00Z"));
        // The agent catches up: Running again.
        let caught_up = ConstellationStatus {
            agents: vec![AgentReport { observed_generation: 2, ..agent("w1", 10) }],
            ..s.clone()
        };
        assert_eq!(compute(&Observed { previous: Some(&caught_up), ..o }).phase, Some(Phase::Running));
    }

    #[test]
    fn agents_behind_or_failing_are_named() {
        let (_, plan) = constellation(TINY);
        let running = pods(&plan, "Running", Some("w1"));
        let behind = ConstellationStatus { agents: vec![agent("w1", 7)], ..Default::default() };
        let o = Observed {
            generation: Some(1),
            previous: Some(&behind),
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: now(),
        };
        assert!(get(&compute(&o), READY).message.contains("w1: 7 of 10 pods wired"));
        let failing = ConstellationStatus {
            agents: vec![AgentReport { errors: 2, last_error: Some("EEXIST".into()), ..agent("w1", 10) }],
            ..Default::default()
        };
        let o = Observed { previous: Some(&failing), ..o };
        let ready = get(&compute(&o), READY).clone();
        assert_eq!(ready.reason, "AgentErrors");
        assert!(ready.message.contains("w1: 2 errors (EEXIST)"), "{}", ready.message);
    }

    #[test]
    fn an_invalid_spec_fails_with_the_problems_in_the_message() {
        let o = Observed {
            generation: Some(3),
            previous: None,
            plan: Err("spec.shells[0].walker.planes: 0 is not greater than 0".into()),
            pods: &[],
            unready_nodes: &NONE,
            now: now(),
        };
        let s = compute(&o);
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.observed_generation, Some(3));
        let ready = get(&s, READY);
        assert_eq!(ready.reason, "InvalidSpec");
        assert!(ready.message.contains("spec.shells[0].walker.planes"));
    }

    #[test]
    fn active_faults_are_listed_at_the_sim_time() {
        let yaml = format!("{TINY}  faults:\n  - {{kind: nodeDown, node: ring-0-3, at: 1m, duration: 1m}}\n");
        let (_, plan) = constellation(&yaml);
        let running = pods(&plan, "Running", Some("w1"));
        let previous = ConstellationStatus {
            started_at: Some("2026-11-24T11:59:00Z".into()),
            agents: vec![agent("w1", 10)],
            ..Default::default()
        };
        let o = Observed {
            generation: Some(1),
            previous: Some(&previous),
            plan: Ok(&plan),
            pods: &running,
            unready_nodes: &NONE,
            now: now(),
        };
        let s = compute(&o);
        assert_eq!(s.active_faults, vec!["nodeDown on ring-0-3".to_owned()]);
        assert!(s.links_up.unwrap() < s.links.unwrap());
    }
}
