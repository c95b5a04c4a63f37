//! The mission's flows, sent and measured inside the nodes' namespaces whatever the nodes
//! run: one thread sends every flow whose source is on this host at its rate, one thread
//! receives every flow whose destination is. Each datagram carries its flow, sequence
//! number, the tick it was sent in, its emulation send time and its wall-clock send time;
//! the receiver takes the kernel's receive timestamp (SO_TIMESTAMPNS), so a busy process
//! does not add to the delay it measures. Datagrams are counted in the tick they were sent
//! in, beside that tick's model (`Engine::apply` fills it), and a tick's counts are handed
//! on once no datagram of it can still be in flight.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use orbitnet_dataplane::netns::Netns;
use orbitnet_mission::{Arrival, FlowSeries, FlowTick, ModelTick, Receiver};
use orbitnet_model::mission::{FLOW_PORT_BASE, FlowDef};
use orbitnet_model::{NodeIdx, Plan, SimTime};

use crate::clock::Clock;

const MAGIC: u32 = 0x4f52_4246; // "ORBF"
/// Bytes of the header every datagram starts with.
pub const HEADER_BYTES: usize = 48;
/// A datagram still in flight this long after it was sent counts as lost.
pub const IN_FLIGHT: Duration = Duration::from_secs(2);

/// What a datagram says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) flow: u16,
    pub(crate) seq: u64,
    pub(crate) k: i64,
    pub(crate) sent_t_ns: i64,
    pub(crate) sent_wall_ns: i64,
    /// The sequence number of the first datagram of tick `k`: a receiver on another host
    /// learns from it how many were sent in each tick.
    pub(crate) tick_first_seq: u64,
}

impl Header {
    pub(crate) fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        buf[4..6].copy_from_slice(&self.flow.to_le_bytes());
        buf[6..8].copy_from_slice(&[0, 0]);
        buf[8..16].copy_from_slice(&self.seq.to_le_bytes());
        buf[16..24].copy_from_slice(&self.k.to_le_bytes());
        buf[24..32].copy_from_slice(&self.sent_t_ns.to_le_bytes());
        buf[32..40].copy_from_slice(&self.sent_wall_ns.to_le_bytes());
        buf[40..48].copy_from_slice(&self.tick_first_seq.to_le_bytes());
    }

    pub(crate) fn read(buf: &[u8]) -> Option<Self> {
        let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
        if buf.len() < HEADER_BYTES || u32::from_le_bytes(buf[0..4].try_into().ok()?) != MAGIC {
            return None;
        }
        Some(Self {
            flow: u16::from_le_bytes([buf[4], buf[5]]),
            seq: u64_at(8),
            k: u64_at(16) as i64,
            sent_t_ns: u64_at(24) as i64,
            sent_wall_ns: u64_at(32) as i64,
            tick_first_seq: u64_at(40),
        })
    }
}

pub fn wall_ns() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// What both threads and the engine share.
struct Shared {
    stop: AtomicBool,
    /// The tick applied last (`i64::MIN` before the first).
    applied: AtomicI64,
    /// Per flow: what the sender counted, what the receiver counted.
    sent: Mutex<Vec<FlowSeries>>,
    received: Mutex<Vec<FlowSeries>>,
    /// The model's prediction per flow and tick, filled by the engine as it applies.
    model: Mutex<Vec<BTreeMap<i64, ModelTick>>>,
    /// Errors of the threads (a socket that failed), said once each.
    errors: Mutex<Vec<String>>,
}

/// The flows of one host, running.
pub struct Traffic {
    flows: Vec<FlowDef>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    clock: Clock,
    /// Ticks handed on so far: every tick below this one.
    settled: i64,
    /// Flows with an end here.
    local: Vec<usize>,
}

/// A flow end that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("flow {flow:?}: cannot open its {end} socket in {node}: {error}")]
pub struct FlowError {
    pub flow: String,
    pub end: &'static str,
    pub node: String,
    pub error: io::Error,
}

