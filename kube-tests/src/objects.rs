//! Objects the tests create in place of controllers and kubelets:
//! namespaces (with their `default` ServiceAccount, which the admission of
//! pods requires), nodes with a CPU capacity, pods bound to a node whose
//! status (Running, Ready, podIP) is set through the status subresource,
//! and services.

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service, ServiceAccount};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::Result;

/// Create `name` and its `default` ServiceAccount (no controllers here).
pub async fn namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))
        .map_err(|e| crate::Error::Setup(e.to_string()))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    service_account(client, name, "default").await
}

/// Create ServiceAccount `namespace/name`.
pub async fn service_account(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let sa: ServiceAccount = from(json!({"metadata": {"name": name}}))?;
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await?;
    Ok(())
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| crate::Error::Setup(e.to_string()))
}

/// Create node `name` with `cpu` allocatable (a quantity such as `4` or `3500m`).
pub async fn node(client: &Client, name: &str, cpu: &str) -> Result<()> {
    let api = Api::<Node>::all(client.clone());
    let n: Node = from(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &n).await?;
    let status = json!({"status": {"capacity": {"cpu": cpu, "pods": "110"},
                                    "allocatable": {"cpu": cpu, "pods": "110"}}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Delete node `name`.
pub async fn delete_node(client: &Client, name: &str) -> Result<()> {
    Api::<Node>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await?;
    Ok(())
}

/// A managed pod: labels `app` and `mplb.io/managed=true`, bound to `node`,
/// one container with ports `http` (`port`) and `metrics` (9090, listed
/// first, so a pod's first port is not its serving port), CPU request 250m.
pub fn managed_pod(namespace: &str, name: &str, app: &str, node: &str, port: u16) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app": app, "mplb.io/managed": "true"}},
        "spec": {"nodeName": node, "containers": [{
            "name": "app", "image": "registry.invalid/app:1",
            "ports": [{"name": "metrics", "containerPort": 9090},
                      {"name": "http", "containerPort": port}],
            "resources": {"requests": {"cpu": "250m"}}}]}
    })
}

/// Create a pod from JSON; returns its UID.
pub async fn create_pod(client: &Client, pod: Value) -> Result<String> {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let p: Pod = from(pod)?;
    let made = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &p)
        .await?;
    Ok(made.metadata.uid.unwrap_or_default())
}

/// Set a pod's status as a kubelet would: Running, `ip`, Ready = `ready`.
pub async fn set_pod_status(
    client: &Client,
    namespace: &str,
    name: &str,
    ip: &str,
    ready: bool,
) -> Result<()> {
    let r = if ready { "True" } else { "False" };
    let status = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "conditions": [{"type": "Ready", "status": r}, {"type": "ContainersReady", "status": r}]}});
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Create a running pod (see [`managed_pod`]) and set its status; its UID.
pub async fn running_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    app: &str,
    node: &str,
    ip: &str,
    port: u16,
) -> Result<String> {
    let uid = create_pod(client, managed_pod(namespace, name, app, node, port)).await?;
    set_pod_status(client, namespace, name, ip, true).await?;
    Ok(uid)
}

/// Delete a pod: at once (`grace` 0), or gracefully (it then stays, marked
/// for deletion, since no kubelet confirms).
pub async fn delete_pod(client: &Client, namespace: &str, name: &str, grace: u32) -> Result<()> {
    let dp = DeleteParams {
        grace_period_seconds: Some(grace),
        ..DeleteParams::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .delete(name, &dp)
        .await?;
    Ok(())
}

/// Create Service `namespace/name` selecting `app=name`, port `port` to the
/// named target port `target` (e.g. `http`).
pub async fn service(
    client: &Client,
    namespace: &str,
    name: &str,
    port: u16,
    target: &str,
) -> Result<()> {
    let s: Service = from(json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name},
                 "ports": [{"name": "http", "port": port, "targetPort": target}]}
    }))?;
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &s)
        .await?;
    Ok(())
}
