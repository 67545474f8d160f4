//! Results of a comparison: the per-policy table (markdown), the spread
//! over repeats, the ordering, `results.json` and `timeseries.csv` (the
//! targets are judged in [`crate::verdict`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::error::{Error, Result};
use crate::run::PolicyResult;
use crate::verdict::Verdict;

/// The markdown table of one repeat.
pub fn table(results: &[&PolicyResult]) -> String {
    let Some(first) = results.first() else {
        return String::new();
    };
    let nodes: Vec<&String> = first.node_util_pct.keys().collect();
    let tenants: Vec<&String> = first.tenant_fair_share.keys().collect();
    let mut s = String::from(
        "| policy | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | non-2xx |",
    );
    for n in &nodes {
        let _ = write!(s, " {n} CPU % |");
    }
    let others: Vec<&String> = first.entries.keys().skip(1).collect();
    for e in &others {
        let _ = write!(s, " {e} p50/p99/p99.9 ms |");
    }
    for t in &tenants {
        let _ = write!(s, " {t} CPU m / fair, served/entitled |");
    }
    s.push_str(" Jain | max/avg node | table versions | weight moves | settle polls | oscillations | signal→weight p99 s |\n|---|---:|---:|---:|---:|---:|---:|");
    for _ in 0..nodes.len() + others.len() + tenants.len() + 7 {
        s.push_str("---:|");
    }
    s.push('\n');
    for r in results {
        let _ = write!(
            s,
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r.policy,
            r.load.offered_rps,
            r.load.achieved_rps,
            r.load.p50_ms,
            r.load.p99_ms,
            r.load.p999_ms,
            r.non_2xx()
        );
        for n in &nodes {
            let _ = write!(
                s,
                " {:.0} |",
                r.node_util_pct.get(*n).copied().unwrap_or(0.0)
            );
        }
        for e in &others {
            let l = r.entries.get(*e).cloned().unwrap_or_default();
            let _ = write!(s, " {:.1} / {:.1} / {:.1} |", l.p50_ms, l.p99_ms, l.p999_ms);
        }
        for t in &tenants {
            let _ = write!(
                s,
                " {:.0} / {:.0} ({:.0}%), {:.0}% |",
                r.tenant_millicores.get(*t).copied().unwrap_or(0.0),
                r.tenant_fair_share.get(*t).copied().unwrap_or(0.0),
                100.0 * r.share_fraction(t),
                100.0 * r.served_over_entitled(t)
            );
        }
        let c = &r.convergence;
        let _ = writeln!(
            s,
            " {:.3} | {:.2} | {} | {} | {} | {} | {} |",
            r.jain(),
            r.max_over_avg(),
            r.version_changes,
            r.weight_changes,
            c.worst_settle().map_or("-".to_string(), |p| p.to_string()),
            c.oscillations,
            c.signal_to_weight_p99_s()
                .map_or("-".to_string(), |l| format!("{l:.1}"))
        );
    }
    s
}

/// Median of the finite values of `v` (NaN when there are none).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Metrics compared across policies and repeats.
type Metric = (&'static str, fn(&PolicyResult) -> f64);
const METRICS: &[Metric] = &[
    ("achieved req/s", |r| r.load.achieved_rps),
    ("p50 ms", |r| r.load.p50_ms),
    ("p99 ms", |r| r.load.p99_ms),
    ("p99.9 ms", |r| r.load.p999_ms),
    ("non-2xx", |r| r.non_2xx() as f64),
    ("busiest node %", PolicyResult::busiest_node_pct),
    ("max/avg node", PolicyResult::max_over_avg),
    ("Jain (served/entitled)", PolicyResult::jain),
];

fn by_policy(results: &[PolicyResult]) -> BTreeMap<&str, Vec<&PolicyResult>> {
    let mut m: BTreeMap<&str, Vec<&PolicyResult>> = BTreeMap::new();
    for r in results {
        m.entry(r.policy.as_str()).or_default().push(r);
    }
    m
}

/// min / median / max per metric and policy, then each tenant's served
/// over entitled CPU (in %).
pub fn spread(results: &[PolicyResult]) -> String {
    let mut s =
        String::from("| policy | metric | min | median | max |\n|---|---|---:|---:|---:|\n");
    let tenants: Vec<&String> = results
        .first()
        .map(|r| r.tenant_entitled.keys().collect())
        .unwrap_or_default();
    for (policy, rs) in by_policy(results) {
        let mut rows: Vec<(String, Vec<f64>)> = METRICS
            .iter()
            .map(|(name, f)| (name.to_string(), rs.iter().map(|r| f(r)).collect()))
            .collect();
        for t in &tenants {
            rows.push((
                format!("{t} served/entitled %"),
                rs.iter()
                    .map(|r| 100.0 * r.served_over_entitled(t))
                    .collect(),
            ));
        }
        for (name, v) in rows {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                s,
                "| {policy} | {name} | {min:.1} | {:.1} | {max:.1} |",
                median(v)
            );
        }
    }
    s
}

