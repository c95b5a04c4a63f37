//! Kernel tier (DESIGN.md §6, tier 3): the dataplane against a real Linux kernel. Needs root
//! and sch_netem: `make test-kernel` runs this binary directly on such a host, or inside
//! the qemu VM of scripts/vm.sh on one without netem. Run anywhere else, every test fails
//! at once saying what is missing, rather than passing without having run.
//!
//! Timing bounds hold at TCG (software-emulated) speed, with the tests run one at a time.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use orbitnet_dataplane::apply::{Applier, End, Wiring};
use orbitnet_dataplane::link::{self, Vxlan};
use orbitnet_dataplane::netem::{self, Netem, loss_from_pct, sized_limit};
use orbitnet_dataplane::route::{self, Route};
use orbitnet_dataplane::testing::{
    Lab, TINY, per_traversal_overhead_ms, ping, require_kernel, run_in, shaped_rtt, tc_show,
    tiny_without_random_loss,
};
use orbitnet_dataplane::{Conn, Netns, build, naming, preflight, sweep, sysctl};
use orbitnet_model::{NodeIdx, SimTime};

fn netem_of(delay_us: u64, jitter_us: u64, loss_pct: f64, rate_bps: u64) -> Netem {
    let (delay_ns, jitter_ns, rate) = (delay_us * 1000, jitter_us * 1000, rate_bps / 8);
    Netem {
        delay_ns,
        jitter_ns,
        loss: loss_from_pct(loss_pct),
        rate_bytes_per_s: rate,
        limit_packets: sized_limit(rate, delay_ns, jitter_ns),
    }
}

/// What `tc -d qdisc show` says of a netem, in our units.
#[derive(Debug, Default, PartialEq)]
struct TcView {
    limit: u32,
    delay_ns: u64,
    jitter_ns: u64,
    loss_pct: f64,
    rate_bps: u64,
}

fn parse_time_ns(s: &str) -> Option<u64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = s.split_at(split);
    let scale = match unit {
        "s" => 1e9,
        "ms" => 1e6,
        "us" => 1e3,
        "ns" => 1.0,
        _ => return None,
    };
    Some((number.parse::<f64>().ok()? * scale).round() as u64)
}

fn parse_rate_bps(s: &str) -> Option<u64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = s.split_at(split);
    let scale = match unit {
        "bit" => 1.0,
        "Kbit" => 1e3,
        "Mbit" => 1e6,
        "Gbit" => 1e9,
        "Tbit" => 1e12,
        _ => return None,
    };
    Some((number.parse::<f64>().ok()? * scale).round() as u64)
}

/// Parses tc's netem line: `... limit N [delay D [J]] [loss P%] [rate R] ...`.
fn parse_tc(text: &str) -> TcView {
    let line = text.lines().find(|l| l.contains("netem")).unwrap_or_else(|| panic!("no netem in {text:?}"));
    let t: Vec<&str> = line.split_whitespace().collect();
    let mut v = TcView::default();
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            "limit" => v.limit = t[i + 1].parse().unwrap(),
            "delay" => {
                v.delay_ns = parse_time_ns(t[i + 1]).unwrap();
                if let Some(j) = t.get(i + 2).and_then(|s| parse_time_ns(s)) {
                    v.jitter_ns = j;
                    i += 1;
                }
            }
            "loss" => v.loss_pct = t[i + 1].trim_end_matches('%').parse().unwrap(),
            "rate" => v.rate_bps = parse_rate_bps(t[i + 1]).unwrap(),
            _ => {}
        }
        i += 1;
    }
    v
}

