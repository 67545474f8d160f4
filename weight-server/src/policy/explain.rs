//! The explain JSON of `GET /admin/explain/{service}`, per service FQDN.
//!
//! An operator asks for it rarely, so it is not built every round for every
//! service: a policy either inserts a service's JSON as it decides (`even`,
//! `static`, `spare`: small) or keeps what its round computed behind an
//! [`Explainer`] that builds a service's JSON when it is asked for
//! (`optimal`: the round's inputs and loads). Inserted JSON wins over the
//! explainer's, so operator overrides replace a policy's explain.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::Value;

/// Builds the explain JSON of a round's services on demand, from what the
/// round kept. Building must be pure: asking twice gives the same JSON.
pub trait Explainer: fmt::Debug + Send + Sync {
    /// The services it explains, in FQDN order.
    fn services(&self) -> Vec<&str>;
    /// The explain JSON of `service`; `None` when it does not explain it.
    fn explain(&self, service: &str) -> Option<Value>;
}

/// Per service FQDN: the inputs a policy used and why each pod got its
/// weight. Cheap to clone (the explainer is shared).
#[derive(Debug, Clone, Default)]
pub struct Explain {
    /// JSON built already; wins over `lazy`.
    built: BTreeMap<String, Value>,
    /// The round's explainer, if the policy explains on demand.
    lazy: Option<Arc<dyn Explainer>>,
}

impl Explain {
    /// Explain every service `explainer` knows, on demand.
    pub fn lazy(explainer: Arc<dyn Explainer>) -> Self {
        Explain {
            built: BTreeMap::new(),
            lazy: Some(explainer),
        }
    }

    /// Set the JSON of `service` (replaces what the explainer would build).
    pub fn insert(&mut self, service: String, explain: Value) {
        self.built.insert(service, explain);
    }

    /// The JSON of `service`, built now if it is explained on demand.
    pub fn get(&self, service: &str) -> Option<Value> {
        match self.built.get(service) {
            Some(v) => Some(v.clone()),
            None => self.lazy.as_ref().and_then(|l| l.explain(service)),
        }
    }

    /// Whether `service` is explained (without building its JSON).
    pub fn contains(&self, service: &str) -> bool {
        self.built.contains_key(service)
            || self
                .lazy
                .as_ref()
                .is_some_and(|l| l.services().contains(&service))
    }

    /// The services explained, in FQDN order.
    pub fn services(&self) -> Vec<String> {
        let mut all: BTreeSet<&str> = self.built.keys().map(String::as_str).collect();
        if let Some(l) = &self.lazy {
            all.extend(l.services());
        }
        all.into_iter().map(str::to_string).collect()
    }

    /// Whether no service is explained.
    pub fn is_empty(&self) -> bool {
        self.built.is_empty() && self.lazy.as_ref().is_none_or(|l| l.services().is_empty())
    }

    /// Every service's JSON, built now (tests, serialisation).
    pub fn all(&self) -> BTreeMap<String, Value> {
        self.services()
            .into_iter()
            .filter_map(|s| self.get(&s).map(|v| (s, v)))
            .collect()
    }
}

/// Serialised as the map of [`Explain::all`].
impl Serialize for Explain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.all().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Explains `a` and `b` with their name.
    #[derive(Debug)]
    struct Names;

    impl Explainer for Names {
        fn services(&self) -> Vec<&str> {
            vec!["a", "b"]
        }
        fn explain(&self, service: &str) -> Option<Value> {
            ["a", "b"]
                .contains(&service)
                .then(|| json!({"lazy": service}))
        }
    }

    #[test]
    fn inserted_json_wins_over_the_explainer() {
        assert!(Explain::default().is_empty());
        let mut e = Explain::lazy(Arc::new(Names));
        assert!(!e.is_empty());
        e.insert("b".into(), json!({"policy": "static"}));
        e.insert("c".into(), json!({"policy": "static"}));
        assert_eq!(e.get("a"), Some(json!({"lazy": "a"})));
        assert_eq!(e.get("b"), Some(json!({"policy": "static"})));
        assert_eq!(e.get("d"), None);
        assert!(e.contains("a") && e.contains("c") && !e.contains("d"));
        assert_eq!(e.services(), ["a", "b", "c"]);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"a": {"lazy": "a"}, "b": {"policy": "static"}, "c": {"policy": "static"}})
        );
        // Clones share the explainer and keep their own inserts.
        let mut f = e.clone();
        f.insert("a".into(), json!(1));
        assert_eq!(
            (e.get("a"), f.get("a")),
            (Some(json!({"lazy": "a"})), Some(json!(1)))
        );
    }
}
