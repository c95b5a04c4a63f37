//! Kernel tier (root and netem; `make test-kernel` runs it, in the VM where needed): two
//! agents' dataplane halves on two emulated Kubernetes nodes (network namespaces joined by
//! a veth underlay), each wiring only its own pods, as `orbitnet agent` does, without an API
//! server. What a single-node cluster cannot show: VXLAN ends between the nodes, the
//! underlay's delay taken off their netem, and two agents that started at different
//! emulation times agreeing on every link they share.

use std::collections::HashMap;
use std::net::IpAddr;

use orbitnet_agent::wired::{LocalNs, Wired};
use orbitnet_agent::wiring::Placement;
use orbitnet_dataplane::testing::{
    Lab, per_traversal_overhead_ms, ping, require_kernel, tiny_without_random_loss,
};
use orbitnet_dataplane::{Conn, Netem, Netns, link, naming, netem};
use orbitnet_model::{GroundChoice, LinkId, LinkKind, NodeIdx, Plan, SimTime};

const HOSTS: [&str; 2] = ["node-1", "node-2"];

fn host_ip(h: usize) -> IpAddr {
    ["10.9.0.1", "10.9.0.2"][h].parse().unwrap()
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn two_agents_join_their_nodes_pods_with_vxlan_and_take_the_underlay_off() {
    require_kernel();
    let mut lab = Lab::new("agents");
    let (h1, h2) = lab.pair();
    let mut plan: Plan = orbitnet_model::compile_yaml(&tiny_without_random_loss()).unwrap();
    plan.name = format!("agents{}", std::process::id());
    let (alpha, bravo) = (plan.node_index("alpha").unwrap(), plan.node_index("bravo").unwrap());
    // Satellites 0-3 and alpha on the first node, the rest on the second.
    let host_of = |n: NodeIdx| usize::from(!(n < 4 || n == alpha));
    let n = plan.nodes.len() as NodeIdx;
    let pods: Vec<Netns> = (0..n).map(|i| lab.netns(&plan.node(i).name)).collect();
    let placements: HashMap<NodeIdx, Placement> = (0..n)
        .map(|i| (i, Placement { host: HOSTS[host_of(i)].into(), host_ip: host_ip(host_of(i)) }))
        .collect();
    let local = |h: usize| -> HashMap<NodeIdx, LocalNs> {
        (0..n)
            .filter(|&i| host_of(i) == h)
            .map(|i| (i, (format!("uid-{i}"), Some(pods[i as usize].path().to_owned()))))
            .collect()
    };
    // The first node measured 2 ms one way to the second, the second 3 ms to the first.
    let underlay = [HashMap::from([(host_ip(1), 2_000.0)]), HashMap::from([(host_ip(0), 3_000.0)])];
    let hosts = [&h1.ns, &h2.ns];
    let start = |h: usize, k: i64| {
        let mut agent = Wired::new(plan.clone(), HOSTS[h], "default", lab.conn(hosts[h]), plan.tick_time(k));
        let synced = agent.sync(&local(h), &placements);
        assert!(agent.build_errors.is_empty(), "{:?}", agent.build_errors);
        println!("{} from t = {k} s: {synced:?}", HOSTS[h]);
        agent
    };
    let apply = |agent: &mut Wired, h: usize, k: i64| {
        let tick = agent.apply(k, underlay[h].clone());
        assert!(tick.problems.is_empty(), "{:?}", tick.problems);
        assert!(tick.shaping.is_empty(), "{:?}", tick.shaping);
    };

    // The first agent starts at 300 s and runs tick by tick; the second starts at 340 s,
    // where a ground-link chain begun afresh would keep another satellite than the first
    // one's until the handover at 367 s. Both must apply the same state at every shared
    // tick: every link end up exactly when the model says, and both ends of every link
    // across the nodes alike.
    let (first_start, second_start, shared_end) = (300, 340, 370);
    assert!(
        fresh_chain_differs(&plan, second_start, shared_end, host_of),
        "the window must be one where a chain begun at {second_start} s would disagree across the nodes"
    );
    let mut agents = [start(0, first_start), start(1, second_start)];
    for k in first_start..second_start {
        apply(&mut agents[0], 0, k);
    }
    let mut cross_checked = 0;
    for k in second_start..=shared_end {
        for (h, agent) in agents.iter_mut().enumerate() {
            apply(agent, h, k);
        }
        let want = plan.state_at(plan.tick_time(k));
        let mut ends: HashMap<LinkId, Vec<(NodeIdx, bool)>> = HashMap::new();
        for (node, link, up) in link_ends(&lab, &plan, &pods) {
            ends.entry(link).or_default().push((node, up));
        }
        for l in &want.links {
            let Some(found) = ends.get(&l.id) else { continue };
            for &(node, up) in found {
                assert_eq!(up, l.up, "t = {k} s: {}'s end of {} - {}", plan.node(node).name, l.a, l.b);
            }
            if host_of(l.a) != host_of(l.b) {
                assert_eq!(found.len(), 2, "t = {k} s: both ends of {} - {} exist", l.a, l.b);
                cross_checked += 1;
            }
        }
        let wanted: std::collections::HashSet<LinkId> = want.links.iter().map(|l| l.id).collect();
        for (id, found) in &ends {
            if !wanted.contains(id) {
                assert!(found.iter().all(|(_, up)| !up), "t = {k} s: a link the model does not list is down");
            }
        }
    }
    println!("{cross_checked} cross-node link states agreed over ticks {second_start}..={shared_end}");

    let t = SimTime::from_nanos(600_000_000_000);
    let k = plan.tick_index(t);
    for (h, agent) in agents.iter_mut().enumerate() {
        apply(agent, h, k);
    }

    // A cross-node end is shaped with the model's delay less that node's underlay estimate.
    let state = plan.state_at(t);
    let mut vxlan_ends = 0;
    for l in state.links.iter().filter(|l| l.up && host_of(l.a) != host_of(l.b)) {
        for (node, peer) in [(l.a, l.b), (l.b, l.a)] {
            let kind = if l.kind == LinkKind::Gsl { LinkKind::Gsl } else { LinkKind::Isl };
            let mut conn = lab.conn(&pods[node as usize]);
            let iface = link::by_name(&mut conn, &naming::iface_name(kind, peer)).unwrap().unwrap();
            let got = netem::get(&mut conn, iface.index).unwrap().unwrap();
            let off_us = underlay[host_of(node)].values().next().unwrap();
            let want = Netem::for_link(l).delay_ns - (*off_us as u64) * 1_000;
            assert!(
                got.delay_ns.abs_diff(want) <= 1,
                "{} end of {} - {}: {got:?}, want {want} ns",
                plan.node(node).name,
                l.a,
                l.b
            );
            vxlan_ends += 1;
        }
    }
    assert!(vxlan_ends >= 2, "the model has links up across the nodes at t");

    // Packets cross: alpha (node 1) to bravo (node 2) on the model's path.
    let routes = state.routes.as_ref().unwrap();
    let path = routes.path(alpha, bravo).unwrap();
    ping(&pods[alpha as usize], &plan.node_address(bravo).to_string(), 1, "0.2");
    let p = ping(&pods[alpha as usize], &plan.node_address(bravo).to_string(), 10, "0.2");
    let crossings = path.windows(2).filter(|w| host_of(w[0]) != host_of(w[1])).count();
    let model_ms = 2.0 * routes.delay_ns(alpha, bravo).unwrap() as f64 / 1e6;
    // The veth underlay takes next to nothing, so the compensation shows as an early
    // arrival: 2 + 3 ms per crossing and round trip. Each traversal also costs this machine
    // its own overhead, measured as the dataplane's kernel tests do.
    let traversals = 2 * (path.len() - 1);
    let per_traversal = per_traversal_overhead_ms(path.len() - 1);
    let want_ms = model_ms - crossings as f64 * 5.0 + traversals as f64 * per_traversal;
    println!(
        "alpha -> bravo over {path:?}, {crossings} node crossings: RTT avg {:.3} ms (min {:.3}); model {model_ms:.3} ms - {crossings} x 5 ms + {traversals} x {per_traversal:.3} ms = {want_ms:.3} ms",
        p.avg, p.min
    );
    assert_eq!(p.loss_pct, 0.0);
    assert!(crossings >= 1);
    // Each crossing adds a VXLAN encapsulation and an unshaped underlay traversal, each way.
    let underlay_ms = 2.0 * crossings as f64 * per_traversal;
    assert!(
        (p.avg - want_ms).abs() < 1.0 + underlay_ms,
        "RTT {} ms, want {want_ms} ms (+ up to {underlay_ms:.3} ms of underlay)",
        p.avg
    );

    // A second agent process on node 1 takes the kernel over: it reads every end back
    // (VXLAN ends with their tunnels) and builds, removes and duplicates nothing.
    let before: Vec<String> = ends_of(&lab, &pods, &local(0));
    let mut successor = Wired::new(plan.clone(), HOSTS[0], "default", lab.conn(hosts[0]), t);
    let synced = successor.sync(&local(0), &placements);
    assert!(successor.build_errors.is_empty(), "{:?}", successor.build_errors);
    assert_eq!((synced.ends_built, synced.ends_removed), (0, 0), "nothing rebuilt: {synced:?}");
    assert_eq!(before, ends_of(&lab, &pods, &local(0)), "the same ends, by name");

    // The pod of satellite 4 moves to a third node: node 1's tunnel to it follows.
    let moved: NodeIdx = 4;
    let mut placements_3 = placements.clone();
    placements_3.insert(moved, Placement { host: "node-3".into(), host_ip: "10.9.0.3".parse().unwrap() });
    let synced = successor.sync(&local(0), &placements_3);
    assert!(successor.build_errors.is_empty(), "{:?}", successor.build_errors);
    let mut towards: Vec<link::VxlanEnd> = Vec::new();
    for (&node, _) in local(0).iter() {
        let mut conn = lab.conn(&pods[node as usize]);
        for iface in link::list(&mut conn).unwrap() {
            let peer = iface.alias.as_deref().and_then(naming::parse_alias).map(|a| a.peer);
            if peer.as_deref() == Some(plan.node(moved).name.as_str()) {
                towards.extend(iface.vxlan);
            }
        }
    }
    println!("{} moved: {synced:?}; node 1's tunnels to it: {towards:?}", plan.node(moved).name);
    assert!(!towards.is_empty(), "satellite 3 (node 1) and 4 are grid neighbours");
    assert!(towards.iter().all(|v| v.remote == Some("10.9.0.3".parse().unwrap())), "{towards:?}");
    assert_eq!((synced.ends_removed, synced.ends_built), (towards.len(), towards.len()));

    // Teardown removes node 1's ends, and only those: node 2's are its own agent's.
    let node_2 = ends_of(&lab, &pods, &local(1));
    let errors = successor.teardown();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(ends_of(&lab, &pods, &local(0)).is_empty(), "node 1's pods hold no link end");
    assert_eq!(ends_of(&lab, &pods, &local(1)), node_2);
}

/// The underlay probe's raw ICMP echo (the agent's only raw socket) gets loopback's answer,
/// and across a shaped veth measures what `ping` does: both take the kernel's receive time,
/// so what the agent takes off cross-node links is what pings across them see.
#[test]
#[ignore = "kernel tier: needs root (a raw ICMP socket) and netem; run by make test-kernel"]
fn the_underlay_probe_measures_the_round_trip_as_ping_does() {
    require_kernel();
    let mut lab = Lab::new("probe");
    let ns = lab.netns("host");
    // The socket lives in the namespace it was made in: a fresh one with its loopback up.
    let made = ns.enter(orbitnet_agent::probe::Pinger::new).unwrap();
    let mut pinger = made.expect("a raw ICMP socket (CAP_NET_RAW)");
    let rtt = pinger.round_trip(std::net::Ipv4Addr::LOCALHOST, std::time::Duration::from_secs(2)).unwrap();
    let rtt = rtt.expect("loopback answers within 2 s");
    assert!(rtt < std::time::Duration::from_secs(2));

    let (a, b) = lab.pair();
    for (end, ms) in [(&a, 10), (&b, 5)] {
        let netem = orbitnet_dataplane::testing::delay_netem(ms);
        lab.conn(&end.ns)
            .execute(orbitnet_dataplane::netem::replace("shaped", end.ifindex, &netem).unwrap())
            .unwrap();
    }
    let peer: std::net::Ipv4Addr = "10.9.0.2".parse().unwrap();
    let ping = orbitnet_dataplane::testing::ping(&a.ns, "10.9.0.2", 10, "0.05");
    let mut pinger = a.ns.enter(orbitnet_agent::probe::Pinger::new).unwrap().unwrap();
    let probe_ms = (0..10)
        .filter_map(|_| pinger.round_trip(peer, std::time::Duration::from_secs(2)).unwrap())
        .map(|d| d.as_secs_f64() * 1e3)
        .fold(f64::INFINITY, f64::min);
    println!("probe: {probe_ms:.3} ms; ping: {:.3} ms; netem 15 ms", ping.min);
    assert!(probe_ms >= 15.0, "the probe took {probe_ms} ms, under the netem's 15 ms");
    assert!((probe_ms - ping.min).abs() < 0.3, "the probe took {probe_ms} ms, ping {} ms", ping.min);
}

/// Whether a ground-link chain begun afresh at tick `from` (what an agent that started
/// there would have applied before anchoring) chooses, at some tick up to `to`, another
/// satellite than the model for a link across the nodes (`host_of`).
fn fresh_chain_differs(plan: &Plan, from: i64, to: i64, host_of: impl Fn(NodeIdx) -> usize) -> bool {
    let crossing = |c: &GroundChoice| -> Vec<(NodeIdx, NodeIdx)> {
        let mut pairs = Vec::new();
        for (g, sats) in c.per_ground.iter().enumerate() {
            let ground = (plan.n_sats + g) as NodeIdx;
            pairs.extend(sats.iter().filter(|&&s| host_of(s) != host_of(ground)).map(|&s| (ground, s)));
        }
        pairs
    };
    let mut previous: Option<GroundChoice> = None;
    let mut differs = false;
    for k in from..=to {
        let t = plan.tick_time(k);
        let faults = plan.active_faults(t);
        let fresh = plan.choose_ground_links(&plan.geometry(t), &faults, previous.as_ref());
        differs |= crossing(&fresh) != crossing(&plan.state_at(t).ground_choice);
        previous = Some(fresh);
    }
    differs
}

/// (node, link, administratively up) of every orbitnet link end in the pods.
fn link_ends(lab: &Lab, plan: &Plan, pods: &[Netns]) -> Vec<(NodeIdx, LinkId, bool)> {
    let mut all = Vec::new();
    for (node, ns) in pods.iter().enumerate() {
        let mut conn: Conn = lab.conn(ns);
        for iface in link::list(&mut conn).unwrap() {
            let Some(alias) = iface.alias.as_deref().and_then(naming::parse_alias) else { continue };
            if alias.constellation == plan.name {
                all.push((node as NodeIdx, alias.link, iface.up));
            }
        }
    }
    all
}

/// `node:name` of every orbitnet link end in the given pods.
fn ends_of(lab: &Lab, pods: &[Netns], local: &HashMap<NodeIdx, LocalNs>) -> Vec<String> {
    let mut all = Vec::new();
    for &node in local.keys() {
        let mut conn = lab.conn(&pods[node as usize]);
        for iface in link::list(&mut conn).unwrap() {
            if iface.alias.as_deref().and_then(naming::parse_alias).is_some() {
                all.push(format!("{node}:{}", iface.name));
            }
        }
    }
    all.sort();
    all
}
