//! Applying the model's state: what every local link end and every local node's routes
//! should be (`target`), the difference from what was applied last (`diff`, pure), and the
//! requests that close it, one batch per namespace (`Applier::apply`). A failed request
//! fails only its own link end or route, is reported, and is retried next time.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use orbitnet_model::{LinkId, NodeIdx, Plan, State};

use crate::netem::{self, Netem};
use crate::netlink::{Conn, NlError, Request};
use crate::route::{self, Route};
use crate::{link, naming};

/// ESRCH: "No such process", the kernel's answer for a route that is already gone (an
/// interface going down takes its routes with it).
const ESRCH: i32 = 3;

/// A link end on this host: the interface in `node`'s namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    pub link: LinkId,
    pub node: NodeIdx,
    pub peer: NodeIdx,
    pub ifindex: u32,
    pub name: String,
}

/// Every link end on this host.
#[derive(Clone, Debug, Default)]
pub struct Wiring {
    ends: HashMap<LinkId, Vec<End>>,
}

impl Wiring {
    pub fn add(&mut self, end: End) {
        self.ends.entry(end.link).or_default().push(end);
    }

    pub fn ends(&self) -> impl Iterator<Item = &End> {
        self.ends.values().flatten()
    }

    /// `node`'s end of `link`, if it is on this host.
    pub fn end_of(&self, link: LinkId, node: NodeIdx) -> Option<&End> {
        self.ends.get(&link)?.iter().find(|e| e.node == node)
    }

    pub fn links(&self) -> usize {
        self.ends.len()
    }

    /// Rebuilds the wiring from what the kernel holds: every interface whose alias names
    /// this constellation (`naming::alias`).
    pub fn discover(plan: &Plan, conns: &mut HashMap<NodeIdx, Conn>) -> Result<Self, NlError> {
        let mut wiring = Wiring::default();
        for (&node, conn) in conns.iter_mut() {
            for iface in link::list(conn)? {
                let Some(alias) = iface.alias.as_deref().and_then(naming::parse_alias) else { continue };
                let Some(peer) = plan.node_index(&alias.peer) else { continue };
                if alias.constellation == plan.name && alias.link == plan.link_id(node, peer) {
                    wiring.add(End { link: alias.link, node, peer, ifindex: iface.index, name: iface.name });
                }
            }
        }
        Ok(wiring)
    }
}

/// The state of one link end as applied (or wanted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndState {
    pub up: bool,
    /// `None`: no netem known (never set, or not wanted changed).
    pub netem: Option<Netem>,
}

/// What every local end and every local node's routes should be at one tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Target {
    /// (node, ifindex) -> (link, state). Ends of links the model does not list this tick
    /// (ground links not chosen) are down, their netem left as it is.
    pub ends: BTreeMap<(NodeIdx, u32), (LinkId, EndState)>,
    /// node -> destination address -> route, for local nodes.
    pub routes: BTreeMap<NodeIdx, BTreeMap<Ipv4Addr, Route>>,
    /// (node, next hop) pairs the routes need but no local interface joins.
    pub unwired: Vec<(NodeIdx, NodeIdx)>,
}

/// The target for the local ends and nodes (`is_local`) of `state`.
pub fn target(plan: &Plan, state: &State, wiring: &Wiring, is_local: impl Fn(NodeIdx) -> bool) -> Target {
    let mut t = Target::default();
    let mut listed = std::collections::HashSet::new();
    for l in &state.links {
        let Some(ends) = wiring.ends.get(&l.id) else { continue };
        listed.insert(l.id);
        let netem = Netem::for_link(l);
        for e in ends {
            t.ends.insert((e.node, e.ifindex), (l.id, EndState { up: l.up, netem: Some(netem) }));
        }
    }
    for e in wiring.ends().filter(|e| !listed.contains(&e.link)) {
        t.ends.insert((e.node, e.ifindex), (e.link, EndState { up: false, netem: None }));
    }
    let Some(routes) = &state.routes else { return t };
    for node in (0..plan.nodes.len() as NodeIdx).filter(|&n| is_local(n)) {
        let mut table = BTreeMap::new();
        for &dest in routes.destinations.iter().filter(|&&d| d != node) {
            let Some(hop) = routes.next_hop(node, dest) else { continue };
            let link = plan.link_id(node, hop);
            let (Some(end), Some(gateway)) = (wiring.end_of(link, node), plan.link_end_address(hop, node))
            else {
                t.unwired.push((node, hop));
                continue;
            };
            let destination = plan.node_address(dest);
            table.insert(
                destination,
                Route { destination, gateway, ifindex: end.ifindex, source: Some(plan.node_address(node)) },
            );
        }
        t.routes.insert(node, table);
    }
    t.unwired.sort_unstable();
    t.unwired.dedup();
    t
}

