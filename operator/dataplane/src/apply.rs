//! Applying the model's state: what every local link end and every local node's routes
//! should be, the difference from what was applied last (worked out without the kernel,
//! so it can be tested and measured alone: `Applier::pending`), and the requests that close
//! it, one batch per namespace. A failed request fails only its own link end or route, is
//! reported, and is retried next time.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use orbitnet_model::spec::Routing;
use orbitnet_model::{LinkId, LinkState, NodeIdx, Plan, Routes, State};
use rustc_hash::{FxHashMap, FxHashSet};

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

/// The netlink connections into the local nodes' namespaces.
pub type Conns = HashMap<NodeIdx, Conn>;

/// Every link end on this host, indexed by link and by (node, peer).
#[derive(Clone, Debug, Default)]
pub struct Wiring {
    ends: Vec<End>,
    by_link: FxHashMap<LinkId, Vec<usize>>,
    by_pair: FxHashMap<(NodeIdx, NodeIdx), usize>,
}

impl Wiring {
    pub fn add(&mut self, end: End) {
        let i = self.ends.len();
        self.by_link.entry(end.link).or_default().push(i);
        self.by_pair.insert((end.node, end.peer), i);
        self.ends.push(end);
    }

    pub fn ends(&self) -> impl Iterator<Item = &End> {
        self.ends.iter()
    }

    /// `node`'s end of `link`, if it is on this host.
    pub fn end_of(&self, link: LinkId, node: NodeIdx) -> Option<&End> {
        self.by_link.get(&link)?.iter().map(|&i| &self.ends[i]).find(|e| e.node == node)
    }

    /// `node`'s end of its link to `peer`, if it is on this host.
    pub fn end_between(&self, node: NodeIdx, peer: NodeIdx) -> Option<&End> {
        self.by_pair.get(&(node, peer)).map(|&i| &self.ends[i])
    }

    pub fn links(&self) -> usize {
        self.by_link.len()
    }

    /// The same wiring without `node`'s ends.
    pub fn without_node(&self, node: NodeIdx) -> Self {
        let mut kept = Wiring::default();
        for end in self.ends.iter().filter(|e| e.node != node) {
            kept.add(end.clone());
        }
        kept
    }

    /// Rebuilds the wiring from what the kernel holds: every interface whose alias names
    /// this constellation (`naming::alias`).
    pub fn discover(plan: &Plan, conns: &mut Conns) -> Result<Self, NlError> {
        let mut wiring = Wiring::default();
        for (&node, conn) in conns.iter_mut() {
            wiring.add_found(plan, node, &link::list(conn)?);
        }
        Ok(wiring)
    }

    /// Adds the ends among `ifaces` (listed in `node`'s namespace) whose alias names this
    /// constellation, for callers that list the interfaces for more than the wiring.
    pub fn add_found(&mut self, plan: &Plan, node: NodeIdx, ifaces: &[link::Interface]) {
        for iface in ifaces {
            let Some(alias) = iface.alias.as_deref().and_then(naming::parse_alias) else { continue };
            let Some(peer) = plan.node_index(&alias.peer) else { continue };
            if alias.constellation == plan.name && alias.link == plan.link_id(node, peer) {
                self.add(End {
                    link: alias.link,
                    node,
                    peer,
                    ifindex: iface.index,
                    name: iface.name.clone(),
                });
            }
        }
    }
}

/// The state of one link end as applied (or wanted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndState {
    pub up: bool,
    /// `None`: no netem known (never set, or not wanted changed).
    pub netem: Option<Netem>,
}

/// node -> destination address -> route.
pub type RouteTables = BTreeMap<NodeIdx, BTreeMap<Ipv4Addr, Route>>;

/// Each node's operations, in the order they are to be sent.
pub type OpsByNode = BTreeMap<NodeIdx, Vec<Op>>;

/// What to apply: a state's links and routes, the links as they are to be shaped (a runner
/// may adjust the model's delays, e.g. for the underlay between hosts).
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    pub links: &'a [LinkState],
    pub routes: Option<&'a Routes>,
}

impl<'a> From<&'a State> for Wanted<'a> {
    fn from(state: &'a State) -> Self {
        Self { links: &state.links, routes: state.routes.as_ref() }
    }
}

