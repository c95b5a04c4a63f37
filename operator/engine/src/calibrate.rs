//! What one shaped traversal costs this machine beyond its netem delay, measured the way
//! the flows measure (the same datagrams, kernel receive timestamps) across one veth pair
//! between two scratch namespaces with a 10 ms netem: the allowance against which a flow's
//! measured delay is compared with the model's, taken in the same run.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use orbitnet_dataplane::netem::{self, Netem};
use orbitnet_dataplane::netns::Netns;
use orbitnet_dataplane::{Conn, link, route};

use crate::traffic::{HEADER_BYTES, Header, receiving_socket, recv_timestamped, sending_socket, wall_ns};

const DELAY_NS: u64 = 10_000_000;
const DATAGRAMS: usize = 60;
const PORT: u16 = 46_999;

/// The cost of one traversal beyond its configured delay: the 90th percentile over the
/// datagrams (a generous allowance, not a typical value), and the median.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraversalCost {
    pub p90_ms: f64,
    pub median_ms: f64,
    pub datagrams: usize,
}

/// Measures a traversal in namespaces named `<prefix>-a` and `<prefix>-b`, removed after.
pub fn per_traversal_cost(prefix: &str) -> io::Result<TraversalCost> {
    let names = [format!("{prefix}-a"), format!("{prefix}-b")];
    let result = measure(&names);
    for n in &names {
        let _ = Netns::delete(n);
    }
    result
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn measure(names: &[String; 2]) -> io::Result<TraversalCost> {
    let a = Netns::create(&names[0]).map_err(other)?;
    let b = Netns::create(&names[1]).map_err(other)?;
    let (addr_a, addr_b) = (Ipv4Addr::new(169, 254, 77, 0), Ipv4Addr::new(169, 254, 77, 1));
    let mut conn_a = Conn::open_in(&a).map_err(other)?;
    let mut conn_b = Conn::open_in(&b).map_err(other)?;
    use std::os::fd::AsFd;
    conn_a.execute(link::veth_pair("cal-a", a.as_fd(), "cal-b", b.as_fd(), None, None)).map_err(other)?;
    for (conn, name, addr) in [(&mut conn_a, "cal-a", addr_a), (&mut conn_b, "cal-b", addr_b)] {
        let lo = link::by_name(conn, "lo").map_err(other)?.ok_or_else(|| other("no lo"))?;
        conn.execute(link::set_up("lo", lo.index, true)).map_err(other)?;
        let end = link::by_name(conn, name).map_err(other)?.ok_or_else(|| other(format!("no {name}")))?;
        conn.execute(route::add_address(name, end.index, addr, 31)).map_err(other)?;
        conn.execute(link::set_up(name, end.index, true)).map_err(other)?;
        if name == "cal-a" {
            let shaped =
                Netem { delay_ns: DELAY_NS, limit_packets: netem::MIN_LIMIT_PACKETS, ..Netem::default() };
            conn.execute(netem::replace("calibration", end.index, &shaped).map_err(other)?).map_err(other)?;
        }
    }
    let rx = b.enter(|| receiving_socket(addr_b, PORT)).map_err(other)??;
    let tx = a.enter(|| sending_socket(addr_a, addr_b, PORT, 0)).map_err(other)??;
    let mut buf = [0u8; 2048];
    let mut excess_ms: Vec<f64> = Vec::with_capacity(DATAGRAMS);
    let mut payload = [0u8; HEADER_BYTES];
    for seq in 0..DATAGRAMS as u64 {
        let h = Header { flow: 0, seq, k: 0, sent_t_ns: 0, sent_wall_ns: wall_ns(), tick_first_seq: 0 };
        h.write(&mut payload);
        tx.send(&payload)?;
        std::thread::sleep(Duration::from_millis(3));
        while let Some((len, rx_ns)) = recv_timestamped(std::os::fd::AsRawFd::as_raw_fd(&rx), &mut buf) {
            if let Some(h) = Header::read(&buf[..len]) {
                excess_ms.push((rx_ns - h.sent_wall_ns - DELAY_NS as i64) as f64 / 1e6);
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(200);
    while excess_ms.len() < DATAGRAMS && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        while let Some((len, rx_ns)) = recv_timestamped(std::os::fd::AsRawFd::as_raw_fd(&rx), &mut buf) {
            if let Some(h) = Header::read(&buf[..len]) {
                excess_ms.push((rx_ns - h.sent_wall_ns - DELAY_NS as i64) as f64 / 1e6);
            }
        }
    }
    if excess_ms.len() < DATAGRAMS / 2 {
        return Err(other(format!("only {} of {DATAGRAMS} calibration datagrams arrived", excess_ms.len())));
    }
    excess_ms.sort_by(f64::total_cmp);
    let at = |q: f64| excess_ms[((q * excess_ms.len() as f64) as usize).min(excess_ms.len() - 1)].max(0.0);
    Ok(TraversalCost { p90_ms: at(0.9), median_ms: at(0.5), datagrams: excess_ms.len() })
}