/// What was applied last: the dataplane's memory between ticks (rebuilt from the kernel
/// after a restart by `Applier::read_back`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub ends: HashMap<(NodeIdx, u32), EndState>,
    pub routes: HashMap<NodeIdx, HashMap<Ipv4Addr, Route>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Netem { ifindex: u32, link: LinkId, netem: Netem },
    SetUp { ifindex: u32, link: LinkId, up: bool },
    ReplaceRoute(Route),
    DeleteRoute(Ipv4Addr),
}

/// The operations that turn `applied` into `target`, per node, in a safe order: netem
/// before a link comes up, links up before routes use them, routes moved before links go
/// down. Nothing for what is already right.
pub fn diff(applied: &Applied, target: &Target) -> BTreeMap<NodeIdx, Vec<Op>> {
    /// One node's operations, by phase; concatenated in this order.
    #[derive(Default)]
    struct Phases {
        netem: Vec<Op>,
        up: Vec<Op>,
        replace: Vec<Op>,
        delete: Vec<Op>,
        down: Vec<Op>,
    }
    let mut out: BTreeMap<NodeIdx, Phases> = BTreeMap::new();
    for (&(node, ifindex), &(link, want)) in &target.ends {
        let have = applied.ends.get(&(node, ifindex));
        let ops = out.entry(node).or_default();
        if let Some(netem) = want.netem
            && have.and_then(|h| h.netem) != Some(netem)
        {
            ops.netem.push(Op::Netem { ifindex, link, netem });
        }
        if have.map(|h| h.up) != Some(want.up) {
            let op = Op::SetUp { ifindex, link, up: want.up };
            if want.up { ops.up.push(op) } else { ops.down.push(op) }
        }
    }
    let empty = HashMap::new();
    for (&node, table) in &target.routes {
        let have = applied.routes.get(&node).unwrap_or(&empty);
        let ops = out.entry(node).or_default();
        for (dest, route) in table {
            if have.get(dest) != Some(route) {
                ops.replace.push(Op::ReplaceRoute(*route));
            }
        }
        let mut gone: Vec<Ipv4Addr> = have.keys().filter(|d| !table.contains_key(d)).copied().collect();
        gone.sort_unstable();
        ops.delete.extend(gone.into_iter().map(Op::DeleteRoute));
    }
    // A node whose routes are no longer wanted at all (routing turned off) loses them.
    for (&node, have) in applied.routes.iter().filter(|(n, _)| !target.routes.contains_key(n)) {
        let mut gone: Vec<Ipv4Addr> = have.keys().copied().collect();
        gone.sort_unstable();
        out.entry(node).or_default().delete.extend(gone.into_iter().map(Op::DeleteRoute));
    }
    out.into_iter()
        .map(|(node, p)| (node, [p.netem, p.up, p.replace, p.delete, p.down].concat()))
        .filter(|(_, ops)| !ops.is_empty())
        .collect()
}

/// One failed operation.
#[derive(Debug)]
pub struct ApplyError {
    pub node: NodeIdx,
    pub link: Option<LinkId>,
    pub error: NlError,
}

/// What one apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub netem_changes: usize,
    pub links_up: usize,
    pub links_down: usize,
    pub routes_replaced: usize,
    pub routes_deleted: usize,
    pub failed: Vec<ApplyError>,
    /// Next hops the routes needed over links not built here.
    pub unwired: Vec<(NodeIdx, NodeIdx)>,
    pub elapsed: Duration,
}

impl ApplyReport {
    /// Successful kernel operations.
    pub fn operations(&self) -> usize {
        self.netem_changes + self.links_up + self.links_down + self.routes_replaced + self.routes_deleted
    }
}

/// Applies states to the namespaces of the local nodes.
pub struct Applier {
    pub conns: HashMap<NodeIdx, Conn>,
    pub wiring: Wiring,
    pub applied: Applied,
}

impl Applier {
    pub fn new(conns: HashMap<NodeIdx, Conn>, wiring: Wiring) -> Self {
        Self { conns, wiring, applied: Applied::default() }
    }

