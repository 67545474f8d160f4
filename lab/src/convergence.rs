//! How fast and how calmly the served weights follow a change, from the
//! sampled time series (one sample per filter poll with the lab's defaults:
//! `--sample-every 250ms`, poll = interval / 2, `--interval 500ms`).
//!
//! * **Settle** after a change (a load step or an event) at `t0`: the
//!   samples from `t0` to the next change (or the window's end) form a
//!   segment; its *final* weights are those of its last sample. The settle
//!   time is the number of samples after `t0` until the first one from which
//!   every later sample of the segment keeps every weight within
//!   [`BAND`] of its final value. A segment that never leaves the band
//!   settles in 0 polls. *Oscillation* counts the sign changes of each pod's
//!   successive weight moves (moves below [`NOISE`] ignored) in the segment,
//!   summed over pods: a monotone approach has none.
//! * **Signal-to-weight** of a hog event (a node's CPU changes) applied at
//!   `t0`: the weights just before `t0` are the old split, the segment's
//!   final weights the new one; the latency is the time from `t0` to the
//!   first sample in which every pod that moved by at least [`MOVED`] has
//!   covered 90 % of its move. Events after which nothing moved give none.
//!   The figure is the served table's; a filter picks it up within one poll.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::measure::Sample;

/// Settled: every weight within this of its final value (2 points).
pub const BAND: f64 = 0.02;
/// Weight moves smaller than this are not a direction (oscillation count).
pub const NOISE: f64 = 0.005;
/// A pod whose weight moved less than this has nothing to reach.
pub const MOVED: f64 = 0.05;

/// The settle figures of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Convergence {
    /// Per change: its time (s into the window) and polls to settle (`None`:
    /// never settled before the next change).
    pub settle: Vec<(f64, Option<u32>)>,
    /// Sign changes of weight moves after every change, summed.
    pub oscillations: u64,
    /// Per hog event: seconds from the event to 90 % of the new split.
    pub signal_to_weight_s: Vec<f64>,
}

impl Convergence {
    /// The slowest settle over the changes; `None` if one never settled or
    /// there was no change.
    pub fn worst_settle(&self) -> Option<u32> {
        let mut worst = Some(0);
        for (_, s) in &self.settle {
            worst = match (worst, s) {
                (Some(w), Some(s)) => Some(w.max(*s)),
                _ => None,
            };
        }
        if self.settle.is_empty() { None } else { worst }
    }

    /// p99 of the signal-to-weight latencies (nearest rank); `None` without one.
    pub fn signal_to_weight_p99_s(&self) -> Option<f64> {
        percentile(&self.signal_to_weight_s, 0.99)
    }
}

/// Nearest-rank percentile `q` in (0, 1] of `xs`.
pub fn percentile(xs: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank - 1).copied()
}

fn within(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, band: f64) -> bool {
    a.iter()
        .all(|(p, x)| (x - b.get(p).copied().unwrap_or(0.0)).abs() <= band)
        && b.keys().all(|p| a.contains_key(p) || b[p].abs() <= band)
}

/// Polls after the segment's start until the weights stay within [`BAND`].
pub fn settle_polls(segment: &[&Sample]) -> Option<u32> {
    let last = segment.last()?;
    let mut first_settled = segment.len();
    for (i, s) in segment.iter().enumerate().rev() {
        if within(&s.weights, &last.weights, BAND) {
            first_settled = i;
        } else {
            break;
        }
    }
    // The last sample of a segment cut short by the next change may just be
    // passing by: only a segment that ends in a run of 2+ settled samples counts.
    if segment.len() - first_settled < 2 && segment.len() > 1 && first_settled > 0 {
        return None;
    }
    Some(first_settled as u32)
}

/// Sign changes of each pod's successive moves in the segment, summed.
pub fn oscillations(segment: &[&Sample]) -> u64 {
    let mut pods: Vec<&String> = segment.iter().flat_map(|s| s.weights.keys()).collect();
    pods.sort();
    pods.dedup();
    let mut n = 0;
    for pod in pods {
        let mut last_sign = 0.0f64;
        for w in segment.windows(2) {
            let (Some(a), Some(b)) = (w[0].weights.get(pod), w[1].weights.get(pod)) else {
                continue;
            };
            let d = b - a;
            if d.abs() < NOISE {
                continue;
            }
            if last_sign != 0.0 && d.signum() != last_sign {
                n += 1;
            }
            last_sign = d.signum();
        }
    }
    n
}

/// Seconds from `t0` to 90 % of the move from the weights before `t0` to
/// the segment's final weights; `None` when no pod moved by [`MOVED`].
pub fn reach_90(before: &Sample, segment: &[&Sample], t0: f64) -> Option<f64> {
    let last = segment.last()?;
    let moves: Vec<(&String, f64, f64)> = last
        .weights
        .iter()
        .filter_map(|(p, new)| {
            let old = before.weights.get(p).copied()?;
            ((new - old).abs() >= MOVED).then_some((p, old, *new))
        })
        .collect();
    if moves.is_empty() {
        return None;
    }
    segment
        .iter()
        .find(|s| {
            moves.iter().all(|(p, old, new)| {
                s.weights
                    .get(*p)
                    .is_some_and(|w| (w - old) / (new - old) >= 0.9)
            })
        })
        .map(|s| (s.t_s - t0).max(0.0))
}

/// The figures of a run: `changes` are the times (s into the window) of the
/// load steps and applied events, `signals` those of the hog events.
pub fn measure(samples: &[Sample], changes: &[f64], signals: &[f64]) -> Convergence {
    let mut changes: Vec<f64> = changes.iter().copied().filter(|t| t.is_finite()).collect();
    changes.sort_by(f64::total_cmp);
    changes.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    let segment = |t0: f64| -> Vec<&Sample> {
        let end = changes
            .iter()
            .copied()
            .find(|c| *c > t0 + 1e-6)
            .unwrap_or(f64::INFINITY);
        samples
            .iter()
            .filter(|s| s.t_s >= t0 && s.t_s < end)
            .collect()
    };
    let mut out = Convergence::default();
    for &t0 in &changes {
        let seg = segment(t0);
        if seg.is_empty() {
            continue;
        }
        out.settle.push((t0, settle_polls(&seg)));
        out.oscillations += oscillations(&seg);
    }
    for &t0 in signals {
        let Some(before) = samples.iter().rev().find(|s| s.t_s < t0) else {
            continue;
        };
        if let Some(l) = reach_90(before, &segment(t0), t0) {
            out.signal_to_weight_s.push(l);
        }
    }
    out
}

#[cfg(test)]
mod tests;
