//! A throwaway lab for kernel tests: namespaces named after the test and this process, veth
//! pairs between them, commands run inside them; everything is removed on drop, also when a
//! test fails.

#![allow(dead_code)] // each test binary uses a different part of the lab

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use orbitnet_dataplane::{Conn, Netns, link};

/// Fails the test at once, naming what is missing, unless this process can run kernel tests.
pub fn require_kernel() {
    if !nix::unistd::geteuid().is_root() {
        panic!("kernel tests need root: run them with `make test-kernel` (which boots a VM where needed)");
    }
    if let Err(e) = orbitnet_dataplane::preflight::netem_available() {
        panic!("{e}");
    }
}

pub struct End {
    pub ns: Netns,
    pub name: String,
    pub ifindex: u32,
}

pub struct Lab {
    prefix: String,
    names: Vec<String>,
}

impl Lab {
    pub fn new(test: &str) -> Self {
        Self { prefix: format!("ot-{test}-{}", std::process::id()), names: Vec::new() }
    }

    /// A new namespace with its loopback up.
    pub fn netns(&mut self, suffix: &str) -> Netns {
        let name = format!("{}-{suffix}", self.prefix);
        let ns = Netns::create(&name).unwrap_or_else(|e| panic!("{e}"));
        self.names.push(name);
        let mut conn = Conn::open_in(&ns).unwrap();
        let lo = link::by_name(&mut conn, "lo").unwrap().unwrap();
        conn.execute(link::set_up("lo up", lo.index, true)).unwrap();
        ns
    }

    pub fn conn(&self, ns: &Netns) -> Conn {
        Conn::open_in(ns).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A veth between two new namespaces, both ends up, addressed 10.9.0.1/24 and .2/24.
    pub fn pair(&mut self) -> (End, End) {
        let (ns_a, ns_b) = (self.netns("a"), self.netns("b"));
        let (a, b) = self.veth(ns_a, "va", ns_b, "vb");
        self.address(&a, "10.9.0.1", 24);
        self.address(&b, "10.9.0.2", 24);
        (a, b)
    }

    /// A veth `name_a`~`name_b` between two namespaces, both ends up.
    pub fn veth(&mut self, ns_a: Netns, name_a: &str, ns_b: Netns, name_b: &str) -> (End, End) {
        let mut conn = self.conn(&ns_a);
        conn.execute(link::veth_pair(name_a, ns_a.as_fd(), name_b, ns_b.as_fd(), None))
            .unwrap_or_else(|e| panic!("{e}"));
        let end = |ns: Netns, name: &str| {
            let mut c = self.conn(&ns);
            let ifindex = link::by_name(&mut c, name).unwrap().unwrap_or_else(|| panic!("no {name}")).index;
            c.execute(link::set_up(format!("{name} up"), ifindex, true)).unwrap();
            End { ns, name: name.into(), ifindex }
        };
        (end(ns_a, name_a), end(ns_b, name_b))
    }

    pub fn address(&self, end: &End, addr: &str, prefix_len: u8) {
        let mut c = self.conn(&end.ns);
        c.execute(orbitnet_dataplane::route::add_address(
            "address",
            end.ifindex,
            addr.parse().unwrap(),
            prefix_len,
        ))
        .unwrap();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = Netns::delete(name) {
                eprintln!("lab: cannot remove namespace {name}: {e}");
            }
        }
    }
}

/// Runs a command inside `ns` and returns its output.
pub fn run_in(ns: &Netns, program: &str, args: &[&str]) -> Output {
    let fd = ns.as_fd().try_clone_to_owned().unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: setns is async-signal-safe; the closure touches nothing but the fd.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `tc -d qdisc show dev <iface>` inside `ns`, as text.
pub fn tc_show(ns: &Netns, iface: &str) -> String {
    let out = run_in(ns, "tc", &["-d", "qdisc", "show", "dev", iface]);
    assert!(out.status.success(), "tc failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