/// The encoding checked against the kernel's own view, twice: our decoder of RTM_GETQDISC
/// and iproute2's `tc -d qdisc show` of the same qdisc.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn netem_encoding_matches_what_tc_reads_back() {
    require_kernel();
    let mut lab = Lab::new("enc");
    let (a, _b) = lab.pair();
    let mut conn = lab.conn(&a.ns);
    let cases = [
        ("delay only", netem_of(20_000, 0, 0.0, 0)),
        ("delay + jitter", netem_of(20_000, 5_000, 0.0, 0)),
        ("loss", netem_of(1_000, 0, 1.0, 0)),
        ("fractional loss and delay", netem_of(1_500, 0, 0.25, 1_500_000)),
        ("rate 3 Gbit/s", netem_of(0, 0, 0.0, 3_000_000_000)),
        ("rate 5 Gbit/s", netem_of(0, 0, 0.0, 5_000_000_000)),
        ("rate 40 Gbit/s (RATE64)", netem_of(0, 0, 0.0, 40_000_000_000)),
        ("rate 100 Gbit/s (RATE64)", netem_of(0, 0, 0.0, 100_000_000_000)),
        ("delay 5 s (> 4.29 s)", netem_of(5_000_000, 0, 0.0, 0)),
        ("delay 300 s (> tc's and qopt's range)", netem_of(300_000_000, 0, 0.0, 0)),
        ("everything", netem_of(12_345, 678, 2.5, 10_000_000_000)),
        ("back to nothing", netem_of(0, 0, 0.0, 0)),
    ];
    for (what, n) in cases {
        conn.execute(netem::replace(what, a.ifindex, &n).unwrap()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(netem::get(&mut conn, a.ifindex).unwrap(), Some(n), "{what}: our decoder");
        let text = tc_show(&a.ns, &a.name);
        let tc = parse_tc(&text);
        println!("{what:40} {}", text.trim());
        assert_eq!(tc.limit, n.limit_packets, "{what}: {text}");
        // iproute2 6.1 prints the delay from tc_netem_qopt's 32-bit 64 ns ticks and never
        // reads TCA_NETEM_LATENCY64 (tc/q_netem.c): past 2^32 ticks (274.88 s) it shows the
        // saturated field, while the kernel holds, and our decoder reads, the exact delay.
        // It also prints times to three significant digits ("12.3ms" for 12.345 ms).
        let saturated_ns = u64::from(u32::MAX) << 6;
        let shown = |ns: u64| ns.min(saturated_ns);
        let close = |tc: u64, want: u64| tc.abs_diff(want) <= (want / 200).max(1_000);
        assert!(close(tc.delay_ns, shown(n.delay_ns)), "{what}: delay {text}");
        assert!(close(tc.jitter_ns, shown(n.jitter_ns)), "{what}: jitter {text}");
        assert!((tc.loss_pct - n.loss_pct()).abs() < 1e-3, "{what}: {text}");
        assert_eq!(tc.rate_bps, n.rate_bytes_per_s * 8, "{what}: {text}");
    }
    // The kernel caps jitter at i32::MAX ns: we refuse before sending.
    assert!(
        netem::replace("huge jitter", a.ifindex, &Netem { jitter_ns: 3_000_000_000, ..Netem::default() })
            .is_err()
    );
}

/// What netem adds to a veth's RTT is the sum of the two one-way delays, within 1 ms. (The
/// unshaped RTT of the same pair, measured in the same run, is the path's own cost: ~0.3 ms
/// under TCG, microseconds on hardware. Minimum RTTs: scheduling jitter excluded.)
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn ping_rtt_is_the_sum_of_both_one_way_delays() {
    require_kernel();
    let mut lab = Lab::new("rtt");
    let (base, shaped) = shaped_rtt(&mut lab, 20, 30);
    let added = shaped.min - base.min;
    println!(
        "RTT min/avg unshaped {:.3}/{:.3} ms, with 20 ms + 30 ms netem {:.3}/{:.3} ms: netem adds {added:.3} ms",
        base.min, base.avg, shaped.min, shaped.avg
    );
    assert!((added - 50.0).abs() < 1.0, "netem adds {added} ms, want 50 +/- 1");
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn loss_stays_within_a_binomial_bound() {
    require_kernel();
    let mut lab = Lab::new("loss");
    let (a, _b) = lab.pair();
    lab.conn(&a.ns).execute(netem::replace("a", a.ifindex, &netem_of(0, 0, 20.0, 0)).unwrap()).unwrap();
    let n = 1000.0;
    let loss = ping(&a.ns, "10.9.0.2", 1000, "0.005").loss_pct;
    // 5 sigma of a binomial(1000, 0.2): 0.2 +/- 5 sqrt(0.2 x 0.8 / 1000) = 20 % +/- 6.3 %.
    let bound = 5.0 * (0.2f64 * 0.8 / n).sqrt() * 100.0;
    println!("configured 20 % loss, measured {loss} % over {n} pings (bound +/- {bound:.1} %)");
    assert!((loss - 20.0).abs() < bound, "loss {loss} %");
}

/// A TCP transfer through a 10 Mbit/s netem runs within 10 % of 10 Mbit/s (goodput is
/// about 4 % below the rate: netem counts Ethernet, IP and TCP headers).
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn a_rate_limited_tcp_transfer_runs_at_the_rate() {
    require_kernel();
    let mut lab = Lab::new("rate");
    let (a, b) = lab.pair();
    lab.conn(&a.ns)
        .execute(netem::replace("a", a.ifindex, &netem_of(1_000, 0, 0.0, 10_000_000)).unwrap())
        .unwrap();
    let bytes = 3_000_000usize;
    let listener = b.ns.enter(|| TcpListener::bind("10.9.0.2:5001")).unwrap().unwrap();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        let mut first = None;
        loop {
            let n = sock.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            first.get_or_insert_with(Instant::now);
            total += n;
        }
        (total, first.unwrap().elapsed())
    });
    let mut client = a.ns.enter(|| TcpStream::connect("10.9.0.2:5001")).unwrap().unwrap();
    client.write_all(&vec![7u8; bytes]).unwrap();
    drop(client);
    let (received, took) = server.join().unwrap();
    assert_eq!(received, bytes);
    let mbit = received as f64 * 8.0 / took.as_secs_f64() / 1e6;
    println!("3 MB through a 10 Mbit/s netem: {mbit:.2} Mbit/s in {took:?}");
    assert!((mbit - 10.0).abs() <= 1.0, "{mbit} Mbit/s");
}