impl Traffic {
    /// Opens the sockets of the flows with an end among the nodes `namespace` gives (the
    /// nodes of this host) and starts sending and receiving; `clock` tells emulation time.
    pub fn start(
        plan: &Plan,
        namespace: &dyn Fn(NodeIdx) -> Option<Netns>,
        clock: Clock,
    ) -> Result<Self, FlowError> {
        let flows = plan.flows.clone();
        let n = flows.len();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            applied: AtomicI64::new(i64::MIN),
            sent: Mutex::new(vec![FlowSeries::default(); n]),
            received: Mutex::new(vec![FlowSeries::default(); n]),
            model: Mutex::new(vec![BTreeMap::new(); n]),
            errors: Mutex::new(Vec::new()),
        });
        /// `f` run in `node`'s namespace, its error said as the flow's.
        fn open<T>(
            plan: &Plan,
            namespace: &dyn Fn(NodeIdx) -> Option<Netns>,
            (flow, end, node): (&FlowDef, &'static str, NodeIdx),
            f: &dyn Fn() -> io::Result<T>,
        ) -> Result<T, FlowError> {
            let error =
                |error| FlowError { flow: flow.name.clone(), end, node: plan.node(node).name.clone(), error };
            let ns =
                namespace(node).ok_or_else(|| error(io::Error::other("the node is not on this host")))?;
            ns.enter(f).map_err(|e| error(io::Error::other(e.to_string())))?.map_err(error)
        }
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        let mut local = Vec::new();
        for (i, flow) in flows.iter().enumerate() {
            let port = FLOW_PORT_BASE + i as u16;
            let (from, to) = (plan.node_address(flow.from), plan.node_address(flow.to));
            let mut here = false;
            if namespace(flow.to).is_some() {
                let socket =
                    open(plan, namespace, (flow, "receiving", flow.to), &|| receiving_socket(to, port))?;
                receivers.push((i, socket));
                here = true;
            }
            if namespace(flow.from).is_some() {
                let socket = open(plan, namespace, (flow, "sending", flow.from), &|| {
                    sending_socket(from, to, port, flow.dscp)
                })?;
                senders.push((i, socket));
                here = true;
            }
            if here {
                local.push(i);
            }
        }
        let mut threads = Vec::new();
        if !senders.is_empty() {
            let (shared, flows, tick) = (Arc::clone(&shared), flows.clone(), plan.tick);
            threads.push(
                std::thread::Builder::new()
                    .name("flows-send".into())
                    .spawn(move || send_loop(&shared, &flows, senders, clock, tick))
                    .expect("spawning a thread"),
            );
        }
        if !receivers.is_empty() {
            let (shared, tick) = (Arc::clone(&shared), plan.tick);
            threads.push(
                std::thread::Builder::new()
                    .name("flows-receive".into())
                    .spawn(move || receive_loop(&shared, receivers, tick))
                    .expect("spawning a thread"),
            );
        }
        Ok(Self { flows, shared, threads, clock, settled: i64::MIN, local })
    }

    /// Tick `k` is applied, with the model's `state`: datagrams sent from now on carry `k`.
    pub fn applied(&mut self, plan: &Plan, state: &orbitnet_model::State, k: i64) {
        let mut predictor = orbitnet_mission::Predictor::new(plan, state);
        {
            let mut model = self.shared.model.lock().expect("no thread panics holding it");
            for &i in &self.local {
                model[i].insert(k, predictor.flow(&self.flows[i]));
            }
        }
        self.shared.applied.store(k, Ordering::Release);
        if self.settled == i64::MIN {
            self.settled = k;
        }
    }

    /// Ticks whose datagrams can no longer be in flight at tick `now`: (flow, tick) in
    /// order, each once.
    pub fn settle(&mut self, now: i64) -> Vec<(usize, FlowTick)> {
        let due = self.clock.due(now);
        let mut upto = self.settled;
        while upto < now && due.saturating_duration_since(self.clock.due(upto + 1)) >= IN_FLIGHT {
            upto += 1;
        }
        if upto <= self.settled {
            return Vec::new();
        }
        let out = self.ticks(self.settled, upto);
        self.settled = upto;
        out
    }

    /// Every flow's ticks in `from..to` with something in them: sender and receiver counts
    /// merged, the model beside them.
    fn ticks(&self, from: i64, to: i64) -> Vec<(usize, FlowTick)> {
        let sent = self.shared.sent.lock().expect("no thread panics holding it");
        let received = self.shared.received.lock().expect("no thread panics holding it");
        let model = self.shared.model.lock().expect("no thread panics holding it");
        let mut out = Vec::new();
        for &i in &self.local {
            for k in from..to {
                let (s, r) = (sent[i].ticks.get(&k), received[i].ticks.get(&k));
                let mut tick = match (s, r) {
                    (Some(s), _) => s.clone(),
                    (None, Some(r)) => FlowTick::new(k, r.t),
                    (None, None) => continue,
                };
                if let Some(r) = r {
                    tick.merge(r);
                }
                if let Some(m) = model[i].get(&k) {
                    tick.model = *m;
                }
                out.push((i, tick));
            }
        }
        out
    }

    /// Problems the threads met since the last call.
    pub fn errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.errors.lock().expect("no thread panics holding it"))
    }

    /// Everything measured so far per flow (sender and receiver counts merged, the model
    /// beside each tick); flows without an end here stay empty.
    pub fn snapshot(&self) -> Vec<FlowSeries> {
        let sent = self.shared.sent.lock().expect("no thread panics holding it");
        let received = self.shared.received.lock().expect("no thread panics holding it");
        let model = self.shared.model.lock().expect("no thread panics holding it");
        (0..self.flows.len())
            .map(|i| {
                let mut s = sent[i].clone();
                s.merge(&received[i]);
                for (k, m) in &model[i] {
                    if let Some(t) = s.ticks.get_mut(k) {
                        t.model = *m;
                    }
                }
                s
            })
            .collect()
    }

    /// Stops sending, waits for what is in flight (`wait`; not needed when what was sent
    /// in the last `IN_FLIGHT` does not count), stops receiving; returns everything
    /// measured per flow (flows without an end here stay empty).
    pub fn finish(mut self, wait: bool) -> Vec<FlowSeries> {
        self.shared.applied.store(i64::MIN, Ordering::Release);
        if wait {
            std::thread::sleep(IN_FLIGHT);
        }
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.snapshot()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub(crate) fn receiving_socket(addr: Ipv4Addr, port: u16) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddrV4::new(addr, port))?;
    socket.set_nonblocking(true)?;
    let fd = socket.as_raw_fd();
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    // Room for a second of a fast flow while the thread waits for a core.
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
    Ok(socket)
}

