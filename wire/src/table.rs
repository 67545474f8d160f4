//! The weights table: served by the weight server at `GET /v1/weights`, read
//! by every filter. Unknown fields are ignored so that newer servers can add
//! fields; the named ones are never renamed.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{NameIndex, WireError, check_amount, check_name, decode};

/// Largest accepted table body.
pub const MAX_TABLE_BYTES: usize = 4 * 1024 * 1024;
/// Largest number of endpoints over all services of a table.
pub const MAX_ENDPOINTS: usize = 10_000;
/// Largest number of services in a table.
pub const MAX_SERVICES: usize = 2_000;
/// Longest name (pod, service, alias, node, uid).
pub const MAX_NAME_LEN: usize = 253;

/// The versioned table of per-service endpoint weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsTable {
    /// Monotonic; also the ETag of `GET /v1/weights`.
    pub version: u64,
    /// When the server computed this table (ms since the Unix epoch).
    pub generated_at_ms: u64,
    /// How long a reader may use the table without a fresh poll.
    pub ttl_ms: u64,
    /// Keyed by the service FQDN, e.g. `profile.default.svc.cluster.local`.
    pub services: BTreeMap<String, ServiceWeights>,
}

/// One service of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceWeights {
    /// Short names that also resolve to this service (`profile`, `profile.default`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// In a stable order (the server never reshuffles them).
    pub endpoints: Vec<Endpoint>,
    /// Admission: the fraction of new requests to this service that an
    /// admitting proxy (plugin key `admission`, an entry gateway) lets in;
    /// it answers the rest with a 503 at once. Absent: admit all. Set by
    /// the server only when its tenants' demand exceeds what the nodes can
    /// serve (docs/ARCHITECTURE.md, "Admission").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit: Option<f64>,
}

/// One replica of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Pod name, the value stamped into `x-lb-endpt`.
    pub pod: String,
    /// `ip:port` (`[v6]:port` for IPv6), the value behind the session header.
    pub address: String,
    /// Relative weight: finite, non-negative; a service's weights sum to > 0.
    pub weight: f64,
}

impl WeightsTable {
    /// Decode and validate a table body. Rejects the whole table on any rule.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let table: WeightsTable = decode(body, MAX_TABLE_BYTES)?;
        table.validate()?;
        Ok(table)
    }

    /// Check every rule of the contract.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.ttl_ms == 0 {
            return Err(WireError::invalid("ttl_ms is 0"));
        }
        if self.services.len() > MAX_SERVICES {
            return Err(WireError::invalid(format!(
                "{} services exceed the limit of {MAX_SERVICES}",
                self.services.len()
            )));
        }
        let mut total = 0usize;
        for (name, svc) in &self.services {
            check_name("service name", name)?;
            total += svc.endpoints.len();
            if total > MAX_ENDPOINTS {
                return Err(WireError::invalid(format!(
                    "more than {MAX_ENDPOINTS} endpoints"
                )));
            }
            svc.validate(name)?;
        }
        self.name_index().map(|_| ())
    }

    /// Index every name a destination may be called by (the FQDN key and
    /// each alias) to its FQDN key, case-insensitively ([`NameIndex`]). Fails
    /// if a name maps to two services in any mix of case.
    pub fn name_index(&self) -> Result<NameIndex<&str>, WireError> {
        let mut index = NameIndex::with_capacity(self.services.len() * 4);
        for (fqdn, svc) in &self.services {
            for name in std::iter::once(fqdn.as_str()).chain(svc.aliases.iter().map(String::as_str))
            {
                index.insert(name, fqdn.as_str()).map_err(|c| {
                    WireError::invalid(format!(
                        "name {:?} maps to both {:?} and {:?}",
                        c.name, c.first, c.second
                    ))
                })?;
            }
        }
        Ok(index)
    }
}

impl ServiceWeights {
    fn validate(&self, service: &str) -> Result<(), WireError> {
        if let Some(a) = self.admit
            && !(a > 0.0 && a <= 1.0)
        {
            return Err(WireError::invalid(format!(
                "admit of service {service:?} is {a}, not in (0, 1]"
            )));
        }
        for alias in &self.aliases {
            check_name("alias", alias)?;
        }
        if self.endpoints.is_empty() {
            return Err(WireError::invalid(format!(
                "service {service:?} has no endpoints"
            )));
        }
        let mut pods = HashSet::with_capacity(self.endpoints.len());
        let mut sum = 0.0;
        for ep in &self.endpoints {
            check_name("pod name", &ep.pod)?;
            if !pods.insert(ep.pod.as_str()) {
                return Err(WireError::invalid(format!(
                    "pod {:?} repeats in service {service:?}",
                    ep.pod
                )));
            }
            if ep.address.parse::<SocketAddr>().is_err() {
                return Err(WireError::invalid(format!(
                    "address {:?} of pod {:?} is not ip:port",
                    ep.address, ep.pod
                )));
            }
            check_amount(&format!("weight of pod {:?}", ep.pod), ep.weight)?;
            sum += ep.weight;
        }
        if !(sum > 0.0 && sum.is_finite()) {
            return Err(WireError::invalid(format!(
                "weights of service {service:?} sum to {sum}, not a positive finite number"
            )));
        }
        Ok(())
    }

    /// The fraction of new requests an admitting proxy lets in (1: all).
    pub fn admit_fraction(&self) -> f64 {
        self.admit.unwrap_or(1.0)
    }

    /// Sum of the endpoint weights.
    pub fn total_weight(&self) -> f64 {
        self.endpoints.iter().map(|e| e.weight).sum()
    }
}

#[cfg(test)]
mod tests;
