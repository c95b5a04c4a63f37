//! One run per constellation: an exclusive lock on /run/orbitnet/<name>.lock, held for the
//! life of the run. The kernel drops it when the process dies, however it dies, so a crashed
//! run never blocks the next one; what it left behind is swept instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

pub const RUN_DIR: &str = "/run/orbitnet";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "constellation {name:?} is already running ({holder}); stop it first (Ctrl-C in its terminal, or orbitnet down --name {name})"
    )]
    Busy { name: String, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Held for the life of a run; released on drop (and by the kernel on any exit).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

pub fn lock_path(name: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{name}.lock"))
}

impl RunLock {
    /// Takes the lock of `name`, or says who holds it. `about` is recorded for the message
    /// a second run will print (e.g. the scenario file).
    pub fn acquire(name: &str, about: &str) -> Result<Self, LockError> {
        let path = lock_path(name);
        let fail = |source| LockError::Io { path: path.display().to_string(), source };
        fs::create_dir_all(RUN_DIR).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        // SAFETY: flock on an open descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "holder unknown".to_owned()
                } else {
                    holder.trim().to_owned()
                };
                return Err(LockError::Busy { name: name.to_owned(), holder });
            }
            return Err(fail(err));
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let record = format!("pid {}, started {now}, {about}", std::process::id());
        file.set_len(0).map_err(fail)?;
        file.rewind().map_err(fail)?;
        file.write_all(record.as_bytes()).map_err(fail)?;
        Ok(Self { file, path })
    }

    /// Whether a live run holds `name`'s lock, and what it recorded.
    pub fn holder(name: &str) -> Option<String> {
        let path = lock_path(name);
        let mut file = File::open(&path).ok()?;
        // SAFETY: flock on an open descriptor we own; released when `file` drops.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if free {
            return None;
        }
        let mut holder = String::new();
        file.read_to_string(&mut holder).ok()?;
        Some(holder.trim().to_owned())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = &self.file;
    }
}
