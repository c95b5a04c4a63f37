//! A headless Chromium driven over WebDriver (W3C, through Debian's `chromedriver`), for
//! the browser tests: just the commands they use, over plain HTTP/1.1 on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Why the browser tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    [CHROMIUM, CHROMEDRIVER].iter().find(|p| !Path::new(p).exists()).map(|p| {
        format!("{p} is missing: apt-get install chromium chromium-driver (scripts/install-deps.sh does)")
    })
}

pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    /// chromedriver's and Chromium's temporary directory (their profile, their singleton
    /// socket), removed with the browser: chromedriver, killed, leaves its own behind.
    tmp: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One request to chromedriver; its JSON answer's `value`, or the WebDriver error.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("chromedriver at {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut text = Vec::new();
    match length {
        Some(n) => {
            text.resize(n, 0);
            reader.read_exact(&mut text).map_err(|e| e.to_string())?;
        }
        None => {
            reader.read_to_end(&mut text).map_err(|e| e.to_string())?;
        }
    }
    let answer: Value = serde_json::from_slice(&text).map_err(|e| format!("{status}: {e}"))?;
    if !status.contains(" 200") {
        return Err(format!("{method} {path}: {status}: {}", answer["value"]));
    }
    Ok(answer["value"].clone())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let tmp = std::env::temp_dir().join(format!("orbitnet-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while call(addr, "GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {addr} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", format!("--window-size={width},{height}")],
            },
        }}});
        let mut browser = Browser { driver, addr, session: String::new(), tmp };
        let session = call(addr, "POST", "/session", Some(&caps)).expect("a Chromium session");
        browser.session = session["sessionId"].as_str().expect("a session id").to_owned();
        browser
    }

    fn session(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        call(self.addr, method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn open(&self, url: &str) {
        self.session("POST", "/url", Some(&json!({ "url": url }))).expect("the page loads");
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.session("POST", "/execute/sync", Some(&json!({ "script": script, "args": args })))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Runs `script`, whose last argument is a callback to call with the result.
    pub fn eval_async(&self, script: &str, args: Value) -> Value {
        self.session("POST", "/timeouts", Some(&json!({ "script": 300_000 }))).expect("timeouts");
        self.session("POST", "/execute/async", Some(&json!({ "script": script, "args": args })))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns something truthy, for up to `timeout`.
    pub fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script, json!([]));
            if !(v.is_null() || v == json!(false)) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: not within {timeout:?} ({script})");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A real click (pointer down and up) at viewport CSS pixels `x`, `y`.
    pub fn click_at(&self, x: f64, y: f64) {
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "x": x.round() as i64, "y": y.round() as i64, "origin": "viewport"},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerUp", "button": 0},
            ],
        }]});
        self.session("POST", "/actions", Some(&actions)).expect("the click");
    }

    /// Saves a screenshot of the page as PNG.
    pub fn screenshot(&self, to: &Path) -> PathBuf {
        let b64 = self.session("GET", "/screenshot", None).expect("a screenshot");
        let png = decode_base64(b64.as_str().unwrap());
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(to, png).unwrap();
        to.to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.session("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Chromium may still be writing its profile as it quits: try again for a few seconds.
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.tmp).is_ok() || !self.tmp.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, &c| (acc << 6) | value(c)) << (6 * (4 - chunk.len()));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
