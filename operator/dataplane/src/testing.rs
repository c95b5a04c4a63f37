//! Kernel-test support (feature `test-support`): a throwaway lab of namespaces named after
//! the test and this process, veth pairs between them, commands run inside them, ping and
//! the emulation's own per-hop cost; everything is removed on drop, also when a test fails.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::netem::{self, Netem};
use crate::{Conn, Netns, link};

/// Fails the test at once, naming what is missing, unless this process can run kernel tests.
pub fn require_kernel() {
    if !nix::unistd::geteuid().is_root() {
        panic!("kernel tests need root: run them with `make test-kernel` (which boots a VM where needed)");
    }
    if let Err(e) = crate::preflight::netem_available() {
        panic!("{e}");
    }
}

pub struct End {
    pub ns: Netns,
    pub name: String,
    pub ifindex: u32,
}

pub struct Lab {
    prefix: String,
    names: Vec<String>,
}

impl Lab {
    pub fn new(test: &str) -> Self {
        Self { prefix: format!("ot-{test}-{}", std::process::id()), names: Vec::new() }
    }

    /// A new namespace with its loopback up.
    pub fn netns(&mut self, suffix: &str) -> Netns {
        let name = format!("{}-{suffix}", self.prefix);
        let ns = Netns::create(&name).unwrap_or_else(|e| panic!("{e}"));
        self.names.push(name);
        let mut conn = Conn::open_in(&ns).unwrap();
        let lo = link::by_name(&mut conn, "lo").unwrap().unwrap();
        conn.execute(link::set_up("lo up", lo.index, true)).unwrap();
        ns
    }

    pub fn conn(&self, ns: &Netns) -> Conn {
        Conn::open_in(ns).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A veth between two new namespaces, both ends up, addressed 10.9.0.1/24 and .2/24.
    pub fn pair(&mut self) -> (End, End) {
        let (ns_a, ns_b) = (self.netns("a"), self.netns("b"));
        let (a, b) = self.veth(ns_a, "va", ns_b, "vb");
        self.address(&a, "10.9.0.1", 24);
        self.address(&b, "10.9.0.2", 24);
        (a, b)
    }

    /// A veth `name_a`~`name_b` between two namespaces, both ends up.
    pub fn veth(&mut self, ns_a: Netns, name_a: &str, ns_b: Netns, name_b: &str) -> (End, End) {
        let mut conn = self.conn(&ns_a);
        conn.execute(link::veth_pair(name_a, ns_a.as_fd(), name_b, ns_b.as_fd(), None, None))
            .unwrap_or_else(|e| panic!("{e}"));
        let end = |ns: Netns, name: &str| {
            let mut c = self.conn(&ns);
            let ifindex = link::by_name(&mut c, name).unwrap().unwrap_or_else(|| panic!("no {name}")).index;
            c.execute(link::set_up(format!("{name} up"), ifindex, true)).unwrap();
            End { ns, name: name.into(), ifindex }
        };
        (end(ns_a, name_a), end(ns_b, name_b))
    }

    pub fn address(&self, end: &End, addr: &str, prefix_len: u8) {
        let mut c = self.conn(&end.ns);
        c.execute(crate::route::add_address("address", end.ifindex, addr.parse().unwrap(), prefix_len))
            .unwrap();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = Netns::delete(name) {
                eprintln!("lab: cannot remove namespace {name}: {e}");
            }
        }
    }
}

