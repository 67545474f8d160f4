//! The host report: one per node per interval, from the host agent to
//! `POST /v1/reports` on the weight server.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{WireError, check_amount, check_name, decode};

/// Largest accepted report body.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Most pods one report may carry.
pub const MAX_REPORT_PODS: usize = 2_000;

/// CPU of one node and of each pod on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostReport {
    /// Kubernetes node name (`NODE_NAME` from the downward API).
    pub node: String,
    /// CPU capacity of the node in millicores (honouring the agent's own cgroup limit).
    pub capacity_millicores: f64,
    /// Node-wide CPU in use over the last interval, in millicores.
    pub used_millicores: f64,
    /// When the sample was taken (ms since the Unix epoch).
    pub sampled_at_ms: u64,
    /// Length of the interval the rates were computed over.
    pub interval_ms: u64,
    /// Per-pod CPU.
    #[serde(default)]
    pub pods: Vec<PodCpu>,
}

/// CPU of one pod over the last interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodCpu {
    /// Pod UID in its canonical dashed form (or a local name in lab mode).
    pub uid: String,
    /// Pod name, when the agent could learn it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pod namespace, when the agent could learn it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// CPU over the last interval, in millicores.
    pub millicores: f64,
    /// When this pod's sample was taken (ms since the Unix epoch).
    pub sampled_at_ms: u64,
}

impl HostReport {
    /// Decode and validate a report body.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let report: HostReport = decode(body, MAX_REPORT_BYTES)?;
        report.validate()?;
        Ok(report)
    }

    /// Check every rule of the contract.
    pub fn validate(&self) -> Result<(), WireError> {
        check_name("node", &self.node)?;
        check_amount("capacity_millicores", self.capacity_millicores)?;
        if self.capacity_millicores == 0.0 {
            return Err(WireError::invalid("capacity_millicores is 0"));
        }
        check_amount("used_millicores", self.used_millicores)?;
        if self.interval_ms == 0 {
            return Err(WireError::invalid("interval_ms is 0"));
        }
        if self.pods.len() > MAX_REPORT_PODS {
            return Err(WireError::invalid(format!(
                "{} pods exceed the limit of {MAX_REPORT_PODS}",
                self.pods.len()
            )));
        }
        let mut uids = HashSet::with_capacity(self.pods.len());
        for pod in &self.pods {
            check_name("pod uid", &pod.uid)?;
            if let Some(name) = &pod.name {
                check_name("pod name", name)?;
            }
            if let Some(ns) = &pod.namespace {
                check_name("pod namespace", ns)?;
            }
            check_amount(&format!("millicores of pod {:?}", pod.uid), pod.millicores)?;
            if !uids.insert(pod.uid.as_str()) {
                return Err(WireError::invalid(format!("pod uid {:?} repeats", pod.uid)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> serde_json::Value {
        serde_json::json!({
            "node": "node-a", "capacity_millicores": 2000.0, "used_millicores": 850.5,
            "sampled_at_ms": 1763800000000u64, "interval_ms": 1000,
            "pods": [
                {"uid": "3f1c2a4e-0000-4000-8000-000000000001", "name": "profile-0",
                 "namespace": "default", "millicores": 412.0, "sampled_at_ms": 1763800000000u64},
                {"uid": "3f1c2a4e-0000-4000-8000-000000000002", "millicores": 0.0,
                 "sampled_at_ms": 1763800000000u64}
            ]
        })
    }

    fn parse(v: &serde_json::Value) -> Result<HostReport, WireError> {
        HostReport::parse(v.to_string().as_bytes())
    }

    #[test]
    fn accepts_a_good_report_and_round_trips() {
        let r = parse(&good()).unwrap();
        assert_eq!(r.pods.len(), 2);
        assert_eq!(r.pods[1].name, None);
        let again = HostReport::parse(serde_json::to_vec(&r).unwrap().as_slice()).unwrap();
        assert_eq!(again, r);
    }

    /// Found by `scripts/fuzz` (host_report): serde_json's fast float parser
    /// read `78` followed by 172 zeros one ulp away from the nearest double, so
    /// the value changed across encode and parse. Native builds parse floats
    /// exactly (`float_roundtrip`, wire/Cargo.toml).
    #[test]
    fn long_decimal_numbers_round_trip_exactly() {
        let body = format!(
            r#"{{"node":"o","capacity_millicores":78{},"used_millicores":3,"sampled_at_ms":7,"interval_ms":3760,"pods":[]}}"#,
            "0".repeat(172)
        );
        let r = HostReport::parse(body.as_bytes()).unwrap();
        assert_eq!(r.capacity_millicores, 7.8e173);
        let again = HostReport::parse(serde_json::to_vec(&r).unwrap().as_slice()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn rejects_hostile_reports() {
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("empty node", Box::new(|v| v["node"] = "".into())),
            (
                "negative capacity",
                Box::new(|v| v["capacity_millicores"] = (-1.0).into()),
            ),
            (
                "zero capacity",
                Box::new(|v| v["capacity_millicores"] = 0.0.into()),
            ),
            (
                "negative used",
                Box::new(|v| v["used_millicores"] = (-5.0).into()),
            ),
            ("zero interval", Box::new(|v| v["interval_ms"] = 0.into())),
            (
                "string cpu",
                Box::new(|v| v["pods"][0]["millicores"] = "lots".into()),
            ),
            (
                "negative pod cpu",
                Box::new(|v| v["pods"][0]["millicores"] = (-1.0).into()),
            ),
            (
                "duplicate uid",
                Box::new(|v| v["pods"][1]["uid"] = v["pods"][0]["uid"].clone()),
            ),
            ("unknown field", Box::new(|v| v["extra"] = 1.into())),
            (
                "unknown pod field",
                Box::new(|v| v["pods"][0]["cpu"] = 1.into()),
            ),
            (
                "missing node",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("node");
                }),
            ),
            (
                "uid with space",
                Box::new(|v| v["pods"][0]["uid"] = "a b".into()),
            ),
        ];
        for (what, mutate) in cases {
            let mut v = good();
            mutate(&mut v);
            assert!(parse(&v).is_err(), "{what} was accepted");
        }
        assert!(matches!(
            HostReport::parse(b"{\"node\":"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            HostReport::parse(&[0xff, 0xfe]),
            Err(WireError::Malformed(_))
        ));
        let huge = vec![b' '; MAX_REPORT_BYTES + 1];
        assert!(matches!(
            HostReport::parse(&huge),
            Err(WireError::TooLarge { .. })
        ));
    }
}
