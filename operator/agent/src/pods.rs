//! Finding a pod's network namespace without asking the container runtime: every process of
//! a pod lives in a cgroup whose path names the pod's UID (`.../pod<uid>/...` with the
//! cgroupfs driver, `...-pod<uid with _>.slice` with systemd), and every container of a pod
//! shares the sandbox's network namespace. So `/proc/<pid>/ns/net` of any process whose
//! cgroup names the UID is the pod's namespace. This works for containerd, CRI-O and
//! Docker alike (the agent runs with hostPID); after a pod's sandbox restarts, the same
//! scan finds the new processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The pod UID a `/proc/<pid>/cgroup` file names, in its canonical dashed form.
pub fn pod_uid_in_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        // "hierarchy-id:controllers:path"
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(uid_in_segment)
    })
}

fn uid_in_segment(segment: &str) -> Option<String> {
    let segment = segment.strip_suffix(".slice").unwrap_or(segment);
    // cgroupfs: "pod<uid>"; systemd: "kubepods-besteffort-pod<uid with _>".
    let start = segment.rfind("pod")? + 3;
    let uid = segment[start..].replace('_', "-");
    is_uid(&uid).then_some(uid)
}

/// 8-4-4-4-12 hexadecimal digits.
fn is_uid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// For every pod UID in `wanted`, the network namespace path of one of its processes, by
/// scanning `proc_root` (normally `/proc`). Pods with no process (not started, or between
/// restarts) are absent from the answer. Processes in the namespace whose inode is
/// `host_netns` are passed over: a pod's cgroup can also hold processes that are not in
/// the pod's network (containerd may put a sandbox's shim there), and the host's network
/// must never be taken for a pod's.
pub fn find_netns(proc_root: &Path, wanted: &[String], host_netns: Option<u64>) -> BTreeMap<String, PathBuf> {
    find_in_pods(proc_root, wanted, |process| {
        let path = process.join("ns/net");
        netns_inode(&path).is_some_and(|inode| Some(inode) != host_netns).then_some(path)
    })
}

/// For every pod UID in `wanted`, the directory of its routing daemons (`/run/frr` of the
/// `routing` container, `<proc>/<pid>/root/run/frr`), found as `find_netns` finds a
/// namespace, once they are configured (the launcher has written `configured` there).
pub fn find_routing_dirs(proc_root: &Path, wanted: &[String]) -> BTreeMap<String, PathBuf> {
    find_in_pods(proc_root, wanted, |process| {
        let dir = process.join("root/run/frr");
        dir.join(orbitnet_routing::costs::CONFIGURED).exists().then_some(dir)
    })
}

/// For every pod UID in `wanted`, the first path `pick` gives for one of its processes
/// (`<proc_root>/<pid>`), scanning `proc_root` once.
fn find_in_pods(
    proc_root: &Path,
    wanted: &[String],
    pick: impl Fn(&Path) -> Option<PathBuf>,
) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else { return found };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        // A process may exit between listing and reading: skip it.
        let Ok(cgroup) = std::fs::read_to_string(proc_root.join(pid).join("cgroup")) else { continue };
        let Some(uid) = pod_uid_in_cgroup(&cgroup) else { continue };
        if !wanted.contains(&uid) || found.contains_key(&uid) {
            continue;
        }
        if let Some(path) = pick(&proc_root.join(pid)) {
            found.insert(uid, path);
        }
    }
    found
}

/// The inode of the network namespace `path` (`/proc/<pid>/ns/net`) refers to.
pub fn netns_inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0d6e6a1c-5a6b-4c1e-9a53-0123456789ab";

    #[test]
    fn cgroupfs_and_systemd_paths_name_the_pod() {
        let v1 = "12:memory:/kubepods/besteffort/pod0d6e6a1c-5a6b-4c1e-9a53-0123456789ab/3f2a\n\
                  11:cpu,cpuacct:/kubepods/besteffort/pod0d6e6a1c-5a6b-4c1e-9a53-0123456789ab/3f2a\n";
        assert_eq!(pod_uid_in_cgroup(v1).as_deref(), Some(UID));
        let systemd = "0::/kubepods.slice/kubepods-besteffort.slice/\
                       kubepods-besteffort-pod0d6e6a1c_5a6b_4c1e_9a53_0123456789ab.slice/cri-containerd-3f2a.scope\n";
        assert_eq!(pod_uid_in_cgroup(systemd).as_deref(), Some(UID));
        let guaranteed = "0::/kubepods/pod0d6e6a1c-5a6b-4c1e-9a53-0123456789ab/abc\n";
        assert_eq!(pod_uid_in_cgroup(guaranteed).as_deref(), Some(UID));
    }

    #[test]
    fn other_processes_name_no_pod() {
        assert_eq!(pod_uid_in_cgroup("0::/system.slice/containerd.service\n"), None);
        assert_eq!(pod_uid_in_cgroup("0::/user.slice/user-0.slice/session-3.scope\n"), None);
        assert_eq!(pod_uid_in_cgroup("0::/kubepods/podnot-a-uid/abc\n"), None);
        assert_eq!(pod_uid_in_cgroup(""), None);
    }

    #[test]
    fn a_proc_scan_finds_each_pods_namespace_once() {
        let dir = tempfile::tempdir().unwrap();
        let write = |pid: &str, cgroup: &str| {
            std::fs::create_dir_all(dir.path().join(pid).join("ns")).unwrap();
            std::fs::write(dir.path().join(pid).join("cgroup"), cgroup).unwrap();
            std::fs::write(dir.path().join(pid).join("ns/net"), pid).unwrap();
        };
        write("1", "0::/init.scope\n");
        write("40", &format!("0::/kubepods/besteffort/pod{UID}/pause\n"));
        write("41", &format!("0::/kubepods/besteffort/pod{UID}/node\n"));
        write("50", "0::/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/pause\n");
        std::fs::create_dir_all(dir.path().join("self")).unwrap();
        let found = find_netns(
            dir.path(),
            &[UID.to_owned(), "99999999-9999-9999-9999-999999999999".to_owned()],
            None,
        );
        assert_eq!(found.len(), 1, "only wanted pods that have a process");
        let path = &found[UID];
        assert!(path.ends_with("ns/net"));
        assert!(path.starts_with(dir.path().join("40")) || path.starts_with(dir.path().join("41")));
    }

    #[test]
    fn a_process_of_the_pod_in_the_hosts_network_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        for pid in ["30", "31"] {
            std::fs::create_dir_all(dir.path().join(pid).join("ns")).unwrap();
            std::fs::write(dir.path().join(pid).join("cgroup"), format!("0::/kubepods/pod{UID}/x\n"))
                .unwrap();
            std::fs::write(dir.path().join(pid).join("ns/net"), pid).unwrap();
        }
        // 30 is (say) the sandbox's shim, in the host's network; 31 the pod's pause.
        let host = netns_inode(&dir.path().join("30/ns/net"));
        let found = find_netns(dir.path(), &[UID.to_owned()], host);
        assert_eq!(found[UID], dir.path().join("31/ns/net"));
        std::fs::remove_dir_all(dir.path().join("31")).unwrap();
        assert!(find_netns(dir.path(), &[UID.to_owned()], host).is_empty(), "never the host's");
    }
}