    /// Brings the kernel to `state`, issuing only what differs from the last apply.
    pub fn apply(&mut self, plan: &Plan, state: &State) -> ApplyReport {
        let target = target(plan, state, &self.wiring, |n| self.conns.contains_key(&n));
        self.apply_target(&target)
    }

    pub fn apply_target(&mut self, target: &Target) -> ApplyReport {
        let started = Instant::now();
        let mut report = ApplyReport { unwired: target.unwired.clone(), ..ApplyReport::default() };
        for (node, ops) in diff(&self.applied, target) {
            let Some(conn) = self.conns.get_mut(&node) else { continue };
            // Requests that cannot even be encoded fail here; the rest go out in one batch.
            let built: Vec<Result<Request, NlError>> =
                ops.iter().map(|op| request(conn.netns(), op)).collect();
            let valid: Vec<Request> = built.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
            let mut sent = conn.batch(valid).into_iter();
            let results = built.into_iter().map(|b| match b {
                Ok(_) => sent.next().unwrap_or(Ok(())),
                Err(e) => Err(e),
            });
            for (op, result) in ops.iter().zip(results) {
                match (op, result) {
                    (Op::DeleteRoute(_), Err(e)) if e.errno() == Some(ESRCH) => {
                        self.record(node, op, &mut report);
                    }
                    (_, Ok(())) => self.record(node, op, &mut report),
                    (_, Err(error)) => {
                        let link = match op {
                            Op::Netem { link, ifindex, .. } | Op::SetUp { link, ifindex, .. } => {
                                // Unknown now: forget it, so the next apply sets it again.
                                self.applied.ends.remove(&(node, *ifindex));
                                Some(*link)
                            }
                            Op::ReplaceRoute(r) => {
                                self.applied.routes.entry(node).or_default().remove(&r.destination);
                                None
                            }
                            Op::DeleteRoute(_) => None,
                        };
                        report.failed.push(ApplyError { node, link, error });
                    }
                }
            }
        }
        report.elapsed = started.elapsed();
        report
    }

    fn record(&mut self, node: NodeIdx, op: &Op, report: &mut ApplyReport) {
        match op {
            Op::Netem { ifindex, netem, .. } => {
                let e =
                    self.applied.ends.entry((node, *ifindex)).or_insert(EndState { up: false, netem: None });
                e.netem = Some(*netem);
                // A fresh entry's `up` is a guess until its SetUp (same batch) lands.
                report.netem_changes += 1;
            }
            Op::SetUp { ifindex, up, .. } => {
                let e =
                    self.applied.ends.entry((node, *ifindex)).or_insert(EndState { up: *up, netem: None });
                e.up = *up;
                if *up { report.links_up += 1 } else { report.links_down += 1 }
            }
            Op::ReplaceRoute(r) => {
                self.applied.routes.entry(node).or_default().insert(r.destination, *r);
                report.routes_replaced += 1;
            }
            Op::DeleteRoute(d) => {
                self.applied.routes.entry(node).or_default().remove(d);
                report.routes_deleted += 1;
            }
        }
    }

    /// Replaces the memory of what was applied with what the kernel holds now (after a
    /// restart, or to check): interface flags, root netems and orbitnet's routes.
    pub fn read_back(&mut self) -> Result<(), NlError> {
        let mut applied = Applied::default();
        for (&node, conn) in self.conns.iter_mut() {
            let netems: HashMap<u32, Netem> = netem::list(conn)?.into_iter().collect();
            for iface in link::list(conn)? {
                let wired = self.wiring.ends().any(|e| e.node == node && e.ifindex == iface.index);
                if wired {
                    applied.ends.insert(
                        (node, iface.index),
                        EndState { up: iface.up, netem: netems.get(&iface.index).copied() },
                    );
                }
            }
            let routes = route::list(conn)?;
            applied.routes.insert(node, routes.into_iter().map(|r| (r.destination, r)).collect());
        }
        self.applied = applied;
        Ok(())
    }
}

