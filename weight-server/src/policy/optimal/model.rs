//! The inputs of the `optimal` LP, derived from a [`Topology`] and a
//! [`CpuView`]: known hosts with capacity and background use, services with
//! their (possibly raised) demand, tenants with fair share and entitlement,
//! and the pods that get an LP variable.

use std::collections::{BTreeMap, HashMap};

use super::OptimalConfig;
use crate::policy::{CpuView, usable};
use crate::topology::Topology;

/// A node with a fresh, usable report.
#[derive(Debug, Clone)]
pub struct Host {
    /// The node's name.
    pub name: String,
    /// C_h, millicores.
    pub capacity: f64,
    /// Smoothed node use, millicores.
    pub used: f64,
    /// Smoothed CPU of the managed pods on it (any readiness), millicores.
    pub managed: f64,
    /// B_h = max(0, used − managed).
    pub background: f64,
    /// A_h = max(0, C_h − B_h): what managed load may use; on a saturated
    /// node at most `saturated_plan × C_h − B_h` while all demand fits.
    pub available: f64,
    /// used ≥ saturation threshold × capacity.
    pub saturated: bool,
}

/// A managed service.
#[derive(Debug, Clone)]
pub struct Svc {
    /// The service's FQDN.
    pub fqdn: String,
    /// Index into [`Inputs::tenants`].
    pub tenant: usize,
    /// Σ smoothed CPU of its pods on known hosts (any readiness).
    pub demand_measured: f64,
    /// The demand the LP places (measured, raised for a throttled tenant).
    pub demand: f64,
    /// Indices into [`Inputs::pods`]: its ready pods on known hosts.
    pub lp_pods: Vec<usize>,
    /// Its ready pods on unknown nodes (they keep an even share).
    pub unknown_pods: Vec<String>,
    /// Why the service is left out of the decision, if it is.
    pub left_out: Option<String>,
}

impl Svc {
    /// Ready pods in total.
    pub fn ready(&self) -> usize {
        self.lp_pods.len() + self.unknown_pods.len()
    }
}

/// A tenant (party).
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The tenant's name.
    pub name: String,
    /// F_s, millicores (`Topology::fair_share`).
    pub fair_share: f64,
    /// Σ measured demand of its services.
    pub demand_measured: f64,
    /// Σ CPU of its pods on known hosts in their node's last report
    /// (unsmoothed; [`CpuView::pods_last`]).
    pub demand_last: f64,
    /// D_s: Σ demand of its services in the LP.
    pub demand: f64,
    /// E_s = min(F_s, D_s): what it is guaranteed when feasible.
    pub entitled: f64,
    /// One of its ready pods sits on a saturated node.
    pub throttled: bool,
    /// Its demand was raised to its fair share (`raise_demand`).
    pub raised: bool,
    /// Indices into [`Inputs::services`].
    pub services: Vec<usize>,
}

/// A ready pod on a known host: one LP variable.
#[derive(Debug, Clone)]
pub struct LpPod {
    /// The pod's name.
    pub name: String,
    /// Index into [`Inputs::services`].
    pub service: usize,
    /// Index into [`Inputs::hosts`].
    pub host: usize,
    /// Its smoothed CPU, millicores.
    pub cpu: f64,
}

/// Everything the LP needs.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Nodes with a fresh, usable report.
    pub hosts: Vec<Host>,
    /// Managed services.
    pub services: Vec<Svc>,
    /// Tenants (parties).
    pub tenants: Vec<Tenant>,
    /// Ready pods on known hosts: the LP variables.
    pub pods: Vec<LpPod>,
}

