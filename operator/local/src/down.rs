//! `orbitnet down`: removes what a run left behind (a crash, a kill -9): the programs and
//! routing daemons still running in its namespaces, the namespaces (and every interface in
//! them), the daemons' state directories, its lock.
//! It refuses while a live run holds the constellation's lock.

use std::os::unix::fs::MetadataExt;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use orbitnet_dataplane::{Netns, naming, sweep};

use crate::lock::{self, RunLock};

#[derive(Debug, thiserror::Error)]
pub enum DownError {
    #[error(
        "constellation {name:?} is running ({holder}); stop it with Ctrl-C in its terminal, or kill -TERM its pid, then run orbitnet down again if anything is left"
    )]
    Running { name: String, holder: String },
}

/// What `down` removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub namespaces: Vec<String>,
    pub killed: Vec<u32>,
    pub failures: Vec<String>,
}

/// The namespaces of `name` (or of every constellation) that exist now.
pub fn leftover_namespaces(name: &str) -> Vec<String> {
    let prefix = naming::netns_prefix(name);
    Netns::list_named().into_iter().filter(|n| n.starts_with(&prefix)).collect()
}

/// Names of constellations whose lock a live run holds.
fn running() -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(lock::RUN_DIR) else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".lock").map(str::to_owned))
        .filter_map(|name| RunLock::holder(&name).map(|h| (name, h)))
        .collect()
}

/// Removes the leftovers of constellation `name`, or of every constellation.
pub fn down(name: Option<&str>) -> Result<Removed, DownError> {
    let live = running();
    let prefix = match name {
        Some(n) => {
            if let Some((_, holder)) = live.iter().find(|(l, _)| l == n) {
                return Err(DownError::Running { name: n.to_owned(), holder: holder.clone() });
            }
            naming::netns_prefix(n)
        }
        None => {
            if let Some((n, holder)) = live.first() {
                return Err(DownError::Running { name: n.clone(), holder: holder.clone() });
            }
            naming::NETNS_PREFIX.to_owned()
        }
    };
    let removed = remove(name, &prefix);
    if let Some(n) = name {
        let _ = std::fs::remove_file(lock::lock_path(n));
    }
    Ok(removed)
}

/// Removes what an earlier run of `name` left, for a run that holds `name`'s lock itself
/// (so no live run owns what is there); the lock file stays.
pub fn leftovers_of(name: &str) -> Removed {
    remove(Some(name), &naming::netns_prefix(name))
}

/// Kills what runs in the namespaces starting with `prefix` and removes them, and the
/// daemons' state of `name` (with `None`, everything under the run directory).
fn remove(name: Option<&str>, prefix: &str) -> Removed {
    let mut removed = Removed::default();
    let doomed: Vec<String> = Netns::list_named().into_iter().filter(|n| n.starts_with(prefix)).collect();
    // A namespace's bind mount and every process inside it share one nsfs inode.
    let inodes: std::collections::HashSet<(u64, u64)> = doomed
        .iter()
        .filter_map(|n| {
            std::fs::metadata(std::path::Path::new(orbitnet_dataplane::netns::NETNS_RUN_DIR).join(n)).ok()
        })
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let me = std::process::id();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for pid in procs
            .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
            .filter(|&p| p != me)
        {
            let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else { continue };
            if inodes.contains(&(m.dev(), m.ino()))
                && kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok()
            {
                removed.killed.push(pid);
            }
        }
    }
    let mut swept = sweep::Swept::default();
    sweep::namespaces(prefix, &mut swept);
    removed.namespaces = swept.namespaces;
    removed.failures = swept.failures;
    match name {
        Some(n) => {
            let _ = std::fs::remove_dir_all(crate::daemons::state_dir(n));
        }
        None => {
            if let Ok(dir) = std::fs::read_dir(lock::RUN_DIR) {
                for e in dir.filter_map(Result::ok) {
                    let path = e.path();
                    let _ = if path.is_dir() {
                        std::fs::remove_dir_all(path)
                    } else {
                        std::fs::remove_file(path)
                    };
                }
            }
        }
    }
    removed
}
