//! etcd and kube-apiserver on free loopback ports, in a temporary folder
//! removed on drop (processes are killed first).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

use crate::binaries::{self, Binaries};
use crate::pki::{self, ServiceAccountKey, Serving};
use crate::process::{Proc, free_port};
use crate::{Error, Result};

/// The issuer (and default audience) of service-account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    bins: Binaries,
    serving: Serving,
    /// The service-account signing key (tests may sign their own tokens).
    pub sa_key: ServiceAccountKey,
    etcd: Proc,
    /// etcd's client URL (`http://127.0.0.1:<port>`).
    pub etcd_url: String,
    apiserver: Option<Proc>,
    /// The API server's port (kept across restarts).
    pub port: u16,
    admin_kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Build or reuse the programs, start etcd and the API server, wait until
    /// the API server is ready.
    pub async fn start() -> Result<ControlPlane> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bins = binaries::get()?;
        let dir = tempfile::Builder::new().prefix("mplb-kube-").tempdir()?;
        let sa_key = pki::service_account_key(dir.path())?;
        let serving = pki::serving(dir.path())?;
        let admin_token = pki::random_token()?;
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!("{admin_token},mplb-test-admin,mplb-test-admin,\"system:masters\"\n"),
        )?;
        let (etcd, etcd_url) = start_etcd(&bins, dir.path()).await?;
        let port = free_port()?;
        let admin_kubeconfig = dir.path().join("admin.kubeconfig");
        let mut cp = ControlPlane {
            bins,
            serving,
            sa_key,
            etcd,
            etcd_url,
            apiserver: None,
            port,

            admin_kubeconfig: admin_kubeconfig.clone(),
            dir,
        };
        cp.write_kubeconfig(&admin_kubeconfig, &admin_token)?;
        cp.start_apiserver().await?;
        Ok(cp)
    }

    /// The folder of this control plane's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The admin kubeconfig (user in `system:masters`).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// Write a kubeconfig at `path` that authenticates with `token`.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) -> Result<()> {
        let ca = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&self.serving.ca)?);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    \
             server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: user\n  user:\n    \
             token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    \
             user: user\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(path, text)?;
        Ok(())
    }

    /// A client from a kubeconfig file.
    pub async fn client_from(path: &Path) -> Result<Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kc = Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        Ok(Client::try_from(config)?)
    }

    /// An admin client.
    pub async fn admin_client(&self) -> Result<Client> {
        Self::client_from(&self.admin_kubeconfig).await
    }

    /// Start the API server (again) on [`Self::port`] and wait until ready.
    pub async fn start_apiserver(&mut self) -> Result<()> {
        let d = self.dir.path();
        let p = |x: &Path| x.to_string_lossy().into_owned();
        let args = vec![
            format!("--etcd-servers={}", self.etcd_url),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // No kubernetes Service endpoints: a loopback address is refused there.
            "--endpoint-reconciler-type=none".into(),
            format!("--secure-port={}", self.port),
            format!("--tls-cert-file={}", p(&self.serving.cert)),
            format!("--tls-private-key-file={}", p(&self.serving.key)),
            format!("--cert-dir={}", p(&d.join("certs"))),
            "--authorization-mode=RBAC".into(),
            format!("--token-auth-file={}", p(&d.join("tokens.csv"))),
            format!("--service-account-issuer={ISSUER}"),
            format!("--service-account-key-file={}", p(&self.sa_key.public)),
            format!(
                "--service-account-signing-key-file={}",
                p(&self.sa_key.private)
            ),
            format!("--api-audiences={ISSUER}"),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ];
        let log = d.join("kube-apiserver.log");
        self.apiserver = Some(Proc::spawn(&self.bins.kube_apiserver, &args, log)?);
        self.wait_ready(Duration::from_secs(90)).await
    }

    /// Kill the API server (SIGKILL); etcd keeps running.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut p) = self.apiserver.take() {
            p.kill();
        }
    }

    /// The last lines of the API server's log.
    pub fn apiserver_log_tail(&self, n: usize) -> String {
        crate::process::tail(&self.dir.path().join("kube-apiserver.log"), n)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let client = self.admin_client().await?;
        while Instant::now() < deadline {
            if self.apiserver.as_mut().is_none_or(Proc::exited) {
                break;
            }
            let req = http_get("/readyz")?;
            if let Ok(body) = client.request_text(req).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(Error::NotReady {
            what: "kube-apiserver".into(),
            secs: limit.as_secs(),
            log: self.apiserver_log_tail(8),
        })
    }

    /// A token of ServiceAccount `namespace/name` for `audiences`, valid for
    /// `seconds` (at least 600), from the TokenRequest API; bound to a pod
    /// when `pod` is `(name, uid)` (the token then carries the pod's node).
    pub async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[&str],
        seconds: i64,
        pod: Option<(&str, &str)>,
    ) -> Result<String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.admin_client().await?, namespace);
        let req = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
                expiration_seconds: Some(seconds),
                bound_object_ref: pod.map(|(n, uid)| {
                    k8s_openapi::api::authentication::v1::BoundObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        name: Some(n.into()),
                        uid: Some(uid.into()),
                    }
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = api
            .create_token_request(name, &PostParams::default(), &req)
            .await?;
        out.status
            .and_then(|s| s.token)
            .ok_or_else(|| Error::Setup("TokenRequest without status".into()))
    }

    /// Compact etcd up to its current revision (so watches from older
    /// resource versions get `410 Gone`); returns the revision.
    pub async fn compact_etcd(&self) -> Result<i64> {
        let http = reqwest::Client::new();
        let range: serde_json::Value = http
            .post(format!("{}/v3/kv/range", self.etcd_url))
            .json(&serde_json::json!({"key": "AA=="}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let rev: i64 = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| Error::Setup(format!("etcd range without a revision: {range}")))?;
        http.post(format!("{}/v3/kv/compaction", self.etcd_url))
            .json(&serde_json::json!({"revision": rev.to_string(), "physical": true}))
            .send()
            .await?
            .error_for_status()?;
        Ok(rev)
    }

    /// The last lines of etcd's log.
    pub fn etcd_log_tail(&self, n: usize) -> String {
        self.etcd.tail(n)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop_apiserver();
        self.etcd.kill();
    }
}

/// A GET request for `path` (API server raw paths such as `/readyz`).
fn http_get(path: &str) -> Result<http::Request<Vec<u8>>> {
    http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| Error::Setup(format!("GET {path}: {e}")))
}

async fn start_etcd(bins: &Binaries, dir: &Path) -> Result<(Proc, String)> {
    let (client, peer) = (free_port()?, free_port()?);
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let args = vec![
        "--name=mplb".into(),
        format!("--data-dir={}", dir.join("etcd").to_string_lossy()),
        format!("--listen-client-urls={url}"),
        format!("--advertise-client-urls={url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=mplb={peer_url}"),
        "--log-level=warn".into(),
        "--unsafe-no-fsync".into(),
    ];
    let mut proc = Proc::spawn(&bins.etcd, &args, dir.join("etcd.log"))?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !proc.exited() {
        if let Ok(r) = http.get(format!("{url}/health")).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
            && v["health"] == "true"
        {
            return Ok((proc, url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::NotReady {
        what: "etcd".into(),
        secs: 30,
        log: proc.tail(40),
    })
}
