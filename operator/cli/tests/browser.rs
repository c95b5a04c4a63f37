//! The browser tier (DESIGN.md §7, tier 6): the page of `orbitnet plan --ui` in a real
//! headless Chromium, checked against the planner's own output. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/browser/`; look at them.

// Each test binary uses part of the driver.
#[allow(dead_code)]
#[path = "support/webdriver.rs"]
mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use webdriver::Browser;

const WAIT: Duration = Duration::from_secs(60);

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios").join(name)
}

pub fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser").join(name)
}

fn require_browser() {
    if let Some(why) = webdriver::missing() {
        panic!("browser tier: {why}");
    }
}

/// `orbitnet plan FILE --ui 127.0.0.1:0`, and the address it serves.
struct PlanServer {
    child: Child,
    url: String,
}

impl PlanServer {
    fn start(file: &str) -> PlanServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orbitnet"))
            .args(["plan", scenario(file).to_str().unwrap(), "--ui", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("orbitnet plan --ui starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("{line}"));
        PlanServer { url: url.to_owned(), child }
    }
}

impl Drop for PlanServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn planner(file: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orbitnet"))
        .args(["plan", scenario(file).to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The planner's JSON state at `t`.
fn model_at(file: &str, t: f64) -> Value {
    serde_json::from_str(&planner(file, &["--at", &t.to_string(), "--format", "json"])).unwrap()
}

/// The page, loaded and drawn.
fn page(server: &PlanServer) -> Browser {
    let browser = Browser::start(1400, 900);
    browser.open(&server.url);
    browser.wait_for("the page is ready", "return window.orbitnet && window.orbitnet.ready;", WAIT);
    browser
}

/// Moves the slider to `t` as a user does, and waits until the page has drawn that tick.
fn slide_to(browser: &Browser, t: f64) {
    browser.eval(
        "const s = document.getElementById('slider'); s.value = arguments[0];
         s.dispatchEvent(new Event('input', {bubbles: true}));
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([t]),
    );
    browser.wait_for(
        &format!("the page draws t = {t}"),
        &format!("const f = window.orbitnet.frame(); return f && f.t === {t};"),
        WAIT,
    );
}

fn drawn(browser: &Browser) -> Value {
    browser.eval("return window.orbitnet.drawn;", json!([]))
}

/// What the page drew last (`window.orbitnet.drawn`) equals backbone's model at `t`: the
/// satellites, stations and platforms placed, and the links up, down, by kind.
fn assert_draws_the_model(browser: &Browser, t: f64) {
    let model = model_at("backbone.yaml", t);
    let nodes = model["nodes"].as_array().unwrap();
    let placed = |kind: &str| nodes.iter().filter(|n| n["kind"] == kind && !n["latDeg"].is_null()).count();
    let links = model["links"].as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| links.iter().filter(|l| f(l)).count();
    let want = json!({
        "satellites": placed("satellite"),
        "stations": placed("groundStation"),
        "platforms": placed("platform"),
        "linksUp": count(&|l| l["up"] == true),
        "linksDown": count(&|l| l["up"] == false),
        "isl": count(&|l| l["kind"] == "isl"),
        "gsl": count(&|l| l["kind"] == "gsl"),
    });
    let got = drawn(browser);
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "t = {t} s: {k} drawn {} but the model has {v} (drawn: {got})", got[k]);
    }
}

/// The numbers of satellites, stations, platforms and links (up, down, by kind) the page
/// draws equal the model's at that time, at three times: before, during and after faults.
#[test]
#[ignore = "browser tier: needs chromium and chromium-driver; run by scripts/test-browser.sh"]
fn the_page_draws_the_models_nodes_and_links() {
    require_browser();
    let server = PlanServer::start("backbone.yaml");
    let browser = page(&server);
    for t in [0.0, 200.0, 400.0] {
        slide_to(&browser, t);
        assert_draws_the_model(&browser, t);
        let shot = browser.screenshot(&artifact(&format!("backbone-t{t}.png")));
        eprintln!("screenshot: {}", shot.display());
    }
}

/// The slider crosses the laser cut (linkDown polar-0-0 - polar-0-1 from 60 s to 90 s) and
/// the lost satellite (nodeDown polar-1-3 from 180 s to 300 s): the page shows each as the
/// model has it on either side.
#[test]
#[ignore = "browser tier: needs chromium and chromium-driver; run by scripts/test-browser.sh"]
fn the_slider_crosses_faults_and_the_page_follows() {
    require_browser();
    let server = PlanServer::start("backbone.yaml");
    let browser = page(&server);
    let link_in_model = |t: f64| -> String {
        let model = model_at("backbone.yaml", t);
        let link = model["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["a"] == "polar-0-0" && l["b"] == "polar-0-1")
            .cloned()
            .expect("the model has the link");
        if link["up"] == true { "up".into() } else { "down".into() }
    };
    let mut seen = Vec::new();
    for t in [50.0, 70.0, 95.0] {
        slide_to(&browser, t);
        let on_page = browser.eval("return window.orbitnet.linkState('polar-0-1', 'polar-0-0');", json!([]));
        assert_eq!(on_page, json!(link_in_model(t)), "t = {t} s");
        seen.push(on_page);
        if t == 70.0 {
            browser.screenshot(&artifact("backbone-laser-cut.png"));
        }
    }
    assert_eq!(seen, vec![json!("up"), json!("down"), json!("up")], "the cut is seen");
    for (t, want) in [(170.0, "up"), (200.0, "down"), (310.0, "up")] {
        slide_to(&browser, t);
        let on_page = browser.eval("return window.orbitnet.nodeState('polar-1-3');", json!([]));
        assert_eq!(on_page, json!(want), "polar-1-3 at t = {t} s");
    }
}

/// Play from 50 s at 10x across the laser cut (60-90 s), pause inside it: the page, which
/// got one whole frame and then only the stream's diffs, draws the model's state there.
#[test]
#[ignore = "browser tier: needs chromium and chromium-driver; run by scripts/test-browser.sh"]
fn playing_the_plan_draws_the_model_from_diffs() {
    require_browser();
    let server = PlanServer::start("backbone.yaml");
    let browser = page(&server);
    slide_to(&browser, 50.0);
    browser.eval(
        "const s = document.getElementById('speed'); s.value = '10';
         s.dispatchEvent(new Event('change', {bubbles: true}));
         document.getElementById('play').click();",
        json!([]),
    );
    browser.wait_for("the plan plays to 70 s", "return window.orbitnet.frame().t >= 70;", WAIT);
    browser.eval("document.getElementById('play').click();", json!([]));
    // Paused: the frame drawn stays.
    std::thread::sleep(Duration::from_millis(500));
    let t = browser.eval("return window.orbitnet.frame().t;", json!([])).as_f64().unwrap();
    assert_eq!(browser.eval("return window.orbitnet.frame().t;", json!([])).as_f64().unwrap(), t, "paused");
    assert!((70.0..90.0).contains(&t), "paused at t = {t}, not inside the cut");
    let diffs = browser.eval("return window.orbitnet.diffs;", json!([])).as_u64().unwrap();
    assert!(diffs >= 20, "the page followed the stream's diffs: {diffs}");
    assert_draws_the_model(&browser, t);
    assert_eq!(
        browser.eval("return window.orbitnet.linkState('polar-0-0', 'polar-0-1');", json!([])),
        json!("down")
    );
    browser.screenshot(&artifact("backbone-played-to-the-cut.png"));
}

/// A click on thule, then on vandenberg: the page shows the path `orbitnet plan --routes`
/// prints for that pair at that time, and its one-way delay.
#[test]
#[ignore = "browser tier: needs chromium and chromium-driver; run by scripts/test-browser.sh"]
fn a_click_on_two_stations_shows_the_planners_path() {
    require_browser();
    let server = PlanServer::start("backbone.yaml");
    let browser = page(&server);
    for t in [100.0, 250.0] {
        slide_to(&browser, t);
        for name in ["thule", "vandenberg"] {
            let at = browser.eval("return window.orbitnet.screenOf(arguments[0]);", json!([name]));
            assert!(at.is_object(), "{name} is not on the page at t = {t}: {at}");
            browser.click_at(at["x"].as_f64().unwrap(), at["y"].as_f64().unwrap());
        }
        let shown = browser.wait_for(
            "a path is shown",
            &format!("const p = window.orbitnet.path(); return p && p.t === {t} && p;"),
            WAIT,
        );
        let table = planner("backbone.yaml", &["--at", &t.to_string(), "--routes"]);
        let line = table
            .lines()
            .find(|l| l.contains("  thule > ") && l.trim_end().ends_with(" > vandenberg"))
            .unwrap_or_else(|| panic!("no thule - vandenberg path at {t}:\n{table}"));
        let (delay, hops) = line.trim().split_once(" ms  ").unwrap();
        let want: Vec<&str> = hops.split(" > ").collect();
        let got: Vec<&str> = shown["nodes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        assert_eq!(got, want, "t = {t} s");
        assert_eq!(format!("{:.3}", shown["delayMs"].as_f64().unwrap()), delay.trim(), "t = {t} s");
        let panel = browser.eval("return document.getElementById('path').textContent;", json!([]));
        let panel = panel.as_str().unwrap();
        assert!(panel.contains(&want.join(" → ")), "the panel lists the path: {panel}");
        browser.screenshot(&artifact(&format!("backbone-path-t{t}.png")));
        // Escape clears the selection before the next pair.
        browser.eval("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}));", json!([]));
    }
}

/// Proportional set size of Chromium's renderer processes, KiB: their memory, with what
/// they share with other processes (libraries) divided among those.
fn renderer_pss_kib() -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = entry.path();
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("chromium") && cmdline.contains("--type=renderer") {
            let rollup = std::fs::read_to_string(dir.join("smaps_rollup")).unwrap_or_default();
            total += rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Not a test: `scripts/bench-ui.sh` runs it. Frame time and memory in Chromium, and the
/// bytes a tick costs on the stream, for backbone and for Starlink shell 1 + 100 stations.
#[test]
#[ignore = "benchmark: run by scripts/bench-ui.sh"]
fn bench_frame_time_memory_and_bytes_per_tick() {
    require_browser();
    for file in ["backbone.yaml", "starlink-shell1.yaml"] {
        let server = PlanServer::start(file);
        let browser = Browser::start(1400, 900);
        let started = std::time::Instant::now();
        browser.open(&server.url);
        browser.wait_for("the page is ready", "return window.orbitnet && window.orbitnet.ready;", WAIT);
        let load_s = started.elapsed().as_secs_f64();
        let drawn = drawn(&browser);
        let bench = |view: &str| {
            browser.eval("window.orbitnet.setView(arguments[0]);", json!([view]));
            browser.eval_async(
                "const done = arguments[arguments.length - 1]; window.orbitnet.bench(600).then(done);",
                json!([]),
            )
        };
        let map = bench("map");
        let globe = bench("globe");
        browser.eval("window.orbitnet.setView('map');", json!([]));
        // Play 60 ticks at 10 x: what the stream costs per tick.
        browser.eval(
            "document.getElementById('speed').value = '10'; document.getElementById('play').click();",
            json!([]),
        );
        browser.wait_for("60 diffs", "return window.orbitnet.diffs >= 60;", Duration::from_secs(120));
        let playing = bench("map");
        browser.eval("document.getElementById('play').click();", json!([]));
        let (bytes, diffs) = (
            browser.eval("return window.orbitnet.bytes;", json!([])).as_f64().unwrap(),
            browser.eval("return window.orbitnet.diffs;", json!([])).as_f64().unwrap(),
        );
        let heap =
            browser.eval("return performance.memory ? performance.memory.usedJSHeapSize : null;", json!([]));
        // The stream's first event is a whole frame; the rest are the ticks' diffs.
        let frame_bytes = browser
            .eval("return fetch('api/state?t=0').then(r => r.text()).then(t => t.length);", json!([]))
            .as_f64()
            .unwrap();
        println!("{file}: drawn {drawn}; page ready in {load_s:.2} s");
        println!("  map:   {map}");
        println!("  globe: {globe}");
        println!("  map while playing at 10x: {playing}");
        println!(
            "  stream: {diffs} diffs, {:.0} bytes per tick (a whole frame: {frame_bytes} bytes)",
            (bytes - frame_bytes) / diffs
        );
        println!(
            "  memory: JS heap {:.1} MiB, renderer processes' PSS {:.0} MiB",
            heap.as_f64().unwrap_or(0.0) / 1048576.0,
            renderer_pss_kib() as f64 / 1024.0
        );
    }
}