fn request(netns: &str, op: &Op) -> Result<Request, NlError> {
    Ok(match op {
        Op::Netem { ifindex, link, netem } => {
            let what = format!("netem of link {link} (interface {ifindex})");
            netem::replace(what.clone(), *ifindex, netem).map_err(|e| NlError::Invalid {
                what,
                netns: netns.to_owned(),
                message: e.to_string(),
            })?
        }
        Op::SetUp { ifindex, link, up } => link::set_up(
            format!("setting link {link} (interface {ifindex}) {}", if *up { "up" } else { "down" }),
            *ifindex,
            *up,
        ),
        Op::ReplaceRoute(r) => route::replace(format!("route to {} via {}", r.destination, r.gateway), r),
        Op::DeleteRoute(d) => route::delete(format!("deleting route to {d}"), *d),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netem(delay_ms: u64) -> Netem {
        Netem { delay_ns: delay_ms * 1_000_000, limit_packets: 1000, ..Netem::default() }
    }

    fn route(dest: u8, via: u8, ifindex: u32) -> Route {
        Route {
            destination: Ipv4Addr::new(10, 0, 0, dest),
            gateway: Ipv4Addr::new(10, 1, 0, via),
            ifindex,
            source: None,
        }
    }

    fn target_of(ends: &[(u32, u32, bool, Option<u64>)], routes: &[(u32, Route)]) -> Target {
        let mut t = Target::default();
        for &(node, ifindex, up, delay) in ends {
            t.ends.insert(
                (node, ifindex),
                (LinkId(u64::from(ifindex)), EndState { up, netem: delay.map(netem) }),
            );
        }
        for &(node, r) in routes {
            t.routes.entry(node).or_default().insert(r.destination, r);
        }
        t
    }

    fn applied_after(target: &Target) -> Applied {
        let mut a = Applied::default();
        for (&key, &(_, s)) in &target.ends {
            a.ends.insert(key, s);
        }
        for (&node, table) in &target.routes {
            a.routes.insert(node, table.iter().map(|(d, r)| (*d, *r)).collect());
        }
        a
    }

    #[test]
    fn a_first_apply_sets_everything_in_a_safe_order() {
        let t = target_of(&[(0, 5, true, Some(10)), (0, 6, false, Some(20))], &[(0, route(9, 1, 5))]);
        let ops = diff(&Applied::default(), &t);
        let kinds: Vec<&str> = ops[&0]
            .iter()
            .map(|op| match op {
                Op::Netem { .. } => "netem",
                Op::SetUp { up: true, .. } => "up",
                Op::SetUp { up: false, .. } => "down",
                Op::ReplaceRoute(_) => "route",
                Op::DeleteRoute(_) => "delete",
            })
            .collect();
        assert_eq!(kinds, vec!["netem", "netem", "up", "route", "down"]);
    }

    #[test]
    fn nothing_changed_means_no_operations() {
        let t = target_of(&[(0, 5, true, Some(10)), (1, 7, true, Some(10))], &[(0, route(9, 1, 5))]);
        assert!(diff(&applied_after(&t), &t).is_empty());
    }

    #[test]
    fn only_what_changed_is_sent() {
        let before = target_of(
            &[(0, 5, true, Some(10)), (0, 6, true, Some(10))],
            &[(0, route(9, 1, 5)), (0, route(8, 1, 5))],
        );
        let after = target_of(&[(0, 5, true, Some(11)), (0, 6, false, Some(10))], &[(0, route(9, 2, 6))]);
        let ops = diff(&applied_after(&before), &after);
        assert_eq!(
            ops[&0],
            vec![
                Op::Netem { ifindex: 5, link: LinkId(5), netem: netem(11) },
                Op::ReplaceRoute(route(9, 2, 6)),
                Op::DeleteRoute(Ipv4Addr::new(10, 0, 0, 8)),
                Op::SetUp { ifindex: 6, link: LinkId(6), up: false },
            ]
        );
    }

    #[test]
    fn an_unlisted_link_goes_down_without_touching_its_netem() {
        let before = target_of(&[(0, 5, true, Some(10))], &[]);
        let after = target_of(&[(0, 5, false, None)], &[]);
        assert_eq!(
            diff(&applied_after(&before), &after)[&0],
            vec![Op::SetUp { ifindex: 5, link: LinkId(5), up: false }]
        );
    }

    #[test]
    fn routes_of_a_node_no_longer_routed_are_deleted() {
        let before = target_of(&[], &[(3, route(9, 1, 5))]);
        let ops = diff(&applied_after(&before), &Target::default());
        assert_eq!(ops[&3], vec![Op::DeleteRoute(Ipv4Addr::new(10, 0, 0, 9))]);
    }
}
