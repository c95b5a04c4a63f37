//! Start-up checks: each failure is one sentence naming the missing piece and how to get it.

use std::fs;

use crate::link;
use crate::netem::{self, Netem};
use crate::netlink::Conn;
use crate::netns::Netns;
use crate::sysctl;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
/// ENOENT: what the kernel answers for a qdisc kind it does not know.
const ENOENT: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "orbitnet needs CAP_NET_ADMIN and CAP_SYS_ADMIN to build namespaces and links; run it as root (e.g. with sudo)"
    )]
    Privileges,
    #[error(
        "sch_netem is not available in kernel {kernel}; load it with `modprobe sch_netem` or, on a kernel built without it, run the kernel tests in the VM (make test-kernel)"
    )]
    NetemMissing { kernel: String },
    #[error("cannot try a netem qdisc in a scratch namespace: {0}")]
    Probe(String),
    #[error(
        "cannot enable IPv4 forwarding inside a network namespace ({0}); orbitnet's nodes must forward to route across satellites"
    )]
    Forwarding(String),
}

/// The running kernel's release, e.g. `6.1.0-56-amd64`.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "(unknown)".into())
}

/// Whether this process holds both capabilities the dataplane needs (effective set).
pub fn privileged() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else { return false };
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    [CAP_NET_ADMIN, CAP_SYS_ADMIN].iter().all(|bit| cap_eff & (1 << bit) != 0)
}

/// A scratch namespace, removed on drop.
struct Scratch {
    name: String,
    ns: Netns,
}

impl Scratch {
    fn new(purpose: &str) -> Result<Self, PreflightError> {
        let name = format!("orbitnet-preflight-{purpose}-{}", std::process::id());
        let ns = Netns::create(&name).map_err(|e| PreflightError::Probe(e.to_string()))?;
        Ok(Self { name, ns })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Netns::delete(&self.name);
    }
}

/// Tries a netem qdisc on the loopback of a scratch namespace (which every kernel has, so
/// the probe depends on nothing but netem).
pub fn netem_available() -> Result<(), PreflightError> {
    if !privileged() {
        return Err(PreflightError::Privileges);
    }
    let scratch = Scratch::new("netem")?;
    let probe = |e: crate::NlError| PreflightError::Probe(e.to_string());
    let mut conn = Conn::open_in(&scratch.ns).map_err(probe)?;
    let lo = link::by_name(&mut conn, "lo")
        .map_err(probe)?
        .ok_or_else(|| PreflightError::Probe("the scratch namespace has no loopback".into()))?;
    let request = netem::replace("trying a netem qdisc", lo.index, &Netem::default())
        .map_err(|e| PreflightError::Probe(e.to_string()))?;
    match conn.execute(request) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Some(ENOENT) => Err(PreflightError::NetemMissing { kernel: kernel_release() }),
        Err(e) => Err(probe(e)),
    }
}

/// Sets and reads back net.ipv4.ip_forward in a scratch namespace.
pub fn forwarding_settable() -> Result<(), PreflightError> {
    let scratch = Scratch::new("forward")?;
    sysctl::set(&scratch.ns, "net.ipv4.ip_forward", "1")
        .map_err(|e| PreflightError::Forwarding(e.to_string()))?;
    match sysctl::get(&scratch.ns, "net.ipv4.ip_forward") {
        Ok(v) if v == "1" => Ok(()),
        Ok(v) => Err(PreflightError::Forwarding(format!("it reads back {v:?}"))),
        Err(e) => Err(PreflightError::Forwarding(e.to_string())),
    }
}

/// Every check, in order; stops at the first failure (later ones depend on it).
pub fn check() -> Result<(), PreflightError> {
    if !privileged() {
        return Err(PreflightError::Privileges);
    }
    netem_available()?;
    forwarding_settable()
}
