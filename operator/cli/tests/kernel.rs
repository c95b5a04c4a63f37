//! Kernel tier for the local runner: `orbitnet run` as a user runs it, on a real kernel
//! (root and sch_netem; `make test-kernel` runs this binary in the VM where needed).

// Each test binary uses part of the driver.
#[allow(dead_code)]
#[path = "support/webdriver.rs"]
mod webdriver;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use orbitnet_dataplane::Netns;
use orbitnet_dataplane::testing::{
    per_traversal_overhead_ms, require_kernel, run_in, tiny_without_random_loss,
};
use serde_json::Value;

/// A scratch directory with a renamed copy of tiny.yaml (so tests never collide), without
/// its random loss: every lost packet must have a cause the test can name.
struct Scenario {
    dir: PathBuf,
    file: PathBuf,
    name: String,
}

impl Scenario {
    fn new(test: &str, extra: &str) -> Self {
        let name = format!("t{}-{test}", std::process::id());
        let dir = std::env::temp_dir().join(format!("orbitnet-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("scenario.yaml");
        let yaml = tiny_without_random_loss()
            .replace("metadata: {name: tiny}", &format!("metadata: {{name: {name}}}"));
        std::fs::write(&file, format!("{yaml}{extra}")).unwrap();
        Self { dir, file, name }
    }

    fn telemetry(&self) -> PathBuf {
        self.dir.join("telemetry.jsonl")
    }

    fn namespace(&self, node: &str) -> String {
        format!("orbitnet-{}-{node}", self.name)
    }

    fn namespaces(&self) -> Vec<String> {
        Netns::list_named()
            .into_iter()
            .filter(|n| n.starts_with(&format!("orbitnet-{}-", self.name)))
            .collect()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_orbitnet")).args(["down", "--name", &self.name]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn orbitnet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_orbitnet"))
}

/// `orbitnet run` in the background, quiet, with telemetry.
fn start(s: &Scenario, args: &[&str]) -> Child {
    orbitnet()
        .arg("run")
        .arg(&s.file)
        .args(["--quiet", "--workdir"])
        .arg(s.dir.join("work"))
        .arg("--telemetry")
        .arg(s.telemetry())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn records(s: &Scenario) -> Vec<Value> {
    std::fs::read_to_string(s.telemetry())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits until the run has applied at least one tick; panics after `limit`.
fn wait_until_ticking(s: &Scenario, run: &mut Child, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if records(s).iter().any(|r| r["type"] == "tick") {
            return;
        }
        if let Some(status) = run.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("orbitnet run exited with {status} before its first tick: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no tick within {limit:?}");
}

fn finish(run: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    let mut run = run;
    while started.elapsed() < limit {
        if let Some(status) = run.try_wait().unwrap() {
            let out = run.wait_with_output().unwrap();
            return (
                status,
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = run.kill();
    panic!("orbitnet run did not finish within {limit:?}");
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(marker))
        })
        .collect()
}

fn host_interfaces() -> String {
    String::from_utf8(Command::new("ip").args(["-o", "link", "show"]).output().unwrap().stdout).unwrap()
}

/// Node programs that sleep with a marker only this test uses.
fn sleepers(marker: &str) -> String {
    format!(
        "  nodes:\n    satellite: {{command: [sleep, '{marker}']}}\n    groundStation: {{command: [sleep, '{marker}']}}\n"
    )
}

/// tiny.yaml from t = 300 s to 540 s at ten times real time: bravo hands over from
/// ring-0-4 to ring-0-3 at 367 s (the path loses a hop), and at 450 s the satellite alpha
/// uses, ring-0-1, is lost. A ping alpha -> bravo every 200 ms must take the model's path
/// delay throughout (plus what each shaped traversal costs on this machine, measured on a
/// chain of the same length at the same time, under the same load), and go on after the
/// loss.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn ping_follows_the_model_through_a_handover_and_a_lost_satellite() {
    require_kernel();
    let s =
        Scenario::new("ping", "  faults:\n  - {kind: nodeDown, node: ring-0-1, at: 450s, duration: 10m}\n");
    let per_traversal = per_traversal_overhead_ms(4);
    let mut run =
        start(&s, &["--start", "300s", "--duration", "240s", "--time-scale", "10", "--paths", "alpha~bravo"]);
    wait_until_ticking(&s, &mut run, Duration::from_secs(60));
    let alpha = Netns::open_named(&s.namespace("alpha")).unwrap();
    let bravo = "100.64.0.10"; // tiny: 8 satellites, then alpha (9th node), bravo (10th)
    let out = run_in(&alpha, "ping", &["-D", "-n", "-i", "0.2", "-w", "20", "-W", "3", bravo]);
    let (status, log) = finish(run, Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let text = String::from_utf8_lossy(&out.stdout);
    // (receive time, seq, rtt ms)
    let replies: Vec<(f64, u32, f64)> = text
        .lines()
        .filter_map(|l| {
            let ts = l.strip_prefix('[')?.split(']').next()?.parse().ok()?;
            let seq = l.split("icmp_seq=").nth(1)?.split_whitespace().next()?.parse().ok()?;
            let rtt = l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()?;
            Some((ts, seq, rtt))
        })
        .collect();
    assert!(replies.len() > 50, "{text}");
    let ticks: Vec<Value> = records(&s).into_iter().filter(|r| r["type"] == "tick").collect();
    let model_at = |wall: f64| -> (f64, f64, f64) {
        let t = ticks.iter().rev().find(|t| t["wall"].as_f64().unwrap() <= wall).unwrap_or(&ticks[0]);
        let p = &t["paths"][0];
        (t["t"].as_f64().unwrap(), 2.0 * p["delayMs"].as_f64().unwrap(), p["hops"].as_f64().unwrap())
    };
    let fault_wall = ticks
        .iter()
        .find(|t| t["t"].as_f64().unwrap() >= 450.0)
        .map(|t| t["wall"].as_f64().unwrap())
        .unwrap();
    let mut errors = Vec::new();
    let mut hops_seen = std::collections::BTreeSet::new();
    for &(received, _, rtt) in &replies {
        let sent = received - rtt / 1e3;
        // Around the loss, a packet may straddle the old and the new path.
        if (sent - fault_wall).abs() < 1.0 {
            continue;
        }
        let (_, model_rtt, hops) = model_at(sent);
        hops_seen.insert(hops as u32);
        errors.push(rtt - (model_rtt + 2.0 * hops * per_traversal));
    }
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    println!(
        "{} replies; path hops seen {hops_seen:?}; error vs model (+{per_traversal:.3} ms per traversal): median {median:.3} ms, p10 {:.3}, p90 {:.3}",
        replies.len(),
        errors[errors.len() / 10],
        errors[errors.len() * 9 / 10]
    );
    assert!(median.abs() < 1.0, "median error {median} ms");
    assert!(hops_seen.len() >= 2, "the path must change during the run (bravo's handover): {hops_seen:?}");
    // Packets are lost only in flight over a link that went down: each was sent at most a
    // round trip and a tick before a tick that took links down, and none after that tick was
    // applied (the new routes are in place; no neighbour to resolve on a point-to-point link).
    let changes: Vec<f64> = ticks
        .iter()
        .filter(|t| t["linkChanges"].as_u64().unwrap() > 0)
        .map(|t| t["wall"].as_f64().unwrap())
        .collect();
    let max_rtt_s = replies.iter().map(|r| r.2).fold(0.0, f64::max) / 1e3;
    let tick_wall_s = 1.0 / 10.0;
    let sent: Vec<(u32, f64)> =
        replies.iter().map(|&(received, seq, rtt)| (seq, received - rtt / 1e3)).collect();
    let sent_at = |seq: u32| -> f64 {
        // Between the nearest answered packets before and after (ping sends every 200 ms).
        let before = sent.iter().rev().find(|s| s.0 < seq).unwrap();
        before.1 + f64::from(seq - before.0) * 0.2
    };
    let answered: std::collections::BTreeSet<u32> = replies.iter().map(|r| r.1).collect();
    let lost: Vec<(u32, f64)> = (sent[0].0..=sent[sent.len() - 1].0)
        .filter(|seq| !answered.contains(seq))
        .map(|seq| (seq, sent_at(seq)))
        .collect();
    let after = replies.iter().filter(|r| r.0 > fault_wall + 1.0).count();
    println!(
        "{} lost (seq, sent - loss applied in s): {:?}; {after} replies after the loss",
        lost.len(),
        lost.iter().map(|&(seq, at)| (seq, ((at - fault_wall) * 1e3).round() / 1e3)).collect::<Vec<_>>()
    );
    for &(seq, at) in &lost {
        let explained = changes.iter().any(|&c| at < c + 0.01 && at > c - max_rtt_s - tick_wall_s - 0.05);
        assert!(
            explained,
            "ping {seq} sent at {at:.3} was lost, not in flight before a tick that cut a link: {changes:?}"
        );
    }
    assert!(after > 10, "the ping must go on after the loss");
    let began = records(&s)
        .iter()
        .any(|r| r["type"] == "faultBegan" && r["description"].as_str().unwrap().contains("ring-0-1"));
    assert!(began);
}

/// Ctrl-C ends a run and leaves nothing: no namespace, no host interface, no program.
/// What the offline planner says of one tick: the links up, the ground links chosen,
/// and the one-way delay of the path from `from` to `to` along its routes.
struct Planned {
    links_up: u64,
    gsl_up: u64,
    ground: std::collections::BTreeSet<(String, String)>,
    delay_ms: Option<f64>,
}

fn planned(line: &Value, from: &str, to: &str) -> Planned {
    let links = line["links"].as_array().unwrap();
    let up = |kind: Option<&str>| {
        links.iter().filter(|l| l["up"] == true && kind.is_none_or(|k| l["kind"] == k)).count() as u64
    };
    let ground = links
        .iter()
        .filter(|l| l["kind"] == "gsl")
        .map(|l| (l["a"].as_str().unwrap().to_owned(), l["b"].as_str().unwrap().to_owned()))
        .collect();
    let delay_us = |a: &str, b: &str| {
        links.iter().find(|l| l["up"] == true && ((l["a"] == a && l["b"] == b) || (l["a"] == b && l["b"] == a)))?["delayUs"]
            .as_f64()
    };
    let mut delay = Some(0.0);
    let mut at = from.to_owned();
    while at != to && delay.is_some() {
        let hop = line["routes"][&at][to].as_str().map(str::to_owned);
        delay = hop.as_deref().and_then(|h| Some(delay? + delay_us(&at, h)?));
        at = hop.unwrap_or_else(|| to.to_owned());
    }
    Planned { links_up: up(None), gsl_up: up(Some("gsl")), ground, delay_ms: delay.map(|us| us / 1e3) }
}

/// The local runner started at 340 s, where a ground-link chain begun afresh keeps other
/// satellites than the model's until the handover at 367 s, applies tick by tick the states
/// the offline planner gives when it starts at the epoch: the same links up, the same path
/// delay, the same handovers at the same ticks.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn a_run_started_later_applies_the_states_the_planner_gives() {
    require_kernel();
    let s = Scenario::new("start", "");
    let run =
        start(&s, &["--start", "340s", "--duration", "40s", "--time-scale", "10", "--paths", "alpha~bravo"]);
    let (status, log) = finish(run, Duration::from_secs(120));
    assert!(status.success(), "{log}");
    let out = orbitnet()
        .arg("plan")
        .arg(&s.file)
        .args(["--from", "0", "--to", "380", "--format", "json", "--routes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let at = |t: f64| -> Planned { planned(&plan[t.round() as usize], "alpha", "bravo") };
    let records = records(&s);
    let ticks: Vec<&Value> = records.iter().filter(|r| r["type"] == "tick").collect();
    assert!(ticks.len() >= 35, "{} ticks applied", ticks.len());
    for tick in &ticks {
        let t = tick["t"].as_f64().unwrap();
        let want = at(t);
        assert_eq!(tick["linksUp"].as_u64(), Some(want.links_up), "links up at {t} s");
        assert_eq!(tick["gslUp"].as_u64(), Some(want.gsl_up), "ground links up at {t} s");
        let delay = tick["paths"][0]["delayMs"].as_f64();
        match (delay, want.delay_ms) {
            (Some(d), Some(w)) => {
                assert!((d - w).abs() < 1e-5, "alpha > bravo at {t} s: run {d} ms, plan {w} ms")
            }
            (d, w) => assert_eq!(d, w, "alpha > bravo at {t} s"),
        }
    }
    // Handovers: the planner's ground links change between consecutive ticks exactly where
    // the run says they did, and the first tick's choice is the planner's too.
    let mut want_handovers = Vec::new();
    for pair in ticks.windows(2) {
        let (t0, t1) = (pair[0]["t"].as_f64().unwrap(), pair[1]["t"].as_f64().unwrap());
        let (before, after) = (at(t0).ground, at(t1).ground);
        for g in ["alpha", "bravo"] {
            let sats = |set: &std::collections::BTreeSet<(String, String)>| -> Vec<String> {
                set.iter().filter(|(a, _)| a == g).map(|(_, b)| b.clone()).collect()
            };
            let (was, is) = (sats(&before), sats(&after));
            if was != is {
                let added: Vec<String> = is.iter().filter(|x| !was.contains(x)).cloned().collect();
                let removed: Vec<String> = was.iter().filter(|x| !is.contains(x)).cloned().collect();
                want_handovers.push((t1, g.to_owned(), added, removed));
            }
        }
    }
    let got_handovers: Vec<(f64, String, Vec<String>, Vec<String>)> = records
        .iter()
        .filter(|r| r["type"] == "handover")
        .map(|r| {
            let names =
                |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
            (
                r["t"].as_f64().unwrap(),
                r["node"].as_str().unwrap().to_owned(),
                names(&r["added"]),
                names(&r["removed"]),
            )
        })
        .collect();
    println!("{} ticks from 340 s as planned from 0 s; handovers {got_handovers:?}", ticks.len());
    assert!(!want_handovers.is_empty(), "the window must hold the handover at 367 s");
    assert_eq!(got_handovers, want_handovers);
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn interrupting_a_run_leaves_nothing_behind() {
    require_kernel();
    let marker = format!("1{}.5", std::process::id());
    let s = Scenario::new("sigint", &sleepers(&marker));
    let (namespaces_before, interfaces_before) = (Netns::list_named(), host_interfaces());
    let mut run = start(&s, &[]);
    wait_until_ticking(&s, &mut run, Duration::from_secs(60));
    assert_eq!(s.namespaces().len(), 10);
    assert_eq!(processes_with(&marker).len(), 10, "every node runs its program");
    assert!(s.dir.join("work/logs/alpha.log").exists() && s.dir.join("work/hosts").exists());
    kill(Pid::from_raw(run.id() as i32), Signal::SIGINT).unwrap();
    let (status, log) = finish(run, Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(Netns::list_named(), namespaces_before);
    assert_eq!(host_interfaces(), interfaces_before);
    assert!(processes_with(&marker).is_empty());
    assert!(!Path::new(&format!("/run/orbitnet/{}.lock", s.name)).exists());
    assert!(records(&s).iter().any(|r| r["type"] == "stop" && r["reason"] == "interrupt"));
}

/// kill -9 leaves namespaces (the programs die with the runner), `orbitnet down` removes
/// them, and the next run starts cleanly; a run while one is running is refused.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn down_cleans_up_after_kill_9_and_a_second_run_is_refused() {
    require_kernel();
    let marker = format!("2{}.5", std::process::id());
    let s = Scenario::new("kill", &sleepers(&marker));
    let namespaces_before = Netns::list_named();
    let mut run = start(&s, &[]);
    wait_until_ticking(&s, &mut run, Duration::from_secs(60));
    let second = orbitnet().arg("run").arg(&s.file).arg("--quiet").output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(err.contains("is already running") && err.contains(&format!("pid {}", run.id())), "{err}");
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    run.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(processes_with(&marker).is_empty(), "programs die with the runner (PR_SET_PDEATHSIG)");
    assert_eq!(s.namespaces().len(), 10, "a killed runner cannot clean up");
    let down = orbitnet().arg("down").arg(&s.file).output().unwrap();
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(String::from_utf8_lossy(&down.stdout).contains("removed 10 network namespaces"));
    assert_eq!(Netns::list_named(), namespaces_before);
    let again = orbitnet()
        .arg("run")
        .arg(&s.file)
        .args(["--quiet", "--duration", "2s", "--workdir"])
        .arg(s.dir.join("w2"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(Netns::list_named(), namespaces_before);
}

/// Editing the file while it runs: a new fault takes effect at the next tick; an invalid
/// edit is reported and ignored, and the emulation goes on.
#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn live_edits_take_effect_and_bad_ones_are_ignored() {
    require_kernel();
    let s = Scenario::new("edit", "");
    let mut run = start(&s, &["--duration", "60s"]);
    wait_until_ticking(&s, &mut run, Duration::from_secs(60));
    let mut f = std::fs::OpenOptions::new().append(true).open(&s.file).unwrap();
    writeln!(f, "  faults:\n  - {{kind: linkDown, a: ring-0-0, b: ring-0-1, at: 0s}}").unwrap();
    drop(f);
    let edited = Instant::now();
    let seen = |what: &dyn Fn(&Value) -> bool| records(&s).iter().any(what);
    while !seen(&|r| r["type"] == "faultBegan") && edited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen(&|r| r["type"] == "edit" && r["accepted"] == true));
    assert!(seen(&|r| r["type"] == "faultBegan" && r["kind"] == "linkDown"), "the edited fault began");
    let ring0 = Netns::open_named(&s.namespace("ring-0-0")).unwrap();
    let links =
        String::from_utf8_lossy(&run_in(&ring0, "ip", &["-o", "link", "show", "isl1"]).stdout).into_owned();
    assert!(!links.contains(",UP") && !links.contains("<UP"), "ring-0-0's link to ring-0-1 is down: {links}");
    std::fs::write(&s.file, "this: is not [a constellation").unwrap();
    let rejected = Instant::now();
    while !seen(&|r| r["type"] == "edit" && r["accepted"] == false)
        && rejected.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen(&|r| r["type"] == "edit" && r["accepted"] == false), "the bad edit is reported");
    let ticks_before = records(&s).iter().filter(|r| r["type"] == "tick").count();
    std::thread::sleep(Duration::from_secs(2));
    assert!(records(&s).iter().filter(|r| r["type"] == "tick").count() > ticks_before, "still running");
    kill(Pid::from_raw(run.id() as i32), Signal::SIGTERM).unwrap();
    let (status, log) = finish(run, Duration::from_secs(30));
    assert!(status.success(), "{log}");
}

/// tiny.yaml's flow `tracks` from alpha to bravo, 200 datagrams a second, and `objectives`.
fn with_flow(faults: &str, objectives: &str) -> String {
    format!(
        "{faults}  traffic:\n  - {{name: tracks, from: alpha, to: bravo, packetsPerSecond: 200, dscp: 46}}\n  objectives:\n{objectives}"
    )
}

fn flows(s: &Scenario) -> Vec<Value> {
    records(s).into_iter().filter(|r| r["type"] == "flow").collect()
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn flows_are_measured_beside_the_model_through_loss_and_a_lost_satellite() {
    require_kernel();
    // The satellite alpha uses at 10 s is lost for 5 s; bravo's links lose 20 % from 20 s.
    let plan = orbitnet_model::compile_yaml(&tiny_without_random_loss()).unwrap();
    let alpha = plan.node_index("alpha").unwrap();
    let state = plan.state_at(orbitnet_model::SimTime::from_nanos(10_000_000_000));
    let serving = &plan.node(state.ground_choice.per_ground[(alpha as usize) - plan.n_sats][0]).name;
    let faults = format!(
        "  faults:\n  - {{name: lost, kind: nodeDown, node: {serving}, at: 10s, duration: 5s}}\n  - {{name: lossy, kind: degraded, node: bravo, lossPct: 20, at: 20s, duration: 10s}}\n"
    );
    let objectives = "  - {flow: tracks, kind: latency, percentile: 50, maxMs: 500}\n  - {flow: tracks, kind: delivery, minPct: 50, window: {during: lossy}}\n  - {flow: tracks, kind: outage, maxS: 1, window: {during: lost}}\n";
    let s = Scenario::new("flows", &with_flow(&faults, objectives));
    let per_traversal = per_traversal_overhead_ms(4);
    let junit = s.dir.join("junit.xml");
    let run = start(&s, &["--duration", "32s", "--check", "--junit", junit.to_str().unwrap()]);
    let (status, log) = finish(run, Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "every objective passes: {log}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"0\" errors=\"0\""), "{xml}");

    let flows = flows(&s);
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    // One-way delay: the model's plus what each traversal costs this machine.
    let mut errors: Vec<f64> = flows
        .iter()
        .filter(|r| r["delayMs"].is_array() && r["modelDelayMs"].is_number())
        .map(|r| r["delayMs"][1].as_f64().unwrap() - f(r, "modelDelayMs") - f(r, "hops") * per_traversal)
        .collect();
    assert!(errors.len() >= 25, "{} ticks with a delay and a model path", errors.len());
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    eprintln!(
        "one-way delay - model - hops x {per_traversal:.3} ms over {} ticks: median {median:.3} ms, min {:.3}, max {:.3}",
        errors.len(),
        errors[0],
        errors[errors.len() - 1]
    );
    assert!(median.abs() <= 0.5, "median error {median:.3} ms");
    // 20 % loss on one traversal: delivery within four standard deviations of 80 %.
    let lossy: Vec<&Value> = flows.iter().filter(|r| (20.0..30.0).contains(&f(r, "t"))).collect();
    let sent: f64 = lossy.iter().map(|r| f(r, "sent")).sum();
    let received: f64 = lossy.iter().map(|r| f(r, "received")).sum();
    let sigma = (0.8 * 0.2 / sent).sqrt();
    eprintln!(
        "degraded: {received} of {sent} delivered ({:.2} %), sigma {:.2} %",
        received / sent * 100.0,
        sigma * 100.0
    );
    assert!(sent >= 1_500.0, "{sent} sent in the degraded window");
    assert!((received / sent - 0.8).abs() <= 4.0 * sigma, "{received} of {sent}");
    // The satellite lost: no gap in delivery longer than a tick.
    let gap = flows
        .iter()
        .filter(|r| (9.0..17.0).contains(&f(r, "t")))
        .map(|r| f(r, "maxGapS"))
        .fold(0.0, f64::max);
    eprintln!("longest gap around the lost satellite: {gap:.3} s");
    assert!(gap <= 1.0, "outage {gap} s");
    let verdicts: Vec<Value> = records(&s).into_iter().filter(|r| r["type"] == "verdict").collect();
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    // The run measured its own per-traversal cost and flagged the ticks beyond it.
    let calibration =
        records(&s).into_iter().find(|r| r["type"] == "calibration").expect("a calibration record");
    let flagged = flows.iter().filter(|r| r["flagged"] == true).count();
    eprintln!("calibration: {calibration}; {flagged} of {} tick records flagged", flows.len());
    assert!(calibration["perTraversalMs"].as_f64().unwrap() >= 0.0);
    assert!(
        flagged * 10 <= flows.len(),
        "{flagged} of {} ticks flagged: the model and the emulation disagree",
        flows.len()
    );
}

#[test]
#[ignore = "kernel tier: needs root and sch_netem; run by make test-kernel"]
fn check_exits_0_when_objectives_pass_1_when_one_fails_2_when_one_cannot_be_judged() {
    require_kernel();
    let cases = [
        ("pass", "  - {flow: tracks, kind: delivery, minPct: 90}\n", 0, "failures=\"0\" errors=\"0\""),
        (
            "fail",
            "  - {flow: tracks, kind: latency, percentile: 50, maxMs: 1}\n",
            1,
            "failures=\"1\" errors=\"0\"",
        ),
        (
            "late",
            "  - {flow: tracks, kind: delivery, minPct: 90, window: {from: 100s, to: 110s}}\n",
            2,
            "failures=\"0\" errors=\"1\"",
        ),
    ];
    for (name, objective, code, counts) in cases {
        let s = Scenario::new(&format!("check-{name}"), &with_flow("", objective));
        let junit = s.dir.join("junit.xml");
        let run = start(&s, &["--duration", "6s", "--junit", junit.to_str().unwrap()]);
        let (status, log) = finish(run, Duration::from_secs(90));
        assert_eq!(status.code(), Some(code), "{name}: {log}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains(counts), "{name}: {xml}");
        assert!(log.contains("OBJECTIVE"), "{name}: the verdict table is printed: {log}");
        let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../mission/tests/data/junit.xsd");
        let lint = Command::new("xmllint").args(["--noout", "--schema", schema]).arg(&junit).output();
        let lint = lint.expect("xmllint (libxml2-utils; scripts/test-kernel.sh installs it)");
        assert!(lint.status.success(), "{name}: {}\n{xml}", String::from_utf8_lossy(&lint.stderr));
    }
}

/// Real routing daemons on tiny.yaml: `protocol` is the spec's `routingProtocol`. At 45 s
/// the satellite alpha uses, ring-0-1, is lost for 10 s.
fn routed(test: &str, routing: &str, protocol: &str) -> Scenario {
    let s = Scenario::new(test, "  faults:\n  - {kind: nodeDown, node: ring-0-1, at: 45s, duration: 10s}\n");
    let yaml = std::fs::read_to_string(&s.file)
        .unwrap()
        .replace("routing: shortestPath", &format!("routing: {routing}\n  routingProtocol: {protocol}"));
    std::fs::write(&s.file, yaml).unwrap();
    s
}

fn state_dir(s: &Scenario) -> PathBuf {
    PathBuf::from(format!("/run/orbitnet/{}.routing", s.name))
}

/// Adjacencies up, counted from every node's daemons (each link counts at both ends).
fn adjacencies(s: &Scenario, routing: &str, daemon: &str) -> usize {
    let mut total = 0;
    for node in std::fs::read_dir(state_dir(s)).unwrap() {
        let dir = node.unwrap().path();
        let (cmd, args, up): (&str, Vec<String>, &str) = match (daemon, routing) {
            ("bird", _) => (
                "birdc",
                vec!["-s".into(), dir.join("bird.ctl").display().to_string(), "show ospf neighbors".into()],
                "Full",
            ),
            (_, "isis") => (
                "vtysh",
                vec![
                    "--vty_socket".into(),
                    dir.display().to_string(),
                    "-c".into(),
                    "show isis neighbor".into(),
                ],
                " Up ",
            ),
            _ => (
                "vtysh",
                vec![
                    "--vty_socket".into(),
                    dir.display().to_string(),
                    "-c".into(),
                    "show ip ospf neighbor".into(),
                ],
                "Full",
            ),
        };
        let out = Command::new(cmd).args(&args).output().unwrap();
        total += String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(up)).count();
    }
    total
}

/// Under `cost: delay`, every up link end's cost in the daemons is its delay at the last
/// tick applied, in 100 us steps (one step either way: the delay drifts between the tick
/// and the read), and some differ from the unit cost.
fn costs_follow_the_model(s: &Scenario, daemon: &str) {
    let plan = orbitnet_model::compile_yaml(&std::fs::read_to_string(&s.file).unwrap()).unwrap();
    let p = plan.routing_protocol.clone().unwrap();
    let t = records(s).iter().rev().find(|r| r["type"] == "tick").unwrap()["t"].as_f64().unwrap();
    let state = plan.state_at(orbitnet_model::SimTime::from_nanos((t * 1e9) as i64));
    let mut checked = Vec::new();
    for node in 0..plan.nodes.len() as orbitnet_model::NodeIdx {
        let dir = state_dir(s).join(&plan.node(node).name);
        let out = if daemon == "bird" {
            Command::new("birdc")
                .args(["-s", &dir.join("bird.ctl").display().to_string(), "show ospf interface"])
                .output()
        } else {
            Command::new("vtysh")
                .args(["--vty_socket", &dir.display().to_string(), "-c", "show ip ospf interface"])
                .output()
        }
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // FRR: "isl1 is up" ... "Cost: 123"; BIRD: " Interface isl1 (...)" ... "Cost: 123".
        let mut iface = None;
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [name, "is", "up", ..] => iface = Some(name.to_string()),
                [_, "is", ..] => iface = None,
                ["Interface", name, ..] => iface = Some(name.to_string()),
                _ => {}
            }
            let Some(cost) = line.split("Cost: ").nth(1) else { continue };
            let Some(name) = iface.take().filter(|n| n != "lo") else { continue };
            let cost: u32 = cost.trim().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            let Some(link) = state.links.iter().find(|l| {
                l.up && ((l.a == node && orbitnet_dataplane::naming::iface_name(l.kind, l.b) == name)
                    || (l.b == node && orbitnet_dataplane::naming::iface_name(l.kind, l.a) == name))
            }) else {
                continue;
            };
            let want = orbitnet_routing::cost(&p, Some(link.delay_ns));
            assert!(
                cost.abs_diff(want) <= 1,
                "{} {name}: cost {cost}, the model's delay {} ns gives {want}",
                plan.node(node).name,
                link.delay_ns
            );
            checked.push(cost);
        }
    }
    let links_up = state.links.iter().filter(|l| l.up).count();
    eprintln!("costs: {} link ends at t = {t} s: {checked:?}", checked.len());
    assert_eq!(checked.len(), 2 * links_up, "a cost for both ends of every link up");
    assert!(checked.iter().any(|&c| c != orbitnet_routing::UNIT_COST), "{checked:?}");
}

fn convergence_of<'a>(records: &'a [Value], kind: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "convergence" && r["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} convergence record"))
}

