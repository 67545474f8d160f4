//! The weight server's `--topology kube` against a real kube-apiserver and
//! etcd (built from `kube-harness/`), authenticated as the ServiceAccount
//! `envoyfilter/weight-server.yaml` creates and bound by its RBAC only.
//! No kubelet: the tests create nodes and pods and set pod status through
//! the status subresource, as a kubelet would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod envoy_failover;
mod failover;
mod load;
mod replicas;
mod reports_auth;
mod support;
mod topology;
