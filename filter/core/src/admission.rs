//! Admission at an entry gateway: a proxy configured with `admission: true`
//! lets in only the table's `admit` fraction of the new requests to a
//! service and answers the rest at once with [`SHED_STATUS`] (503,
//! [`SHED_HEADERS`], [`SHED_BODY`]). Sidecars (`admission: false`, the
//! default) never shed.
//!
//! Which requests are shed: a credit accumulator per service and VM, the
//! admission counterpart of the pick's smooth weighted round robin
//! ([`crate::schedule`]). Each request to a service adds the service's
//! fraction `a` to its credit; the request is let in when the credit
//! reaches 1 (and 1 is taken off), else it is shed. Why this and not a
//! random draw per request:
//!
//! - exact: over any run of `n` requests a VM lets in `n·a` to within one
//!   (independent draws stray by about `√(n·a·(1-a))`: ±14 of 1,000 at 0.7),
//!   so a short burst gets its fraction too;
//! - even: the shed requests are spread out (at `a` = 0.5 every other
//!   one), not in runs that hit one client's retries back to back;
//! - cheap: one add and one compare per request, no random number.
//!
//! The credits start at a random phase in [0, 1) (from the VM's random
//! source), once per service per table version: a new version starts new
//! credits, like new schedules. The random phase makes the count unbiased
//! however few requests a version sees (`floor(phase + n·a)` has mean
//! `n·a`; a phase of 0 would shed about half a request too many per
//! version and VM), and keeps the workers and gateways out of step.
//!
//! The decision is taken before the pick, so shed requests use no slot of
//! the pod schedule (otherwise a regular shed pattern could line up with
//! the schedule and starve pods). Fail-open: a fraction that is not in
//! (0, 1) (absent: 1) admits, as does anything this module cannot index; a
//! local reply the host refuses lets the request through (the plugin).

/// The status of a shed request's answer.
pub const SHED_STATUS: u32 = 503;

/// The headers of a shed request's answer: what shed it, and when to retry.
pub const SHED_HEADERS: &[(&str, &str)] = &[("x-lb-shed", "admission"), ("retry-after", "1")];

/// The body of a shed request's answer.
pub const SHED_BODY: &[u8] =
    b"shed by admission control: this service's tenant is over its share; retry later\n";

/// Envoy's response-code details for the local reply (no whitespace).
pub const SHED_DETAILS: &str = "mplb_admission_shed";

/// The credits of one VM, for one table version.
#[derive(Debug, Default)]
pub struct Credits {
    version: u64,
    /// Per service index: its credit (`None`: no request of it yet).
    services: Vec<Option<f64>>,
}

/// 64 random bits as a uniform float in [0, 1).
fn unit(random: u64) -> f64 {
    (random >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Credits {
    /// Admit one request to service `idx` of table `version`, whose admit
    /// fraction is `fraction`? `random` gives a new credit its phase (called
    /// at most once, only for a service that sheds).
    pub fn admit(
        &mut self,
        version: u64,
        idx: u32,
        fraction: f64,
        random: impl FnOnce() -> u64,
    ) -> bool {
        // Fail open: 1 (admit all), and anything not in (0, 1), NaN included.
        if !(fraction > 0.0 && fraction < 1.0) {
            return true;
        }
        if version != self.version {
            self.version = version;
            self.services.clear();
        }
        let i = idx as usize;
        if self.services.len() <= i {
            self.services.resize(i + 1, None);
        }
        let Some(slot) = self.services.get_mut(i) else {
            return true;
        };
        let credit = *slot.get_or_insert_with(|| unit(random())) + fraction;
        if credit >= 1.0 {
            *slot = Some(credit - 1.0);
            true
        } else {
            *slot = Some(credit);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// How many of `n` requests to service 0 of version 1 are let in.
    fn admitted(credits: &mut Credits, fraction: f64, n: usize, seed: u64) -> usize {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .filter(|_| credits.admit(1, 0, fraction, || rng.next_u64()))
            .count()
    }

    #[test]
    fn the_realised_fraction_is_the_admit_fraction_to_within_one() {
        for seed in 0..20 {
            let got = admitted(&mut Credits::default(), 0.7, 1000, seed);
            assert!(got.abs_diff(700) <= 1, "seed {seed}: {got} of 1000");
        }
        for fraction in [0.01, 0.1, 0.25, 1.0 / 3.0, 0.5, 0.9, 0.999] {
            let mut credits = Credits::default();
            for n in [1, 7, 100, 10_000] {
                let got = admitted(&mut credits, fraction, n, 3) as f64;
                // The credit carries over between runs: each run is within
                // one of its share.
                let want = fraction * n as f64;
                assert!((got - want).abs() <= 1.0, "{fraction}: {got} of {n}");
            }
        }
    }

    #[test]
    fn sheds_are_evenly_spread() {
        let mut credits = Credits::default();
        let seq: Vec<bool> = (0..100).map(|_| credits.admit(1, 0, 0.5, || 0)).collect();
        assert!(seq.windows(2).all(|w| w[0] != w[1]), "{seq:?}");
        // 0.75: never two sheds in a row, and one in every four.
        let seq: Vec<bool> = (0..100).map(|_| credits.admit(1, 1, 0.75, || 0)).collect();
        assert!(seq.windows(2).all(|w| w[0] || w[1]), "{seq:?}");
        for run in seq.chunks(4) {
            assert_eq!(run.iter().filter(|a| !**a).count(), 1, "{seq:?}");
        }
    }

    #[test]
    fn services_keep_their_own_credits_and_a_new_version_starts_anew() {
        let mut credits = Credits::default();
        // The phase: 0 for service 0, 0.5 for service 3.
        assert!(!credits.admit(1, 0, 0.5, || 0));
        assert!(credits.admit(1, 3, 0.5, || 1 << 63));
        assert!(credits.admit(1, 0, 0.5, || unreachable!("phase taken once")));
        assert!(!credits.admit(1, 3, 0.5, || unreachable!()));
        // Version 2: new phases.
        assert!(credits.admit(2, 0, 0.5, || 1 << 63));
        assert!(!credits.admit(2, 3, 0.5, || 0));
    }

    #[test]
    fn anything_but_a_fraction_in_0_1_admits_and_takes_no_random_number() {
        let mut credits = Credits::default();
        for fraction in [1.0, 1.5, 0.0, -0.5, f64::NAN, f64::INFINITY] {
            for _ in 0..10 {
                assert!(
                    credits.admit(1, 0, fraction, || unreachable!()),
                    "{fraction}"
                );
            }
        }
        // A huge service index is indexed, not a panic.
        assert!(!credits.admit(1, 100_000, 0.5, || 0));
    }
}