/// Calls `f` with every local end's wanted state: the model's for the links it lists, down
/// with netem unchanged for the others.
fn for_each_wanted_end(links: &[LinkState], wiring: &Wiring, mut f: impl FnMut(&End, EndState)) {
    let mut listed = vec![false; wiring.ends.len()];
    for l in links {
        let Some(indices) = wiring.by_link.get(&l.id) else { continue };
        let want = EndState { up: l.up, netem: Some(Netem::for_link(l)) };
        for &i in indices {
            listed[i] = true;
            f(&wiring.ends[i], want);
        }
    }
    for (e, _) in wiring.ends.iter().zip(&listed).filter(|(_, listed)| !**listed) {
        f(e, EndState { up: false, netem: None });
    }
}

/// The route `node` should have towards `dest`: `Ok(None)` if the model has none, `Err`
/// with the (node, next hop) pair if the link it needs is not wired here.
fn route_for(
    plan: &Plan,
    routes: &Routes,
    wiring: &Wiring,
    node: NodeIdx,
    dest: NodeIdx,
) -> Result<Option<Route>, (NodeIdx, NodeIdx)> {
    let Some(hop) = routes.next_hop(node, dest) else { return Ok(None) };
    let (Some(end), Some(gateway)) = (wiring.end_between(node, hop), plan.link_end_address(hop, node)) else {
        return Err((node, hop));
    };
    let destination = plan.node_address(dest);
    Ok(Some(Route { destination, gateway, ifindex: end.ifindex, source: Some(plan.node_address(node)) }))
}

/// Every local node's routes (`is_local`) in `state`, and the (node, next hop) pairs
/// whose link is not wired here.
fn target_routes(
    plan: &Plan,
    routes: Option<&Routes>,
    wiring: &Wiring,
    is_local: impl Fn(NodeIdx) -> bool,
) -> (RouteTables, Vec<(NodeIdx, NodeIdx)>) {
    let (mut tables, mut unwired) = (BTreeMap::new(), Vec::new());
    let Some(routes) = routes else { return (tables, unwired) };
    for node in (0..plan.nodes.len() as NodeIdx).filter(|&n| is_local(n)) {
        let mut table = BTreeMap::new();
        for &dest in routes.destinations.iter().filter(|&&d| d != node) {
            match route_for(plan, routes, wiring, node, dest) {
                Ok(Some(r)) => {
                    table.insert(r.destination, r);
                }
                Ok(None) => {}
                Err(pair) => unwired.push(pair),
            }
        }
        tables.insert(node, table);
    }
    unwired.sort_unstable();
    unwired.dedup();
    (tables, unwired)
}

/// What was applied last: the dataplane's memory between ticks (rebuilt from the kernel
/// after a restart by `Applier::read_back`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub ends: FxHashMap<(NodeIdx, u32), EndState>,
    pub routes: FxHashMap<NodeIdx, FxHashMap<Ipv4Addr, Route>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Netem {
        ifindex: u32,
        link: LinkId,
        netem: Netem,
    },
    SetUp {
        ifindex: u32,
        link: LinkId,
        up: bool,
    },
    /// An end's address set again as it comes up, when software in the nodes routes: the
    /// kernel announces it afresh, so a routing daemon that missed it when the end was
    /// built (FRR 8.4's zebra once went a whole minute without a new ground link's /31)
    /// learns it when it matters.
    Address {
        ifindex: u32,
        link: LinkId,
        address: Ipv4Addr,
    },
    ReplaceRoute(Route),
    DeleteRoute(Ipv4Addr),
}

/// One node's operations by phase, sent in this order: netem before a link comes up,
/// links up before routes use them, routes moved before links go down.
#[derive(Default)]
struct Phases {
    netem: Vec<Op>,
    up: Vec<Op>,
    replace: Vec<Op>,
    delete: Vec<Op>,
    down: Vec<Op>,
}

/// Operations by node, in a vector indexed by node (grown on demand).
#[derive(Default)]
struct Ops(Vec<Phases>);