impl Inputs {
    /// Derive the inputs. Never fails: unusable numbers count as 0 or make
    /// a node unknown; services with nothing to decide get `left_out`.
    pub fn build(topology: &Topology, cpu: &CpuView, cfg: &OptimalConfig) -> Self {
        let mut inputs = Inputs::default();
        // Hosts: nodes with a fresh report and a positive capacity.
        let mut host_index: HashMap<&str, usize> = HashMap::new();
        for (name, n) in &cpu.nodes {
            let capacity = CpuView::capacity(topology, name, n);
            if capacity <= 0.0 || !n.used_millicores.is_finite() {
                continue;
            }
            host_index.insert(name.as_str(), inputs.hosts.len());
            inputs.hosts.push(Host {
                name: name.clone(),
                capacity,
                used: usable(n.used_millicores),
                managed: 0.0,
                background: 0.0,
                available: 0.0,
                saturated: false,
            });
        }
        for pod in topology.pods.values() {
            if let Some(&h) = host_index.get(pod.node.as_str()) {
                inputs.hosts[h].managed += usable(cpu.pods.get(&pod.name).copied().unwrap_or(0.0));
            }
        }
        for h in &mut inputs.hosts {
            h.background = (h.used - h.managed).max(0.0);
            h.available = (h.capacity - h.background).max(0.0);
            h.saturated = h.used >= cfg.saturation_threshold * h.capacity;
        }

        // Fair shares as `Topology::fair_share` computes them, in one pass.
        let mut requests: HashMap<&str, f64> = HashMap::new();
        for pod in topology.pods.values() {
            if let Some(r) = pod.cpu_request_millicores {
                *requests.entry(pod.service.as_str()).or_default() += r;
            }
        }
        let mut shares: HashMap<&str, f64> = HashMap::new();
        for svc in topology.services.values() {
            let share = svc
                .fair_share_millicores
                .unwrap_or_else(|| requests.get(svc.fqdn.as_str()).copied().unwrap_or(0.0));
            *shares.entry(svc.tenant.as_str()).or_default() += share;
        }

        // Tenants and services, in stable (FQDN) order.
        let mut tenant_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut service_index: HashMap<&str, usize> = HashMap::new();
        for svc in topology.services.values() {
            let t = *tenant_index.entry(svc.tenant.as_str()).or_insert_with(|| {
                inputs.tenants.push(Tenant {
                    name: svc.tenant.clone(),
                    fair_share: usable(shares.get(svc.tenant.as_str()).copied().unwrap_or(0.0)),
                    demand_measured: 0.0,
                    demand_last: 0.0,
                    demand: 0.0,
                    entitled: 0.0,
                    throttled: false,
                    raised: false,
                    services: Vec::new(),
                });
                inputs.tenants.len() - 1
            });
            service_index.insert(svc.fqdn.as_str(), inputs.services.len());
            inputs.tenants[t].services.push(inputs.services.len());
            inputs.services.push(Svc {
                fqdn: svc.fqdn.clone(),
                tenant: t,
                demand_measured: 0.0,
                demand: 0.0,
                lp_pods: Vec::new(),
                unknown_pods: Vec::new(),
                left_out: None,
            });
        }

        // Pods: demand from every pod on a known host; variables for ready ones.
        for pod in topology.pods.values() {
            let Some(&s) = service_index.get(pod.service.as_str()) else {
                continue;
            };
            let host = host_index.get(pod.node.as_str()).copied();
            let load = usable(cpu.pods.get(&pod.name).copied().unwrap_or(0.0));
            if host.is_some() {
                inputs.services[s].demand_measured += load;
                let t = inputs.services[s].tenant;
                inputs.tenants[t].demand_last +=
                    usable(cpu.pods_last.get(&pod.name).copied().unwrap_or(0.0));
            }
            if !pod.ready {
                continue;
            }
            match host {
                Some(h) => {
                    inputs.services[s].lp_pods.push(inputs.pods.len());
                    let tenant = inputs.services[s].tenant;
                    if inputs.hosts[h].saturated {
                        inputs.tenants[tenant].throttled = true;
                    }
                    inputs.pods.push(LpPod {
                        name: pod.name.clone(),
                        service: s,
                        host: h,
                        cpu: load,
                    });
                }
                None => inputs.services[s].unknown_pods.push(pod.name.clone()),
            }
        }

        // Whether the measured demand of every placed service fits well
        // inside the room (the saturation threshold of it): see `raise_demand`.
        let measured: f64 = (inputs.services.iter())
            .filter(|s| !s.lp_pods.is_empty())
            .map(|s| s.demand_measured)
            .sum();
        let room: f64 = inputs.hosts.iter().map(|h| h.available).sum();
        let fits = measured <= cfg.saturation_threshold * room;
        for t in 0..inputs.tenants.len() {
            inputs.raise_demand(t, cfg, !fits);
        }
        inputs
    }

