//! The poll lease: every Envoy worker has its own Wasm VM and its own tick,
//! but only one VM per poll period may call the weight server. The lease is a
//! shared-data key holding `<vm id> <expiry ms>`, taken with compare-and-swap.
//!
//! Creation race: Envoy's shared data accepts any write to an absent key, so
//! [`init`] creates the key (expired) when a VM is configured. Envoy configures
//! the main-thread VM before the workers start, so workers always find the key
//! and every later take is a real CAS.

use crate::host::{Host, SharedError};

/// The shared-data key of the lease.
pub const LEASE_KEY: &str = "mplb.v1.lease";

/// Create the lease key, expired, if it does not exist yet.
pub fn init(host: &dyn Host) {
    if host.shared_get(LEASE_KEY).is_none() {
        let _ = host.shared_set(LEASE_KEY, b"0 0", 0);
    }
}

/// Try to take the lease for `period_ms`. True means this VM polls now.
pub fn try_acquire(host: &dyn Host, vm_id: u64, period_ms: u64) -> bool {
    let now = host.now_ms();
    let Some((value, cas)) = host.shared_get(LEASE_KEY) else {
        // Never initialised (should not happen): create it and wait a tick.
        init(host);
        return false;
    };
    if let Some((_, expiry)) = decode(&value)
        && now < expiry
    {
        return false;
    }
    let mine = format!("{vm_id} {}", now.saturating_add(period_ms));
    match host.shared_set(LEASE_KEY, mine.as_bytes(), cas) {
        Ok(()) => true,
        Err(SharedError::CasMismatch | SharedError::Failed) => false,
    }
}

/// `<vm id> <expiry>`; anything else counts as expired (and gets overwritten).
fn decode(value: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (vm, expiry) = text.split_once(' ')?;
    Some((vm.parse().ok()?, expiry.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockProxy;

    #[test]
    fn exactly_one_vm_polls_per_period() {
        let proxy = MockProxy::new(1_000_000);
        let vms: Vec<_> = (0..4).map(|_| proxy.vm()).collect();
        for vm in &vms {
            init(vm);
        }
        let mut winners_per_period = Vec::new();
        // 50 periods of 200 ms, every VM ticks every 50 ms at its own offset.
        for period in 0..50u64 {
            let mut winners = Vec::new();
            for step in 0..4u64 {
                for (i, vm) in vms.iter().enumerate() {
                    proxy
                        .now
                        .set(1_000_000 + period * 200 + step * 50 + i as u64);
                    if try_acquire(vm, i as u64 + 1, 200) {
                        winners.push(i);
                    }
                }
            }
            winners_per_period.push(winners);
        }
        for (p, w) in winners_per_period.iter().enumerate() {
            assert_eq!(w.len(), 1, "period {p}: winners {w:?}");
        }
    }

    #[test]
    fn a_lost_cas_race_does_not_poll() {
        let proxy = MockProxy::new(5000);
        let a = proxy.vm();
        let b = proxy.vm();
        init(&a);
        // Both read the expired lease; a writes first, b's CAS must fail.
        let (_, cas) = b.shared_get(LEASE_KEY).unwrap();
        assert!(try_acquire(&a, 1, 1000));
        assert_eq!(
            b.shared_set(LEASE_KEY, b"2 6000", cas),
            Err(SharedError::CasMismatch)
        );
        assert!(!try_acquire(&b, 2, 1000));
        proxy.advance(1000);
        assert!(try_acquire(&b, 2, 1000));
        assert!(!try_acquire(&a, 1, 1000));
    }

    #[test]
    fn garbage_in_the_lease_counts_as_expired() {
        let proxy = MockProxy::new(5000);
        let a = proxy.vm();
        a.shared_set(LEASE_KEY, b"\xff\xfe junk", 0).unwrap();
        assert!(try_acquire(&a, 1, 1000));
        assert!(!try_acquire(&a, 1, 1000));
        let fresh = MockProxy::new(5000).vm();
        assert!(
            !try_acquire(&fresh, 1, 1000),
            "first tick only creates the key"
        );
        assert!(try_acquire(&fresh, 1, 1000));
    }
}
