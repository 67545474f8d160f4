//! The election as client-go's `leaderelection` runs it, without I/O: what
//! to do with the Lease as last read, given the time now (passed in). A
//! holder's claim is judged by *this replica's* clock: the lease counts as
//! held until `lease duration` after the moment this replica last saw its
//! record change (never by comparing clocks across machines).

/// Lease duration, renew deadline and retry period (client-go's defaults
/// are 15 s, 10 s and 2 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a claim holds after its last observed renewal.
    pub lease_ms: u64,
    /// A leader that has not renewed for this long steps down.
    pub renew_deadline_ms: u64,
    /// Time between attempts (and between renewals).
    pub retry_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_ms: 15_000,
            renew_deadline_ms: 10_000,
            retry_ms: 2_000,
        }
    }
}

impl Timing {
    /// client-go's rules: lease > renew deadline > retry period > 0.
    pub fn check(&self) -> Result<(), String> {
        if self.retry_ms == 0
            || self.renew_deadline_ms <= self.retry_ms
            || self.lease_ms <= self.renew_deadline_ms
        {
            return Err(format!(
                "leader election needs lease duration ({} ms) > renew deadline ({} ms) > retry period ({} ms) > 0",
                self.lease_ms, self.renew_deadline_ms, self.retry_ms
            ));
        }
        Ok(())
    }
}

/// The part of a Lease the election reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The holder's identity (its pod name); empty when released.
    pub holder: String,
    /// Where the holder serves (`ip:port`), from the Lease's annotation.
    pub address: String,
    /// The highest table version the holder had served at its last renewal.
    pub version: u64,
    /// When the holder took the lease (ms since the epoch).
    pub acquired_ms: u64,
    /// When the holder last renewed it (ms since the epoch).
    pub renewed_ms: u64,
    /// Lease duration the holder announced (seconds).
    pub duration_s: u64,
    /// How many times the lease changed hands.
    pub transitions: u64,
}

/// What to do with the Lease now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No Lease yet: create this one.
    Create(Record),
    /// Write this record over the one read (with its resourceVersion).
    Update(Record),
    /// Someone else holds a live claim.
    Follow {
        /// Its identity.
        holder: String,
        /// Where it serves.
        address: String,
        /// The version it announced.
        version: u64,
    },
}

/// One replica's view of the election.
#[derive(Debug, Clone)]
pub struct Elector {
    me: String,
    address: String,
    timing: Timing,
    /// The record last read and when (this replica's clock) it last changed.
    observed: Option<(Record, u64)>,
    /// When this replica last wrote its own claim successfully.
    last_renewed_ms: Option<u64>,
}

impl Elector {
    /// A candidate named `me`, serving at `address`.
    pub fn new(me: &str, address: &str, timing: Timing) -> Elector {
        Elector {
            me: me.to_string(),
            address: address.to_string(),
            timing,
            observed: None,
            last_renewed_ms: None,
        }
    }

