//! Route replaces per second, the bulk of a tick at scale: batched in one namespace, and one
//! in each of many namespaces (how a handover's route changes land, one per satellite); and
//! links cut and restored, the other kernel operation a handover costs.
//! Needs root but not netem, so it runs on any host: `scripts/bench-scale.sh` runs it here and
//! in the kernel-tier VM, side by side, to show what the VM's emulation costs a tick.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::Instant;

use orbitnet_dataplane::{Conn, Netns, link, preflight, route};

const NAMESPACES: usize = 200;
const ROUNDS: usize = 20;
const ROUTES_PER_BATCH: usize = 200;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tag = format!("orbitnet-bench-routes-{}", std::process::id());
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("{tag}-{i}")).collect();
    let result = std::panic::catch_unwind(|| run(&names));
    for name in &names {
        let _ = Netns::delete(name);
    }
    if result.is_err() {
        std::process::exit(1);
    }
}

/// A namespace with two veth pairs, each with one end up and addressed (100.80.0.0/31 and
/// 100.80.0.2/31, next hops 100.80.0.1 and 100.80.0.3), and a socket in it.
fn node(name: &str) -> (Netns, Conn, [u32; 2]) {
    let ns = Netns::create(name).unwrap();
    let mut conn = Conn::open_in(&ns).unwrap();
    for (a, b) in [("isl1", "isl0"), ("isl3", "isl2")] {
        conn.execute(link::veth_pair(a, ns.as_fd(), b, ns.as_fd(), None, Some([2, 0, 0, 0, 0, 1]))).unwrap();
    }
    let ends: Vec<(String, u32)> =
        link::list(&mut conn).unwrap().into_iter().map(|i| (i.name, i.index)).collect();
    let index = |name: &str| ends.iter().find(|e| e.0 == name).unwrap().1;
    let mut requests: Vec<_> =
        ["isl0", "isl1", "isl2", "isl3"].iter().map(|n| link::set_up("up", index(n), true)).collect();
    requests.push(route::add_address("address", index("isl1"), Ipv4Addr::new(100, 80, 0, 0), 31));
    requests.push(route::add_address("address", index("isl3"), Ipv4Addr::new(100, 80, 0, 2), 31));
    let results = conn.batch(requests);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    (ns, conn, [index("isl1"), index("isl3")])
}

/// Points `destinations` at one of the two next hops, by round: every replace is a change.
fn replace(conn: &mut Conn, ifindices: [u32; 2], destinations: impl Iterator<Item = Ipv4Addr>, round: usize) {
    let (gateway, ifindex) = (Ipv4Addr::new(100, 80, 0, 1 + 2 * (round % 2) as u8), ifindices[round % 2]);
    let requests = destinations
        .map(|destination| {
            route::replace("bench", &route::Route { destination, gateway, ifindex, source: None })
        })
        .collect();
    let results = conn.batch(requests);
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
}

fn destination(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, (k / 250) as u8, (k % 250) as u8 + 1)
}

fn run(names: &[String]) {
    let mut nodes: Vec<(Netns, Conn, [u32; 2])> = names.iter().map(|n| node(n)).collect();

    let (_, conn, ifindex) = &mut nodes[0];
    replace(conn, *ifindex, (0..ROUTES_PER_BATCH).map(destination), 1);
    let started = Instant::now();
    for round in 0..ROUNDS {
        replace(conn, *ifindex, (0..ROUTES_PER_BATCH).map(destination), round);
    }
    let batched = (ROUNDS * ROUTES_PER_BATCH) as f64 / started.elapsed().as_secs_f64();

    for (_, conn, ifindex) in &mut nodes {
        replace(conn, *ifindex, std::iter::once(destination(0)), 1);
    }
    let started = Instant::now();
    for round in 0..ROUNDS {
        for (_, conn, ifindex) in &mut nodes {
            replace(conn, *ifindex, std::iter::once(destination(0)), round);
        }
    }
    let spread = (ROUNDS * NAMESPACES) as f64 / started.elapsed().as_secs_f64();

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let per_thread = nodes.len().div_ceil(threads);
        std::thread::scope(|scope| {
            for chunk in nodes.chunks_mut(per_thread) {
                scope.spawn(move || {
                    for (_, conn, ifindex) in chunk {
                        replace(conn, *ifindex, std::iter::once(destination(0)), round);
                    }
                });
            }
        });
    }
    let spread_parallel = (ROUNDS * NAMESPACES) as f64 / started.elapsed().as_secs_f64();

    // A link cut and restored: both ends of a veth down, then up, one pair per namespace.
    let ends: Vec<[u32; 2]> = nodes
        .iter_mut()
        .map(|(_, conn, _)| {
            let list = link::list(conn).unwrap();
            let index = |name: &str| list.iter().find(|i| i.name == name).unwrap().index;
            [index("isl2"), index("isl3")]
        })
        .collect();
    let started = Instant::now();
    for round in 0..ROUNDS {
        for ((_, conn, _), pair) in nodes.iter_mut().zip(&ends) {
            let up = round % 2 == 1;
            let results = conn.batch(pair.iter().map(|&i| link::set_up("toggle", i, up)).collect());
            assert!(results.iter().all(Result::is_ok));
        }
    }
    let toggles = (ROUNDS * NAMESPACES) as f64 / started.elapsed().as_secs_f64();

    println!("kernel operations per second, kernel {}", preflight::kernel_release());
    println!("  {:<52} {:>10.0} /s", format!("batched, {ROUTES_PER_BATCH} per send, one namespace"), batched);
    println!("  {:<52} {:>10.0} /s", format!("one in each of {NAMESPACES} namespaces, 1 thread"), spread);
    println!(
        "  {:<52} {:>10.0} /s",
        format!("one in each of {NAMESPACES} namespaces, {threads} threads"),
        spread_parallel
    );
    println!(
        "  {:<52} {:>10.0} /s",
        format!("links cut or restored (both ends), one in each of {NAMESPACES}"),
        toggles
    );
}
