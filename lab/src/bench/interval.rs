//! The bootstrap interval of the filter's CPU ratio (was scripts/bench_ci.py).
//!
//! Input: per clean cycle and variant, the variant's Envoy CPU time over its
//! bursts in that cycle and the requests served in them ("cycle variant ns
//! reqs" lines, the `--cycles-out` file). The ratio is (v - none) / (noop -
//! none) in CPU per request, each a sum over the cycles. Resampling whole
//! cycles with replacement (cycles are the unit of pairing: every variant ran
//! in each, close in time) gives its spread; the seed is fixed, so the same
//! input gives the same interval.

use std::collections::BTreeMap;

/// Resamples drawn.
pub const RESAMPLES: usize = 4000;

/// Per cycle, per variant: (CPU ns, requests).
pub type Cycles = BTreeMap<String, BTreeMap<String, (f64, f64)>>;

/// Parse "cycle variant ns reqs" lines (others are skipped).
pub fn parse(text: &str) -> Cycles {
    let mut data = Cycles::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split_whitespace().collect();
        if let [c, v, ns, reqs] = p[..]
            && let (Ok(ns), Ok(reqs)) = (ns.parse(), reqs.parse())
        {
            data.entry(c.to_string())
                .or_default()
                .insert(v.to_string(), (ns, reqs));
        }
    }
    data
}

fn per_req(cycles: &[&str], data: &Cycles, variant: &str) -> f64 {
    let (mut ns, mut reqs) = (0.0, 0.0);
    for c in cycles {
        if let Some((n, r)) = data.get(*c).and_then(|m| m.get(variant)) {
            ns += n;
            reqs += r;
        }
    }
    ns / reqs / 1e3
}

fn ratio(cycles: &[&str], data: &Cycles, variant: &str) -> f64 {
    let none = per_req(cycles, data, "none");
    let noop = per_req(cycles, data, "noop") - none;
    if noop > 0.0 {
        (per_req(cycles, data, variant) - none) / noop
    } else {
        f64::INFINITY
    }
}

/// splitmix64: a small seeded generator, so the interval is reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// One line per variant present in every cycle (none when absent), or
/// "bootstrap: fewer than 2 cycles".
pub fn report(data: &Cycles, variants: &[&str]) -> Vec<String> {
    let cycles: Vec<&str> = data.keys().map(String::as_str).collect();
    if cycles.len() < 2 {
        return vec!["bootstrap: fewer than 2 cycles".into()];
    }
    let mut rng = Rng(1);
    let mut out = Vec::new();
    for variant in variants {
        if cycles.iter().any(|c| !data[*c].contains_key(*variant)) {
            continue;
        }
        let point = ratio(&cycles, data, variant);
        let mut draws: Vec<f64> = (0..RESAMPLES)
            .map(|_| {
                let pick: Vec<&str> = cycles
                    .iter()
                    .map(|_| cycles[rng.below(cycles.len())])
                    .collect();
                ratio(&pick, data, variant)
            })
            .collect();
        draws.sort_by(f64::total_cmp);
        let lo = draws[RESAMPLES * 25 / 1000];
        let hi = draws[RESAMPLES * 975 / 1000 - 1];
        let at_most_2 = draws.iter().filter(|d| **d <= 2.0).count() as f64 / RESAMPLES as f64;
        out.push(format!(
            "bootstrap: {variant}/noop added CPU per request {point:.2}, 95% interval {lo:.2} to {hi:.2} over {} cycles ({RESAMPLES} resamples); <= 2 in {:.0}% of resamples",
            cycles.len(),
            at_most_2 * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rows: per cycle (none, noop, mplb) us per request, 1,000 requests each.
    fn cycles(rows: &[(f64, f64, f64)]) -> Cycles {
        let text: String = rows
            .iter()
            .enumerate()
            .flat_map(|(c, (a, b, m))| {
                [("none", a), ("noop", b), ("mplb", m)]
                    .map(|(v, us)| format!("{} {v} {:.0} 1000\n", c + 1, us * 1e6))
            })
            .collect();
        parse(&text)
    }

    fn one(rows: &[(f64, f64, f64)]) -> String {
        report(&cycles(rows), &["mplb"]).join("\n")
    }

    #[test]
    fn point_is_the_ratio_of_sums() {
        // Over both cycles: none 40, noop 43 (+3), mplb 46 (+6) us per request.
        let line = one(&[(40.0, 42.0, 45.0), (40.0, 44.0, 47.0)]);
        assert!(
            line.contains("mplb/noop added CPU per request 2.00,"),
            "{line}"
        );
        assert!(line.contains("over 2 cycles"), "{line}");
    }

    #[test]
    fn identical_cycles_give_a_point_interval() {
        let line = one(&[(40.0, 43.0, 44.5); 10]);
        assert!(line.contains("1.50, 95% interval 1.50 to 1.50"), "{line}");
        assert!(line.contains("<= 2 in 100% of resamples"), "{line}");
    }

    #[test]
    fn noisy_cycles_widen_the_interval_and_it_holds_the_point() {
        let line = one(&[
            (40.0, 43.0, 46.0),
            (40.0, 42.0, 47.0),
            (40.0, 44.0, 45.0),
            (40.0, 43.0, 49.0),
        ]);
        let words: Vec<String> = line
            .replace(',', "")
            .split_whitespace()
            .map(String::from)
            .collect();
        let after = |w: &str| -> f64 {
            let i = words.iter().position(|x| x == w).unwrap_or(0);
            words
                .get(i + 1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let (point, lo, hi) = (after("request"), after("interval"), after("to"));
        assert!(lo < point && point < hi, "{line}");
    }

    #[test]
    fn same_input_same_interval() {
        let rows = [(40.0, 43.0, 46.0), (41.0, 42.0, 47.0), (39.0, 44.0, 45.0)];
        assert_eq!(one(&rows), one(&rows));
    }

    #[test]
    fn too_few_cycles_and_missing_variants() {
        assert_eq!(one(&[(40.0, 43.0, 46.0)]), "bootstrap: fewer than 2 cycles");
        assert!(report(&cycles(&[(40.0, 43.0, 46.0); 3]), &["alt"]).is_empty());
    }
}
