//! The name rules of every contract, and the one index of "every name a
//! service is called by".
//!
//! Host names are case-insensitive, so a service is found by any of its
//! names (the table key, the FQDN, and each alias) in any mix of case. Every
//! producer of a table (the weight server's file and Kubernetes topologies)
//! and every reader (the filter's lookup, the table's own validation) goes
//! through [`NameIndex`], so the rule is written once.

use std::collections::{BTreeSet, HashMap};

use crate::{MAX_NAME_LEN, WireError};

/// Check one name (pod, service, node, alias, uid): not empty, at most
/// [`MAX_NAME_LEN`] bytes, no whitespace or control characters. `what` names
/// the field in the error.
pub fn check_name(what: &str, name: &str) -> Result<(), WireError> {
    if name.is_empty() {
        return Err(WireError::invalid(format!("{what} is empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(WireError::invalid(format!(
            "{what} {:?}... is longer than {MAX_NAME_LEN} bytes",
            name.chars().take(32).collect::<String>()
        )));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(WireError::invalid(format!(
            "{what} {name:?} contains whitespace or control characters"
        )));
    }
    Ok(())
}

/// The names Kubernetes gives a service `name` in `namespace` besides its
/// FQDN: `name`, `name.namespace`, `name.namespace.svc`.
pub fn default_aliases(name: &str, namespace: &str) -> Vec<String> {
    vec![
        name.to_string(),
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
    ]
}

/// The names (lowercased) that more than one service claims, from pairs of
/// (service key, name). A producer that derives names on its own (the
/// Kubernetes topology's short aliases) drops these from every claimant, so
/// one ambiguous name never fails the whole table.
pub fn ambiguous_names<'a>(
    claims: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeSet<String> {
    let mut owner: HashMap<String, &'a str> = HashMap::new();
    let mut ambiguous = BTreeSet::new();
    for (service, name) in claims {
        let lower = name.to_ascii_lowercase();
        match owner.get(&lower) {
            Some(first) if *first != service => {
                ambiguous.insert(lower);
            }
            Some(_) => {}
            None => {
                owner.insert(lower, service);
            }
        }
    }
    ambiguous
}

/// A name that two services both claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClash<V> {
    /// The name as given (not lowercased).
    pub name: String,
    /// The service that had it first.
    pub first: V,
    /// The service that claimed it too.
    pub second: V,
}

/// A case-insensitive map from every name of a service to the service
/// (`V`: its key, or its index in a list).
#[derive(Debug, Clone)]
pub struct NameIndex<V> {
    names: HashMap<String, V>,
}

impl<V> Default for NameIndex<V> {
    fn default() -> Self {
        NameIndex {
            names: HashMap::new(),
        }
    }
}

impl<V: Clone + PartialEq> NameIndex<V> {
    /// An empty index with room for `n` names.
    pub fn with_capacity(n: usize) -> Self {
        NameIndex {
            names: HashMap::with_capacity(n),
        }
    }

    /// Record that `name` (in any case) means `service`. A name given again
    /// for the same service is fine; for another service it is a clash and
    /// the index keeps the first.
    pub fn insert(&mut self, name: &str, service: V) -> Result<(), NameClash<V>> {
        match self.names.get(&name.to_ascii_lowercase()) {
            Some(first) if *first != service => Err(NameClash {
                name: name.to_string(),
                first: first.clone(),
                second: service,
            }),
            Some(_) => Ok(()),
            None => {
                self.names.insert(name.to_ascii_lowercase(), service);
                Ok(())
            }
        }
    }

    /// The service called `name`, in any mix of case.
    pub fn get(&self, name: &str) -> Option<&V> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.names.get(&name.to_ascii_lowercase())
        } else {
            self.names.get(name)
        }
    }

    /// How many names are indexed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is indexed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_in_any_case_and_clash_across_services() {
        let mut idx = NameIndex::default();
        idx.insert("Web.Shop", 1).unwrap();
        idx.insert("web.shop", 1).unwrap();
        assert_eq!(idx.get("WEB.shop"), Some(&1));
        assert_eq!(idx.get("web.shop"), Some(&1));
        let clash = idx.insert("WEB.SHOP", 2).unwrap_err();
        assert_eq!((clash.first, clash.second), (1, 2));
        assert_eq!(idx.get("web.shop"), Some(&1), "the first keeps the name");
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn name_rules_name_the_field() {
        assert!(check_name("pod name", "a-0").is_ok());
        for bad in ["", "a b", "a\u{7}", &"x".repeat(MAX_NAME_LEN + 1)] {
            let e = check_name("pod name", bad).unwrap_err().to_string();
            assert!(e.contains("pod name"), "{e}");
        }
    }

    #[test]
    fn ambiguous_names_are_those_of_two_services() {
        let claims = [
            ("a", "web"),
            ("a", "WEB"),
            ("b", "Web"),
            ("b", "web.b"),
            ("a", "web.a"),
        ];
        let amb = ambiguous_names(claims);
        assert_eq!(amb.into_iter().collect::<Vec<_>>(), ["web"]);
    }

    #[test]
    fn default_aliases_are_the_kubernetes_short_names() {
        assert_eq!(
            default_aliases("web", "shop"),
            ["web", "web.shop", "web.shop.svc"]
        );
    }
}