/// Changing the delay with NLM_F_REPLACE while pings fly every 10 ms loses none of them,
/// and the RTT follows the new delays.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn replacing_the_delay_loses_no_packet() {
    require_kernel();
    let mut lab = Lab::new("replace");
    let (a, _b) = lab.pair();
    let mut conn = lab.conn(&a.ns);
    conn.execute(netem::replace("start", a.ifindex, &netem_of(5_000, 0, 0.0, 0)).unwrap()).unwrap();
    let ns = Netns::open(a.ns.path()).unwrap();
    let pinger = std::thread::spawn(move || {
        let out = run_in(&ns, "ping", &["-n", "-c", "300", "-i", "0.01", "-W", "2", "10.9.0.2"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let mut changes = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        for delay_ms in [40, 5, 80, 15] {
            conn.execute(netem::replace("change", a.ifindex, &netem_of(delay_ms * 1000, 0, 0.0, 0)).unwrap())
                .unwrap();
            changes += 1;
            std::thread::sleep(Duration::from_millis(120));
        }
    }
    let text = pinger.join().unwrap();
    let rtts: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let summary = text.lines().find(|l| l.contains("packet loss")).unwrap_or_default();
    println!("{changes} delay changes during the pings: {summary}");
    assert!(summary.contains(" 0% packet loss"), "{summary}");
    assert_eq!(rtts.len(), 300);
    assert!(rtts.iter().any(|&r| r > 75.0) && rtts.iter().any(|&r| r < 10.0), "RTTs must follow the changes");
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn vxlan_joins_two_namespaces_over_an_underlay() {
    require_kernel();
    let mut lab = Lab::new("vxlan");
    let (u0, u1) = lab.pair();
    let (ns_a, ns_b) = (Netns::open(u0.ns.path()).unwrap(), Netns::open(u1.ns.path()).unwrap());
    let (ip_a, ip_b) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2));
    for (ns, local, remote, overlay) in [(&ns_a, ip_a, ip_b, "10.42.0.1"), (&ns_b, ip_b, ip_a, "10.42.0.2")] {
        let mut conn = lab.conn(ns);
        let v = Vxlan { vni: 4242, remote, local, dst_port: 4789, mtu: Some(1450) };
        conn.execute(link::vxlan("vx0", &v, None)).unwrap_or_else(|e| panic!("{e}"));
        let vx = link::by_name(&mut conn, "vx0").unwrap().unwrap();
        assert_eq!(vx.mtu, Some(1450));
        conn.execute(route::add_address("overlay", vx.index, overlay.parse().unwrap(), 24)).unwrap();
        conn.execute(link::set_up("vx0 up", vx.index, true)).unwrap();
    }
    let base = ping(&ns_a, "10.42.0.2", 10, "0.1");
    assert_eq!(base.loss_pct, 0.0, "ping over the VXLAN overlay");
    let detail =
        String::from_utf8_lossy(&run_in(&ns_a, "ip", &["-d", "link", "show", "vx0"]).stdout).into_owned();
    assert!(
        detail.contains("vxlan id 4242 remote 10.9.0.2 local 10.9.0.1") && detail.contains("dstport 4789"),
        "{detail}"
    );
    // netem on the tunnel interface shapes the overlay.
    let mut conn = lab.conn(&ns_a);
    let vx = link::by_name(&mut conn, "vx0").unwrap().unwrap();
    conn.execute(netem::replace("vx netem", vx.index, &netem_of(15_000, 0, 0.0, 0)).unwrap()).unwrap();
    let shaped = ping(&ns_a, "10.42.0.2", 10, "0.1");
    let added = shaped.min - base.min;
    println!("overlay RTT min {:.3} ms unshaped, {:.3} ms with 15 ms netem on one end", base.min, shaped.min);
    assert!((added - 15.0).abs() < 1.0, "netem on the tunnel adds {added} ms");
}

/// a - r - b, with node addresses on loopback and routes through r: traffic crosses r only
/// while r forwards.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn routes_through_an_intermediate_namespace_forward_traffic() {
    require_kernel();
    let mut lab = Lab::new("route");
    let (ns_a, ns_r, ns_b) = (lab.netns("a"), lab.netns("r"), lab.netns("b"));
    let ns_r2 = Netns::open(ns_r.path()).unwrap();
    let (a_r, r_a) = lab.veth(ns_a, "ar", ns_r, "ra");
    let (r_b, b_r) = lab.veth(ns_r2, "rb", ns_b, "br");
    let addr = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    lab.address(&a_r, "100.80.0.0", 31);
    lab.address(&r_a, "100.80.0.1", 31);
    lab.address(&r_b, "100.80.0.2", 31);
    lab.address(&b_r, "100.80.0.3", 31);
    let lo = |ns: &Netns| link::by_name(&mut lab.conn(ns), "lo").unwrap().unwrap().index;
    lab.conn(&a_r.ns).execute(route::add_address("a", lo(&a_r.ns), addr("100.64.0.1"), 32)).unwrap();
    lab.conn(&b_r.ns).execute(route::add_address("b", lo(&b_r.ns), addr("100.64.0.3"), 32)).unwrap();
    let routes = [
        (
            &a_r,
            Route {
                destination: addr("100.64.0.3"),
                gateway: addr("100.80.0.1"),
                ifindex: a_r.ifindex,
                source: Some(addr("100.64.0.1")),
            },
        ),
        (
            &b_r,
            Route {
                destination: addr("100.64.0.1"),
                gateway: addr("100.80.0.2"),
                ifindex: b_r.ifindex,
                source: Some(addr("100.64.0.3")),
            },
        ),
        (
            &r_a,
            Route {
                destination: addr("100.64.0.1"),
                gateway: addr("100.80.0.0"),
                ifindex: r_a.ifindex,
                source: None,
            },
        ),
        (
            &r_b,
            Route {
                destination: addr("100.64.0.3"),
                gateway: addr("100.80.0.3"),
                ifindex: r_b.ifindex,
                source: None,
            },
        ),
    ];
    for (end, r) in &routes {
        lab.conn(&end.ns).execute(route::replace("route", r)).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(route::list(&mut lab.conn(&a_r.ns)).unwrap(), vec![routes[0].1], "read back");
    sysctl::set(&r_a.ns, "net.ipv4.ip_forward", "0").unwrap();
    let loss = ping(&a_r.ns, "100.64.0.3", 3, "0.1").loss_pct;
    assert_eq!(loss, 100.0, "without forwarding in r nothing crosses it");
    sysctl::set(&r_a.ns, "net.ipv4.ip_forward", "1").unwrap();
    let out = run_in(&a_r.ns, "ping", &["-n", "-c", "3", "-i", "0.1", "100.64.0.3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 0% packet loss"), "{text}");
    assert!(text.contains("from 100.64.0.3") && text.contains("ttl=63"), "one hop through r: {text}");
    // Replacing a route is one request; deleting it stops the traffic.
    lab.conn(&a_r.ns).execute(route::delete("delete", addr("100.64.0.3"))).unwrap();
    assert!(route::list(&mut lab.conn(&a_r.ns)).unwrap().is_empty());
}

/// Everything orbitnet creates carries its alias, route protocol or namespace prefix; the
/// sweep removes exactly that.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn sweep_leaves_nothing_behind() {
    require_kernel();
    let prefix = format!("orbitnet-sweeptest{}-", std::process::id());
    let names: Vec<String> = (0..3).map(|i| format!("{prefix}{i}")).collect();
    let spaces: Vec<Netns> = names.iter().map(|n| Netns::create(n).unwrap()).collect();
    let mut conn = Conn::open_in(&spaces[0]).unwrap();
    use std::os::fd::AsFd;
    for (i, peer) in [(1usize, "x"), (2, "y")] {
        conn.execute(link::veth_pair(
            &format!("isl{i}"),
            spaces[0].as_fd(),
            "isl0",
            spaces[i].as_fd(),
            None,
            None,
        ))
        .unwrap();
        let iface = link::by_name(&mut conn, &format!("isl{i}")).unwrap().unwrap();
        let alias = naming::alias("sweeptest", orbitnet_model::LinkId(i as u64), peer);
        conn.execute(link::set_alias("alias", iface.index, &alias)).unwrap();
        conn.execute(link::set_up("up", iface.index, true)).unwrap();
        conn.execute(route::add_address("addr", iface.index, Ipv4Addr::new(100, 80, 0, 2 * i as u8), 31))
            .unwrap();
        let r = Route {
            destination: Ipv4Addr::new(100, 64, 0, i as u8),
            gateway: Ipv4Addr::new(100, 80, 0, 2 * i as u8 + 1),
            ifindex: iface.index,
            source: None,
        };
        conn.execute(route::replace("route", &r)).unwrap();
    }
    // Someone else's interface stays.
    conn.execute(link::veth_pair("other0", spaces[0].as_fd(), "other1", spaces[0].as_fd(), None, None))
        .unwrap();
    let mut swept = sweep::Swept::default();
    sweep::interfaces_and_routes(&mut conn, Some("sweeptest"), &mut swept).unwrap();
    println!("{swept:?}");
    assert_eq!((swept.routes, swept.failures.len()), (2, 0));
    let left: Vec<String> = link::list(&mut conn).unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(left, vec!["lo", "other1", "other0"].into_iter().map(String::from).collect::<Vec<_>>());
    assert!(route::list(&mut conn).unwrap().is_empty());
    drop((conn, spaces));
    sweep::namespaces(&prefix, &mut swept);
    assert_eq!(swept.namespaces.len(), 3);
    assert!(Netns::list_named().iter().all(|n| !n.starts_with(&prefix)), "{:?}", Netns::list_named());
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn preflight_passes_on_a_kernel_with_netem() {
    require_kernel();
    preflight::check().unwrap_or_else(|e| panic!("{e}"));
}

/// A namespace can be opened by a process's /proc path (how the agent will find pods).
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn a_namespace_opens_by_a_process_path() {
    require_kernel();
    let mut lab = Lab::new("bypath");
    let (a, _b) = lab.pair();
    let mut child = {
        use std::os::fd::AsFd;
        use std::os::unix::process::CommandExt;
        let fd = a.ns.as_fd().try_clone_to_owned().unwrap();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: setns is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            })
        };
        cmd.spawn().unwrap()
    };
    let ns = Netns::open(format!("/proc/{}/ns/net", child.id())).unwrap();
    let names: Vec<String> =
        link::list(&mut Conn::open_in(&ns).unwrap()).unwrap().into_iter().map(|i| i.name).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(names.contains(&"va".to_owned()), "{names:?}");
}