impl Ops {
    fn of(&mut self, node: NodeIdx) -> &mut Phases {
        let i = node as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, Phases::default);
        }
        &mut self.0[i]
    }

    fn into_map(self) -> OpsByNode {
        self.0
            .into_iter()
            .enumerate()
            .map(|(node, p)| (node as NodeIdx, [p.netem, p.up, p.replace, p.delete, p.down].concat()))
            .filter(|(_, ops)| !ops.is_empty())
            .collect()
    }

    /// Operations for one end: a netem change unless the applied one is within
    /// `tolerance_ns`, and a state change if up/down differs (or is unknown).
    /// `address`: the end's, to announce again when it comes up (`None`: not announced).
    fn end(
        &mut self,
        applied: &Applied,
        e: (NodeIdx, u32, LinkId),
        want: EndState,
        tolerance_ns: u64,
        address: Option<Ipv4Addr>,
    ) {
        let (node, ifindex, link) = e;
        let have = applied.ends.get(&(node, ifindex));
        if let Some(netem) = want.netem
            && !have.and_then(|h| h.netem).is_some_and(|h| h.close_to(&netem, tolerance_ns))
        {
            self.of(node).netem.push(Op::Netem { ifindex, link, netem });
        }
        if have.map(|h| h.up) != Some(want.up) {
            let op = Op::SetUp { ifindex, link, up: want.up };
            let p = self.of(node);
            if want.up {
                p.up.push(op);
                p.up.extend(address.map(|address| Op::Address { ifindex, link, address }));
            } else {
                p.down.push(op);
            }
        }
    }

    /// The operation for one (node, destination address): `want` is the route the pair
    /// should have, or `None` for none.
    fn route(&mut self, applied: &Applied, node: NodeIdx, dest: Ipv4Addr, want: Option<Route>) {
        let have = applied.routes.get(&node).and_then(|t| t.get(&dest));
        match want {
            Some(r) if have != Some(&r) => self.of(node).replace.push(Op::ReplaceRoute(r)),
            None if have.is_some() => self.of(node).delete.push(Op::DeleteRoute(dest)),
            _ => {}
        }
    }

    /// Whole tables: every wanted route compared, and every applied route no longer wanted
    /// removed (all of a node's, if it is no longer routed at all).
    fn tables(&mut self, applied: &Applied, tables: &RouteTables) {
        let empty = BTreeMap::new();
        for (&node, table) in tables {
            for (&dest, route) in table {
                self.route(applied, node, dest, Some(*route));
            }
        }
        for (&node, have) in &applied.routes {
            let table = tables.get(&node).unwrap_or(&empty);
            let mut gone: Vec<Ipv4Addr> = have.keys().filter(|d| !table.contains_key(d)).copied().collect();
            gone.sort_unstable();
            self.of(node).delete.extend(gone.into_iter().map(Op::DeleteRoute));
        }
    }
}

/// A link's own netem tolerance: between half and all of `tolerance_ns`, fixed by its id,
/// so links drifting alike do not all cross their tolerance on the same tick.
fn tolerance_of(link: LinkId, tolerance_ns: u64) -> u64 {
    let half = tolerance_ns / 2;
    half + link.0 % (tolerance_ns - half + 1)
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
    /// Of `elapsed`, the time spent working out what to send (the rest is the kernel's).
    pub diff_elapsed: Duration,
}

impl ApplyReport {
    /// Successful kernel operations.
    pub fn operations(&self) -> usize {
        self.netem_changes + self.links_up + self.links_down + self.routes_replaced + self.routes_deleted
    }
}

/// Applies states to the namespaces of the local nodes.
pub struct Applier {
    conns: Conns,
    wiring: Wiring,
    applied: Applied,
    /// A netem is changed only when the wanted delay (or jitter) is further than this from
    /// the applied one (each link uses between half and all of it). Default 0 (exact).
    delay_tolerance_ns: u64,
    /// The nodes whose namespaces this applier serves (those of `conns`, unless detached).
    local: FxHashSet<NodeIdx>,
    /// The model's routes at the last apply: the next tick's route work is only where the
    /// next hops differ from these (168k routes for Starlink shell 1, a few hundred change).
    last_routes: Option<Routes>,
    /// (node, destination address) pairs whose last operation failed: looked at again.
    retry_routes: FxHashSet<(NodeIdx, Ipv4Addr)>,
}

