//! Replicas and their leader. With `--leader-elect` (kube topology only)
//! every replica watches the topology and runs the engine, but only the
//! holder of a `coordination.k8s.io/v1` Lease ([`lease`], elected as
//! client-go does: [`election`]) takes reports and publishes tables.
//! Followers serve the leader's current table ([`follow`]), forward the
//! reports they receive to the leader with the sender's
//! bearer token ([`forward`]), and answer 503 with a reason and
//! `Retry-After` while no leader is known.
//!
//! Versions never go back on a replica: the served table only ever moves to
//! a higher version. A new leader starts above every version it has seen
//! (its mirror of the old leader, the version the old leader announced on
//! the Lease) and above the wall clock in milliseconds (versions start at
//! the clock and grow by one per publish), and it carries the old leader's
//! weights into its damping so the traffic does not jump.

pub mod client;
pub mod election;
pub mod follow;
pub mod forward;
pub mod lease;
mod run;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clap::Args;

use crate::clock::SharedClock;
use crate::engine::Engine;
use crate::weights::Served;
pub use run::start;

/// Flags of the election (all off unless `--leader-elect`).
#[derive(Debug, Clone, Args)]
pub struct LeaderArgs {
    /// Run as one of several replicas: elect a leader on a Lease
    /// (`--topology kube` only; off: a single replica, as before).
    /// `--leader-elect` alone means true; `--leader-elect=false` turns it
    /// off again (as Kubernetes' own components take it).
    #[arg(long, env = "MPLB_LEADER_ELECT", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value = "false")]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "MPLB_LEASE_NAME", default_value = "weight-server")]
    pub lease_name: String,
    /// Namespace of the Lease (the pod's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "mplb-system")]
    pub lease_namespace: String,
    /// This replica's identity on the Lease (the pod's name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// The address other replicas reach this one at (the pod's IP); the
    /// port is the one this server listens on.
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<std::net::IpAddr>,
    /// How long a claim holds after its last renewal (client-go: 15s).
    #[arg(long, env = "MPLB_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: humantime::Duration,
    /// A leader that could not renew for this long steps down (10s).
    #[arg(long, env = "MPLB_RENEW_DEADLINE", default_value = "10s")]
    pub renew_deadline: humantime::Duration,
    /// Time between election attempts and renewals (2s).
    #[arg(long, env = "MPLB_RETRY_PERIOD", default_value = "2s")]
    pub retry_period: humantime::Duration,
    /// How often a follower polls the leader's table.
    #[arg(long, env = "MPLB_FOLLOW_INTERVAL", default_value = "500ms")]
    pub follow_interval: humantime::Duration,
}

impl LeaderArgs {
    /// The election's timing, checked.
    pub fn timing(&self) -> crate::Result<election::Timing> {
        let ms = |d: humantime::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let t = election::Timing {
            lease_ms: ms(self.lease_duration),
            renew_deadline_ms: ms(self.renew_deadline),
            retry_ms: ms(self.retry_period),
        };
        t.check().map_err(crate::Error::Config)?;
        Ok(t)
    }

    /// How often followers poll.
    pub fn follow_every(&self) -> Duration {
        (*self.follow_interval).max(Duration::from_millis(10))
    }
}

/// Who this replica believes leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Not known yet (starting, or after stepping down).
    Unknown,
    /// This replica.
    Leader,
    /// Another replica.
    Follower {
        /// Its identity.
        holder: String,
        /// Where it serves (`ip:port`).
        address: String,
    },
}

#[derive(Debug)]
struct Inner {
    role: Role,
    /// The table served last (never replaced by a lower version).
    best: Option<Arc<Served>>,
    /// The highest version seen anywhere (mirror, Lease).
    seen: u64,
    /// While leading: the engine's tables count from this version on.
    lead_from: u64,
}

/// One replica's shared state: its role and the table it serves.
#[derive(Debug)]
pub struct Replica {
    identity: String,
    address: String,
    clock: SharedClock,
    inner: Mutex<Inner>,
    pub(crate) http: client::Peer,
}

impl Replica {
    /// Replica `identity`, reachable at `address` (`ip:port`).
    pub fn new(identity: &str, address: &str, clock: SharedClock) -> Replica {
        Replica {
            identity: identity.to_string(),
            address: address.to_string(),
            clock,
            inner: Mutex::new(Inner {
                role: Role::Unknown,
                best: None,
                seen: 0,
                lead_from: u64::MAX,
            }),
            http: client::Peer::new(Duration::from_millis(500), Duration::from_secs(3)),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// This replica's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Its current role.
    pub fn role(&self) -> Role {
        self.inner().role.clone()
    }

    /// Take `t` if its version is above the one served; whether taken.
    pub fn offer(&self, t: Arc<Served>) -> bool {
        let mut i = self.inner();
        i.seen = i.seen.max(t.table.version);
        if i.best
            .as_ref()
            .is_some_and(|b| b.table.version >= t.table.version)
        {
            return false;
        }
        i.best = Some(t);
        true
    }

    /// The table to serve: the leader's engine's (once above where its
    /// leadership started), else the last one taken. Never a lower version
    /// than served before.
    pub fn served(&self, engine: &Engine) -> Option<Arc<Served>> {
        let (leading, from) = {
            let i = self.inner();
            (i.role == Role::Leader, i.lead_from)
        };
        if leading
            && let Some(t) = engine.table()
            && t.table.version >= from
        {
            self.offer(t);
        }
        self.inner().best.clone()
    }

    /// The highest version served (announced on the Lease while leading).
    pub fn highest(&self) -> u64 {
        self.inner().best.as_ref().map_or(0, |b| b.table.version)
    }

    /// A version seen elsewhere (the Lease's annotation).
    pub fn saw(&self, version: u64) {
        let mut i = self.inner();
        i.seen = i.seen.max(version);
    }

    /// Another replica leads.
    pub fn follow(&self, holder: &str, address: &str) {
        let mut i = self.inner();
        i.role = Role::Follower {
            holder: holder.to_string(),
            address: address.to_string(),
        };
        i.lead_from = u64::MAX;
    }

    /// Nobody known leads (this replica stepped down).
    pub fn step_down(&self) {
        let mut i = self.inner();
        i.role = Role::Unknown;
        i.lead_from = u64::MAX;
    }

    /// This replica now leads: the engine's next table gets a version above
    /// everything seen and the wall clock, damped from the table served.
    /// Returns that first version.
    pub fn take_over(&self, engine: &Engine) -> u64 {
        let (next, last) = {
            let mut i = self.inner();
            let best = i.best.as_ref().map_or(0, |b| b.table.version);
            let next = i.seen.max(best).saturating_add(1).max(self.clock.now_ms());
            i.role = Role::Leader;
            i.lead_from = next;
            (next, i.best.clone())
        };
        engine.take_over(next, last.as_ref().map(|s| &s.table));
        next
    }
}

#[cfg(test)]
mod tests;
