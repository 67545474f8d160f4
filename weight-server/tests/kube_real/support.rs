//! The pieces every real-API-server test uses: a control plane with the
//! namespaces and RBAC of `envoyfilter/` applied, the real `weight-server`
//! binary running `--topology kube` with the token of the ServiceAccount
//! the manifests create, and polling of its weights table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mplb_kube_tests::control_plane::ISSUER;
use mplb_kube_tests::{ControlPlane, kubectl, objects, repo_root};
use serde_json::Value;

/// One control plane at a time per test binary (2 cores on CI machines).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The weight server's manifest.
pub fn weight_server_manifest() -> String {
    std::fs::read_to_string(repo_root().join("envoyfilter/weight-server.yaml")).unwrap()
}

/// A control plane with `mplb-system` and the weight server's RBAC from
/// `manifest` (the committed one, or an edited copy), and an admin client.
pub async fn control_plane(manifest: &str) -> (ControlPlane, kube::Client) {
    let cp = ControlPlane::start().await.unwrap();
    let kc = cp.admin_kubeconfig();
    let ns = repo_root().join("envoyfilter/namespace.yaml");
    kubectl::ok(kc, &["apply", "-f", ns.to_str().unwrap()]).unwrap();
    let scratch = cp.dir().join("rbac.yaml");
    kubectl::apply_kinds(kc, &scratch, manifest, kubectl::RBAC_KINDS).unwrap();
    let client = cp.admin_client().await.unwrap();
    (cp, client)
}

/// A kubeconfig holding a fresh token of `mplb-system/<sa>` (not admin).
pub async fn service_account_kubeconfig(cp: &ControlPlane, sa: &str) -> PathBuf {
    let token = cp
        .token("mplb-system", sa, &[ISSUER], 3600, None)
        .await
        .unwrap();
    let path = cp.dir().join(format!("{sa}.kubeconfig"));
    cp.write_kubeconfig(&path, &token).unwrap();
    path
}

/// Create a node and namespace `ns` (with its default ServiceAccount).
pub async fn nodes_and_namespaces(
    client: &kube::Client,
    nodes: &[(&str, &str)],
    namespaces: &[&str],
) {
    for (n, cpu) in nodes {
        objects::node(client, n, cpu).await.unwrap();
    }
    for ns in namespaces {
        objects::namespace(client, ns).await.unwrap();
    }
}

/// A running weight server; SIGKILLed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start the binary with `args` and `envs`; wait for its listening line.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weight-server"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .envs(envs.iter().copied())
            .env("RUST_LOG", "info,weight_server=debug")
            .env_remove("MPLB_TOPOLOGY")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("weight server did not listen:\n{}", log.lock().unwrap()));
        Server {
            child,
            addr: addr.parse().unwrap(),
            log,
        }
    }

    /// The weight server over `--topology kube` with `kubeconfig`.
    pub fn kube(kubeconfig: &std::path::Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--topology",
            "kube",
            "--policy",
            "even",
            "--recompute-interval",
            "500ms",
        ];
        args.extend(extra);
        Server::start(&args, &[("KUBECONFIG", kubeconfig.to_str().unwrap())])
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The current weights table, if any.
    pub fn table(&self) -> Option<Value> {
        let (status, body) = http(self.addr, "GET", "/v1/weights", &[], "");
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    /// Poll the table until `ok` holds (bounded: 30 s), return it; panic with
    /// the last table and the server's log otherwise.
    pub async fn until(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.table();
            if let Some(t) = &last
                && ok(t)
            {
                return t.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what}: not reached; last table {last:?}\nserver log:\n{}",
            self.log()
        );
    }
}

/// Sorted `pod=address` of a service's endpoints in `table` (empty if absent).
pub fn endpoints(table: &Value, fqdn: &str) -> Vec<String> {
    let mut v: Vec<String> = table["services"][fqdn]["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}={}",
                e["pod"].as_str().unwrap(),
                e["address"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

/// One HTTP/1.1 request; (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