/// The whole path on tiny.yaml: namespaces, every link that can exist, the model's state
/// applied, read back from the kernel, re-applied without a single operation, moved on in
/// time with only the changes sent, found again by a fresh process, and traffic that takes
/// the model's path delay.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn applying_the_model_makes_the_kernel_match_it() {
    require_kernel();
    let mut plan = orbitnet_model::compile_yaml(&tiny_without_random_loss()).unwrap();
    plan.name = format!("tiny{}", std::process::id());
    let (namespaces, mut conns, cleanup) = node_namespaces(&plan);
    let group_range = sysctl::get(&namespaces[&0], "net.ipv4.ping_group_range").unwrap();
    assert_eq!(group_range.split_whitespace().collect::<Vec<_>>(), ["0", "2147483647"], "unprivileged ping");
    let mut links: Vec<(NodeIdx, NodeIdx)> = plan.isls.iter().map(|l| (l.a, l.b)).collect();
    for g in plan.ground_range() {
        links.extend((0..plan.n_sats as NodeIdx).map(|s| (g as NodeIdx, s)));
    }
    let mut steps = Vec::new();
    let (wiring, failed) = build::build_veths(&plan, &namespaces, &mut conns, &links, &mut |done, total| {
        steps.push((done, total))
    });
    assert!(failed.is_empty(), "{:?}", failed.iter().map(|f| f.2.to_string()).collect::<Vec<_>>());
    assert_eq!(wiring.links(), 8 + 2 * 8);
    assert_eq!(steps.last(), Some(&(24, 24)));

    let mut applier = Applier::new(conns, wiring);
    let t0 = plan.state_at(SimTime::ZERO);
    let first = applier.apply(&plan, &t0);
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert!(first.unwired.is_empty());
    println!("first apply: {} operations in {:?}", first.operations(), first.elapsed);
    let remembered = applier.applied().clone();
    applier.read_back().unwrap();
    assert_eq!(applier.applied(), &remembered, "the kernel holds what the applier thinks it applied");
    assert!(applier.pending(&plan, &t0).is_empty(), "every end and route compared: nothing to send");
    let again = applier.apply(&plan, &t0);
    assert_eq!(again.operations(), 0, "the same state twice costs nothing");

    // Ten minutes later: satellites moved, delays and maybe choices changed.
    let t1 = plan.state_at(SimTime::from_nanos(600_000_000_000));
    let moved = applier.apply(&plan, &t1);
    assert!(moved.failed.is_empty(), "{:?}", moved.failed);
    let changed_links = t1.links.iter().filter(|l| t0.links.iter().find(|m| m.id == l.id) != Some(l)).count();
    println!("after 600 s: {changed_links} links changed, {} operations", moved.operations());
    assert!(moved.netem_changes <= 2 * t1.links.len());
    applier.read_back().unwrap();
    assert!(applier.pending(&plan, &t1).is_empty());

    // A fresh process finds the wiring by alias and the state in the kernel.
    let mut fresh_conns: HashMap<NodeIdx, Conn> =
        namespaces.iter().map(|(&k, ns)| (k, Conn::open_in(ns).unwrap())).collect();
    let found = Wiring::discover(&plan, &mut fresh_conns).unwrap();
    assert_eq!(found.links(), 24);
    let mut fresh = Applier::new(fresh_conns, found);
    fresh.read_back().unwrap();
    assert_eq!(fresh.apply(&plan, &t1).operations(), 0, "a restarted applier has nothing to redo");

    // Traffic follows the model: ping alpha -> bravo takes twice the path's one-way delay,
    // plus what each shaped traversal costs on this machine beyond its netem delay,
    // measured in this run on a chain of as many hops (~0.5 ms under TCG, ~0 on hardware).
    let (alpha, bravo) = (plan.node_index("alpha").unwrap(), plan.node_index("bravo").unwrap());
    let routes = t1.routes.as_ref().unwrap();
    let path = routes.path(alpha, bravo).unwrap();
    let traversals = 2 * (path.len() - 1);
    let per_traversal = per_traversal_overhead_ms(path.len() - 1);
    let model_ms = 2.0 * routes.delay_ns(alpha, bravo).unwrap() as f64 / 1e6;
    let want_ms = model_ms + traversals as f64 * per_traversal;
    // The very first packet: links are point to point, no hop resolves a neighbour (which
    // would add each hop's round trip, the whole path's RTT again).
    let first = run_in(
        &namespaces[&alpha],
        "ping",
        &["-n", "-c", "1", "-W", "5", &plan.node_address(bravo).to_string()],
    );
    let first_ms: f64 = String::from_utf8_lossy(&first.stdout)
        .split("time=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no reply: {}", String::from_utf8_lossy(&first.stdout)));
    println!("first packet alpha -> bravo: RTT {first_ms:.3} ms, model + overhead {want_ms:.3} ms");
    assert!((first_ms - want_ms).abs() < 5.0, "the first packet took {first_ms} ms, want {want_ms} ms");
    let p = ping(&namespaces[&alpha], &plan.node_address(bravo).to_string(), 20, "0.2");
    let rtt = p.avg;
    println!(
        "alpha -> bravo over {path:?}: RTT avg {rtt:.3} ms (min {:.3}); model {model_ms:.3} ms + {traversals} x {per_traversal:.3} ms = {want_ms:.3} ms",
        p.min
    );
    assert_eq!(p.loss_pct, 0.0);
    assert!((rtt - want_ms).abs() < 1.0, "RTT {rtt} ms, want {want_ms} ms");

    // The shipped tiny.yaml differs only by its ground links' atmospheric loss: over the
    // same links, only netems change, and the kernel then holds the model's loss.
    let mut shipped = orbitnet_model::compile_yaml(TINY).unwrap();
    shipped.name = plan.name.clone();
    let lossy = shipped.state_at(SimTime::from_nanos(600_000_000_000));
    assert!(lossy.links.iter().any(|l| l.up && l.loss_pct > 0.0), "tiny.yaml as shipped loses packets");
    let report = fresh.apply(&shipped, &lossy);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.netem_changes > 0 && report.netem_changes == report.operations(), "{report:?}");
    fresh.read_back().unwrap();
    assert!(fresh.pending(&shipped, &lossy).is_empty());
    drop(cleanup);
}

