//! A node's launcher: the bash script that starts its daemons in order, configures FRR's
//! through vtysh once they listen, and ends (status 1) when any of them exits, so that its
//! supervisor (the local runner, or the kubelet for a pod's routing container) starts them
//! all again. Every runner starts daemons through it.

use std::fmt::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use orbitnet_model::spec::RoutingDaemon;
use orbitnet_model::{NodeIdx, Plan};

/// Where FRR's fixed paths (ospfd's graceful-restart state in /run/frr, crash buffers in
/// /var/tmp/frr) point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mounts {
    /// The launcher runs in a mount namespace of its own on a shared host (the local
    /// runner): it binds the node's state directory on /run/frr and mounts a tmpfs on
    /// /var/tmp, so that no two nodes share those files.
    Private,
    /// The launcher has a filesystem of its own (a pod's container, where the state
    /// directory is /run/frr itself): nothing to mount, and no CAP_SYS_ADMIN spent on it.
    AsIs,
}

/// The launcher of `node`'s daemons, whose files are in `dir`.
pub fn script(plan: &Plan, node: NodeIdx, dir: &Path, mounts: Mounts) -> String {
    let name = &plan.node(node).name;
    let d = shell_quote(&dir.display().to_string());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#!/bin/bash\n# {name}'s routing daemons, written by orbitnet; run in the node's network namespace,\n# as PID 1 of a PID namespace of their own.\nset -eu"
    );
    let frr = plan.routing_protocol.as_ref().is_some_and(|p| p.daemon == RoutingDaemon::Frr);
    if frr && mounts == Mounts::Private {
        let _ = writeln!(
            s,
            "mkdir -p /run/frr\nmount --bind {d} /run/frr\nmount -t tmpfs -o size=16m,mode=1777 orbitnet /var/tmp"
        );
    }
    // A restart finds the sockets of the daemons before it: gone, so that waiting for
    // them waits for the new ones.
    let configured = shell_quote(&dir.join(crate::costs::CONFIGURED).display().to_string());
    let _ = writeln!(s, "rm -f {d}/*.vty {d}/*.sock {d}/*.ctl {d}/zserv.api {configured}");
    let daemons = crate::daemons(plan, dir);
    let _ = writeln!(s, "declare -A pids");
    for daemon in &daemons {
        let argv: Vec<String> = daemon.argv.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(s, "{} &\npids[{}]=$!", argv.join(" "), daemon.name);
    }
    // Configured once every daemon listens on its socket (10 s at most): FRR's through
    // vtysh, BIRD from its file. Then `configured` says run-time changes may follow.
    let sockets: Vec<String> = daemons
        .iter()
        .map(|daemon| {
            let socket =
                if daemon.name == "bird" { "bird.ctl".to_owned() } else { format!("{}.vty", daemon.name) };
            format!("-S {}", shell_quote(&dir.join(socket).display().to_string()))
        })
        .collect();
    let _ =
        writeln!(s, "for _ in $(seq 200); do [ {} ] && break; sleep 0.05; done", sockets.join(" ] && [ "));
    if let Some(configure) = crate::configure(plan, dir) {
        let _ = writeln!(s, "{}", configure.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "));
    }
    let _ = writeln!(s, ": > {configured}");
    // Polled, not `wait -n`: a daemon that dies while the configuration runs in the
    // foreground is reaped then, and `wait -n` afterwards would wait for the next one.
    let _ = writeln!(
        s,
        "set +e\nwhile sleep 0.5; do\n  for d in \"${{!pids[@]}}\"; do\n    kill -0 \"${{pids[$d]}}\" 2>/dev/null && continue\n    wait \"${{pids[$d]}}\"; status=$?\n    echo \"orbitnet: $d of {name} exited with status $status; stopping the others\" >&2\n    exit 1\n  done\ndone"
    );
    s
}

/// Writes `node`'s files and its launcher (`start.sh`, returned) into `dir`, created if
/// need be. FRR's daemons drop root for the `frr` user: where it exists, `dir` and the files
/// are its. An error names the path it failed on.
pub fn write(
    plan: &Plan,
    node: NodeIdx,
    dir: &Path,
    mounts: Mounts,
) -> Result<PathBuf, (PathBuf, std::io::Error)> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |e| (path, e)
    };
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    for (file, text) in crate::files(plan, node) {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(at(&path))?;
    }
    let start = dir.join("start.sh");
    std::fs::write(&start, script(plan, node, dir, mounts)).map_err(at(&start))?;
    std::fs::set_permissions(&start, std::fs::Permissions::from_mode(0o755)).map_err(at(&start))?;
    if let Some(frr) = nix::unistd::User::from_name("frr").ok().flatten() {
        let own = |path: &Path| {
            nix::unistd::chown(path, Some(frr.uid), Some(frr.gid)).map_err(std::io::Error::from)
        };
        own(dir).map_err(at(dir))?;
        for entry in std::fs::read_dir(dir).map_err(at(dir))? {
            let path = entry.map_err(at(dir))?.path();
            own(&path).map_err(at(&path))?;
        }
    }
    Ok(start)
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:=".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let yaml = include_str!("../../../scenarios/tiny.yaml")
            .replace("routing: shortestPath", "routing: ospf\n  routingProtocol: {bfd: {enabled: true}}");
        orbitnet_model::compile_yaml(&yaml).unwrap()
    }

    #[test]
    fn the_launcher_starts_each_daemon_and_ends_with_the_first_to_exit() {
        let s = script(&plan(), 0, Path::new("/run/orbitnet/tiny.routing/ring-0-0"), Mounts::Private);
        assert!(s.contains("mount --bind /run/orbitnet/tiny.routing/ring-0-0 /run/frr"), "{s}");
        let started: Vec<&str> = s.lines().filter(|l| l.ends_with(" &")).collect();
        assert_eq!(started.len(), 3, "zebra, ospfd, bfdd: {s}");
        assert!(
            started[0].starts_with("/usr/lib/frr/zebra -f /run/orbitnet/tiny.routing/ring-0-0/daemon.conf")
        );
        assert!(s.contains("[ -S /run/orbitnet/tiny.routing/ring-0-0/bfdd.vty ]"), "{s}");
        assert!(s.contains("\nvtysh --vty_socket /run/orbitnet/tiny.routing/ring-0-0 -f /run/orbitnet/tiny.routing/ring-0-0/frr.conf\n"), "{s}");
        assert!(s.contains("rm -f /run/orbitnet/tiny.routing/ring-0-0/*.vty "), "{s}");
        assert!(s.contains("\n: > /run/orbitnet/tiny.routing/ring-0-0/configured\n"), "{s}");
        assert!(s.contains("pids[ospfd]=$!") && s.contains("kill -0 \"${pids[$d]}\""), "{s}");
        assert_eq!(shell_quote("a b'c"), "'a b'\\''c'");
    }

    #[test]
    fn a_container_mounts_nothing() {
        let s = script(&plan(), 0, Path::new("/run/frr"), Mounts::AsIs);
        assert!(!s.contains("mount"), "{s}");
        assert!(s.contains("/usr/lib/frr/zebra -f /run/frr/daemon.conf"), "{s}");
    }
}
