//! The `coordination.k8s.io/v1` Lease the replicas elect on, read and
//! written through kube's API with optimistic concurrency: an update
//! carries the resourceVersion read, so a concurrent writer gets `409
//! Conflict` and loses this round. The holder's serving address and table
//! version ride in annotations.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use super::election::Record;
use crate::Result;

/// Annotation holding the leader's serving address (`ip:port`).
pub const ADDRESS_ANNOTATION: &str = "mplb.io/leader-address";
/// Annotation holding the highest table version the leader had served.
pub const VERSION_ANNOTATION: &str = "mplb.io/table-version";

/// How a write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Written.
    Done,
    /// Someone else wrote first (409): read again next round.
    Conflict,
}

/// One named Lease in one namespace.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    api: Api<Lease>,
    name: String,
}

fn ms_of(t: Option<&MicroTime>) -> u64 {
    t.map_or(0, |t| u64::try_from(t.0.as_millisecond()).unwrap_or(0))
}

fn time_of(ms: u64) -> Option<MicroTime> {
    let ms = i64::try_from(ms).ok()?;
    Timestamp::from_millisecond(ms).ok().map(MicroTime)
}

/// The election's view of a Lease.
pub fn record_of(l: &Lease) -> Record {
    let spec = l.spec.clone().unwrap_or_default();
    let ann = l.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).cloned().unwrap_or_default();
    Record {
        holder: spec.holder_identity.unwrap_or_default(),
        address: get(ADDRESS_ANNOTATION),
        version: get(VERSION_ANNOTATION).parse().unwrap_or(0),
        acquired_ms: ms_of(spec.acquire_time.as_ref()),
        renewed_ms: ms_of(spec.renew_time.as_ref()),
        duration_s: spec
            .lease_duration_seconds
            .and_then(|d| u64::try_from(d).ok())
            .unwrap_or(0),
        transitions: spec
            .lease_transitions
            .and_then(|d| u64::try_from(d).ok())
            .unwrap_or(0),
    }
}

/// Write `r` into `l` (spec and the two annotations; the rest is kept).
pub fn apply(l: &mut Lease, r: &Record) {
    let ann = l.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert(ADDRESS_ANNOTATION.into(), r.address.clone());
    ann.insert(VERSION_ANNOTATION.into(), r.version.to_string());
    let spec = l.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(r.holder.clone());
    spec.acquire_time = time_of(r.acquired_ms);
    spec.renew_time = time_of(r.renewed_ms);
    spec.lease_duration_seconds = Some(i32::try_from(r.duration_s).unwrap_or(i32::MAX));
    spec.lease_transitions = Some(i32::try_from(r.transitions).unwrap_or(i32::MAX));
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaseStore {
    /// Lease `name` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> LeaseStore {
        LeaseStore {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    /// The Lease, if it exists.
    pub async fn read(&self) -> Result<Option<Lease>> {
        Ok(self.api.get_opt(&self.name).await?)
    }

    /// Create the Lease holding `r`.
    pub async fn create(&self, r: &Record) -> Result<Write> {
        let mut l = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: None,
        };
        apply(&mut l, r);
        match self.api.create(&PostParams::default(), &l).await {
            Ok(_) => Ok(Write::Done),
            Err(e) if conflict(&e) => Ok(Write::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace `read` (its resourceVersion guards the write) with `r`.
    pub async fn update(&self, read: &Lease, r: &Record) -> Result<Write> {
        let mut l = read.clone();
        apply(&mut l, r);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &l)
            .await
        {
            Ok(_) => Ok(Write::Done),
            Err(e) if conflict(&e) => Ok(Write::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_lease_round_trip() {
        let r = Record {
            holder: "weight-server-0".into(),
            address: "10.1.2.3:8080".into(),
            version: 1_765_000_000_123,
            acquired_ms: 1_765_000_000_000,
            renewed_ms: 1_765_000_002_500,
            duration_s: 15,
            transitions: 4,
        };
        let mut l = Lease::default();
        l.metadata.resource_version = Some("77".into());
        apply(&mut l, &r);
        assert_eq!(record_of(&l), r);
        assert_eq!(l.metadata.resource_version.as_deref(), Some("77"));
        let json = serde_json::to_value(&l).unwrap();
        assert_eq!(json["spec"]["holderIdentity"], "weight-server-0");
        assert_eq!(
            json["metadata"]["annotations"][VERSION_ANNOTATION],
            "1765000000123"
        );
    }

    #[test]
    fn an_empty_lease_reads_as_released() {
        let r = record_of(&Lease::default());
        assert_eq!(r, Record::default());
    }
}
