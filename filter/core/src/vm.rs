//! One Wasm VM's filter state and its entry points, called by the glue:
//! configure, tick, call response, request headers (admission, then the
//! pick and its header edits).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::admission::Credits;
use crate::host::{CallResponse, Host, Level, LogLimiter};
use crate::lease;
use crate::poller::Poller;
use crate::route::{Action, Dest, LastDest, act, decide};
use crate::schedule::Schedules;
use crate::table_store::TableStore;
use mplb_wire::{Mode, OVERRIDE_HEADER, PluginConfig};

/// Where the filter sent a request: a pod of the table in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped {
    /// The table version it was chosen under.
    pub version: u64,
    /// The service's index in that table.
    pub service: u32,
    /// The pod's index in the service.
    pub pod: u32,
}

/// The header edits for one request, borrowed from the filter state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Edits<'a> {
    /// Remove this header (the stale endpoint header).
    pub remove: Option<&'a str>,
    /// Set this header to this value (replacing any value it has).
    pub set: Option<(&'a str, &'a str)>,
    /// Where the request goes, when the filter chose or honoured a pod.
    pub stamped: Option<Stamped>,
    /// Shed by admission: answer the request with the shed reply
    /// ([`crate::admission`]) instead of sending it on (no other edit).
    pub shed: bool,
}

/// The filter state of one VM.
#[derive(Debug)]
pub struct VmFilter {
    cfg: PluginConfig,
    own: Option<String>,
    vm_id: u64,
    store: TableStore,
    poller: Poller,
    /// The pick: a smooth weighted round robin per service.
    schedules: Schedules,
    rng: SmallRng,
    /// The host clock as of the last tick (or configure / call response):
    /// the table-expiry check per request reads this instead of the host.
    clock_ms: u64,
    /// The last `:authority` resolved, and where to.
    last: LastDest,
    /// Admission (`admission: true` only): a credit per service.
    credits: Credits,
    /// A shed reply the host refused (the request went on instead).
    shed_failed: LogLimiter,
}

impl VmFilter {
    /// `own`: this workload's own service (config, env or node metadata);
    /// `seed`: randomness for the pick and the VM id.
    pub fn new(cfg: PluginConfig, own: Option<String>, seed: u64) -> VmFilter {
        let mut rng = SmallRng::seed_from_u64(seed);
        let vm_id = rng.next_u64();
        VmFilter {
            store: TableStore::new(cfg.table_ttl_ms),
            cfg,
            own: own.map(|s| s.to_ascii_lowercase()),
            vm_id,
            poller: Poller::default(),
            schedules: Schedules::default(),
            rng,
            clock_ms: 0,
            last: LastDest::default(),
            credits: Credits::default(),
            shed_failed: LogLimiter::default(),
        }
    }

    /// The clock of the last tick (ms since the Unix epoch): what the glue
    /// passes to [`Self::on_request`]. A table therefore expires up to one
    /// tick (poll interval / 4, at most 1 s) after its time-to-live.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// The plugin configuration.
    pub fn config(&self) -> &PluginConfig {
        &self.cfg
    }

    /// The VM's table store.
    pub fn store(&self) -> &TableStore {
        &self.store
    }

    /// Calls to the weight server in flight.
    pub fn pending_calls(&self) -> usize {
        self.poller.pending()
    }

    /// The plugin (re)started in this VM.
    pub fn on_configure(&mut self, host: &dyn Host) {
        self.clock_ms = host.now_ms();
        lease::init(host);
        self.store.sync(host);
    }

    /// The VM's tick: follow the table, poll if leased.
    pub fn on_tick(&mut self, host: &dyn Host) {
        self.clock_ms = host.now_ms();
        self.store.sync(host);
        if lease::try_acquire(host, self.vm_id, self.cfg.poll_interval_ms) {
            self.poller.poll(host, &self.cfg, &self.store);
        }
    }