/// tiny.yaml split over two hosts (two namespaces joined by an underlay veth): links
/// between nodes on one host are veth pairs, links across are VXLAN ends created from each
/// host into the node's namespace. The model's state applied over both; the kernel holds
/// it, a fresh process finds every end, and alpha -> bravo (on different hosts) takes the
/// model's RTT.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn vxlan_ends_join_nodes_on_two_hosts() {
    require_kernel();
    let mut lab = Lab::new("hosts");
    let (h1, h2) = lab.pair();
    let host_ip = [Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2)];
    let mut plan = orbitnet_model::compile_yaml(&tiny_without_random_loss()).unwrap();
    plan.name = format!("split{}", std::process::id());
    let (alpha, bravo) = (plan.node_index("alpha").unwrap(), plan.node_index("bravo").unwrap());
    // Satellites 0-3 and alpha on the first host, the rest on the second.
    let host_of = |n: NodeIdx| usize::from(!(n < 4 || n == alpha));
    let (namespaces, mut conns, cleanup) = node_namespaces(&plan);
    let mut local = Vec::new();
    let mut tunnels = [Vec::new(), Vec::new()];
    let mut pairs: Vec<(NodeIdx, NodeIdx)> = plan.isls.iter().map(|l| (l.a, l.b)).collect();
    for g in plan.ground_range() {
        pairs.extend((0..plan.n_sats as NodeIdx).map(|s| (g as NodeIdx, s)));
    }
    for &(a, b) in &pairs {
        if host_of(a) == host_of(b) {
            local.push((a, b));
            continue;
        }
        let vni = plan.link_slot(a, b).unwrap() + 1;
        for (node, peer) in [(a, b), (b, a)] {
            let (h, other) = (host_of(node), host_of(peer));
            tunnels[h].push(build::Tunnel {
                node,
                peer,
                vni,
                port: 20_001,
                local: host_ip[h],
                remote: host_ip[other],
            });
        }
    }
    let (mut wiring, failed) = build::build_veths(&plan, &namespaces, &mut conns, &local, &mut |_, _| {});
    assert!(failed.is_empty(), "{:?}", failed.iter().map(|f| f.2.to_string()).collect::<Vec<_>>());
    for (host, tunnels) in [&h1, &h2].into_iter().zip(&tunnels) {
        let mut host_conn = lab.conn(&host.ns);
        let (w, failed) = build::build_vxlans(&plan, &mut host_conn, &namespaces, &mut conns, tunnels);
        assert!(failed.is_empty(), "{:?}", failed.iter().map(|f| f.2.to_string()).collect::<Vec<_>>());
        for end in w.ends() {
            wiring.add(end.clone());
        }
    }
    let crossing = tunnels[0].len();
    println!("{} veth links, {crossing} VXLAN links across the hosts", local.len());
    assert_eq!(wiring.links(), 24);

    let mut applier = Applier::new(conns, wiring);
    let t1 = plan.state_at(SimTime::from_nanos(600_000_000_000));
    let report = applier.apply(&plan, &t1);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    applier.read_back().unwrap();
    assert!(applier.pending(&plan, &t1).is_empty());

    let mut fresh_conns: HashMap<NodeIdx, Conn> =
        namespaces.iter().map(|(&k, ns)| (k, Conn::open_in(ns).unwrap())).collect();
    assert_eq!(Wiring::discover(&plan, &mut fresh_conns).unwrap().links(), 24, "a restart finds every end");

    // A cross-host end is a VXLAN interface with the link's VNI, on the constellation's port.
    let far = (4..8).find(|&s| plan.link_slot(alpha, s).is_some()).unwrap();
    let name = naming::iface_name(orbitnet_model::LinkKind::Gsl, far);
    let detail =
        String::from_utf8_lossy(&run_in(&namespaces[&alpha], "ip", &["-d", "link", "show", &name]).stdout)
            .into_owned();
    let vni = plan.link_slot(alpha, far).unwrap() + 1;
    assert!(detail.contains(&format!("vxlan id {vni} remote 10.9.0.2 local 10.9.0.1")), "{detail}");
    assert!(detail.contains("dstport 20001"), "{detail}");
    let mut alpha_conn = Conn::open_in(&namespaces[&alpha]).unwrap();
    let read_back = link::by_name(&mut alpha_conn, &name).unwrap().unwrap().vxlan;
    let want = link::VxlanEnd { vni, remote: Some(Ipv4Addr::new(10, 9, 0, 2)), port: Some(20_001) };
    assert_eq!(read_back, Some(want), "the tunnel as the kernel reports it");

    let routes = t1.routes.as_ref().unwrap();
    let path = routes.path(alpha, bravo).unwrap();
    let crossings = path.windows(2).filter(|w| host_of(w[0]) != host_of(w[1])).count();
    let traversals = 2 * (path.len() - 1);
    let per_traversal = per_traversal_overhead_ms(path.len() - 1);
    let model_ms = 2.0 * routes.delay_ns(alpha, bravo).unwrap() as f64 / 1e6;
    let want_ms = model_ms + traversals as f64 * per_traversal;
    // The VXLAN hop resolves its neighbour by ARP on the first packet: warm it up.
    ping(&namespaces[&alpha], &plan.node_address(bravo).to_string(), 1, "0.2");
    let p = ping(&namespaces[&alpha], &plan.node_address(bravo).to_string(), 20, "0.2");
    println!(
        "alpha -> bravo over {path:?} ({crossings} host crossings each way): RTT avg {:.3} ms (min {:.3}); model {model_ms:.3} ms + {traversals} x {per_traversal:.3} ms = {want_ms:.3} ms",
        p.avg, p.min
    );
    assert_eq!(p.loss_pct, 0.0);
    assert!(crossings >= 1, "the path crosses the hosts");
    // Each crossing adds a VXLAN encapsulation and an unshaped underlay traversal, each way.
    let underlay_ms = 2.0 * crossings as f64 * per_traversal;
    assert!(
        (p.avg - want_ms).abs() < 1.0 + underlay_ms,
        "RTT {} ms, want {want_ms} ms (+ up to {underlay_ms:.3} ms of underlay)",
        p.avg
    );
    drop(cleanup);
}