impl Applier {
    pub fn new(conns: Conns, wiring: Wiring) -> Self {
        Self {
            local: conns.keys().copied().collect(),
            conns,
            wiring,
            applied: Applied::default(),
            delay_tolerance_ns: 0,
            last_routes: None,
            retry_routes: FxHashSet::default(),
        }
    }

    /// An applier for `local` nodes without kernel connections: it works out every tick's
    /// operations and records them as applied, sending nothing. For benchmarks and tests of
    /// the difference logic.
    pub fn detached(wiring: Wiring, local: impl IntoIterator<Item = NodeIdx>) -> Self {
        let mut a = Self::new(HashMap::new(), wiring);
        a.local = local.into_iter().collect();
        a
    }

    /// Changes a netem only when its delay moved further than `tolerance_ns` (see the field).
    pub fn with_delay_tolerance(mut self, tolerance_ns: u64) -> Self {
        self.delay_tolerance_ns = tolerance_ns;
        self
    }

    /// Serves one more node: its namespace's connection.
    pub fn attach(&mut self, node: NodeIdx, conn: Conn) {
        self.local.insert(node);
        self.conns.insert(node, conn);
    }

    /// Stops serving a node (its namespace is gone or going): its connection is returned,
    /// its ends and what was applied to them forgotten.
    pub fn detach(&mut self, node: NodeIdx) -> Option<Conn> {
        self.local.remove(&node);
        self.wiring = self.wiring.without_node(node);
        self.applied.ends.retain(|&(n, _), _| n != node);
        self.applied.routes.remove(&node);
        self.retry_routes.retain(|&(n, _)| n != node);
        self.conns.remove(&node)
    }

    /// Whether this applier serves `node`.
    pub fn serves(&self, node: NodeIdx) -> bool {
        self.local.contains(&node)
    }

    /// The local nodes' connections, for building and listing link ends.
    pub fn conns_mut(&mut self) -> &mut Conns {
        &mut self.conns
    }

    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// The connections and the wiring together, to read the kernels by link end.
    pub fn conns_and_wiring(&mut self) -> (&mut Conns, &Wiring) {
        (&mut self.conns, &self.wiring)
    }

    /// What was applied, as this applier remembers it.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// Whether `end` was last applied up.
    pub fn applied_up(&self, end: &End) -> bool {
        self.applied.ends.get(&(end.node, end.ifindex)).is_some_and(|s| s.up)
    }

    /// Adds newly built ends (down, no netem yet: the next apply sets them).
    pub fn add_ends(&mut self, built: &Wiring) {
        for end in built.ends() {
            self.wiring.add(end.clone());
        }
    }

    /// Replaces the wiring with what the kernel holds (found after a restart or a change
    /// of pods) and reads back what is applied to it.
    pub fn rewire(&mut self, wiring: Wiring) -> Result<(), NlError> {
        self.wiring = wiring;
        self.read_back()
    }

    /// Gives the connections back (closing them closes nothing else).
    pub fn into_conns(self) -> Conns {
        self.conns
    }

