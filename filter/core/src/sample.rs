//! Which responses a VM observes (reads the `:status` of, and times), per
//! destination pod.
//!
//! Observing a response costs host calls: its `:status` is a value the host
//! must place in the VM (about 10k instructions in Envoy, a quarter of the
//! filter's added cost per request) and its latency two clock reads. So each
//! VM observes a bounded number of responses per destination pod and second,
//! and counts the others by number only.
//!
//! Each stamped request is observed with probability 1/w, where w is the
//! pod's *period*: 1 while the pod's traffic fits its budget (every response
//! observed: its error count is exact), and, at each tick, the pod's stamped
//! requests of the tick just ended over its per-tick budget. An observed
//! error stands for w errors (Horvitz-Thompson): since w is fixed from the
//! past before each draw, the error count is an unbiased estimate whatever
//! the traffic does. A burst inside a tick cannot run up the cost: once the
//! tick's samples reach twice the budget, w doubles (and again after each
//! further budget's worth).

/// One destination pod's sampling state in one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// Stamped requests since the tick.
    stamped: u32,
    /// Of those, observed; reset to the budget when the period doubles.
    sampled: u32,
    /// The period w: a request is observed with probability 1/w.
    period: u32,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            stamped: 0,
            sampled: 0,
            period: 1,
        }
    }
}

impl Sampler {
    /// A new tick: the period for the next one, from the tick that ended
    /// (`budget`: observed responses per tick wanted, at least 1).
    pub fn tick(&mut self, budget: u32) {
        let budget = budget.max(1);
        self.period = self.stamped.div_ceil(budget).max(1);
        self.stamped = 0;
        self.sampled = 0;
    }

    /// Draw for one stamped request (`random`: a uniform u32, asked for only
    /// when the period is above 1): the number of requests its response
    /// stands for if it is observed (the period), or 0 if it is not.
    pub fn draw(&mut self, budget: u32, random: impl FnOnce() -> u32) -> u32 {
        self.stamped = self.stamped.saturating_add(1);
        let period = self.period;
        // Observed when random < 2^32 / period: probability 1/period
        // (to within 2^-32).
        if period > 1 && (u64::from(random()) * u64::from(period)) >> 32 != 0 {
            return 0;
        }
        let budget = budget.max(1);
        self.sampled += 1;
        if self.sampled >= budget.saturating_mul(2) {
            self.period = period.saturating_mul(2);
            self.sampled = budget;
        }
        period
    }

    #[cfg(test)]
    /// The current period.
    pub fn period(&self) -> u32 {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    #[test]
    fn light_traffic_is_observed_in_full() {
        let mut s = Sampler::default();
        for _ in 0..10 {
            for _ in 0..8 {
                assert_eq!(s.draw(8, || unreachable!("no draw at period 1")), 1);
            }
            s.tick(8);
            assert_eq!(s.period(), 1);
        }
    }

    #[test]
    fn heavy_traffic_is_observed_about_budget_times_per_tick() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut s = Sampler::default();
        let mut per_tick = Vec::new();
        for _ in 0..50 {
            let observed = (0..10_000)
                .filter(|_| s.draw(8, || rng.random()) > 0)
                .count();
            per_tick.push(observed);
            s.tick(8);
        }
        assert_eq!(s.period(), 1250);
        // The first tick starts at period 1 and doubles its way up.
        assert!(per_tick[0] <= 8 * 2 + 8 * 12, "{per_tick:?}");
        let steady: f64 = per_tick[1..].iter().sum::<usize>() as f64 / 49.0;
        assert!((6.0..=10.0).contains(&steady), "{steady} {per_tick:?}");
    }

    /// The error estimate (observed errors times their period) against the
    /// truth, over traffic that swings between light and heavy ticks.
    #[test]
    fn the_error_estimate_is_unbiased_under_swinging_traffic() {
        let mut rng = SmallRng::seed_from_u64(11);
        let mut s = Sampler::default();
        let (mut truth, mut estimate, mut observed, mut requests) = (0u64, 0u64, 0u64, 0u64);
        for tick in 0..8_000u32 {
            let n = [5, 400, 3_000, 40][tick as usize % 4];
            for _ in 0..n {
                let error = rng.random_range(0..100) < 7; // 7 % 5xx
                let w = s.draw(32, || rng.random());
                truth += u64::from(error);
                requests += 1;
                if w > 0 {
                    observed += 1;
                    estimate += u64::from(error) * u64::from(w);
                }
            }
            s.tick(32);
        }
        // About 1.3 % standard error here (the heavy ticks' weights).
        let rel = estimate as f64 / truth as f64 - 1.0;
        eprintln!("estimate {estimate}, truth {truth}, observed {observed} of {requests}");
        assert!(rel.abs() < 0.05, "estimate {estimate} truth {truth}");
        // And it cost a small fraction of the reads.
        assert!(observed * 10 < requests, "{observed} of {requests}");
    }

    #[test]
    fn a_burst_inside_a_tick_doubles_the_period() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut s = Sampler::default();
        let observed = (0..1_000_000)
            .filter(|_| s.draw(4, || rng.random()) > 0)
            .count();
        // 8 at period 1, then 4 per doubling: log2(1e6 / 8) ~ 17 doublings.
        assert!(observed < 8 + 4 * 24, "{observed}");
        assert!(s.period() >= 1 << 15, "{}", s.period());
    }
}
