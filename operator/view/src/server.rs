//! The page and its data endpoints over HTTP (docs/ui.md). The same handlers serve one
//! source at `/` (`orbitnet plan --ui`, `orbitnet run --ui`) or many at
//! `/ui/<namespace>/<name>/` (the operator).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use crate::source::{LiveHub, Message, PlanView};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const COASTLINES_JSON: &str = include_str!("../assets/coastlines.json");

/// What a page shows.
#[derive(Clone)]
pub enum Source {
    Plan(Arc<PlanView>),
    Live(Arc<LiveHub>),
}

/// Finds the source of `/ui/<namespace>/<name>/` (the operator's constellations), or says
/// why there is none. It may block (it compiles specs).
pub type Lookup = Arc<dyn Fn(&str, &str) -> Result<Source, String> + Send + Sync>;

/// The page and its endpoints for one source, at `/`.
pub fn router(source: Source) -> Router {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/{file}", get(|Path(file): Path<String>| async move { asset(&file) }))
        .route("/api/{what}", get(one))
        .with_state(source)
}

/// The page of every constellation `lookup` knows, at `/ui/<namespace>/<name>/`, and a
/// list of them at `/ui/` (given by `list`, as (namespace, name) pairs).
pub fn multi_router(lookup: Lookup, list: Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui/", get(move || async move { index(&list()) }))
        .route(
            "/ui/{ns}/{name}",
            get(|Path((ns, name)): Path<(String, String)>| async move {
                Redirect::permanent(&format!("/ui/{ns}/{name}/"))
            }),
        )
        .route("/ui/{ns}/{name}/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{ns}/{name}/{file}",
            get(|Path((_, _, file)): Path<(String, String, String)>| async move { asset(&file) }),
        )
        .route("/ui/{ns}/{name}/api/{what}", get(many))
        .with_state(lookup)
}

fn index(list: &[(String, String)]) -> Response {
    let mut html =
        String::from("<!doctype html><meta charset=utf-8><title>orbitnet</title><h1>Constellations</h1><ul>");
    for (ns, name) in list {
        html.push_str(&format!("<li><a href=\"/ui/{ns}/{name}/\">{ns}/{name}</a></li>"));
    }
    if list.is_empty() {
        html.push_str("<li>none yet: apply a Constellation</li>");
    }
    html.push_str("</ul>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn asset(file: &str) -> Response {
    let (kind, body) = match file {
        "index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        "coastlines.json" => ("application/json", COASTLINES_JSON),
        _ => return error(StatusCode::NOT_FOUND, &format!("no file {file:?}")),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, text: &str) -> Response {
    json(status, serde_json::json!({ "error": text }).to_string())
}

fn ok(value: &impl serde::Serialize) -> Response {
    json(StatusCode::OK, crate::source::to_json(value))
}

#[derive(Deserialize, Default)]
struct Params {
    t: Option<f64>,
    speed: Option<f64>,
    a: Option<String>,
    b: Option<String>,
}

async fn one(State(source): State<Source>, Path(what): Path<String>, Query(p): Query<Params>) -> Response {
    api(&source, &what, p).await
}

async fn many(
    State(lookup): State<Lookup>,
    Path((ns, name, what)): Path<(String, String, String)>,
    Query(p): Query<Params>,
) -> Response {
    match tokio::task::spawn_blocking(move || lookup(&ns, &name)).await {
        Ok(Ok(source)) => api(&source, &what, p).await,
        Ok(Err(why)) => error(StatusCode::NOT_FOUND, &why),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// How long a live run's page waits for the next tick to find a path it had not asked for.
const LIVE_PATH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn api(source: &Source, what: &str, p: Params) -> Response {
    if let Some(bad) =
        [("t", p.t), ("speed", p.speed)].into_iter().find(|(_, v)| v.is_some_and(|v| !v.is_finite()))
    {
        return error(StatusCode::BAD_REQUEST, &format!("{} must be a finite number of seconds", bad.0));
    }
    match (what, source) {
        ("scene", Source::Plan(v)) => json(StatusCode::OK, v.scene().to_string()),
        ("scene", Source::Live(h)) => json(StatusCode::OK, h.scene().to_string()),
        ("state", Source::Plan(v)) => {
            let (v, t) = (Arc::clone(v), p.t.unwrap_or_else(|| v.now()));
            blocking(move || ok(&v.frame_at(t))).await
        }
        ("state", Source::Live(h)) => match h.frame() {
            Some(f) => ok(&*f),
            None => error(StatusCode::SERVICE_UNAVAILABLE, "the run has not applied its first tick yet"),
        },
        ("path", _) => {
            let (Some(a), Some(b)) = (p.a, p.b) else {
                return error(StatusCode::BAD_REQUEST, "give two nodes: api/path?a=NAME&b=NAME[&t=SECONDS]");
            };
            let answer = match source {
                Source::Plan(v) => {
                    let (v, t) = (Arc::clone(v), p.t.unwrap_or_else(|| v.now()));
                    match tokio::task::spawn_blocking(move || v.path(&a, &b, t)).await {
                        Ok(answer) => answer,
                        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
                    }
                }
                Source::Live(h) => match h.path(&a, &b, LIVE_PATH_WAIT).await {
                    Some(answer) => answer,
                    None => {
                        return error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &format!("the run applied no tick within {LIVE_PATH_WAIT:?}"),
                        );
                    }
                },
            };
            match answer {
                Ok(path) => ok(&path),
                Err(e) => error(StatusCode::NOT_FOUND, &e.to_string()),
            }
        }
        ("timeline", Source::Plan(v)) => {
            let (events, complete) = v.timeline();
            ok(&serde_json::json!({ "events": events, "complete": complete }))
        }
        ("timeline", Source::Live(h)) => {
            ok(&serde_json::json!({ "events": h.timeline(), "complete": false }))
        }
        ("stream", Source::Plan(v)) => {
            let (tx, rx) = mpsc::channel(4);
            if let Err(e) = v.stream(p.t.unwrap_or_else(|| v.now()), p.speed.unwrap_or(1.0), tx) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot start the stream: {e}"));
            }
            sse(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }))
        }
        ("stream", Source::Live(h)) => sse(live_stream(Arc::clone(h))),
        _ => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no endpoint api/{what}: try api/scene, api/state, api/stream, api/path or api/timeline"
            ),
        ),
    }
}