    /// The answer to one of this VM's calls.
    pub fn on_call_response(&mut self, host: &dyn Host, token: u32, resp: &CallResponse) {
        self.clock_ms = host.now_ms();
        self.poller.on_response(host, &mut self.store, token, resp);
    }

    /// Decide one request: shed it (an admitting proxy, a destination of
    /// the fresh table with `admit` below 1, by its credit), or its header
    /// edits.
    pub fn on_request(
        &mut self,
        now_ms: u64,
        authority: Option<&str>,
        endpoint_header: Option<&str>,
    ) -> Edits<'_> {
        self.request(now_ms, authority, endpoint_header, self.cfg.admission)
    }

    /// [`Self::on_request`] without admission: the request goes on. The
    /// glue's fail-open path when the host refused the shed reply.
    pub fn on_request_admitted(
        &mut self,
        now_ms: u64,
        authority: Option<&str>,
        endpoint_header: Option<&str>,
    ) -> Edits<'_> {
        self.request(now_ms, authority, endpoint_header, false)
    }

    /// The host refused a shed reply: log it, at most once per 10 s.
    pub fn on_shed_refused(&mut self, host: &dyn Host) {
        self.shed_failed.log(
            host,
            Level::Warn,
            "mplb: the proxy refused the admission reply; letting the request through",
        );
    }

    fn request(
        &mut self,
        now_ms: u64,
        authority: Option<&str>,
        endpoint_header: Option<&str>,
        admission: bool,
    ) -> Edits<'_> {
        let table = self.store.current(now_ms);
        let (rng, schedules) = (&mut self.rng, &mut self.schedules);
        let action = match table {
            Some(t) => {
                let dest = self.last.resolve(authority, self.own.as_deref(), t);
                // Admission before the pick: a shed request takes no slot
                // of the pod schedule.
                if admission
                    && let Dest::Service(idx) = dest
                    && let Some(svc) = t.service(idx)
                    && !self
                        .credits
                        .admit(t.version, idx, svc.admit, || rng.next_u64())
                {
                    return Edits {
                        shed: true,
                        ..Edits::default()
                    };
                }
                act(dest, endpoint_header, t, |idx, svc| {
                    schedules.pick(t.version, idx, svc, || rng.next_u64())
                })
            }
            None => decide(
                authority,
                endpoint_header,
                self.own.as_deref(),
                None,
                |_, svc| svc.pick(rng.next_u64()),
            ),
        };
        let (service, pod, pinned) = match action {
            Action::Untouched => return Edits::default(),
            Action::Strip => {
                return Edits {
                    remove: Some(self.cfg.header.as_str()),
                    ..Edits::default()
                };
            }
            Action::Stamp {
                service,
                pod,
                pinned,
            } => (service, pod, pinned),
        };
        let Some((version, entry)) = table.and_then(|t| {
            t.service(service)
                .and_then(|s| s.pods.get(pod as usize))
                .map(|p| (t.version, p))
        }) else {
            return Edits::default();
        };
        let stamped = Some(Stamped {
            version,
            service,
            pod,
        });
        match (self.cfg.mode, pinned) {
            (Mode::Subset, true) => Edits {
                stamped,
                ..Edits::default()
            },
            (Mode::Subset, false) => Edits {
                set: Some((self.cfg.header.as_str(), entry.name.as_str())),
                stamped,
                ..Edits::default()
            },
            (Mode::Session, _) => Edits {
                remove: (!pinned && endpoint_header.is_some()).then_some(self.cfg.header.as_str()),
                set: Some((
                    self.cfg.session_header.as_str(),
                    entry.session_value.as_str(),
                )),
                stamped,
                shed: false,
            },
            (Mode::Override, _) => Edits {
                remove: (!pinned && endpoint_header.is_some()).then_some(self.cfg.header.as_str()),
                set: Some((OVERRIDE_HEADER, entry.address.as_str())),
                stamped,
                shed: false,
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
