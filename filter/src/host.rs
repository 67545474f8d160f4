//! The small host interface the filter logic runs against. The proxy-wasm
//! glue implements it with real host calls; tests use [`crate::mock`].

/// Log levels the filter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// A shared-data write lost a compare-and-swap race, or the host refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedError {
    CasMismatch,
    Failed,
}

/// An answer to a dispatched HTTP call. `status` is `None` when the call
/// failed without a response (timeout, connection refused, reset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResponse {
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// What the filter logic needs from its host (one VM).
pub trait Host {
    /// Wall clock, milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Shared data of all VMs of this plugin: the value and its CAS token.
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Write shared data; `cas` 0 writes unconditionally, otherwise the write
    /// only happens if the key's CAS token still equals `cas`.
    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError>;
    /// Dispatch an HTTP call to an Envoy cluster; returns the call's token.
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u64,
    ) -> Result<u32, String>;
    /// Write one log line.
    fn log(&self, level: Level, msg: &str);
}

/// Lets one class of log line through at most once per `every_ms`, counting
/// what it held back, so a dead weight server does not flood the proxy log.
#[derive(Debug, Clone, Default)]
pub struct LogLimiter {
    last_ms: Option<u64>,
    suppressed: u64,
}

impl LogLimiter {
    /// Minimum spacing of lines of one class.
    pub const EVERY_MS: u64 = 10_000;

    /// Log `msg` unless a line of this class went out less than
    /// [`Self::EVERY_MS`] ago.
    pub fn log(&mut self, host: &dyn Host, level: Level, msg: &str) {
        let now = host.now_ms();
        match self.last_ms {
            Some(last) if now.saturating_sub(last) < Self::EVERY_MS => {
                self.suppressed += 1;
            }
            _ => {
                if self.suppressed > 0 {
                    host.log(
                        level,
                        &format!("{msg} ({} similar lines suppressed)", self.suppressed),
                    );
                } else {
                    host.log(level, msg);
                }
                self.last_ms = Some(now);
                self.suppressed = 0;
            }
        }
    }
}
