//! The pick: smooth weighted round robin per service, by earliest deadline
//! first (the scheduler Envoy's own weighted balancers use), instead of an
//! independent weighted draw per request.
//!
//! Each pod with weight `w` gets a virtual deadline that moves on by its
//! stride `1 / w` every time it is picked; the pod with the earliest
//! deadline is picked next. Over any run of `n` picks a pod gets its share
//! `n·w/Σw` to within about one, and its picks are evenly spaced: a pod
//! sees a steady stream instead of the bursts and gaps of random draws,
//! which queue up at the pod and show in the tail. The first deadlines are
//! random within one stride, so the many VMs and proxies that pick for the
//! same service start out of phase. A pick costs O(log n) (a binary heap).
//!
//! One [`Schedules`] per VM holds a scheduler per service of the table in
//! force, made at the service's first pick and dropped with its version.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::index::ServiceEntry;

/// A pod's place in the schedule.
#[derive(Debug, Clone, Copy)]
struct Slot {
    deadline: f64,
    stride: f64,
    pod: u32,
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Slot {}

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Slot {
    /// Reversed, so the max-heap's top is the earliest deadline (ties: the
    /// lower pod index).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .deadline
            .total_cmp(&self.deadline)
            .then_with(|| other.pod.cmp(&self.pod))
    }
}

/// The schedule of one service's pods.
#[derive(Debug, Clone)]
pub struct Scheduler {
    heap: BinaryHeap<Slot>,
}

impl Scheduler {
    /// A schedule of `weights` (by pod index); pods of weight 0 (or not a
    /// finite positive number) are never picked. `None` when no pod has
    /// weight. `random` gives each pod's first deadline a phase.
    pub fn new(
        weights: impl Iterator<Item = f64>,
        mut random: impl FnMut() -> u64,
    ) -> Option<Self> {
        let heap: BinaryHeap<Slot> = weights
            .enumerate()
            .filter(|(_, w)| w.is_finite() && *w > 0.0)
            .map(|(i, w)| {
                let stride = 1.0 / w;
                let phase = (random() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                Slot {
                    deadline: phase * stride,
                    stride,
                    pod: i as u32,
                }
            })
            .collect();
        (!heap.is_empty()).then_some(Scheduler { heap })
    }

    /// The next pod.
    pub fn next_pod(&mut self) -> Option<u32> {
        let mut top = self.heap.peek_mut()?;
        let pod = top.pod;
        top.deadline += top.stride;
        Some(pod)
    }
}

/// The schedulers of one VM, for one table version.
#[derive(Debug, Default)]
pub struct Schedules {
    version: u64,
    services: Vec<Option<Scheduler>>,
}

impl Schedules {
    /// The next pod of service `idx` (`svc`) of table `version`. A service
    /// with no weighted pod falls back to the weighted draw (which picks its
    /// last pod).
    pub fn pick(
        &mut self,
        version: u64,
        idx: u32,
        svc: &ServiceEntry,
        mut random: impl FnMut() -> u64,
    ) -> u32 {
        if version != self.version {
            self.version = version;
            self.services.clear();
        }
        let i = idx as usize;
        if self.services.len() <= i {
            self.services.resize_with(i + 1, || None);
        }
        let Some(slot) = self.services.get_mut(i) else {
            return svc.pick(random());
        };
        if slot.is_none() {
            *slot = Scheduler::new(svc.weights(), &mut random);
        }
        match slot.as_mut().and_then(Scheduler::next_pod) {
            Some(pod) => pod,
            None => svc.pick(random()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, RngExt, SeedableRng};

    use super::*;

    fn picks(weights: &[f64], n: usize, seed: u64) -> Vec<u32> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut s = Scheduler::new(weights.iter().copied(), || rng.next_u64()).unwrap();
        (0..n).map(|_| s.next_pod().unwrap()).collect()
    }

    #[test]
    fn every_run_of_picks_holds_each_pods_share_to_within_two() {
        let weights = [0.6, 0.3, 0.1, 0.0];
        let seq = picks(&weights, 10_000, 1);
        for len in [10, 100, 1000] {
            for start in (0..seq.len() - len).step_by(37) {
                for (pod, w) in weights.iter().enumerate() {
                    let got = seq[start..start + len]
                        .iter()
                        .filter(|&&p| p == pod as u32)
                        .count() as f64;
                    let want = w * len as f64;
                    assert!(
                        (got - want).abs() <= 2.0,
                        "pod {pod}: {got} of {len} from {start}, want {want}"
                    );
                }
            }
        }
        assert!(!seq.contains(&3), "weight 0 is never picked");
    }

    #[test]
    fn a_pods_picks_are_evenly_spaced_unlike_random_draws() {
        // Ten equal pods: each is picked once in every ten picks.
        let seq = picks(&[1.0; 10], 1000, 2);
        for pod in 0..10u32 {
            let at: Vec<usize> = (0..seq.len()).filter(|&i| seq[i] == pod).collect();
            assert_eq!(at.len(), 100);
            assert!(
                at.windows(2).all(|w| w[1] - w[0] == 10),
                "pod {pod}: {at:?}"
            );
        }
        // Random draws of the same weights have runs and gaps far longer.
        let mut rng = SmallRng::seed_from_u64(2);
        let draws: Vec<u32> = (0..1000).map(|_| rng.random_range(0..10)).collect();
        let at: Vec<usize> = (0..draws.len()).filter(|&i| draws[i] == 0).collect();
        assert!(at.windows(2).any(|w| w[1] - w[0] > 20), "{at:?}");
    }

    #[test]
    fn schedulers_start_out_of_phase() {
        let a = picks(&[1.0; 8], 8, 3);
        let b = picks(&[1.0; 8], 8, 4);
        assert_ne!(a, b);
        for seq in [a, b] {
            let mut sorted = seq.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..8).collect::<Vec<u32>>(), "one round: each once");
        }
    }

    #[test]
    fn no_weighted_pod_means_no_scheduler() {
        assert!(Scheduler::new([0.0, f64::NAN, -1.0].into_iter(), || 0).is_none());
        assert!(Scheduler::new(std::iter::empty(), || 0).is_none());
    }
}
