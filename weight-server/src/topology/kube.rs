//! Topology from the Kubernetes API: Pods (managed label, watched
//! namespaces or all), Services (watched namespaces or all; their ports)
//! and Nodes, each followed with kube's `watcher` into a
//! `reflector` store. After the initial sync of every stream, a fresh
//! [`Topology`] is published on every change that alters it
//! (a pod added, deleted, turning unready, a node's capacity changing). How
//! objects map to the topology is in [`build`].

pub mod build;

use std::pin::Pin;

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};

use super::{Topology, TopologyTx, publish};

/// Where and what to watch.
#[derive(Debug, Clone)]
pub struct KubeConfig {
    /// Label selector of managed pods, e.g. `mplb.io/managed=true`.
    pub managed_label: String,
    /// Namespaces to watch; empty = all.
    pub namespaces: Vec<String>,
    /// Suffix of service FQDNs.
    pub cluster_domain: String,
}

impl Default for KubeConfig {
    fn default() -> Self {
        Self {
            managed_label: "mplb.io/managed=true".to_string(),
            namespaces: Vec::new(),
            cluster_domain: "cluster.local".to_string(),
        }
    }
}

/// What happened on one of the watch streams.
enum Change {
    /// The stream (re)listed everything: its store is complete.
    Synced,
    /// An object was applied or deleted after the sync.
    Changed,
    /// Still listing.
    Listing,
    /// A watch error (the stream retries with backoff).
    Failed(watcher::Error),
}

type Tagged = Pin<Box<dyn Stream<Item = (usize, Change)> + Send>>;

fn classify<K>(event: Result<Event<K>, watcher::Error>) -> Change {
    match event {
        Ok(Event::InitDone) => Change::Synced,
        Ok(Event::Apply(_) | Event::Delete(_)) => Change::Changed,
        Ok(Event::Init | Event::InitApply(_)) => Change::Listing,
        Err(e) => Change::Failed(e),
    }
}

fn stream<K>(
    api: Api<K>,
    config: watcher::Config,
    tag: usize,
    strip: fn(&mut K),
) -> (Store<K>, Tagged)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync,
    K: serde::de::DeserializeOwned + 'static,
{
    let (reader, writer) = reflector::store();
    let s = watcher::watcher(api, config)
        .default_backoff()
        .modify(move |o: &mut K| {
            o.meta_mut().managed_fields = None;
            strip(o);
        })
        .reflect(writer)
        .map(move |e| (tag, classify(e)));
    (reader, Box::pin(s))
}

/// One API per watched namespace, or one over all namespaces.
fn apis<K>(client: &kube::Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    }
}

/// A kube client for `config`. Every client of the weight server is made
/// here: kube speaks TLS through rustls with ring, and a build that also
/// compiles rustls' aws-lc-rs provider (reqwest, in a workspace build) leaves
/// rustls unable to choose, so the ring provider is installed first.
pub fn client(config: kube::Config) -> crate::Result<kube::Client> {
    // An error only means that a provider was installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(kube::Client::try_from(config)?)
}

/// [`client`] from the in-cluster config or the kubeconfig.
pub async fn default_client() -> crate::Result<kube::Client> {
    let config = kube::Config::infer().await.map_err(|e| {
        crate::Error::Config(format!(
            "no Kubernetes config (in-cluster or kubeconfig): {e}"
        ))
    })?;
    client(config)
}

/// Watch Pods, Services and Nodes and publish a fresh topology on every
/// change after the initial sync (`Some` only once every stream synced).
/// A `410 Gone` (compacted resource version) makes kube's watcher relist;
/// a lost connection is retried, so the view follows an API server restart.
/// Runs until the watch streams end (they do not, normally); watch errors
/// are logged and retried with kube's default backoff.
pub async fn run(client: kube::Client, cfg: KubeConfig, tx: TopologyTx) -> crate::Result<()> {
    let pod_config = watcher::Config::default().labels(&cfg.managed_label);
    let pod_apis: Vec<Api<Pod>> = apis(&client, &cfg.namespaces);
    let service_apis: Vec<Api<Service>> = apis(&client, &cfg.namespaces);
    let mut streams: Vec<Tagged> = Vec::new();
    let mut pod_stores = Vec::new();
    for (tag, api) in pod_apis.into_iter().enumerate() {
        let (store, s) = stream(api, pod_config.clone(), tag, |_| {});
        pod_stores.push(store);
        streams.push(s);
    }
    let mut service_stores = Vec::new();
    for api in service_apis {
        let (store, s) = stream(api, watcher::Config::default(), streams.len(), |_| {});
        service_stores.push(store);
        streams.push(s);
    }
    let node_tag = streams.len();
    // Nodes carry long image lists we never read: drop them from the store.
    let strip_node = |n: &mut Node| {
        if let Some(status) = n.status.as_mut() {
            status.images = None;
        }
    };
    let (node_store, s) = stream(
        Api::<Node>::all(client),
        watcher::Config::default(),
        node_tag,
        strip_node,
    );
    streams.push(s);
    let mut synced = vec![false; streams.len()];
    let mut merged = futures::stream::select_all(streams);
    let mut last: Option<Topology> = None;
    tracing::info!(label = %cfg.managed_label, namespaces = ?cfg.namespaces, "kube topology: watching pods, services and nodes");

    while let Some(first) = merged.next().await {
        // Take everything already waiting, then rebuild once.
        let mut changed = false;
        let mut next = Some(first);
        while let Some((tag, change)) = next {
            match change {
                Change::Synced => {
                    if !synced[tag] {
                        tracing::info!(stream = tag, "kube topology: stream synced");
                    }
                    synced[tag] = true;
                    changed = true;
                }
                Change::Changed => changed = true,
                Change::Listing => {}
                Change::Failed(e) => {
                    tracing::warn!(stream = tag, error = %e, "kube watch error; retrying")
                }
            }
            next = merged.next().now_or_never().flatten();
        }
        if !changed || !synced.iter().all(|s| *s) {
            continue;
        }
        let pods: Vec<_> = pod_stores.iter().flat_map(Store::state).collect();
        let services: Vec<_> = service_stores.iter().flat_map(Store::state).collect();
        let topology = build::topology(&pods, &node_store.state(), &services, &cfg);
        if last.as_ref() != Some(&topology) {
            tracing::info!(
                nodes = topology.nodes.len(),
                services = topology.services.len(),
                pods = topology.pods.len(),
                "kube topology: publishing"
            );
            publish(&tx, topology.clone());
            last = Some(topology);
        }
    }
    Ok(())
}