    /// The timing in use.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.me
    }

    fn mine(&self, now_ms: u64, version: u64, prev: Option<&Record>) -> Record {
        let (acquired_ms, transitions) = match prev {
            Some(p) if p.holder == self.me => (p.acquired_ms, p.transitions),
            Some(p) if !p.holder.is_empty() => (now_ms, p.transitions + 1),
            Some(p) => (now_ms, p.transitions),
            None => (now_ms, 0),
        };
        Record {
            holder: self.me.clone(),
            address: self.address.clone(),
            version,
            acquired_ms,
            renewed_ms: now_ms,
            duration_s: self.timing.lease_ms.div_ceil(1000),
            transitions,
        }
    }

    /// What to do, given the Lease as read at `now_ms` (`None`: absent) and
    /// the highest version this replica has served.
    pub fn step(&mut self, now_ms: u64, read: Option<&Record>, version: u64) -> Step {
        let Some(cur) = read else {
            return Step::Create(self.mine(now_ms, version, None));
        };
        let changed = self.observed.as_ref().is_none_or(|(r, _)| {
            r.holder != cur.holder || r.renewed_ms != cur.renewed_ms || r.address != cur.address
        });
        if changed {
            self.observed = Some((cur.clone(), now_ms));
        }
        let seen_at = self.observed.as_ref().map_or(now_ms, |(_, at)| *at);
        let live = !cur.holder.is_empty() && seen_at + self.timing.lease_ms > now_ms;
        if live && cur.holder != self.me {
            return Step::Follow {
                holder: cur.holder.clone(),
                address: cur.address.clone(),
                version: cur.version,
            };
        }
        Step::Update(self.mine(now_ms, version, Some(cur)))
    }

    /// The write of `record` succeeded at `now_ms`: this replica leads.
    pub fn written(&mut self, now_ms: u64, record: &Record) {
        self.observed = Some((record.clone(), now_ms));
        self.last_renewed_ms = Some(now_ms);
    }

    /// Whether a leader that last renewed at its last success must step down
    /// at `now_ms` (the renew deadline passed without a successful write).
    pub fn must_step_down(&self, now_ms: u64) -> bool {
        self.last_renewed_ms
            .is_none_or(|t| now_ms >= t + self.timing.renew_deadline_ms)
    }

    /// Forget this replica's own claim (after stepping down or losing it).
    pub fn lost(&mut self) {
        self.last_renewed_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timing {
        Timing {
            lease_ms: 1500,
            renew_deadline_ms: 1000,
            retry_ms: 200,
        }
    }

    #[test]
    fn timing_rules() {
        assert!(Timing::default().check().is_ok());
        assert!(t().check().is_ok());
        let bad = Timing {
            renew_deadline_ms: 1500,
            ..t()
        };
        assert!(bad.check().is_err());
        let zero = Timing { retry_ms: 0, ..t() };
        assert!(zero.check().is_err());
    }

    #[test]
    fn first_candidate_creates_the_lease() {
        let mut a = Elector::new("a", "10.0.0.1:8080", t());
        let Step::Create(r) = a.step(1000, None, 7) else {
            panic!("expected create")
        };
        assert_eq!((r.holder.as_str(), r.version, r.transitions), ("a", 7, 0));
        assert_eq!(r.duration_s, 2);
        assert_eq!(r.address, "10.0.0.1:8080");
    }

    #[test]
    fn a_live_claim_is_followed_until_it_expires_on_this_clock() {
        let mut b = Elector::new("b", "10.0.0.2:8080", t());
        let held = Record {
            holder: "a".into(),
            address: "10.0.0.1:8080".into(),
            version: 42,
            renewed_ms: 999_999, // a's clock: never compared with b's
            ..Record::default()
        };
        let follow = Step::Follow {
            holder: "a".into(),
            address: "10.0.0.1:8080".into(),
            version: 42,
        };
        assert_eq!(b.step(5000, Some(&held), 0), follow);
        assert_eq!(b.step(6499, Some(&held), 0), follow);
        // Unchanged for the lease duration on b's clock: b takes it over.
        let Step::Update(r) = b.step(6500, Some(&held), 43) else {
            panic!("expected a takeover")
        };
        assert_eq!(
            (r.holder.as_str(), r.transitions, r.acquired_ms),
            ("b", 1, 6500)
        );
        // A renewal seen in time keeps a in place.
        let mut c = Elector::new("c", "x", t());
        assert_eq!(c.step(5000, Some(&held), 0), follow);
        let renewed = Record {
            renewed_ms: 1_000_500,
            ..held.clone()
        };
        assert!(matches!(
            c.step(6000, Some(&renewed), 0),
            Step::Follow { .. }
        ));
        assert!(matches!(
            c.step(7400, Some(&renewed), 0),
            Step::Follow { .. }
        ));
        assert!(matches!(c.step(7500, Some(&renewed), 0), Step::Update(_)));
    }

    #[test]
    fn the_holder_renews_and_keeps_its_acquire_time() {
        let mut a = Elector::new("a", "x", t());
        let Step::Create(r) = a.step(1000, None, 1) else {
            panic!()
        };
        a.written(1000, &r);
        let Step::Update(r2) = a.step(1200, Some(&r), 5) else {
            panic!()
        };
        assert_eq!((r2.acquired_ms, r2.renewed_ms, r2.version), (1000, 1200, 5));
        assert_eq!(r2.transitions, 0);
        assert!(!a.must_step_down(1999));
        assert!(a.must_step_down(2000));
        a.written(1200, &r2);
        assert!(!a.must_step_down(2100));
        a.lost();
        assert!(a.must_step_down(2100));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut b = Elector::new("b", "x", t());
        let released = Record {
            transitions: 3,
            ..Record::default()
        };
        let Step::Update(r) = b.step(10, Some(&released), 0) else {
            panic!()
        };
        assert_eq!((r.holder.as_str(), r.transitions), ("b", 3));
    }
}
