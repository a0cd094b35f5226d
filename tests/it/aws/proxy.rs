//! A pass-through HTTP proxy in front of moto that injects faults on chosen requests: a
//! failing S3 or DynamoDB call in the middle of a batch, on cue rather than by timing.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Clone, Copy, Debug)]
pub enum Action {
    /// Answer with this status without forwarding: the request never happened.
    Respond(u16),
    /// Forward, then answer 500: the request took effect but the client cannot know.
    LoseResponse,
    /// Hold the request this long, then forward it: the client waits, mid-call.
    HoldBefore(std::time::Duration),
    /// Forward, then hold the answer this long: the call took effect, the client waits.
    HoldAfter(std::time::Duration),
}

struct Fault {
    method: &'static str,
    path_contains: String,
    /// Only requests whose body holds this (a DynamoDB call is told apart by its body).
    body_contains: Option<String>,
    action: Action,
    remaining: usize,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    triggered: Arc<AtomicUsize>,
}

pub struct FaultProxy {
    pub endpoint: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: Arc::new(Mutex::new(Vec::new())),
            triggered: Arc::new(AtomicUsize::new(0)),
        };
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            shared,
            task,
        }
    }

    /// Applies `action` to the next `times` requests with `method` whose path contains
    /// `path_contains`.
    pub fn inject(&self, method: &'static str, path_contains: &str, action: Action, times: usize) {
        self.shared.faults.lock().expect("faults").push(Fault {
            method,
            path_contains: path_contains.to_string(),
            body_contains: None,
            action,
            remaining: times,
        });
    }

    /// As [`FaultProxy::inject`], on requests whose body also holds `body_contains`.
    pub fn inject_body(
        &self,
        method: &'static str,
        path_contains: &str,
        body_contains: &str,
        action: Action,
        times: usize,
    ) {
        self.shared.faults.lock().expect("faults").push(Fault {
            method,
            path_contains: path_contains.to_string(),
            body_contains: Some(body_contains.to_string()),
            action,
            remaining: times,
        });
    }

    pub fn clear(&self) {
        self.shared.faults.lock().expect("faults").clear();
    }

    /// How many requests a fault was applied to.
    pub fn triggered(&self) -> usize {
        self.shared.triggered.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error_response(status: u16) -> Response<Full<Bytes>> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Error><Code>InjectedFault</Code><Message>fault injected by the test proxy</Message></Error>";
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

async fn handle(
    shared: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(error_response(400)),
    };
    let action = {
        let mut faults = shared.faults.lock().expect("faults");
        faults
            .iter_mut()
            .find(|f| {
                f.remaining > 0
                    && parts.method.as_str() == f.method
                    && parts.uri.path().contains(&f.path_contains)
                    && f.body_contains.as_ref().is_none_or(|needle| {
                        body.windows(needle.len()).any(|w| w == needle.as_bytes())
                    })
            })
            .map(|f| {
                f.remaining -= 1;
                f.action
            })
    };
    if action.is_some() {
        shared.triggered.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(Action::Respond(status)) = action {
        return Ok(error_response(status));
    }
    if let Some(Action::HoldBefore(pause)) = action {
        tokio::time::sleep(pause).await;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        forward = forward.header(name, value);
    }
    let Ok(forward) = forward.body(Full::new(body)) else {
        return Ok(error_response(400));
    };
    let upstream = match shared.client.request(forward).await {
        Ok(r) => r,
        Err(_) => return Ok(error_response(502)),
    };
    let (mut parts, body) = upstream.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(error_response(502)),
    };
    if matches!(action, Some(Action::LoseResponse)) {
        return Ok(error_response(500));
    }
    if let Some(Action::HoldAfter(pause)) = action {
        tokio::time::sleep(pause).await;
    }
    parts.headers.remove("transfer-encoding");
    parts.headers.remove("connection");
    Ok(Response::from_parts(parts, Full::new(body)))
}
