//! netem changes per second: orbitnet's batched netlink against the `tc` command, on the
//! same interfaces, in one run (DESIGN.md §7: >= 20,000 changes/s, >= 50x tc). Needs root
//! and sch_netem: `make bench-dataplane` runs it (in the VM on a host without netem).
//!
//! Every change sets a different delay, so the kernel really changes each qdisc.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Instant;

use orbitnet_dataplane::netem::{self, Netem};
use orbitnet_dataplane::{Conn, Netns, link, preflight, route};

const INTERFACES: usize = 200;
const ROUNDS: usize = 50;
const TC_CHANGES: usize = 400;
const NAMESPACES: usize = 200;

fn netem_with(delay_us: u64) -> Netem {
    Netem { delay_ns: delay_us * 1000, limit_packets: 1000, ..Netem::default() }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs bench binaries without
    // it, expecting tests, and there are none here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Err(e) = preflight::netem_available() {
        eprintln!("netem benchmark not run: {e}");
        std::process::exit(2);
    }
    let name = format!("orbitnet-bench-{}", std::process::id());
    let peers = format!("{name}-peers");
    let ns = Netns::create(&name).unwrap();
    let other = Netns::create(&peers).unwrap();
    let result = std::panic::catch_unwind(|| run(&ns, &other));
    drop((ns, other));
    let _ = Netns::delete(&name);
    let _ = Netns::delete(&peers);
    if result.is_err() {
        std::process::exit(1);
    }
}

