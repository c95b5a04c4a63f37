//! The default program in every emulated node (`orbitnet node`, the node image's command):
//! answers UDP probes, probes its neighbours (or any node) to measure round-trip times
//! across the emulated links, and serves a small status page. Plain threads and std only;
//! the kernel answers pings.
//!
//! It reads what every runner gives a node: ORBITNET_NODE, ORBITNET_ROLE, ORBITNET_ADDR,
//! ORBITNET_NEIGHBOURS (`name=address,...`) and ORBITNET_HOSTS (a hosts file).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The probe datagram: a magic, the sender's sequence number and its send time (ns since
/// the prober started), echoed back unchanged.
const MAGIC: &[u8; 4] = b"ONP1";
const PROBE_LEN: usize = 20;
/// Round trips kept per target for the averages.
const WINDOW: usize = 60;

/// Why the node program cannot start or go on; each names the offending value.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("ORBITNET_ADDR {0:?} is not an IP address")]
    Addr(String),
    /// An ORBITNET_NEIGHBOURS entry without `=`.
    #[error("{0:?} is not name=address")]
    NotAPair(String),
    #[error("{pair:?}: {addr:?} is not an IP address")]
    PairAddr { pair: String, addr: String },
    #[error("reading {path}")]
    ReadHosts {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `hosts`: the hosts file's path, or that there is none.
    #[error("--probe {name}: no such node in {hosts}")]
    UnknownProbe { name: String, hosts: String },
    #[error("binding UDP port {port}")]
    BindEcho {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("listening on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("binding the probe socket")]
    BindProbe(#[source] std::io::Error),
    #[error("probing")]
    Probe(#[source] std::io::Error),
}

/// Who this node is, from the environment a runner sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    pub node: String,
    pub role: String,
    pub addr: Option<IpAddr>,
    pub neighbours: Vec<(String, IpAddr)>,
}

impl Identity {
    pub fn from_env() -> Result<Self, NodeError> {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let addr = var("ORBITNET_ADDR");
        Ok(Self {
            node: var("ORBITNET_NODE"),
            role: var("ORBITNET_ROLE"),
            addr: if addr.is_empty() {
                None
            } else {
                Some(addr.parse().map_err(|_| NodeError::Addr(addr.clone()))?)
            },
            neighbours: parse_pairs(&var("ORBITNET_NEIGHBOURS"))?,
        })
    }
}

/// `name=address,name=address` (ORBITNET_NEIGHBOURS).
pub fn parse_pairs(text: &str) -> Result<Vec<(String, IpAddr)>, NodeError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, addr) = pair.split_once('=').ok_or_else(|| NodeError::NotAPair(pair.to_owned()))?;
            let addr = addr
                .parse()
                .map_err(|_| NodeError::PairAddr { pair: pair.to_owned(), addr: addr.to_owned() })?;
            Ok((name.to_owned(), addr))
        })
        .collect()
}

/// `address name` lines (ORBITNET_HOSTS), comments and blank lines skipped.
pub fn parse_hosts(text: &str) -> Vec<(String, IpAddr)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let mut words = line.split_whitespace();
            let addr = words.next()?.parse().ok()?;
            Some((words.next()?.to_owned(), addr))
        })
        .collect()
}

/// What the prober knows of one target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetStats {
    pub addr: Option<IpAddr>,
    pub sent: u64,
    pub received: u64,
    /// The last `WINDOW` round trips, in microseconds.
    pub recent_rtt_us: Vec<u64>,
}

impl TargetStats {
    pub fn last_rtt_us(&self) -> Option<u64> {
        self.recent_rtt_us.last().copied()
    }
    pub fn min_rtt_us(&self) -> Option<u64> {
        self.recent_rtt_us.iter().copied().min()
    }
    pub fn mean_rtt_us(&self) -> Option<u64> {
        let n = self.recent_rtt_us.len() as u64;
        (n > 0).then(|| self.recent_rtt_us.iter().sum::<u64>() / n)
    }
}

