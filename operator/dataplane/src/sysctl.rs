//! Per-namespace sysctls: /proc/sys/net is the view of the namespace of whoever opens it.

use std::io;

use crate::netns::{Netns, NetnsError};

#[derive(Debug, thiserror::Error)]
#[error("cannot set {key} = {value} in network namespace {netns}: {source}")]
pub struct SysctlError {
    pub key: String,
    pub value: String,
    pub netns: String,
    #[source]
    pub source: io::Error,
}

fn path_of(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Sets `key` (e.g. `net.ipv4.ip_forward`) inside `ns`.
pub fn set(ns: &Netns, key: &str, value: &str) -> Result<(), SysctlError> {
    let fail = |source| SysctlError { key: key.into(), value: value.into(), netns: ns.label(), source };
    ns.enter(|| std::fs::write(path_of(key), value))
        .map_err(|e: NetnsError| fail(io::Error::other(e.to_string())))?
        .map_err(fail)
}

/// Reads `key` inside `ns`.
pub fn get(ns: &Netns, key: &str) -> io::Result<String> {
    ns.enter(|| std::fs::read_to_string(path_of(key)))
        .map_err(|e| io::Error::other(e.to_string()))?
        .map(|s| s.trim().to_owned())
}
