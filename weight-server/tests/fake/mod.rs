//! A fake Kubernetes API server on 127.0.0.1 (port 0) for the `kube_*`
//! tests (a module of each test that uses it): list and watch of pods and
//! services (all namespaces or one) and nodes, with resourceVersion, label
//! selectors (`k=v,...`) and JSON
//! lines watch streams. Tests mutate its objects; open watches see the
//! events. The server task is aborted when the [`FakeApi`] is dropped.
#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One stored change: (resourceVersion, kind, event type, object).
#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    kind: &'static str,
    kind_event: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    /// (kind, namespace, name) → object
    objects: BTreeMap<(&'static str, String, String), Value>,
    log: Vec<Change>,
    /// Answer 500 to node requests while set.
    fail_nodes: bool,
    requests: Vec<String>,
}

type Shared = Arc<(Mutex<Inner>, broadcast::Sender<Change>)>;

/// The fake API server; dropping it stops it.
pub struct FakeApi {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key(obj: &Value) -> (String, String) {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or("").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

fn matches(obj: &Value, namespace: Option<&str>, selector: Option<&str>) -> bool {
    if let Some(ns) = namespace
        && obj["metadata"]["namespace"].as_str() != Some(ns)
    {
        return false;
    }
    selector
        .into_iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .all(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            obj["metadata"]["labels"][k].as_str() == Some(v)
        })
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let (tx, _) = broadcast::channel(1024);
        let shared: Shared = Arc::new((Mutex::new(Inner::default()), tx));
        let app = Router::new()
            .route(
                "/api/v1/pods",
                get(|s: State<Shared>, q: Query<BTreeMap<String, String>>| {
                    serve(s, q, "Pod", None)
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods",
                get(
                    |s: State<Shared>,
                     Path(ns): Path<String>,
                     q: Query<BTreeMap<String, String>>| {
                        serve(s, q, "Pod", Some(ns))
                    },
                ),
            )
            .route(
                "/api/v1/services",
                get(|s: State<Shared>, q: Query<BTreeMap<String, String>>| {
                    serve(s, q, "Service", None)
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/services",
                get(
                    |s: State<Shared>,
                     Path(ns): Path<String>,
                     q: Query<BTreeMap<String, String>>| {
                        serve(s, q, "Service", Some(ns))
                    },
                ),
            )
            .route(
                "/api/v1/nodes",
                get(|s: State<Shared>, q: Query<BTreeMap<String, String>>| {
                    serve(s, q, "Node", None)
                }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeApi { addr, shared, task }
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        weight_server::topology::kube::client(config).unwrap()
    }

    /// Create or replace an object (`kind` "Pod" or "Node").
    pub fn apply(&self, kind: &'static str, mut object: Value) {
        let (lock, tx) = &*self.shared;
        let mut inner = lock.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        object["apiVersion"] = "v1".into();
        object["kind"] = kind.into();
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let (ns, name) = key(&object);
        let old = inner.objects.insert((kind, ns, name), object.clone());
        let change = Change {
            rv,
            kind,
            kind_event: if old.is_some() { "MODIFIED" } else { "ADDED" },
            object,
        };
        inner.log.push(change.clone());
        let _ = tx.send(change);
    }

    pub fn delete(&self, kind: &'static str, namespace: &str, name: &str) {
        let (lock, tx) = &*self.shared;
        let mut inner = lock.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        let Some(mut object) =
            inner
                .objects
                .remove(&(kind, namespace.to_string(), name.to_string()))
        else {
            panic!("no {kind} {namespace}/{name}");
        };
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        let change = Change {
            rv,
            kind,
            kind_event: "DELETED",
            object,
        };
        inner.log.push(change.clone());
        let _ = tx.send(change);
    }

    pub fn fail_nodes(&self, fail: bool) {
        self.shared.0.lock().unwrap().fail_nodes = fail;
    }

    /// Request lines seen so far (`GET /path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().requests.clone()
    }
}

async fn serve(
    State(shared): State<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
    kind: &'static str,
    namespace: Option<String>,
) -> Response {
    let (lock, tx) = &*shared;
    let ns = namespace.as_deref();
    let selector = q.get("labelSelector").map(String::as_str);
    let mut inner = lock.lock().unwrap();
    inner.requests.push(format!("{kind} ns={ns:?} {q:?}"));
    if kind == "Node" && inner.fail_nodes {
        let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "message": "nodes unavailable", "reason": "InternalError", "code": 500});
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    }
    let watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    if !watch {
        let items: Vec<Value> = inner
            .objects
            .iter()
            .filter(|((k, _, _), o)| *k == kind && matches(o, ns, selector))
            .map(|(_, o)| o.clone())
            .collect();
        let list = json!({"apiVersion": "v1", "kind": format!("{kind}List"),
                          "metadata": {"resourceVersion": inner.rv.to_string()}, "items": items});
        return axum::Json(list).into_response();
    }
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let keep = {
        let (ns, selector) = (ns.map(str::to_string), selector.map(str::to_string));
        move |c: &Change| c.kind == kind && matches(&c.object, ns.as_deref(), selector.as_deref())
    };
    // Backlog and subscription under one lock: no event is lost or doubled.
    let backlog: Vec<Change> = inner
        .log
        .iter()
        .filter(|c| c.rv > since && keep(c))
        .cloned()
        .collect();
    let rx = tx.subscribe();
    let last = inner.rv;
    drop(inner);
    let line = |c: &Change| -> Result<Bytes, Infallible> {
        let mut s = json!({"type": c.kind_event, "object": c.object}).to_string();
        s.push('\n');
        Ok(Bytes::from(s))
    };
    let live = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(c) => return Some((c, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |c| std::future::ready(c.rv > last && keep(c)));
    let stream = futures::stream::iter(backlog)
        .chain(live)
        .map(move |c| line(&c));
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A managed pod object.
pub fn pod(ns: &str, name: &str, app: &str, node: &str, ip: &str, ready: bool) -> Value {
    json!({
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                     "labels": {"app": app, "mplb.io/managed": "true", "mplb.io/tenant": format!("tenant-{app}")},
                     "annotations": {"mplb.io/fair-share": "1200"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"containerPort": 8080}],
                 "resources": {"requests": {"cpu": "250m"}}}]},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

/// A node object with allocatable CPU.
pub fn node(name: &str, cpu: &str) -> Value {
    json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu}, "capacity": {"cpu": cpu},
           "images": [{"names": ["registry/some-image:1"], "sizeBytes": 1}]}})
}
