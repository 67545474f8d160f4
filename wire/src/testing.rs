//! Test support (feature `testing`): a builder for weights tables, so tests
//! say which services and weights they need instead of writing the JSON.
//!
//! ```text
//! let body = TableBuilder::new(7)
//!     .service("backend.default.svc.cluster.local", &["backend"])
//!     .pod("b-0", "10.0.0.1:80", 0.6)
//!     .pod("b-1", "10.0.0.2:80", 0.4)
//!     .json();
//! ```

use std::collections::BTreeMap;

use crate::{Endpoint, ServiceWeights, WeightsTable};

/// Builds a [`WeightsTable`]; `pod` adds to the service named last.
#[derive(Debug, Clone)]
pub struct TableBuilder {
    table: WeightsTable,
    last: Option<String>,
}

impl TableBuilder {
    /// A table of `version`, generated at 1 ms, with a 30 s TTL.
    pub fn new(version: u64) -> Self {
        TableBuilder {
            table: WeightsTable {
                version,
                generated_at_ms: 1,
                ttl_ms: 30_000,
                services: BTreeMap::new(),
            },
            last: None,
        }
    }

    /// Set the TTL.
    pub fn ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.table.ttl_ms = ttl_ms;
        self
    }

    /// Set the generation time.
    pub fn generated_at_ms(mut self, at: u64) -> Self {
        self.table.generated_at_ms = at;
        self
    }

    /// Add a service (keyed by `fqdn`) with these aliases; following
    /// [`Self::pod`] calls add its endpoints.
    pub fn service(mut self, fqdn: &str, aliases: &[&str]) -> Self {
        self.table.services.insert(
            fqdn.to_string(),
            ServiceWeights {
                aliases: aliases.iter().map(|a| a.to_string()).collect(),
                endpoints: Vec::new(),
                admit: None,
            },
        );
        self.last = Some(fqdn.to_string());
        self
    }

    /// Add an endpoint to the service added last (ignored before any).
    pub fn pod(mut self, pod: &str, address: &str, weight: f64) -> Self {
        if let Some(svc) = self
            .last
            .as_ref()
            .and_then(|name| self.table.services.get_mut(name))
        {
            svc.endpoints.push(Endpoint {
                pod: pod.to_string(),
                address: address.to_string(),
                weight,
            });
        }
        self
    }

    /// The table, not validated (tests may build broken ones on purpose).
    pub fn build(self) -> WeightsTable {
        self.table
    }

    /// The table as the JSON body a server sends.
    pub fn json(self) -> String {
        serde_json::to_string(&self.table).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_valid_table_and_its_json() {
        let body = TableBuilder::new(7)
            .ttl_ms(500)
            .service("backend.default.svc.cluster.local", &["backend"])
            .pod("b-0", "10.0.0.1:80", 0.6)
            .pod("b-1", "[fd00::3]:80", 0.4)
            .service("other.default.svc.cluster.local", &[])
            .pod("o-0", "10.0.1.1:80", 1.0)
            .json();
        let t = WeightsTable::parse(body.as_bytes()).unwrap();
        assert_eq!((t.version, t.ttl_ms, t.services.len()), (7, 500, 2));
        let b = &t.services["backend.default.svc.cluster.local"];
        assert_eq!(b.aliases, ["backend"]);
        assert_eq!(b.endpoints[1].address, "[fd00::3]:80");
    }
}
