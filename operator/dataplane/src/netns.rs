//! Network namespaces: created and named as `ip netns add` does (a bind mount under
//! /run/netns, so `ip netns exec` works on them), or opened by path (a pod's
//! /proc/<pid>/ns/net); a thread enters one for the length of a closure.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Where named namespaces live, as for iproute2.
pub const NETNS_RUN_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {name:?} already exists ({path})")]
    Exists { name: String, path: String },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: io::Error },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Io { what, path: path.display().to_string(), source }
}

fn nix_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> NetnsError + 'a {
    move |e| NetnsError::Io { what, path: path.display().to_string(), source: io::Error::from(e) }
}

/// An open network namespace. Dropping it closes the handle; a named namespace stays until
/// `Netns::delete`.
#[derive(Debug)]
pub struct Netns {
    path: PathBuf,
    file: File,
}

impl std::os::fd::AsFd for Netns {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Netns {
    /// Creates the named namespace `/run/netns/<name>`; fails if it exists.
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        let dir = Path::new(NETNS_RUN_DIR);
        fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        make_shared_mount_point(dir)?;
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).mode(0o444).open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetnsError::Exists { name: name.to_owned(), path: path.display().to_string() });
            }
            Err(e) => return Err(io_err("cannot create", &path)(e)),
        }
        // A fresh thread unshares, so the caller's thread never leaves its namespace.
        let target = path.clone();
        let bound = std::thread::spawn(move || -> Result<(), NetnsError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(nix_err("cannot unshare a network namespace for", &target))?;
            let own = Path::new("/proc/thread-self/ns/net");
            mount(Some(own), &target, Some("none"), MsFlags::MS_BIND, None::<&str>)
                .map_err(nix_err("cannot bind-mount a network namespace on", &target))
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetnsError::Io {
                what: "thread panicked creating",
                path: path.display().to_string(),
                source: io::Error::other("panic"),
            })
        });
        if let Err(e) = bound {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Self::open(&path)
    }

    /// Opens a namespace by path: `/run/netns/<name>`, `/proc/<pid>/ns/net`...
    pub fn open(path: impl AsRef<Path>) -> Result<Self, NetnsError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(io_err("cannot open network namespace", &path))?;
        Ok(Self { path, file })
    }

    /// Opens the named namespace `/run/netns/<name>`.
    pub fn open_named(name: &str) -> Result<Self, NetnsError> {
        Self::open(Path::new(NETNS_RUN_DIR).join(name))
    }

    /// The namespace this thread is in now.
    pub fn current() -> Result<Self, NetnsError> {
        Self::open("/proc/thread-self/ns/net")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name under /run/netns, or the path for a namespace opened otherwise.
    pub fn label(&self) -> String {
        match self.path.strip_prefix(NETNS_RUN_DIR) {
            Ok(name) => name.display().to_string(),
            Err(_) => self.path.display().to_string(),
        }
    }

    /// Runs `f` with this thread inside the namespace, then moves it back (also when `f`
    /// panics). Sockets `f` opens stay in the namespace after it returns.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
        let home = Self::current()?;
        setns(&self.file, CloneFlags::CLONE_NEWNET)
            .map_err(nix_err("cannot enter network namespace", &self.path))?;
        struct Back(Netns);
        impl Drop for Back {
            fn drop(&mut self) {
                // A thread that cannot return to its own namespace would open every later
                // socket in the wrong one, silently: stop the process instead.
                if let Err(e) = setns(&self.0.file, CloneFlags::CLONE_NEWNET) {
                    eprintln!("fatal: cannot return to network namespace {}: {e}", self.0.path.display());
                    std::process::abort();
                }
            }
        }
        let _back = Back(home);
        Ok(f())
    }

    /// Removes a named namespace (unmount and unlink); its interfaces go with its last user.
    pub fn delete(name: &str) -> Result<(), NetnsError> {
        let path = Path::new(NETNS_RUN_DIR).join(name);
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(nix_err("cannot unmount network namespace", &path)(e)),
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("cannot remove", &path)(e)),
        }
    }

    /// Names of the namespaces under /run/netns.
    pub fn list_named() -> Vec<String> {
        let Ok(dir) = fs::read_dir(NETNS_RUN_DIR) else { return Vec::new() };
        let mut names: Vec<String> = dir.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        names.sort();
        names
    }
}

/// Makes `dir` a shared mount point (bind-mounting it on itself first if needed), as
/// iproute2 does, so namespace mounts under it propagate to other mount namespaces.
fn make_shared_mount_point(dir: &Path) -> Result<(), NetnsError> {
    let shared =
        || mount(None::<&str>, dir, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            mount(Some(dir), dir, Some("none"), MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(nix_err("cannot bind-mount", dir))?;
            shared().map_err(nix_err("cannot make a shared mount point of", dir))
        }
        Err(e) => Err(nix_err("cannot make a shared mount point of", dir)(e)),
    }
}
