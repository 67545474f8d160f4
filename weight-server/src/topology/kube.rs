//! Topology from the Kubernetes API (Pods and Nodes watched with kube). Owned by the policy/kube engineer.
