//! The versioned weights table. Each round the raw targets of a policy are
//! completed (even fallback for services the policy left out, weight 0 for
//! drained pods), damped (a fraction of the way per round, unless the
//! policy's targets do not follow the split), and published
//! only when some weight moved beyond the dead band or an endpoint came or
//! went. The version is monotonic and is the ETag; endpoints keep name order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use mplb_wire::{Endpoint, ServiceWeights, WeightsTable};
use serde::Serialize;

use crate::policy::Decision;
use crate::topology::Topology;

/// Damping, dead band and time-to-live.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WeightsConfig {
    /// Fraction of the way to the target moved per round, in (0, 1].
    pub damping: f64,
    /// A weight change (of normalised weights) below this is not a change.
    pub dead_band: f64,
    /// The table's `ttl_ms`.
    pub ttl_ms: u64,
}

impl Default for WeightsConfig {
    fn default() -> Self {
        WeightsConfig {
            damping: 0.5,
            dead_band: 0.02,
            ttl_ms: 30_000,
        }
    }
}

/// A published table, pre-serialised for the hot path.
#[derive(Debug, Clone)]
pub struct Served {
    /// The table.
    pub table: WeightsTable,
    /// `"<version>"`, the ETag.
    pub etag: String,
    /// The table as JSON, served as is.
    pub body: Bytes,
}

pub use mplb_wire::admin::ServiceRound;

/// The table being served, kept once: the [`TableBuilder`] that owns it
/// writes it when it publishes; the HTTP handlers read it through a clone
/// of this handle (never through the builder's lock).
#[derive(Debug, Clone, Default)]
pub struct Published(Arc<RwLock<Option<Arc<Served>>>>);

impl Published {
    /// The table being served, if any.
    pub fn get(&self) -> Option<Arc<Served>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, served: Arc<Served>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(served);
    }
}

/// Builds tables round after round.
#[derive(Debug)]
pub struct TableBuilder {
    cfg: WeightsConfig,
    version: u64,
    damped: BTreeMap<String, BTreeMap<String, f64>>,
    current: Published,
    rounds: BTreeMap<String, ServiceRound>,
    /// Publish the next round's table even if it equals the current one
    /// (set on taking over leadership).
    publish_next: bool,
}

fn normalise(w: &mut BTreeMap<String, f64>) -> bool {
    let sum: f64 = w.values().sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return false;
    }
    w.values_mut().for_each(|v| *v /= sum);
    true
}

/// Pods in `held` that had a share in `prev` keep it; the other pods of
/// `target` (normalised) share the rest in their proportions.
fn hold(target: &mut BTreeMap<String, f64>, held: &BTreeSet<String>, prev: &BTreeMap<String, f64>) {
    let kept: BTreeMap<String, f64> = target
        .keys()
        .filter(|p| held.contains(*p))
        .filter_map(|p| prev.get(p).map(|w| (p.clone(), *w)))
        .collect();
    let kept_sum: f64 = kept.values().sum();
    if kept.is_empty() || !(kept_sum.is_finite() && kept_sum < 1.0) {
        return;
    }
    let rest: f64 = target
        .iter()
        .filter(|(p, _)| !kept.contains_key(*p))
        .map(|(_, w)| w)
        .sum();
    if rest.is_nan() || rest <= 0.0 {
        return;
    }
    let scale = (1.0 - kept_sum) / rest;
    for (p, w) in target.iter_mut() {
        *w = kept.get(p).copied().unwrap_or(*w * scale);
    }
}

impl TableBuilder {
    /// `first_version - 1` is never served; start from the wall clock so a
    /// restarted server never reuses a version a filter has cached.
    pub fn new(cfg: WeightsConfig, first_version: u64) -> Self {
        TableBuilder {
            cfg,
            version: first_version.saturating_sub(1),
            damped: BTreeMap::new(),
            current: Published::default(),
            publish_next: false,
            rounds: BTreeMap::new(),
        }
    }

    /// The table being served, if any.
    pub fn current(&self) -> Option<Arc<Served>> {
        self.current.get()
    }

    /// A read handle on the table being served (it follows every publish).
    pub fn published(&self) -> Published {
        self.current.clone()
    }

    /// The last round per service, for explain and state.
    pub fn rounds(&self) -> &BTreeMap<String, ServiceRound> {
        &self.rounds
    }

    /// Leadership taken over: the next table gets version `next` (or
    /// higher) and is published whatever it holds; `last` (the table served
    /// so far, from the old leader) seeds the damping so weights move on
    /// from where they were.
    pub fn take_over(&mut self, next: u64, last: Option<&WeightsTable>) {
        self.version = self.version.max(next.saturating_sub(1));
        self.publish_next = true;
        if let Some(t) = last {
            self.damped = t
                .services
                .iter()
                .filter_map(|(fqdn, s)| {
                    let mut w: BTreeMap<String, f64> = s
                        .endpoints
                        .iter()
                        .filter(|e| e.weight > 0.0)
                        .map(|e| (e.pod.clone(), e.weight))
                        .collect();
                    normalise(&mut w).then(|| (fqdn.clone(), w))
                })
                .collect();
        }
    }