/// A link end whose interface does not exist fails alone: every other end is applied, and
/// the failure names the link.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn one_failing_link_does_not_stop_the_others() {
    require_kernel();
    let mut lab = Lab::new("fail");
    let (a, b) = lab.pair();
    let plan = orbitnet_model::compile_yaml(TINY).unwrap();
    let state = plan.state_at(SimTime::ZERO);
    let (good, bad) = (&state.links[0], &state.links[1]);
    let mut wiring = Wiring::default();
    wiring.add(End { link: good.id, node: good.a, peer: good.b, ifindex: a.ifindex, name: a.name.clone() });
    // The ghost end sits in the same namespace, so its requests share the good one's batch.
    wiring.add(End { link: bad.id, node: good.a, peer: bad.b, ifindex: 9999, name: "ghost".into() });
    let mut conns = HashMap::new();
    conns.insert(good.a, Conn::open_in(&a.ns).unwrap());
    let mut applier = Applier::new(conns, wiring);
    let mut only_links = state.clone();
    only_links.routes = None;
    let report = applier.apply(&plan, &only_links);
    assert_eq!(report.failed.len(), 2, "netem and up of the ghost: {:?}", report.failed);
    assert!(report.failed.iter().all(|f| f.link == Some(bad.id)));
    println!("{}", report.failed[0].error);
    assert!(report.failed[0].error.to_string().contains("No such device"));
    assert_eq!(netem::get(&mut lab.conn(&a.ns), a.ifindex).unwrap(), Some(Netem::for_link(good)));
    let _ = b;
}

/// Removes a test's namespaces even when it fails.
struct Cleanup(String);

/// A prepared namespace (and a connection) for every node of `plan`, removed when the
/// returned guard goes.
fn node_namespaces(
    plan: &orbitnet_model::Plan,
) -> (HashMap<NodeIdx, Netns>, HashMap<NodeIdx, Conn>, Cleanup) {
    let cleanup = Cleanup(naming::netns_prefix(&plan.name));
    let mut namespaces = HashMap::new();
    let mut conns = HashMap::new();
    for node in 0..plan.nodes.len() as NodeIdx {
        let ns = Netns::create(&naming::netns_name(&plan.name, &plan.node(node).name)).unwrap();
        let mut conn = Conn::open_in(&ns).unwrap();
        build::prepare_node(plan, node, &ns, &mut conn).unwrap_or_else(|e| panic!("{e}"));
        namespaces.insert(node, ns);
        conns.insert(node, conn);
    }
    (namespaces, conns, cleanup)
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut swept = sweep::Swept::default();
        sweep::namespaces(&self.0, &mut swept);
    }
}