/// A flow's sending end: a socket bound to the node's address, and where to.
pub(crate) struct Sender {
    socket: UdpSocket,
    to: SocketAddrV4,
}

impl Sender {
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send_to(buf, self.to)
    }
}

/// Not connected: connecting looks the route up, and a node whose routing daemons have not
/// converged yet has none; each datagram sent without a route is a loss, not an error.
pub(crate) fn sending_socket(from: Ipv4Addr, to: Ipv4Addr, port: u16, dscp: u8) -> io::Result<Sender> {
    let socket = UdpSocket::bind(SocketAddrV4::new(from, 0))?;
    socket.set_nonblocking(true)?;
    if dscp > 0 {
        setsockopt(socket.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, i32::from(dscp) << 2)?;
    }
    Ok(Sender { socket, to: SocketAddrV4::new(to, port) })
}

fn setsockopt(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a valid fd, and a pointer to an int of the size given.
    let rc = unsafe {
        libc::setsockopt(fd, level, name, (&raw const value).cast(), size_of::<i32>() as libc::socklen_t)
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Datagrams a flow sends at once when the thread falls behind; beyond that the backlog
/// is dropped (and not counted as sent).
const MAX_BURST: u32 = 64;

fn send_loop(
    shared: &Shared,
    flows: &[FlowDef],
    sockets: Vec<(usize, Sender)>,
    clock: Clock,
    tick: orbitnet_model::SpecDuration,
) {
    struct Sending {
        flow: usize,
        socket: Sender,
        interval: Duration,
        next: Instant,
        seq: u64,
        /// The tick of the last datagram, and the sequence number its tick began with.
        tick: (i64, u64),
        buf: Vec<u8>,
        failed: bool,
    }
    let now = Instant::now();
    let mut sending: Vec<Sending> = sockets
        .into_iter()
        .map(|(flow, socket)| Sending {
            flow,
            socket,
            interval: Duration::from_secs_f64(1.0 / flows[flow].packets_per_second),
            next: now,
            seq: 0,
            tick: (i64::MIN, 0),
            buf: vec![0u8; flows[flow].size_bytes as usize],
            failed: false,
        })
        .collect();
    let tick_ns = i64::try_from(tick.as_nanos()).unwrap_or(i64::MAX).max(1);
    let mut counted: Vec<(usize, i64, f64)> = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        let Some(next) = sending.iter().map(|s| s.next).min() else { return };
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait.min(Duration::from_millis(50)));
            continue;
        }
        let k = shared.applied.load(Ordering::Acquire);
        let now = Instant::now();
        let t = clock.now();
        for s in sending.iter_mut().filter(|s| s.next <= now) {
            let mut burst = 0;
            while s.next <= now && burst < MAX_BURST {
                s.next += s.interval;
                burst += 1;
                if k == i64::MIN || !flows[s.flow].active_at(t) {
                    continue;
                }
                if s.tick.0 != k {
                    s.tick = (k, s.seq);
                }
                let header = Header {
                    flow: s.flow as u16,
                    seq: s.seq,
                    k,
                    sent_t_ns: t.as_nanos(),
                    sent_wall_ns: wall_ns(),
                    tick_first_seq: s.tick.1,
                };
                header.write(&mut s.buf);
                match s.socket.send(&s.buf) {
                    Ok(_) => {
                        s.seq += 1;
                        counted.push((s.flow, k, t.as_secs_f64()));
                    }
                    // No route (the path is down) or a full queue: the datagram is lost
                    // like one the network drops, and counted as sent.
                    Err(e) if is_network_loss(&e) => {
                        s.seq += 1;
                        counted.push((s.flow, k, t.as_secs_f64()));
                    }
                    Err(e) => {
                        if !s.failed {
                            s.failed = true;
                            let message = format!("flow {:?}: sending failed: {e}", flows[s.flow].name);
                            shared.errors.lock().expect("no thread panics holding it").push(message);
                        }
                    }
                }
            }
            if s.next <= now {
                s.next = now + s.interval;
            }
        }
        if !counted.is_empty() {
            let mut sent = shared.sent.lock().expect("no thread panics holding it");
            for (flow, k, t) in counted.drain(..) {
                sent[flow].sent(k, t, SimTime::from_nanos(k.saturating_mul(tick_ns)).as_secs_f64());
            }
        }
    }
}