    /// The operations the next `apply` of `state` would send, by node, in order.
    pub fn pending<'a>(&self, plan: &Plan, want: impl Into<Wanted<'a>>) -> OpsByNode {
        self.plan_tick(plan, want.into()).0
    }

    /// The operations that bring the kernel from what was applied to `state`, and the next
    /// hops no local link serves. Sends nothing.
    fn plan_tick(&self, plan: &Plan, want: Wanted<'_>) -> (OpsByNode, Vec<(NodeIdx, NodeIdx)>) {
        let mut ops = Ops::default();
        let tolerance = self.delay_tolerance_ns;
        let announce = plan.routing != Routing::ShortestPath;
        for_each_wanted_end(want.links, &self.wiring, |e, end| {
            let address = if announce { plan.link_end_address(e.node, e.peer) } else { None };
            ops.end(
                &self.applied,
                (e.node, e.ifindex, e.link),
                end,
                tolerance_of(e.link, tolerance),
                address,
            );
        });
        let mut unwired = Vec::new();
        let changed = match (want.routes, &self.last_routes) {
            (Some(now), Some(before)) => now.changed_since(before),
            _ => None,
        };
        match (want.routes, changed) {
            (Some(routes), Some(changed)) => {
                let retry = self
                    .retry_routes
                    .iter()
                    .filter_map(|&(node, addr)| Some((node, plan.node_of_address(addr)?)));
                let mut pairs: Vec<(NodeIdx, NodeIdx)> = changed.into_iter().chain(retry).collect();
                pairs.sort_unstable();
                pairs.dedup();
                for (node, dest) in pairs.into_iter().filter(|(n, d)| n != d && self.local.contains(n)) {
                    let want = route_for(plan, routes, &self.wiring, node, dest).unwrap_or_else(|pair| {
                        unwired.push(pair);
                        None
                    });
                    ops.route(&self.applied, node, plan.node_address(dest), want);
                }
            }
            _ => {
                // No comparable previous routes: whole tables.
                let (tables, missing) =
                    target_routes(plan, want.routes, &self.wiring, |n| self.local.contains(&n));
                ops.tables(&self.applied, &tables);
                unwired = missing;
            }
        }
        unwired.sort_unstable();
        unwired.dedup();
        (ops.into_map(), unwired)
    }

    /// Brings the kernel to `state`, issuing only what differs from the last apply.
    pub fn apply<'a>(&mut self, plan: &Plan, want: impl Into<Wanted<'a>>) -> ApplyReport {
        let started = Instant::now();
        let want = want.into();
        let (ops, unwired) = self.plan_tick(plan, want);
        self.retry_routes.clear();
        self.last_routes = want.routes.cloned();
        let diff_elapsed = started.elapsed();
        let mut report = self.execute(ops);
        report.unwired = unwired;
        report.diff_elapsed = diff_elapsed;
        report.elapsed = started.elapsed();
        report
    }

    fn execute(&mut self, ops_by_node: OpsByNode) -> ApplyReport {
        let mut report = ApplyReport::default();
        let mut pending = ops_by_node;
        let mut work: Vec<(NodeIdx, Vec<Op>, &mut Conn)> =
            self.conns.iter_mut().filter_map(|(n, c)| pending.remove(n).map(|ops| (*n, ops, c))).collect();
        work.sort_unstable_by_key(|w| w.0);
        // One batch per namespace, one after the other: the kernel holds the RTNL lock for
        // each route and qdisc change, and sending from two threads measured no faster
        // (Starlink shell 1 in the VM, p50 122-126 ms on one thread, 126-133 ms on two).
        let sent: Vec<Sent> = work.into_iter().map(|(n, ops, c)| send(n, ops, c)).collect();
        // A detached applier has no kernel: what it would send counts as done.
        let detached = self.conns.is_empty();
        let simulated = pending.into_iter().filter(|_| detached).map(|(n, ops)| {
            let ok = ops.iter().map(|_| Ok(())).collect();
            (n, ops, ok)
        });
        for (node, ops, results) in sent.into_iter().chain(simulated) {
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
                            Op::Address { link, .. } => Some(*link),
                            Op::ReplaceRoute(r) => {
                                self.applied.routes.entry(node).or_default().remove(&r.destination);
                                self.retry_routes.insert((node, r.destination));
                                None
                            }
                            Op::DeleteRoute(d) => {
                                self.retry_routes.insert((node, *d));
                                None
                            }
                        };
                        report.failed.push(ApplyError { node, link, error });
                    }
                }
            }
        }
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
            Op::Address { .. } => {}
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
    /// restart, or to check): interface flags, root netems and orbitnet's routes. The next
    /// apply compares every route.
    pub fn read_back(&mut self) -> Result<(), NlError> {
        let mut applied = Applied::default();
        let wired: FxHashSet<(NodeIdx, u32)> = self.wiring.ends.iter().map(|e| (e.node, e.ifindex)).collect();
        for (&node, conn) in self.conns.iter_mut() {
            let netems: FxHashMap<u32, Netem> = netem::list(conn)?.into_iter().collect();
            for iface in link::list(conn)? {
                if wired.contains(&(node, iface.index)) {
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
        self.last_routes = None;
        self.retry_routes.clear();
        Ok(())
    }
}

/// A node's operations and each one's result.
type Sent = (NodeIdx, Vec<Op>, Vec<Result<(), NlError>>);

/// Sends one namespace's operations as one batch; requests that cannot even be encoded fail
/// here without being sent.
fn send(node: NodeIdx, ops: Vec<Op>, conn: &mut Conn) -> Sent {
    let built: Vec<Result<Request, NlError>> = ops.iter().map(|op| request(conn.netns(), op)).collect();
    let valid: Vec<Request> = built.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut sent = conn.batch(valid).into_iter();
    let results = built
        .into_iter()
        .map(|b| match b {
            Ok(_) => sent.next().unwrap_or(Ok(())),
            Err(e) => Err(e),
        })
        .collect();
    (node, ops, results)
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
        Op::Address { ifindex, link, address } => route::add_address(
            format!("address of link {link} (interface {ifindex}), again"),
            *ifindex,
            *address,
            31,
        ),
        Op::ReplaceRoute(r) => route::replace(format!("route to {} via {}", r.destination, r.gateway), r),
        Op::DeleteRoute(d) => route::delete(format!("deleting route to {d}"), *d),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitnet_model::SimTime;

    const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

    /// tiny.yaml with every grid link and every possible ground link wired (made-up
    /// interface indexes), a detached applier serving every node, and its state at 600 s.
    fn tiny() -> (Plan, Applier, State) {
        let plan = orbitnet_model::compile_yaml(TINY).unwrap();
        let mut pairs: Vec<(NodeIdx, NodeIdx)> = plan.isls.iter().map(|l| (l.a, l.b)).collect();
        for g in plan.ground_range() {
            pairs.extend((0..plan.n_sats as NodeIdx).map(|s| (g as NodeIdx, s)));
        }
        let mut wiring = Wiring::default();
        for (i, &(a, b)) in pairs.iter().enumerate() {
            for (k, (node, peer)) in [(a, b), (b, a)].into_iter().enumerate() {
                let ifindex = 10 + 2 * i as u32 + k as u32;
                wiring.add(End {
                    link: plan.link_id(a, b),
                    node,
                    peer,
                    ifindex,
                    name: format!("if{ifindex}"),
                });
            }
        }
        let applier = Applier::detached(wiring, 0..plan.nodes.len() as NodeIdx);
        let state = plan.state_at(SimTime::from_nanos(600_000_000_000));
        (plan, applier, state)
    }

    fn kind(op: &Op) -> &'static str {
        match op {
            Op::Netem { .. } => "netem",
            Op::SetUp { up: true, .. } => "up",
            Op::SetUp { up: false, .. } => "down",
            Op::Address { .. } => "address",
            Op::ReplaceRoute(_) => "route",
            Op::DeleteRoute(_) => "delete",
        }
    }

    #[test]
    fn a_first_apply_sets_everything_in_a_safe_order() {
        let (plan, applier, state) = tiny();
        let ops = applier.pending(&plan, &state);
        let alpha = plan.node_index("alpha").unwrap();
        let kinds: Vec<&str> = ops[&alpha].iter().map(kind).collect();
        // Netems before links come up, links up before routes use them, links down last.
        let rank = |k: &str| ["netem", "up", "route", "delete", "down"].iter().position(|r| *r == k).unwrap();
        assert!(kinds.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "{kinds:?}");
        for k in ["netem", "up", "route", "down"] {
            assert!(kinds.contains(&k), "alpha gets {k}: {kinds:?}");
        }
    }

    #[test]
    fn with_daemons_routing_an_end_coming_up_has_its_address_set_again() {
        let (plan, mut applier, state) = tiny();
        let addresses = |ops: &OpsByNode| ops.values().flatten().filter(|op| kind(op) == "address").count();
        assert_eq!(addresses(&applier.pending(&plan, &state)), 0, "shortestPath: orbitnet routes");
        let ospf =
            orbitnet_model::compile_yaml(&TINY.replace("routing: shortestPath", "routing: ospf")).unwrap();
        let ops = applier.pending(&ospf, &state);
        let mut ups = 0;
        for (&node, ops) in &ops {
            for (i, op) in ops.iter().enumerate() {
                let Op::SetUp { ifindex, link, up: true } = *op else { continue };
                ups += 1;
                let end = applier.wiring().ends().find(|e| (e.node, e.ifindex) == (node, ifindex)).unwrap();
                let address = ospf.link_end_address(node, end.peer).unwrap();
                assert_eq!(ops.get(i + 1), Some(&Op::Address { ifindex, link, address }), "after {op:?}");
            }
        }
        assert!(ups > 0 && addresses(&ops) == ups, "one address per end coming up: {ops:?}");
        // Once up, not again; down and up again, again.
        applier.apply(&ospf, &state);
        assert!(applier.pending(&ospf, &state).is_empty());
        let mut flapped = state.clone();
        let link = flapped.links.iter_mut().find(|l| l.up).unwrap();
        link.up = false;
        applier.apply(&ospf, &flapped);
        assert_eq!(addresses(&applier.pending(&ospf, &state)), 2, "both ends of the link back up");
    }

    #[test]
    fn nothing_changed_means_no_operations() {
        let (plan, mut applier, state) = tiny();
        let first = applier.apply(&plan, &state);
        assert!(first.operations() > 0 && first.failed.is_empty());
        assert!(applier.pending(&plan, &state).is_empty());
        assert_eq!(applier.apply(&plan, &state).operations(), 0);
    }

    #[test]
    fn only_what_changed_is_sent() {
        let (plan, mut applier, state) = tiny();
        applier.apply(&plan, &state);
        let mut changed = state.clone();
        let (slower, lost) = (changed.links[0].id, changed.links[1].id);
        changed.links[0].delay_ns += 1_000_000;
        changed.links[1].up = false;
        let ops: Vec<Op> = applier.pending(&plan, &changed).into_values().flatten().collect();
        assert_eq!(ops.len(), 4, "two netems and two ends down: {ops:?}");
        for op in &ops {
            match op {
                Op::Netem { link, netem, .. } => {
                    assert_eq!((*link, netem.delay_ns), (slower, changed.links[0].delay_ns));
                }
                Op::SetUp { link, up: false, .. } => assert_eq!(*link, lost),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_delay_within_the_tolerance_is_left_as_it_is() {
        let (plan, applier, state) = tiny();
        let mut applier = applier.with_delay_tolerance(10_000);
        applier.apply(&plan, &state);
        let mut drifted = state.clone();
        drifted.links[0].delay_ns += 4_000;
        assert!(applier.pending(&plan, &drifted).is_empty(), "4 us is within every link's 5-10 us");
        drifted.links[0].delay_ns += 7_000;
        assert_eq!(applier.pending(&plan, &drifted).into_values().flatten().count(), 2);
    }

    #[test]
    fn an_unlisted_link_goes_down_without_touching_its_netem() {
        let (plan, mut applier, state) = tiny();
        applier.apply(&plan, &state);
        let gsl = state.links.iter().position(|l| l.kind == orbitnet_model::LinkKind::Gsl && l.up).unwrap();
        let mut handed_over = state.clone();
        let gone = handed_over.links.remove(gsl);
        let ops: Vec<Op> = applier.pending(&plan, &handed_over).into_values().flatten().collect();
        let ends: Vec<&Op> =
            ops.iter().filter(|op| !matches!(op, Op::ReplaceRoute(_) | Op::DeleteRoute(_))).collect();
        assert_eq!(ends.len(), 2, "{ops:?}");
        assert!(ends.iter().all(|op| matches!(op, Op::SetUp { link, up: false, .. } if *link == gone.id)));
    }

    #[test]
    fn routes_of_a_node_no_longer_routed_are_deleted() {
        let (plan, mut applier, state) = tiny();
        applier.apply(&plan, &state);
        let routed = applier.applied().routes.values().map(|t| t.len()).sum::<usize>();
        assert!(routed > 0);
        let mut unrouted = state.clone();
        unrouted.routes = None;
        let ops: Vec<Op> = applier.pending(&plan, &unrouted).into_values().flatten().collect();
        assert_eq!(ops.len(), routed);
        assert!(ops.iter().all(|op| matches!(op, Op::DeleteRoute(_))));
    }

    #[test]
    fn a_detached_node_is_forgotten() {
        let (plan, mut applier, state) = tiny();
        applier.apply(&plan, &state);
        let alpha = plan.node_index("alpha").unwrap();
        applier.detach(alpha);
        assert!(applier.wiring().ends().all(|e| e.node != alpha));
        assert!(applier.applied().ends.keys().all(|&(n, _)| n != alpha));
        assert!(!applier.pending(&plan, &state).contains_key(&alpha));
    }
}