    /// One round: returns the new table when the version changed.
    pub fn round(
        &mut self,
        topo: &Topology,
        decision: &Decision,
        drains: &BTreeSet<String>,
        now_ms: u64,
    ) -> crate::Result<Option<Arc<Served>>> {
        let mut services = BTreeMap::new();
        let mut damped_all = BTreeMap::new();
        let mut rounds = BTreeMap::new();
        let by_service = topo.ready_pods_by_service();
        for (fqdn, svc) in &topo.services {
            let ready: &[&crate::topology::Pod] =
                by_service.get(fqdn.as_str()).map_or(&[], Vec::as_slice);
            let active: Vec<&str> = ready
                .iter()
                .filter(|p| !drains.contains(&p.name))
                .map(|p| p.name.as_str())
                .collect();
            if active.is_empty() {
                continue;
            }
            let mut source = "policy";
            let mut target: BTreeMap<String, f64> = active
                .iter()
                .map(|p| {
                    let w = decision
                        .weights
                        .get(fqdn)
                        .and_then(|m| m.get(*p))
                        .copied()
                        .filter(|w| w.is_finite() && *w >= 0.0)
                        .unwrap_or(0.0);
                    (p.to_string(), w)
                })
                .collect();
            if !decision.weights.contains_key(fqdn) || !normalise(&mut target) {
                source = "even-fallback";
                let even = 1.0 / active.len() as f64;
                target.values_mut().for_each(|v| *v = even);
            } else if let (Some(held), Some(prev)) =
                (decision.held.get(fqdn), self.damped.get(fqdn))
            {
                hold(&mut target, held, prev);
            }
            let damping = if decision.undamped {
                1.0
            } else {
                self.cfg.damping
            };
            let mut damped = match self.damped.get(fqdn) {
                Some(prev) if prev.keys().eq(target.keys()) => prev
                    .iter()
                    .map(|(p, old)| {
                        let t = target.get(p).copied().unwrap_or(0.0);
                        let mut v = old + damping * (t - old);
                        if (v - t).abs() < 1e-4 {
                            v = t;
                        }
                        (p.clone(), v)
                    })
                    .collect(),
                _ => target.clone(),
            };
            if !normalise(&mut damped) {
                damped = target.clone();
            }
            let endpoints = ready
                .iter()
                .map(|p| Endpoint {
                    pod: p.name.clone(),
                    address: p.address.to_string(),
                    weight: damped.get(&p.name).copied().unwrap_or(0.0),
                })
                .collect();
            services.insert(
                fqdn.clone(),
                ServiceWeights {
                    aliases: svc.aliases.clone(),
                    endpoints,
                    admit: decision
                        .admit
                        .get(fqdn)
                        .copied()
                        .filter(|a| *a > 0.0 && *a < 1.0),
                },
            );
            let drained = ready
                .iter()
                .filter(|p| drains.contains(&p.name))
                .map(|p| p.name.clone())
                .collect();
            rounds.insert(
                fqdn.clone(),
                ServiceRound {
                    source: source.to_string(),
                    target,
                    damped: damped.clone(),
                    drained,
                },
            );
            damped_all.insert(fqdn.clone(), damped);
        }
        self.damped = damped_all;
        self.rounds = rounds;
        if !self.publish_next
            && let Some(cur) = self.current.get()
            && !self.changed(&cur.table.services, &services)
        {
            return Ok(None);
        }
        let table = WeightsTable {
            version: self.version + 1,
            generated_at_ms: now_ms,
            ttl_ms: self.cfg.ttl_ms,
            services,
        };
        table
            .validate()
            .map_err(|e| crate::Error::Policy(format!("built an invalid table: {e}")))?;
        let body = Bytes::from(
            serde_json::to_vec(&table).map_err(|e| crate::Error::Policy(e.to_string()))?,
        );
        self.version = table.version;
        let served = Arc::new(Served {
            etag: format!("\"{}\"", table.version),
            table,
            body,
        });
        self.current.set(served.clone());
        self.publish_next = false;
        Ok(Some(served))
    }

    fn changed(
        &self,
        old: &BTreeMap<String, ServiceWeights>,
        new: &BTreeMap<String, ServiceWeights>,
    ) -> bool {
        if !old.keys().eq(new.keys()) {
            return true;
        }
        old.values().zip(new.values()).any(|(a, b)| {
            a.aliases != b.aliases
                || (a.admit_fraction() - b.admit_fraction()).abs() > self.cfg.dead_band
                || (a.admit.is_some() != b.admit.is_some())
                || a.endpoints.len() != b.endpoints.len()
                || a.endpoints.iter().zip(&b.endpoints).any(|(x, y)| {
                    x.pod != y.pod
                        || x.address != y.address
                        || (x.weight - y.weight).abs() > self.cfg.dead_band
                        || ((x.weight == 0.0) != (y.weight == 0.0))
                })
        })
    }
}

#[cfg(test)]
mod tests;