/// Runs a command inside `ns` and returns its output.
pub fn run_in(ns: &Netns, program: &str, args: &[&str]) -> Output {
    let fd = ns.as_fd().try_clone_to_owned().unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: setns is async-signal-safe; the closure touches nothing but the fd.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `tc -d qdisc show dev <iface>` inside `ns`, as text.
pub fn tc_show(ns: &Netns, iface: &str) -> String {
    let out = run_in(ns, "tc", &["-d", "qdisc", "show", "dev", iface]);
    assert!(out.status.success(), "tc failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What `ping -q` says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ping {
    /// Minimum RTT, ms: the path's delay with scheduling jitter excluded.
    pub min: f64,
    pub avg: f64,
    pub loss_pct: f64,
}

/// `count` pings every `interval`, after two unmeasured pings that resolve every hop's
/// neighbour (ARP crosses the same delayed links and would add a round trip per hop to the
/// first ping).
pub fn ping(ns: &Netns, to: &str, count: u32, interval: &str) -> Ping {
    run_in(ns, "ping", &["-q", "-n", "-c", "2", "-i", "0.2", "-W", "5", to]);
    let out = run_in(ns, "ping", &["-q", "-n", "-c", &count.to_string(), "-i", interval, "-W", "2", to]);
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).unwrap_or_else(|| panic!("no loss in {text}"))
}

/// Reads ping's summary (iputils' `rtt min/avg/...` or busybox's `round-trip min/avg/max`);
/// `None` without a packet-loss figure. Without replies, the RTTs are NaN.
pub fn parse_ping(text: &str) -> Option<Ping> {
    let loss_pct = text
        .split([',', '\n'])
        .find_map(|p| p.trim().strip_suffix("% packet loss"))
        .and_then(|v| v.parse().ok())?;
    let rtt: Vec<f64> = text
        .lines()
        .find(|l| l.starts_with("rtt") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .map(|v| v.trim().split(['/', ' ']).filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    Some(Ping {
        min: rtt.first().copied().unwrap_or(f64::NAN),
        avg: rtt.get(1).copied().unwrap_or(f64::NAN),
        loss_pct,
    })
}

/// scenarios/tiny.yaml as shipped: its ground links lose ~0.011 % of the packets crossing
/// them (atmospheric loss, by design).
pub const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

/// tiny.yaml without its atmospheric loss, so that no link drops a packet at random: for
/// tests that count lost packets and name a cause for each. (With the shipped file, 100
/// pings across four ground-link traversals per round trip lose one in ~23 runs.)
pub fn tiny_without_random_loss() -> String {
    let (from, to) = ("hysteresisDeg: 2}", "hysteresisDeg: 2, atmosphericLossPct: 0}");
    assert!(TINY.contains(from), "tiny.yaml's groundLinks changed: update tiny_without_random_loss");
    let yaml = TINY.replacen(from, to, 1);
    let plan = orbitnet_model::compile_yaml(&yaml).unwrap();
    for t in [0, 450, 3_600] {
        let state = plan.state_at(orbitnet_model::SimTime::from_nanos(t * 1_000_000_000));
        assert!(state.links.iter().all(|l| l.loss_pct == 0.0), "tiny.yaml still loses packets at t = {t} s");
    }
    yaml
}

/// A netem of `delay_ms`, unlimited rate, the default queue.
pub fn delay_netem(delay_ms: u64) -> Netem {
    Netem { delay_ns: delay_ms * 1_000_000, limit_packets: netem::MIN_LIMIT_PACKETS, ..Netem::default() }
}

/// Pings across a fresh veth pair, unshaped and then with netems of `a_ms` and `b_ms`.
pub fn shaped_rtt(lab: &mut Lab, a_ms: u64, b_ms: u64) -> (Ping, Ping) {
    let (a, b) = lab.pair();
    let base = ping(&a.ns, "10.9.0.2", 20, "0.05");
    assert_eq!(base.loss_pct, 0.0);
    lab.conn(&a.ns).execute(netem::replace("a", a.ifindex, &delay_netem(a_ms)).unwrap()).unwrap();
    lab.conn(&b.ns).execute(netem::replace("b", b.ifindex, &delay_netem(b_ms)).unwrap()).unwrap();
    let shaped = ping(&a.ns, "10.9.0.2", 20, "0.05");
    assert_eq!(shaped.loss_pct, 0.0);
    (base, shaped)
}

/// What one netem-shaped traversal costs on this machine beyond its configured delay, in
/// ms, measured on a chain of `hops` links through forwarding namespaces (the shape of the
/// path it is used for) with 10 ms on every traversal, from average RTTs: ~0.5 ms under TCG
/// emulation, ~0 on hardware. A path of h hops has 2h traversals per round trip.
pub fn per_traversal_overhead_ms(hops: usize) -> f64 {
    assert!(hops >= 1);
    let mut lab = Lab::new("calib");
    let nodes: Vec<Netns> = (0..=hops).map(|i| lab.netns(&format!("c{i}"))).collect();
    let addr = |link: usize, end: usize| std::net::Ipv4Addr::new(100, 80, 0, (2 * link + end) as u8);
    let node_addr = |i: usize| std::net::Ipv4Addr::new(100, 64, 0, i as u8 + 1);
    let mut ends = Vec::new();
    for i in 0..hops {
        let (a, b) = (Netns::open(nodes[i].path()).unwrap(), Netns::open(nodes[i + 1].path()).unwrap());
        let (ea, eb) = lab.veth(a, &format!("r{}", i + 1), b, &format!("l{i}"));
        lab.address(&ea, &addr(i, 0).to_string(), 31);
        lab.address(&eb, &addr(i, 1).to_string(), 31);
        for e in [&ea, &eb] {
            lab.conn(&e.ns).execute(netem::replace("calib", e.ifindex, &delay_netem(10)).unwrap()).unwrap();
        }
        ends.push((ea, eb));
    }
    for (i, ns) in nodes.iter().enumerate() {
        crate::sysctl::set(ns, "net.ipv4.ip_forward", "1").unwrap();
        let mut conn = lab.conn(ns);
        let lo = link::by_name(&mut conn, "lo").unwrap().unwrap().index;
        conn.execute(crate::route::add_address("node", lo, node_addr(i), 32)).unwrap();
        // Towards the far end through the link on the right, the near end on the left.
        let mut via = |dest: usize, end: &End, gateway| {
            let r = crate::route::Route {
                destination: node_addr(dest),
                gateway,
                ifindex: end.ifindex,
                source: Some(node_addr(i)),
            };
            conn.execute(crate::route::replace("calib route", &r)).unwrap();
        };
        if i < hops {
            via(hops, &ends[i].0, addr(i, 1));
        }
        if i > 0 {
            via(0, &ends[i - 1].1, addr(i - 1, 0));
        }
    }
    let p = ping(&nodes[0], &node_addr(hops).to_string(), 20, "0.2");
    assert_eq!(p.loss_pct, 0.0, "calibration chain");
    let traversals = 2 * hops;
    ((p.avg - 10.0 * traversals as f64) / traversals as f64).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iputils_and_busybox_summaries_read_alike() {
        let iputils = "--- 10.0.0.2 ping statistics ---\n\
                       5 packets transmitted, 4 received, 20% packet loss, time 4005ms\n\
                       rtt min/avg/max/mdev = 263.032/263.450/264.101/0.412 ms\n";
        assert_eq!(parse_ping(iputils), Some(Ping { min: 263.032, avg: 263.45, loss_pct: 20.0 }));
        let busybox = "--- 100.64.0.10 ping statistics ---\n\
                       3 packets transmitted, 3 packets received, 0% packet loss\n\
                       round-trip min/avg/max = 269.599/271.720/275.110 ms\n";
        assert_eq!(parse_ping(busybox), Some(Ping { min: 269.599, avg: 271.72, loss_pct: 0.0 }));
        let silent = parse_ping("2 packets transmitted, 0 packets received, 100% packet loss\n").unwrap();
        assert_eq!(silent.loss_pct, 100.0);
        assert!(silent.avg.is_nan());
        assert_eq!(parse_ping("ping: bad address 'x'"), None);
    }
}