/// The node's shared state: the prober writes, the status page reads.
#[derive(Debug, Default)]
pub struct Stats {
    pub targets: BTreeMap<String, TargetStats>,
}

pub type Shared = Arc<Mutex<Stats>>;

fn lock(stats: &Shared) -> std::sync::MutexGuard<'_, Stats> {
    // A panicked prober leaves numbers that are still worth showing.
    stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Echoes every probe datagram back to its sender, forever.
pub fn serve_echo(socket: UdpSocket) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if n == PROBE_LEN && &buf[..4] == MAGIC {
            // A reply that cannot be sent is a lost probe for the other side; go on.
            let _ = socket.send_to(&buf[..n], from);
        }
    }
}

/// One probe round: a datagram to every target, then replies until `timeout`.
pub fn probe_round(
    socket: &UdpSocket,
    targets: &[(String, SocketAddr)],
    seq: &mut u64,
    epoch: Instant,
    timeout: Duration,
    stats: &Shared,
) -> std::io::Result<()> {
    let mut pending: BTreeMap<u64, String> = BTreeMap::new();
    for (name, addr) in targets {
        *seq += 1;
        let mut datagram = [0u8; PROBE_LEN];
        datagram[..4].copy_from_slice(MAGIC);
        datagram[4..12].copy_from_slice(&seq.to_be_bytes());
        let sent_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        datagram[12..20].copy_from_slice(&sent_ns.to_be_bytes());
        let entry = |s: &mut Stats| {
            let t = s.targets.entry(name.clone()).or_default();
            t.addr = Some(addr.ip());
            t.sent += 1;
        };
        entry(&mut lock(stats));
        // An unreachable target (no route yet: the link is down) is a lost probe.
        if socket.send_to(&datagram, addr).is_ok() {
            pending.insert(*seq, name.clone());
        }
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        let n = match socket.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break;
            }
            // ICMP errors of earlier sends surface here: not fatal.
            Err(_) => continue,
        };
        if n != PROBE_LEN || &buf[..4] != MAGIC {
            continue;
        }
        let got_seq = u64::from_be_bytes(buf[4..12].try_into().unwrap_or_default());
        let sent_ns = u64::from_be_bytes(buf[12..20].try_into().unwrap_or_default());
        let Some(name) = pending.remove(&got_seq) else { continue };
        let now_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let rtt_us = now_ns.saturating_sub(sent_ns) / 1_000;
        let mut s = lock(stats);
        let t = s.targets.entry(name).or_default();
        t.received += 1;
        t.recent_rtt_us.push(rtt_us);
        if t.recent_rtt_us.len() > WINDOW {
            t.recent_rtt_us.remove(0);
        }
    }
    Ok(())
}

/// The status page, as plain text (`/`) or JSON (`/json`).
pub fn render(identity: &Identity, stats: &Stats, json: bool) -> String {
    if json {
        let targets: BTreeMap<&String, serde_json::Value> = stats
            .targets
            .iter()
            .map(|(name, t)| {
                (
                    name,
                    serde_json::json!({
                        "addr": t.addr.map(|a| a.to_string()),
                        "sent": t.sent,
                        "received": t.received,
                        "lastRttUs": t.last_rtt_us(),
                        "minRttUs": t.min_rtt_us(),
                        "meanRttUs": t.mean_rtt_us(),
                    }),
                )
            })
            .collect();
        let neighbours: Vec<String> = identity.neighbours.iter().map(|(n, _)| n.clone()).collect();
        let doc = serde_json::json!({
            "node": identity.node,
            "role": identity.role,
            "addr": identity.addr.map(|a| a.to_string()),
            "neighbours": neighbours,
            "targets": targets,
        });
        return format!("{doc}\n");
    }
    let ms = |us: Option<u64>| us.map_or("-".to_owned(), |us| format!("{:.3}", us as f64 / 1e3));
    let mut out = format!(
        "orbitnet node {} ({}), address {}\nneighbours: {}\n\n{:<24} {:<15} {:>6} {:>6} {:>10} {:>10} {:>10}\n",
        identity.node,
        identity.role,
        identity.addr.map_or("-".to_owned(), |a| a.to_string()),
        identity.neighbours.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
        "TARGET",
        "ADDRESS",
        "SENT",
        "RECV",
        "LAST ms",
        "MIN ms",
        "MEAN ms"
    );
    for (name, t) in &stats.targets {
        out.push_str(&format!(
            "{:<24} {:<15} {:>6} {:>6} {:>10} {:>10} {:>10}\n",
            name,
            t.addr.map_or("-".to_owned(), |a| a.to_string()),
            t.sent,
            t.received,
            ms(t.last_rtt_us()),
            ms(t.min_rtt_us()),
            ms(t.mean_rtt_us())
        ));
    }
    out
}

