//! Routes and virtual hosts of a listener's route configuration, including
//! the per-pod routes of subset routing.

use std::time::Duration;

use serde_json::{Value, json};

use super::duration;

/// What part of the path a route matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Paths starting with this.
    Prefix(String),
    /// Exactly this path.
    Path(String),
}

/// A request header that must equal a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// Its exact value.
    pub exact: String,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward to a cluster, with an optional route timeout.
    Cluster {
        /// The cluster.
        name: String,
        /// Route timeout (Envoy's default, 15 s, when absent).
        timeout: Option<Duration>,
    },
    /// Answer directly.
    Direct {
        /// Status code.
        status: u16,
        /// Inline body, if any.
        body: Option<String>,
    },
}

/// One route of a virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path match.
    pub path: PathMatch,
    /// Headers that must match too.
    pub headers: Vec<HeaderMatch>,
    /// What it does.
    pub action: Action,
}

impl Route {
    /// Every path (`prefix: /`) to `cluster`.
    pub fn to_cluster(cluster: impl Into<String>) -> Self {
        Route {
            path: PathMatch::Prefix("/".into()),
            headers: Vec::new(),
            action: Action::Cluster {
                name: cluster.into(),
                timeout: None,
            },
        }
    }

    /// Every path answered directly.
    pub fn direct(status: u16, body: Option<&str>) -> Self {
        Route {
            path: PathMatch::Prefix("/".into()),
            headers: Vec::new(),
            action: Action::Direct {
                status,
                body: body.map(str::to_string),
            },
        }
    }

    /// Match exactly `path` instead.
    pub fn path(mut self, path: &str) -> Self {
        self.path = PathMatch::Path(path.into());
        self
    }

    /// Also require header `name` to equal `exact`.
    pub fn header(mut self, name: &str, exact: &str) -> Self {
        self.headers.push(HeaderMatch {
            name: name.into(),
            exact: exact.into(),
        });
        self
    }

    /// Set the route timeout (cluster routes only).
    pub fn timeout(mut self, d: Duration) -> Self {
        if let Action::Cluster { timeout, .. } = &mut self.action {
            *timeout = Some(d);
        }
        self
    }

    /// The route as Envoy configuration.
    pub fn to_json(&self) -> Value {
        let mut m = match &self.path {
            PathMatch::Prefix(p) => json!({"prefix": p}),
            PathMatch::Path(p) => json!({"path": p}),
        };
        if !self.headers.is_empty() {
            m["headers"] = self
                .headers
                .iter()
                .map(|h| json!({"name": h.name, "string_match": {"exact": h.exact}}))
                .collect();
        }
        let mut r = json!({"match": m});
        match &self.action {
            Action::Cluster { name, timeout } => {
                r["route"] = json!({"cluster": name});
                if let Some(t) = timeout {
                    r["route"]["timeout"] = duration(*t).into();
                }
            }
            Action::Direct { status, body } => {
                r["direct_response"] = json!({"status": status});
                if let Some(b) = body {
                    r["direct_response"]["body"] = json!({"inline_string": b});
                }
            }
        }
        r
    }
}

/// The routes `weight-server render-istio` gives a destination: one per pod
/// matching `header: <pod>` to that pod's cluster, in the order given
/// (`(pod, cluster)`); the caller appends the default route.
pub fn per_pod_routes<'a>(
    header: &str,
    pods: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Route> {
    pods.into_iter()
        .map(|(pod, cluster)| Route::to_cluster(cluster).header(header, pod))
        .collect()
}

/// A virtual host: domains and routes in order.
#[derive(Debug, Clone)]
pub struct VirtualHost {
    /// Name.
    pub name: String,
    /// Domains (`*` for all).
    pub domains: Vec<String>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
}

impl VirtualHost {
    /// A virtual host for every domain.
    pub fn all(name: impl Into<String>, routes: Vec<Route>) -> Self {
        VirtualHost {
            name: name.into(),
            domains: vec!["*".into()],
            routes,
        }
    }
}