/// Errors a send meets when the emulated network cannot carry the datagram.
fn is_network_loss(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ENOBUFS
                | libc::EAGAIN
                | libc::ECONNREFUSED
                | libc::EINVAL
        )
    )
}

fn receive_loop(shared: &Shared, sockets: Vec<(usize, UdpSocket)>, tick: orbitnet_model::SpecDuration) {
    let tick_ns = i64::try_from(tick.as_nanos()).unwrap_or(i64::MAX).max(1);
    let mut receivers: Vec<Receiver> = vec![Receiver::default(); sockets.len()];
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|(_, s)| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 })
        .collect();
    let mut buf = vec![0u8; 2048];
    let mut arrivals: Vec<(usize, usize, Arrival)> = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        // SAFETY: `fds` is a valid array of pollfd of the length given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if n <= 0 {
            continue;
        }
        for (j, pfd) in fds.iter_mut().enumerate() {
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            pfd.revents = 0;
            let flow = sockets[j].0;
            while let Some((len, rx_ns)) = recv_timestamped(pfd.fd, &mut buf) {
                let Some(h) = Header::read(&buf[..len]) else { continue };
                if usize::from(h.flow) != flow {
                    continue;
                }
                let tick_t = SimTime::from_nanos(h.k.saturating_mul(tick_ns)).as_secs_f64();
                arrivals.push((
                    j,
                    flow,
                    Arrival {
                        seq: h.seq,
                        tick_first_seq: h.tick_first_seq,
                        k: h.k,
                        tick_t,
                        sent_t: SimTime::from_nanos(h.sent_t_ns).as_secs_f64(),
                        delay_ns: rx_ns - h.sent_wall_ns,
                    },
                ));
            }
        }
        if !arrivals.is_empty() {
            let mut received = shared.received.lock().expect("no thread panics holding it");
            for (j, flow, a) in arrivals.drain(..) {
                receivers[j].arrived(&mut received[flow], a);
            }
        }
    }
}

/// One datagram and its kernel receive time (wall clock, ns; the time of the call if the
/// socket has no SO_TIMESTAMPNS), or `None` when none waits. The link agent's underlay
/// probe reads its echo replies with it too.
pub fn recv_timestamped(fd: i32, buf: &mut [u8]) -> Option<(usize, i64)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: zeroed msghdr is valid; fields set to live buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg points at valid buffers for the duration of the call.
    let len = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_DONTWAIT) };
    if len < 0 {
        return None;
    }
    let mut rx_ns = None;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                rx_ns = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Some((len as usize, rx_ns.unwrap_or_else(wall_ns)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_as_written() {
        let h = Header {
            flow: 7,
            seq: 1 << 40,
            k: -3,
            sent_t_ns: 123_456_789,
            sent_wall_ns: 1_800_000_000_000_000_000,
            tick_first_seq: (1 << 40) - 5,
        };
        let mut buf = [0u8; HEADER_BYTES];
        h.write(&mut buf);
        assert_eq!(Header::read(&buf), Some(h));
        buf[0] ^= 1;
        assert_eq!(Header::read(&buf), None, "another program's datagram is not a flow's");
        assert_eq!(Header::read(&buf[..10]), None);
    }
}