/// Policies ordered by the first entry service's p99 (best first) in each repeat, and whether
/// every repeat gives the same order.
pub fn ordering(results: &[PolicyResult]) -> (Vec<Vec<String>>, bool) {
    let mut repeats: BTreeMap<u32, Vec<&PolicyResult>> = BTreeMap::new();
    for r in results {
        repeats.entry(r.repeat).or_default().push(r);
    }
    let orders: Vec<Vec<String>> = repeats
        .values()
        .map(|rs| {
            let mut rs = rs.clone();
            rs.sort_by(|a, b| a.load.p99_ms.total_cmp(&b.load.p99_ms));
            rs.iter().map(|r| r.policy.clone()).collect()
        })
        .collect();
    let same = orders.windows(2).all(|w| w[0] == w[1]);
    (orders, same)
}

/// Write `results.json` (the configuration document, the results, the
/// targets judged on them and the ordering) and `timeseries.csv` into `dir`.
pub fn write_data(
    dir: &Path,
    config: &serde_json::Value,
    results: &[PolicyResult],
    verdicts: &[Verdict],
) -> Result<()> {
    let (orders, same) = ordering(results);
    let doc = json!({
        "config": config,
        "results": results,
        "targets": verdicts,
        "ordering_by_first_entry_p99": orders,
        "ordering_held": same,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Results(e.to_string()))?;
    write(&dir.join("results.json"), &text)?;
    write(&dir.join("timeseries.csv"), &timeseries_csv(results))
}

/// Long-format CSV: `repeat,policy,t_s,kind,name,value` (kind = node_util_pct | weight | version).
pub fn timeseries_csv(results: &[PolicyResult]) -> String {
    let mut s = String::from("repeat,policy,t_s,kind,name,value\n");
    for r in results {
        for x in &r.samples {
            for (n, v) in &x.node_util_pct {
                let _ = writeln!(
                    s,
                    "{},{},{:.2},node_util_pct,{n},{v:.2}",
                    r.repeat, r.policy, x.t_s
                );
            }
            for (p, w) in &x.weights {
                let _ = writeln!(
                    s,
                    "{},{},{:.2},weight,{p},{w:.4}",
                    r.repeat, r.policy, x.t_s
                );
            }
            if let Some(v) = x.version {
                let _ = writeln!(
                    s,
                    "{},{},{:.2},version,table,{v}",
                    r.repeat, r.policy, x.t_s
                );
            }
        }
    }
    s
}

/// Write `text` to `path`, naming the path on error.
pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::LoadResult;

    fn res(policy: &str, repeat: u32, p99: f64, busiest: f64, batch_m: f64) -> PolicyResult {
        PolicyResult {
            policy: policy.into(),
            repeat,
            load: LoadResult {
                offered_rps: 100.0,
                achieved_rps: 99.0,
                p99_ms: p99,
                ..Default::default()
            },
            entries: BTreeMap::new(),
            gateway: BTreeMap::new(),
            tenant_entitled: BTreeMap::new(),
            pod_millicores: BTreeMap::new(),
            events: Vec::new(),
            node_util_pct: [
                ("node-a".to_string(), busiest),
                ("node-b".to_string(), 10.0),
            ]
            .into(),
            tenant_millicores: [("batch".to_string(), batch_m)].into(),
            tenant_fair_share: [("batch".to_string(), 150.0)].into(),
            version_changes: 0,
            weight_changes: 0,
            convergence: Default::default(),
            final_weights: BTreeMap::new(),
            samples: Vec::new(),
        }
    }

    #[test]
    fn spread_has_a_row_per_tenant_the_run_has() {
        let mut a = res("even", 1, 100.0, 95.0, 120.0);
        a.tenant_entitled = [("batch".to_string(), 150.0)].into();
        let mut b = a.clone();
        b.repeat = 2;
        b.tenant_millicores = [("batch".to_string(), 150.0)].into();
        let s = spread(&[a, b]);
        assert!(
            s.contains("| even | batch served/entitled % | 80.0 | 90.0 | 100.0 |"),
            "{s}"
        );
        assert!(!s.contains("hotel"), "{s}");
    }

    #[test]
    fn ordering_detects_a_flip() {
        let rs = vec![
            res("even", 1, 100.0, 0.0, 0.0),
            res("optimal", 1, 50.0, 0.0, 0.0),
        ];
        assert_eq!(
            ordering(&rs),
            (vec![vec!["optimal".to_string(), "even".to_string()]], true)
        );
        let mut flip = rs.clone();
        flip.push(res("even", 2, 10.0, 0.0, 0.0));
        flip.push(res("optimal", 2, 50.0, 0.0, 0.0));
        assert!(!ordering(&flip).1);
    }

    #[test]
    fn table_has_a_row_per_policy() {
        let rs = [
            res("even", 1, 100.0, 95.0, 100.0),
            res("optimal", 1, 40.0, 70.0, 145.0),
        ];
        let t = table(&rs.iter().collect::<Vec<_>>());
        assert_eq!(t.lines().count(), 4);
        assert!(t.contains("| optimal | 100 | 99.0 |"), "{t}");
        assert!(t.contains("145 / 150 (97%)"), "{t}");
    }
}
