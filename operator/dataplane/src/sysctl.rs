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
    set_all(ns, &[(key, value)])
}

/// Sets several keys inside `ns`, entering it once; stops at the first failure.
pub fn set_all(ns: &Netns, settings: &[(&str, &str)]) -> Result<(), SysctlError> {
    let fail = |(key, value): (&str, &str), source| SysctlError {
        key: key.into(),
        value: value.into(),
        netns: ns.label(),
        source,
    };
    let first = settings.first().copied().unwrap_or(("", ""));
    ns.enter(|| {
        for &(key, value) in settings {
            std::fs::write(path_of(key), value).map_err(|e| fail((key, value), e))?;
        }
        Ok(())
    })
    .map_err(|e: NetnsError| fail(first, io::Error::other(e.to_string())))?
}

/// Whether the kernel has `key` (e.g. IPv6 settings on a kernel without IPv6).
pub fn exists(key: &str) -> bool {
    std::path::Path::new(&path_of(key)).exists()
}

/// Reads `key` inside `ns`.
pub fn get(ns: &Netns, key: &str) -> io::Result<String> {
    ns.enter(|| std::fs::read_to_string(path_of(key)))
        .map_err(|e| io::Error::other(e.to_string()))?
        .map(|s| s.trim().to_owned())
}