/// Serves the status page: `/` (text), `/json`, `/healthz`. One thread per connection.
pub fn serve_status(listener: TcpListener, identity: Arc<Identity>, stats: Shared) -> std::io::Result<()> {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (identity, stats) = (identity.clone(), stats.clone());
        std::thread::spawn(move || {
            // A client that goes away mid-request is its own problem.
            let _ = answer(stream, &identity, &stats);
        });
    }
    Ok(())
}

fn answer(stream: TcpStream, identity: &Identity, stats: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Headers are read and ignored: the page takes no input.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = match path {
        "/" => ("200 OK", "text/plain", render(identity, &lock(stats), false)),
        "/json" => ("200 OK", "application/json", render(identity, &lock(stats), true)),
        "/healthz" => ("200 OK", "text/plain", "ok\n".to_owned()),
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// How the node program runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the status page is served.
    pub status_addr: SocketAddr,
    /// The UDP port probes are answered on (every node uses the same one).
    pub probe_port: u16,
    /// Time between probe rounds; also how long a round waits for replies.
    pub interval: Duration,
    /// Nodes to probe besides the neighbours, by name (looked up in ORBITNET_HOSTS).
    pub probe: Vec<String>,
    /// Probe every node in ORBITNET_HOSTS.
    pub probe_all: bool,
}

/// A node program that answers probes and serves its status page; `probe_forever` sends
/// the probes.
pub struct Running {
    identity: Identity,
    options: Options,
    targets: Vec<(String, SocketAddr)>,
    socket: UdpSocket,
    stats: Shared,
}

/// Binds the sockets and starts answering probes and serving the status page.
pub fn start(options: &Options) -> Result<Running, NodeError> {
    let identity = Identity::from_env()?;
    let hosts_path = std::env::var("ORBITNET_HOSTS").unwrap_or_default();
    let hosts = if hosts_path.is_empty() {
        Vec::new()
    } else {
        let text = std::fs::read_to_string(&hosts_path)
            .map_err(|source| NodeError::ReadHosts { path: hosts_path.clone(), source })?;
        parse_hosts(&text)
    };
    let mut targets: BTreeMap<String, IpAddr> = identity.neighbours.iter().cloned().collect();
    for name in &options.probe {
        let addr = hosts.iter().find(|(n, _)| n == name).map(|(_, a)| *a).ok_or_else(|| {
            NodeError::UnknownProbe {
                name: name.clone(),
                hosts: if hosts_path.is_empty() {
                    "(no ORBITNET_HOSTS)".to_owned()
                } else {
                    hosts_path.clone()
                },
            }
        })?;
        targets.insert(name.clone(), addr);
    }
    if options.probe_all {
        targets.extend(hosts.iter().cloned());
    }
    targets.remove(&identity.node);
    let targets: Vec<(String, SocketAddr)> =
        targets.into_iter().map(|(n, a)| (n, SocketAddr::new(a, options.probe_port))).collect();

    let echo = UdpSocket::bind(("0.0.0.0", options.probe_port))
        .map_err(|source| NodeError::BindEcho { port: options.probe_port, source })?;
    std::thread::spawn(move || serve_echo(echo));
    let listener = TcpListener::bind(options.status_addr)
        .map_err(|source| NodeError::Listen { addr: options.status_addr, source })?;
    let stats: Shared = Arc::default();
    let (page_identity, page_stats) = (Arc::new(identity.clone()), stats.clone());
    std::thread::spawn(move || serve_status(listener, page_identity, page_stats));
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(NodeError::BindProbe)?;
    Ok(Running { identity, options: options.clone(), targets, socket, stats })
}

impl Running {
    /// One line on what it serves and probes, for the program's log.
    pub fn summary(&self) -> String {
        format!(
            "orbitnet node {}: status on http://{}, probes on UDP {}, probing {} targets every {:?}",
            self.identity.node,
            self.options.status_addr,
            self.options.probe_port,
            self.targets.len(),
            self.options.interval
        )
    }

    /// Probes the targets every interval, until an I/O error.
    pub fn probe_forever(self) -> Result<std::convert::Infallible, NodeError> {
        let (mut seq, epoch) = (0, Instant::now());
        loop {
            let started = Instant::now();
            probe_round(&self.socket, &self.targets, &mut seq, epoch, self.options.interval, &self.stats)
                .map_err(NodeError::Probe)?;
            std::thread::sleep(self.options.interval.saturating_sub(started.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn neighbours_and_hosts_parse_and_bad_ones_are_named() {
        let pairs = parse_pairs("ring-0-1=100.64.0.2, ring-0-7=100.64.0.8").unwrap();
        assert_eq!(pairs[1], ("ring-0-7".to_owned(), "100.64.0.8".parse().unwrap()));
        assert!(parse_pairs("").unwrap().is_empty());
        assert!(parse_pairs("ring-0-1").unwrap_err().to_string().contains("not name=address"));
        assert!(parse_pairs("a=300.1.1.1").unwrap_err().to_string().contains("300.1.1.1"));
        let hosts = parse_hosts("100.64.0.1\tring-0-0\n# comment\n\n100.64.0.9 alpha\n");
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].0, "alpha");
    }

    #[test]
    fn probes_measure_round_trips_and_count_losses() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let echo_addr = echo.local_addr().unwrap();
        std::thread::spawn(move || serve_echo(echo));
        // A port nobody answers on: every probe to it is lost.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let prober = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stats: Shared = Arc::default();
        let targets = vec![("echo".to_owned(), echo_addr), ("silent".to_owned(), silent_addr)];
        let (mut seq, epoch) = (0, Instant::now());
        for _ in 0..3 {
            probe_round(&prober, &targets, &mut seq, epoch, Duration::from_millis(200), &stats).unwrap();
        }
        let s = lock(&stats);
        let echo = &s.targets["echo"];
        assert_eq!((echo.sent, echo.received, echo.recent_rtt_us.len()), (3, 3, 3));
        assert!(echo.min_rtt_us().unwrap() < 200_000);
        assert_eq!((s.targets["silent"].sent, s.targets["silent"].received), (3, 0));
    }

    #[test]
    fn the_status_page_shows_the_node_its_neighbours_and_round_trips() {
        let identity = Arc::new(Identity {
            node: "alpha".into(),
            role: "groundStation".into(),
            addr: Some("100.64.0.9".parse().unwrap()),
            neighbours: vec![("ring-0-0".into(), "100.64.0.1".parse().unwrap())],
        });
        let stats: Shared = Arc::default();
        lock(&stats).targets.insert(
            "ring-0-0".into(),
            TargetStats {
                addr: Some("100.64.0.1".parse().unwrap()),
                sent: 2,
                received: 2,
                recent_rtt_us: vec![53_100, 53_300],
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (i, s) = (identity.clone(), stats.clone());
        std::thread::spawn(move || serve_status(listener, i, s));
        let get = |path: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let page = get("/");
        assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
        assert!(page.contains("orbitnet node alpha (groundStation), address 100.64.0.9"), "{page}");
        assert!(page.contains("53.300") && page.contains("53.100") && page.contains("53.200"), "{page}");
        let json = get("/json");
        let body: serde_json::Value = serde_json::from_str(json.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["targets"]["ring-0-0"]["meanRttUs"], 53_200);
        assert!(get("/healthz").ends_with("ok\n"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
