//! The lease holder's calls to the weight server and the handling of their
//! answers.
//!
//! - `GET {weights_path}` with `If-None-Match: "<version>"`: a 200 is
//!   validated and shared, a 304 refreshes the freshness time; an error, a
//!   timeout or an invalid table keeps the last good table and logs
//!   (rate-limited).

use crate::host::{CallResponse, Host, Level, LogLimiter};
use crate::table_store::TableStore;
use mplb_wire::PluginConfig;

/// Calls in flight older than this many timeouts are forgotten.
const FORGET_AFTER_TIMEOUTS: u64 = 4;

/// One VM's poller.
#[derive(Debug, Default)]
pub struct Poller {
    /// Tokens of calls in flight, with when each was made.
    pending: Vec<(u32, u64)>,
    poll_log: LogLimiter,
    table_log: LogLimiter,
}

impl Poller {
    /// Poll now (this VM holds the lease).
    pub fn poll(&mut self, host: &dyn Host, cfg: &PluginConfig, store: &TableStore) {
        let now = host.now_ms();
        let horizon = cfg.poll_timeout_ms.saturating_mul(FORGET_AFTER_TIMEOUTS);
        self.pending
            .retain(|&(_, started)| now.saturating_sub(started) < horizon);

        let etag = format!("\"{}\"", store.version());
        let mut headers = vec![
            (":method", "GET"),
            (":path", cfg.weights_path.as_str()),
            (":authority", cfg.weight_server_authority.as_str()),
            ("accept", "application/json"),
        ];
        if store.version() != 0 {
            headers.push(("if-none-match", etag.as_str()));
        }
        match host.http_call(
            &cfg.weight_server_cluster,
            &headers,
            None,
            cfg.poll_timeout_ms,
        ) {
            Ok(token) => self.pending.push((token, now)),
            Err(e) => {
                let msg = format!(
                    "mplb: cannot call cluster {:?}: {e}",
                    cfg.weight_server_cluster
                );
                self.poll_log.log(host, Level::Warn, &msg);
            }
        }
    }

    /// Handle the answer to one of this VM's calls. Unknown tokens are ignored.
    pub fn on_response(
        &mut self,
        host: &dyn Host,
        store: &mut TableStore,
        token: u32,
        resp: &CallResponse,
    ) {
        let Some(pos) = self.pending.iter().position(|&(t, _)| t == token) else {
            return;
        };
        self.pending.swap_remove(pos);
        match resp.status {
            Some(200) => {
                let before = store.version();
                match store.publish(host, &resp.body) {
                    Ok(v) if v != before => {
                        host.log(Level::Debug, &format!("mplb: weights table v{v} in force"));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let msg = format!("mplb: {e}; keeping v{before}");
                        self.table_log.log(host, Level::Error, &msg);
                    }
                }
            }
            Some(304) => store.refresh(host),
            status => {
                let msg = match status {
                    Some(s) => format!(
                        "mplb: weight server answered {s}; keeping table v{}",
                        store.version()
                    ),
                    None => format!(
                        "mplb: weight server call failed (timeout or connection error); keeping table v{}",
                        store.version()
                    ),
                };
                self.poll_log.log(host, Level::Warn, &msg);
            }
        }
    }

    /// Number of calls in flight.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