async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

fn sse(messages: impl Stream<Item = Message> + Send + 'static) -> Response {
    use futures::StreamExt;
    let events = messages.map(|m| Ok::<_, Infallible>(Event::default().event(m.event).data(&*m.data)));
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// The latest frame, then the run's diffs; a whole frame again when the page fell behind.
fn live_stream(hub: Arc<LiveHub>) -> impl Stream<Item = Message> {
    struct Follow {
        hub: Arc<LiveHub>,
        rx: broadcast::Receiver<Message>,
        /// The tick of the frame the page has, once it has one.
        at: Option<i64>,
        first: Option<Message>,
    }
    let (frame, rx) = hub.subscribe();
    let first = frame.as_deref().map(crate::source::frame_message);
    let at = frame.map(|f| f.k);
    futures::stream::unfold(Follow { hub, rx, at, first }, |mut s| async move {
        if let Some(m) = s.first.take() {
            return Some((m, s));
        }
        loop {
            let resync = match s.rx.recv().await {
                // A live edit changed the plan: the page loads the new scene.
                Ok(m) if m.event == "scene" => return Some((m, s)),
                Ok(m) if s.at.is_some_and(|at| m.k > at) => {
                    s.at = Some(m.k);
                    return Some((m, s));
                }
                Ok(_) if s.at.is_some() => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if resync && let Some(f) = s.hub.frame() {
                s.at = Some(f.k);
                return Some((crate::source::frame_message(&f), s));
            }
        }
    })
}

/// Serves `router` on `addr` from a thread of its own until the process ends; returns the
/// address bound (`addr` may ask for port 0).
pub fn spawn(addr: SocketAddr, router: Router) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    std::thread::Builder::new().name("view".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::error!(error = %e, "the view's server stopped");
                    }
                }
                Err(e) => tracing::error!(error = %e, "the view's server cannot listen"),
            }
        });
    })?;
    Ok(bound)
}

/// Serves `router` on `listener` until Ctrl-C or SIGTERM.
pub async fn serve_until_stopped(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::frame::SourceKind;
    use crate::source::PlanView;
    use orbitnet_model::SimTime;

    const BACKBONE: &str = include_str!("../../../scenarios/backbone.yaml");

    fn serve_backbone() -> SocketAddr {
        let plan = Arc::new(orbitnet_model::compile_yaml(BACKBONE).unwrap());
        let view = PlanView::new(plan, SourceKind::Plan, SimTime::ZERO, SimTime::from_nanos(600_000_000_000));
        spawn("127.0.0.1:0".parse().unwrap(), router(Source::Plan(view))).unwrap()
    }

    /// `GET path`: the status code and the body, read until `until` is in it (a stream
    /// does not end) or the server closes.
    fn get(addr: SocketAddr, path: &str, until: Option<&str>) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = s.read(&mut buf).unwrap();
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if n == 0 || until.is_some_and(|u| text.contains(u)) {
                break;
            }
        }
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    #[test]
    fn the_endpoints_answer_as_documented() {
        let addr = serve_backbone();
        let (code, page) = get(addr, "/", None);
        assert_eq!(code, 200);
        assert!(page.contains("app.js"));
        assert_eq!(get(addr, "/coastlines.json", None).0, 200);
        assert_eq!(get(addr, "/nope.txt", None).0, 404);
        let (code, scene) = get(addr, "/api/scene", None);
        assert_eq!(code, 200);
        let scene: serde_json::Value = serde_json::from_str(&scene).unwrap();
        assert_eq!(scene["nodes"].as_array().unwrap().len(), 72);
        let (code, frame) = get(addr, "/api/state?t=200.5", None);
        assert_eq!(code, 200);
        let frame: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(frame["t"], 200.0, "rounded down to a tick");
        assert_eq!(get(addr, "/api/state?t=NaN", None).0, 400);
        assert_eq!(get(addr, "/api/state?t=inf", None).0, 400);
        assert_eq!(get(addr, "/api/stream?speed=inf", None).0, 400);
        assert_eq!(get(addr, "/api/path?a=thule", None).0, 400);
        let (code, missing) = get(addr, "/api/path?a=thule&b=atlantis", None);
        assert_eq!(code, 404);
        assert!(missing.contains("atlantis"), "{missing}");
        let (code, path) = get(addr, "/api/path?a=thule&b=vandenberg&t=100", None);
        assert_eq!(code, 200);
        assert!(path.contains("\"from\":\"thule\""), "{path}");
        assert_eq!(get(addr, "/api/nothing", None).0, 404);
    }

    /// The stream: one whole frame, then a diff per tick, and `end` at the view's end.
    #[test]
    fn a_plan_streams_a_frame_then_diffs_then_ends() {
        let addr = serve_backbone();
        let (code, body) = get(addr, "/api/stream?t=590&speed=3600", Some("event: end"));
        assert_eq!(code, 200);
        let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
        assert_eq!(events.first(), Some(&"frame"), "{body}");
        assert_eq!(events.iter().filter(|e| **e == "diff").count(), 10, "590 to 600 s");
        assert_eq!(events.last(), Some(&"end"));
    }
}