/// Adjacencies on every up link once converged; the kernel routes then equal the model's
/// shortest paths; the serving satellite lost, every ground pair is forwarded again within
/// the failure detection time plus a hello (the new ground link's adjacency) plus the SPF
/// delay plus two reads; when it returns, the shortest paths come back; nothing is left.
fn daemons_route_around_a_lost_satellite(
    test: &str,
    routing: &str,
    protocol: &str,
    daemon: &str,
    (origination_s, spf_s): (f64, f64),
) {
    require_kernel();
    let s = routed(test, routing, protocol);
    let mut run = start(&s, &["--duration", "65s"]);
    let started = Instant::now();
    let start = loop {
        if let Some(c) = records(&s).into_iter().find(|r| r["type"] == "convergence" && r["kind"] == "start")
        {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no start convergence within 120 s");
        if let Some(status) = run.try_wait().unwrap() {
            panic!("orbitnet run exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("start: {start}");
    assert_eq!(start["outcome"], "shortest", "the daemons' routes equal the model's shortest paths: {start}");
    let links_up =
        records(&s).iter().rev().find(|r| r["type"] == "tick").unwrap()["linksUp"].as_u64().unwrap();
    assert_eq!(adjacencies(&s, routing, daemon) as u64, 2 * links_up, "an adjacency on every link up");
    if protocol.contains("cost: delay") {
        costs_follow_the_model(&s, daemon);
    }
    assert!(!processes_with(&state_dir(&s).display().to_string()).is_empty());
    let (status, out) = finish(run, Duration::from_secs(150));
    assert!(status.success(), "{out}");
    let records = records(&s);
    let lost = convergence_of(&records, "faultBegan");
    eprintln!("lost: {lost}");
    let bound = origination_s + spf_s + 0.2 + 2.0 * 0.05;
    let forwarded = lost["forwardedS"].as_f64().unwrap_or_else(|| panic!("never forwarded again: {lost}"));
    assert!(
        lost["broken"].as_u64().unwrap() > 0,
        "losing the serving satellite cuts the pair at first: {lost}"
    );
    assert!(forwarded <= bound, "forwarded again after {forwarded} s, bound {bound} s: {lost}");
    let back = convergence_of(&records, "faultEnded");
    eprintln!("back: {back}");
    assert!(back["shortestS"].as_f64().is_some(), "the shortest paths come back: {back}");
    assert!(records.iter().all(|r| r["type"] != "daemonsExited"), "no daemon died");
    assert!(!state_dir(&s).exists(), "the daemons' state is removed");
    assert!(processes_with(&state_dir(&s).display().to_string()).is_empty(), "no daemon is left");
}

#[test]
#[ignore = "kernel tier: needs root, sch_netem and frr; run by make test-kernel"]
fn frr_ospf_routes_around_a_lost_satellite() {
    // Failure detection (the old link is down at once; 4 s dead interval at most) and one
    // hello on the new link; SPF delay 50 ms.
    // Costs from the links' delays (tiny's shortest paths by delay are its fewest hops too).
    daemons_route_around_a_lost_satellite("frrospf", "ospf", "{cost: delay}", "frr", (4.0 + 1.0, 0.05));
}

#[test]
#[ignore = "kernel tier: needs root, sch_netem and bird2; run by make test-kernel"]
fn bird_ospf_routes_around_a_lost_satellite() {
    // BIRD (2.0.12's source) originates LSAs and runs SPF only on its 1 s tick, and keeps
    // RFC 2328's MinLSInterval of 5 s with no option to change it: the station's and the
    // new neighbour's router-LSAs with the new adjacency wait for the first tick (1 s) and
    // out the 5 s since their LSAs of the link going down, plus a tick when the tick's
    // timer jitter makes the age fall just short of 5 s (1 s); the others' SPF runs on
    // their next tick (1 s). Measured 6.16, 7.17, 8.17 s.
    daemons_route_around_a_lost_satellite(
        "birdospf",
        "ospf",
        "{daemon: bird, cost: delay}",
        "bird",
        (1.0 + 5.0 + 1.0, 1.0),
    );
}

#[test]
#[ignore = "kernel tier: needs root, sch_netem and frr; run by make test-kernel"]
fn frr_isis_with_bfd_routes_around_a_lost_satellite() {
    daemons_route_around_a_lost_satellite(
        "frrisis",
        "isis",
        "{bfd: {enabled: true, intervalMs: 100, multiplier: 3}}",
        "frr",
        // BFD's detection (3 x 100 ms) and one hello on the new link; SPF delay 50 ms.
        (0.3 + 1.0, 0.05),
    );
}

/// The daemons die with a runner killed by SIGKILL (their launcher leads a PID namespace
/// and has the parent-death signal), and `orbitnet down` removes their state.
#[test]
#[ignore = "kernel tier: needs root, sch_netem and frr; run by make test-kernel"]
fn routing_daemons_restart_when_one_dies_die_with_a_killed_runner_and_down_removes_their_state() {
    require_kernel();
    let s = routed("kill9", "ospf", "{}");
    let mut run = start(&s, &[]);
    wait_until_ticking(&s, &mut run, Duration::from_secs(60));
    let marker = state_dir(&s).display().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with(&format!("{marker}/ring-0-0/ospfd")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ospfd = processes_with(&format!("{marker}/ring-0-0/ospfd"));
    assert!(ospfd.len() == 1, "ospfd runs in ring-0-0");
    // A daemon that dies is reported and its node's daemons started again.
    kill(Pid::from_raw(ospfd[0] as i32), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let restarted = |s: &Scenario| {
        records(s)
            .iter()
            .any(|r| r["type"] == "daemonsExited" && r["node"] == "ring-0-0" && r["restarted"] == true)
    };
    while !restarted(&s) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(restarted(&s), "the exit is reported, and the daemons started again");
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = || processes_with(&format!("{marker}/ring-0-0/ospfd"));
    while (again().is_empty() || again() == ospfd) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(again().len() == 1 && again() != ospfd, "a new ospfd runs in ring-0-0");
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    run.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(processes_with(&marker).is_empty(), "the daemons die with the runner");
    assert!(state_dir(&s).exists(), "a killed runner cannot clean up");
    let down = orbitnet().arg("down").arg(&s.file).output().unwrap();
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(!state_dir(&s).exists(), "down removes the daemons' state");
    // Killed again, the next run clears what was left by itself.
    std::fs::remove_file(s.telemetry()).unwrap();
    let mut run = start(&s, &[]);
    wait_until_ticking(&s, &mut run, Duration::from_secs(60));
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    run.wait().unwrap();
    assert_eq!(s.namespaces().len(), 10);
    let again = orbitnet()
        .arg("run")
        .arg(&s.file)
        .args(["--quiet", "--duration", "3s", "--workdir"])
        .arg(s.dir.join("w2"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(s.namespaces().is_empty() && !state_dir(&s).exists(), "nothing is left");
}

/// The browser view of a running tiny.yaml (`orbitnet run --ui`) in headless Chromium: the
/// page follows the run tick by tick and shows the lost satellite at the very tick the
/// engine applied the loss (emulation ticks, so a slow host cannot fake or break it).
#[test]
#[ignore = "kernel tier: needs root, sch_netem and chromium; run by make test-kernel"]
fn the_browser_view_follows_a_run_and_shows_a_lost_satellite_within_a_tick() {
    require_kernel();
    if let Some(why) = webdriver::missing() {
        panic!("kernel tier, browser view: {why}");
    }
    let s = Scenario::new(
        "ui",
        "  faults:\n  - {name: lost, kind: nodeDown, node: ring-0-1, at: 390s, duration: 10m}\n",
    );
    // The browser first: if it cannot start, no run is left behind.
    let browser = webdriver::Browser::start(1000, 700);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ui = format!("127.0.0.1:{port}");
    let mut run = Stopping(Some(start(&s, &["--start", "300s", "--duration", "300s", "--ui", &ui])));
    wait_until_ticking(&s, run.0.as_mut().unwrap(), Duration::from_secs(60));
    browser.open(&format!("http://{ui}/"));
    let wait = Duration::from_secs(240);
    browser.wait_for("the page is ready", "return window.orbitnet && window.orbitnet.ready;", wait);
    let first = browser.eval("return window.orbitnet.frame().t;", serde_json::json!([]));
    assert!(
        first.as_f64().unwrap() < 390.0,
        "the page was ready only at t = {first} s, after the loss began: it cannot show the change"
    );
    let k = browser.wait_for(
        "the page shows ring-0-1 down",
        "return window.orbitnet.downSince['ring-0-1'];",
        wait,
    );
    let diffs = browser.eval("return window.orbitnet.diffs;", serde_json::json!([]));
    let run = run.0.take().unwrap();
    kill(Pid::from_raw(run.id() as i32), Signal::SIGINT).unwrap();
    let (status, log) = finish(run, Duration::from_secs(60));
    assert!(status.success(), "{log}");
    // The first tick the engine applied at or after the loss (1 s ticks: k = t).
    let applied = records(&s)
        .iter()
        .filter(|r| r["type"] == "tick")
        .map(|r| r["t"].as_f64().unwrap())
        .find(|&t| t >= 390.0)
        .expect("the run applied the loss");
    assert_eq!(
        k.as_f64().unwrap(),
        applied,
        "the page showed the loss at tick {k}, the engine applied it at {applied}"
    );
    assert!(diffs.as_u64().unwrap() > 10, "the page followed the run by diffs: {diffs}");
}

/// A run stopped (Ctrl-C, then waited for) if a test panics while it runs, so that it
/// takes its namespaces down with it.
struct Stopping(Option<Child>);

impl Drop for Stopping {
    fn drop(&mut self) {
        if let Some(mut run) = self.0.take() {
            let _ = kill(Pid::from_raw(run.id() as i32), Signal::SIGINT);
            let _ = run.wait();
        }
    }
}
