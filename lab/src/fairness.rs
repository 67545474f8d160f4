//! Fairness measures of a run: each tenant's CPU demand from the offered
//! load, its entitlement (min(fair share, demand)), and Jain's index.

use std::collections::BTreeMap;

use crate::scenario::Scenario;

/// CPU demand per tenant, in millicores: every entry service's mean offered
/// rate times the CPU its chain costs in each tenant's services, plus the
/// pods' background hogs.
pub fn tenant_demand(
    scenario: &Scenario,
    entry_rates: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (entry, rate) in entry_rates {
        let mut next = Some(entry.clone());
        let mut hops = 0;
        while let Some(name) = next {
            let Some(svc) = scenario.service(&name) else {
                break;
            };
            *out.entry(svc.tenant.clone()).or_insert(0.0) += rate * svc.cost_us as f64 / 1000.0;
            next = svc.calls.clone();
            hops += 1;
            if hops > 16 {
                break;
            }
        }
    }
    for p in &scenario.pods {
        if let Some(svc) = scenario.service(&p.service)
            && !scenario.absent_at_start.contains(&p.name)
        {
            *out.entry(svc.tenant.clone()).or_insert(0.0) += svc.hog_millicores as f64;
        }
    }
    out
}

/// min(fair share, demand) per tenant that has a fair share.
pub fn entitled(
    fair: &BTreeMap<String, f64>,
    demand: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    fair.iter()
        .map(|(t, f)| (t.clone(), f.min(demand.get(t).copied().unwrap_or(0.0))))
        .collect()
}

/// Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 when all are equal.
pub fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if xs.is_empty() || sq <= 0.0 {
        return 0.0;
    }
    sum * sum / (xs.len() as f64 * sq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_follows_the_chain_and_adds_hogs() {
        let s = Scenario::shared_node().unwrap();
        let d = tenant_demand(&s, &[("frontend".to_string(), 175.0)].into());
        assert!((d["hotel"] - 700.0).abs() < 1e-9);
        assert!((d["batch"] - 175.0).abs() < 1e-9);
        let e = entitled(&crate::measure::tenant_fair_share(&s), &d);
        assert!((e["hotel"] - 700.0).abs() < 1e-9);
        assert!((e["batch"] - 150.0).abs() < 1e-9);
    }

    #[test]
    fn jain_is_one_when_equal_and_falls_with_spread() {
        assert!((jain(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert_eq!(jain(&[]), 0.0);
    }
}
