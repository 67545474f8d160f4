//! The multi-party linear program. Owned by the policy/kube engineer.
