//! Node programs: each runs inside its node's network namespace, in its own process group,
//! with its output in a log file, and dies with the runner (PR_SET_PDEATHSIG) even if the
//! runner is killed with SIGKILL.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use orbitnet_dataplane::Netns;

#[derive(Debug, thiserror::Error)]
#[error("cannot start {program:?} in node {node}: {source}")]
pub struct SpawnError {
    pub node: String,
    pub program: String,
    #[source]
    pub source: io::Error,
}

pub struct NodeProcess {
    pub node: String,
    pub log: PathBuf,
    child: Child,
    exited: Option<std::process::ExitStatus>,
}

/// Starts `command` in `ns` for node `node`, its stdout and stderr appended to `log`.
pub fn spawn(
    node: &str,
    ns: &Netns,
    command: &[String],
    env: &BTreeMap<String, String>,
    workdir: &Path,
    log: PathBuf,
) -> Result<NodeProcess, SpawnError> {
    let fail = |source| SpawnError { node: node.to_owned(), program: command[0].clone(), source };
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(fail)?;
    }
    let out = File::options().create(true).append(true).open(&log).map_err(fail)?;
    let err = out.try_clone().map_err(fail)?;
    let netns = ns.as_fd().try_clone_to_owned().map_err(fail)?;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]).envs(env).current_dir(workdir).stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: between fork and exec only async-signal-safe calls: setns, setsid, prctl.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            nix::unistd::setsid().map_err(io::Error::from)?;
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(fail)?;
    Ok(NodeProcess { node: node.to_owned(), log, child, exited: None })
}

impl NodeProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, the first time the process is seen to have ended.
    pub fn newly_exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.exited.is_some() {
            return None;
        }
        self.exited = self.child.try_wait().ok().flatten();
        self.exited
    }
}

/// Stops every process: SIGTERM to each process group, up to `grace` to exit, then SIGKILL.
pub fn stop_all(procs: &mut [NodeProcess], grace: Duration) {
    for p in procs.iter().filter(|p| p.exited.is_none()) {
        // The process leads its own group (setsid): the group is its pid.
        let _ = kill(Pid::from_raw(-(p.pid() as i32)), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && procs.iter_mut().any(|p| p.exited.is_none() && p.newly_exited().is_none())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in procs.iter_mut().filter(|p| p.exited.is_none()) {
        let _ = kill(Pid::from_raw(-(p.pid() as i32)), Signal::SIGKILL);
        let _ = p.child.wait();
        p.exited = p.child.try_wait().ok().flatten();
    }
}
