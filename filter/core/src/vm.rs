//! One Wasm VM's filter state and its entry points, called by the glue:
//! configure, tick, call response, request headers, request done.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::host::{CallResponse, Host};
use crate::lease;
use crate::poller::Poller;
use crate::route::{Action, LastDest, act, decide};
use crate::stats::{LocalStats, Outcome};
use crate::table_store::TableStore;
use mplb_wire::{Mode, OVERRIDE_HEADER, PluginConfig};

/// A request the filter sent to a known pod (for the proxy stats).
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
    /// Observe this stamped request's response (time it, and read its
    /// status): the number of requests it stands for, 0 if not observed.
    /// Each destination pod's responses are sampled to a budget
    /// ([`crate::sample`]): all of them under light traffic, about
    /// [`PluginConfig::samples_per_tick`] per tick under heavy traffic. Requests
    /// are all counted.
    pub sample: u32,
}

/// The filter state of one VM.
#[derive(Debug)]
pub struct VmFilter {
    cfg: PluginConfig,
    own: Option<String>,
    proxy_name: String,
    vm_id: u64,
    store: TableStore,
    poller: Poller,
    stats: LocalStats,
    rng: SmallRng,
    /// The host clock as of the last tick (or configure / call response):
    /// the table-expiry check per request reads this instead of the host.
    clock_ms: u64,
    /// Responses observed per destination pod and tick (the config's).
    samples_per_tick: u32,
    /// The last `:authority` resolved, and where to.
    last: LastDest,
}

impl VmFilter {
    /// `own`: this workload's own service (config, env or node metadata);
    /// `seed`: randomness for the pick and the VM id.
    pub fn new(cfg: PluginConfig, own: Option<String>, seed: u64) -> VmFilter {
        let mut rng = SmallRng::seed_from_u64(seed);
        let vm_id = rng.next_u64();
        let proxy_name = own.clone().unwrap_or_else(|| "mplb-filter".to_string());
        let samples_per_tick = cfg.samples_per_tick();
        VmFilter {
            store: TableStore::new(cfg.table_ttl_ms),
            cfg,
            own: own.map(|s| s.to_ascii_lowercase()),
            proxy_name,
            vm_id,
            poller: Poller::default(),
            stats: LocalStats::default(),
            rng,
            clock_ms: 0,
            samples_per_tick,
            last: LastDest::default(),
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
        self.stats.flush(host, None, self.store.version());
    }

    /// The VM's tick: share the stats, follow the table, poll if leased.
    pub fn on_tick(&mut self, host: &dyn Host) {
        self.clock_ms = host.now_ms();
        self.stats.tick(self.samples_per_tick);
        self.stats
            .flush(host, self.store.index(), self.store.version());
        self.store.sync(host);
        self.stats.flush(host, None, self.store.version());
        if lease::try_acquire(host, self.vm_id, self.cfg.poll_interval_ms) {
            self.poller
                .poll(host, &self.cfg, &self.store, &self.proxy_name);
        }
    }

    /// The answer to one of this VM's calls.
    pub fn on_call_response(&mut self, host: &dyn Host, token: u32, resp: &CallResponse) {
        self.clock_ms = host.now_ms();
        self.stats
            .flush(host, self.store.index(), self.store.version());
        self.poller.on_response(host, &mut self.store, token, resp);
        self.stats.flush(host, None, self.store.version());
    }

    /// Decide the header edits of one request.
    pub fn on_request(
        &mut self,
        now_ms: u64,
        authority: Option<&str>,
        endpoint_header: Option<&str>,
    ) -> Edits<'_> {
        let table = self.store.current(now_ms);
        let rng = &mut self.rng;
        let action = match table {
            Some(t) => act(
                self.last.resolve(authority, self.own.as_deref(), t),
                endpoint_header,
                t,
                || rng.next_u64(),
            ),
            None => decide(
                authority,
                endpoint_header,
                self.own.as_deref(),
                None,
                || rng.next_u64(),
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
        let sample = self
            .stats
            .draw(version, service, pod, self.samples_per_tick, || {
                rng.next_u32()
            });
        match (self.cfg.mode, pinned) {
            (Mode::Subset, true) => Edits {
                stamped,
                sample,
                ..Edits::default()
            },
            (Mode::Subset, false) => Edits {
                remove: None,
                set: Some((self.cfg.header.as_str(), entry.name.as_str())),
                stamped,
                sample,
            },
            (Mode::Session, _) => Edits {
                remove: (!pinned && endpoint_header.is_some()).then_some(self.cfg.header.as_str()),
                set: Some((
                    self.cfg.session_header.as_str(),
                    entry.session_value.as_str(),
                )),
                stamped,
                sample,
            },
            (Mode::Override, _) => Edits {
                remove: (!pinned && endpoint_header.is_some()).then_some(self.cfg.header.as_str()),
                set: Some((OVERRIDE_HEADER, entry.address.as_str())),
                stamped,
                sample,
            },
        }
    }

    /// How many requests the status of a finished request with this
    /// [`Edits::sample`] stands for: the glue reads the status when this is
    /// above 0 (every time with `exact_errors`).
    pub fn status_weight(&self, sample: u32) -> u32 {
        if self.cfg.exact_errors { 1 } else { sample }
    }

    /// A stamped request finished (its status read or not, per
    /// [`Self::status_weight`], and timed if sampled).
    pub fn on_done(&mut self, stamped: Stamped, outcome: Outcome) {
        self.stats
            .record(stamped.version, stamped.service, stamped.pod, outcome);
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
