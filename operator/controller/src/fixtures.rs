//! A mocked API server for the reconciler's unit tests, as in kube-rs's controller-rs: the
//! test lists the requests it expects, in order, and the verifier asserts each one the
//! reconciler makes and answers it.

use std::sync::Arc;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use crate::controller::{Context, Settings};
use crate::metrics::Metrics;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request: its method, a path prefix, and how many of them (they may come in
/// any order among themselves: pods are written concurrently).
pub struct Expect {
    pub method: &'static str,
    pub path: String,
    pub count: usize,
    /// The answer: status code and body, given the request's body.
    pub answer: Answer,
}

pub type Answer = Box<dyn Fn(&Value) -> (u16, Value) + Send>;

impl Expect {
    pub fn one(method: &'static str, path: impl Into<String>, answer: Answer) -> Self {
        Self { method, path: path.into(), count: 1, answer }
    }

    pub fn many(method: &'static str, path: impl Into<String>, count: usize, answer: Answer) -> Self {
        Self { method, path: path.into(), count, answer }
    }
}

/// Echoes the request's object back, as a successful write does.
pub fn echo() -> Answer {
    Box::new(|body| (200, body.clone()))
}

/// Always this object.
pub fn object(value: Value) -> Answer {
    Box::new(move |_| (200, value.clone()))
}

/// A conflict, as a second writer gets.
pub fn conflict() -> Answer {
    Box::new(|_| {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                            "code": 409, "message": "the object has been modified"});
        (409, status)
    })
}

pub struct ApiServerVerifier(Handle);

/// A context whose client talks to the verifier.
pub fn context() -> (Arc<Context>, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "test");
    let ctx = Context::new(
        client,
        "test".into(),
        Arc::new(Metrics::default()),
        Settings::default(),
        kube::runtime::reflector::store().0,
    );
    (Arc::new(ctx), ApiServerVerifier(handle))
}

impl ApiServerVerifier {
    /// Answers the expected requests in order; panics on any other. Returns the bodies seen,
    /// per expectation, and the mock's handle: kept alive, a request after the expected ones
    /// waits for an answer that never comes (and the test's timeout fails it) instead of
    /// failing fast into an error the reconciler might ignore.
    pub fn run(mut self, expected: Vec<Expect>) -> tokio::task::JoinHandle<(Vec<Vec<Value>>, Handle)> {
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for e in expected {
                let mut bodies = Vec::new();
                for _ in 0..e.count {
                    let (request, send) =
                        self.0.next_request().await.expect("the reconciler made no more requests");
                    let (method, uri) = (request.method().to_string(), request.uri().to_string());
                    assert!(
                        method == e.method && uri.starts_with(&e.path),
                        "expected {} {}..., got {method} {uri}",
                        e.method,
                        e.path
                    );
                    let bytes = request.into_body().collect_bytes().await.expect("a request body");
                    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let (code, answer) = (e.answer)(&body);
                    let response = Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
                        .expect("a response");
                    send.send_response(response);
                    bodies.push(body);
                }
                seen.push(bodies);
            }
            (seen, self.0)
        })
    }
}