fn run(ns: &Netns, other: &Netns) {
    let mut conn = Conn::open_in(ns).unwrap();
    let create: Vec<_> = (0..INTERFACES)
        .map(|i| link::veth_pair(&format!("b{i}"), ns.as_fd(), &format!("p{i}"), other.as_fd(), None, None))
        .collect();
    assert!(conn.batch(create).iter().all(Result::is_ok));
    let ifaces: Vec<(String, u32)> = link::list(&mut conn)
        .unwrap()
        .into_iter()
        .filter(|i| i.name.starts_with('b'))
        .map(|i| (i.name, i.index))
        .collect();
    assert_eq!(ifaces.len(), INTERFACES);
    // Every interface starts with a netem, so every measured request is a change.
    let first: Vec<_> =
        ifaces.iter().map(|(_, i)| netem::replace("init", *i, &netem_with(1)).unwrap()).collect();
    assert!(conn.batch(first).iter().all(Result::is_ok));

    // orbitnet, batched: each round changes every interface in one batch.
    let started = Instant::now();
    for round in 0..ROUNDS {
        let requests = ifaces
            .iter()
            .map(|(_, i)| netem::replace("bench", *i, &netem_with(1000 + round as u64)).unwrap())
            .collect();
        let results = conn.batch(requests);
        assert!(results.iter().all(Result::is_ok));
    }
    let batched = (ROUNDS * INTERFACES) as f64 / started.elapsed().as_secs_f64();

    // orbitnet, one request and one acknowledgement at a time.
    let started = Instant::now();
    for round in 0..ROUNDS / 5 {
        for (_, i) in &ifaces {
            conn.execute(netem::replace("bench", *i, &netem_with(2000 + round as u64)).unwrap()).unwrap();
        }
    }
    let single = (ROUNDS / 5 * INTERFACES) as f64 / started.elapsed().as_secs_f64();

    // tc, one process per change (how scripts and most emulators drive it), entering the
    // namespace with setns before exec: no `ip netns exec` overhead is counted against tc.
    let started = Instant::now();
    for k in 0..TC_CHANGES {
        let (iface, _) = &ifaces[k % INTERFACES];
        let status = in_netns(ns, "tc")
            .args(["qdisc", "replace", "dev", iface, "root", "netem"])
            .args(["delay", &format!("{}us", 3000 + k), "limit", "1000"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let tc_process = TC_CHANGES as f64 / started.elapsed().as_secs_f64();

    // tc -batch: one process for all changes (tc's fastest path).
    let mut script = tempfile_path("tc-batch");
    let mut file = std::fs::File::create(&script).unwrap();
    for round in 0..ROUNDS / 5 {
        for (iface, _) in &ifaces {
            writeln!(file, "qdisc replace dev {iface} root netem delay {}us limit 1000", 4000 + round)
                .unwrap();
        }
    }
    drop(file);
    let started = Instant::now();
    let status = in_netns(ns, "tc").arg("-batch").arg(&script).status().unwrap();
    assert!(status.success());
    let tc_batch = (ROUNDS / 5 * INTERFACES) as f64 / started.elapsed().as_secs_f64();
    std::fs::remove_file(&mut script).unwrap();

    // Route replaces in one namespace: 100 /32 routes switched between two next hops.
    let (r_iface, r_index) = (&ifaces[0].0, ifaces[0].1);
    let (r2_index, r_up) =
        (ifaces[1].1, ifaces[..2].iter().map(|(_, i)| link::set_up("up", *i, true)).collect());
    assert!(conn.batch(r_up).iter().all(Result::is_ok));
    let addr = |i: usize| std::net::Ipv4Addr::new(100, 80, 0, i as u8);
    assert!(
        conn.batch(vec![
            route::add_address("a", r_index, addr(0), 31),
            route::add_address("b", r2_index, addr(2), 31),
        ])
        .iter()
        .all(Result::is_ok)
    );
    let _ = r_iface;
    let routes_per_round = 100;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let (gateway, ifindex) = if round % 2 == 0 { (addr(1), r_index) } else { (addr(3), r2_index) };
        let requests = (0..routes_per_round)
            .map(|k| {
                let destination = std::net::Ipv4Addr::new(100, 64, (k / 250) as u8, (k % 250) as u8 + 1);
                route::replace("route", &route::Route { destination, gateway, ifindex, source: None })
            })
            .collect();
        assert!(conn.batch(requests).iter().all(Result::is_ok));
    }
    let routes = (ROUNDS * routes_per_round) as f64 / started.elapsed().as_secs_f64();

    // One netem change in each of many namespaces: the per-namespace cost of a tick.
    let spaces: Vec<Netns> = (0..NAMESPACES)
        .map(|i| Netns::create(&format!("orbitnet-bench-ns{i}-{}", std::process::id())).unwrap())
        .collect();
    let mut conns: Vec<Conn> = spaces.iter().map(|ns| Conn::open_in(ns).unwrap()).collect();
    let lo: Vec<u32> = conns.iter_mut().map(|c| link::by_name(c, "lo").unwrap().unwrap().index).collect();
    let started = Instant::now();
    for round in 0..ROUNDS {
        for (c, &i) in conns.iter_mut().zip(&lo) {
            let r = c.batch(vec![netem::replace("bench", i, &netem_with(5000 + round as u64)).unwrap()]);
            assert!(r.iter().all(Result::is_ok));
        }
    }
    let per_namespace = (ROUNDS * NAMESPACES) as f64 / started.elapsed().as_secs_f64();
    drop(conns);
    drop(spaces);
    for i in 0..NAMESPACES {
        let _ = Netns::delete(&format!("orbitnet-bench-ns{i}-{}", std::process::id()));
    }

    // The last change of each path really landed.
    let kernel = netem::list(&mut conn).unwrap();
    assert_eq!(kernel.len(), INTERFACES);
    assert!(kernel.iter().all(|(_, n)| n.delay_ns >= 3_000_000));

    println!(
        "netem changes per second, {INTERFACES} veth interfaces, kernel {}",
        preflight::kernel_release()
    );
    println!("  {:<44} {:>12.0} /s", "orbitnet netlink, batched (1 send per round)", batched);
    println!("  {:<44} {:>12.0} /s", "orbitnet netlink, one request at a time", single);
    println!("  {:<44} {:>12.0} /s", "route replaces, batched, one namespace", routes);
    println!("  {:<44} {:>12.0} /s", "netem, one change in each of 200 namespaces", per_namespace);
    println!("  {:<44} {:>12.0} /s", "tc -batch (one process)", tc_batch);
    println!("  {:<44} {:>12.0} /s", "tc, one process per change", tc_process);
    println!(
        "  batched netlink vs tc per change: {:.0}x; vs tc -batch: {:.1}x",
        batched / tc_process,
        batched / tc_batch
    );
}

/// A command that runs inside `ns` (setns between fork and exec).
fn in_netns(ns: &Netns, program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let fd = ns.as_fd().try_clone_to_owned().unwrap();
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe and touches nothing but the fd.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    cmd
}

fn tempfile_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("orbitnet-{what}-{}", std::process::id()))
}