    /// A saturated node's background use is a lower bound of what it wants
    /// (it is throttled too): while all demand still fits, reserve room for
    /// it to grow, as much again as it uses, up to `(1 − saturated_plan) ×
    /// C_h` (a large background leaves the node planned to `saturated_plan ×
    /// C_h`), so load leaves at once rather than step by step as the
    /// background's use shows. A node busy with managed load only hides
    /// nothing and keeps its room (its pods' demand is already raised when
    /// throttled); the reserve grows with the background, so measurement
    /// noise on a node at the threshold moves little. `None` when no node
    /// is saturated or the total demand exceeds the planned room; the caller
    /// keeps the plan only if every demand is served under it (otherwise,
    /// overload, nodes keep their room so entitlements are not cut).
    pub fn planned(&self, cfg: &OptimalConfig) -> Option<Inputs> {
        let planned: Vec<f64> = self
            .hosts
            .iter()
            .map(|h| {
                if h.saturated {
                    let reserve = h
                        .background
                        .min((1.0 - cfg.saturated_plan).max(0.0) * h.capacity);
                    (h.available - reserve).max(0.0)
                } else {
                    h.available
                }
            })
            .collect();
        let changed = (self.hosts.iter().zip(&planned)).any(|(h, a)| *a < h.available);
        let demand: f64 = self.placed().map(|(_, s)| s.demand).sum();
        if !changed || demand > planned.iter().sum::<f64>() {
            return None;
        }
        let mut inputs = self.clone();
        for (h, a) in inputs.hosts.iter_mut().zip(planned) {
            h.available = a;
        }
        Some(inputs)
    }

    /// D_s from its services. A throttled tenant's measured demand
    /// understates what it wants; it is raised to at least its fair share
    /// (spread over its services in proportion to their measured demand, or
    /// evenly when none was measured) where its load cannot escape the
    /// saturation: the measured demand of all services does not fit
    /// (`overloaded`), or one of its services has every ready pod on a
    /// saturated node. Otherwise the balance moves its load off the
    /// saturated nodes anyway and the unthrottled demand shows next round;
    /// raising it would turn a fit into an overload, decided by
    /// entitlements instead of balance, and load would leave a node whose
    /// background (a hog) squeezes the tenant only as fast as the hog's
    /// use shows.
    fn raise_demand(&mut self, t: usize, cfg: &OptimalConfig, overloaded: bool) {
        let services = self.tenants[t].services.clone();
        let placeable: Vec<usize> = services
            .iter()
            .copied()
            .filter(|&s| !self.services[s].lp_pods.is_empty())
            .collect();
        let measured: f64 = placeable
            .iter()
            .map(|&s| self.services[s].demand_measured)
            .sum();
        let stuck = placeable.iter().any(|&s| {
            (self.services[s].lp_pods.iter()).all(|&p| self.hosts[self.pods[p].host].saturated)
        });
        let tenant = &self.tenants[t];
        let raise = cfg.protect_saturated
            && tenant.throttled
            && tenant.fair_share > measured
            && (overloaded || stuck);
        let target = if raise { tenant.fair_share } else { measured };
        self.tenants[t].raised = raise;
        for &s in &placeable {
            let svc = &mut self.services[s];
            svc.demand = if !raise {
                svc.demand_measured
            } else if measured > 0.0 {
                svc.demand_measured * target / measured
            } else {
                target / placeable.len() as f64
            };
        }
        for &s in &services {
            let svc = &mut self.services[s];
            svc.left_out = if svc.ready() == 0 {
                Some("no ready pod".into())
            } else if svc.lp_pods.is_empty() {
                Some("no ready pod on a node with a fresh CPU report".into())
            } else if svc.demand <= 0.0 {
                Some("no CPU demand measured yet".into())
            } else {
                None
            };
        }
        let tenant = &mut self.tenants[t];
        tenant.demand_measured = services
            .iter()
            .map(|&s| self.services[s].demand_measured)
            .sum();
        tenant.demand = placeable
            .iter()
            .filter(|&&s| self.services[s].left_out.is_none())
            .map(|&s| self.services[s].demand)
            .sum();
        tenant.entitled = tenant.fair_share.min(tenant.demand);
    }

    /// Services placed by the LP.
    pub fn placed(&self) -> impl Iterator<Item = (usize, &Svc)> {
        self.services
            .iter()
            .enumerate()
            .filter(|(_, s)| s.left_out.is_none())
    }
}
