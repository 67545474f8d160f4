//! The host interface the filter's logic runs against: everything it asks
//! of Envoy (clock, randomness, shared data, calls, buffers, properties, the
//! headers of a request and its response, a local reply) goes through [`Host`] and
//! [`HttpHost`]. `mplb-proxy-abi` implements them with proxy-wasm host
//! calls; tests use the crate's mock.

use std::ops::Deref;

/// Log levels the filter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail.
    Debug,
    /// A normal event.
    Info,
    /// Something is off; the filter carries on.
    Warn,
    /// Something failed.
    Error,
}

/// A shared-data write lost a compare-and-swap race, or the host refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedError {
    /// The key's CAS token changed since it was read.
    CasMismatch,
    /// The host refused the write.
    Failed,
}

/// An answer to a dispatched HTTP call. `status` is `None` when the call
/// failed without a response (timeout, connection refused, reset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResponse {
    /// The `:status`, when there was a response.
    pub status: Option<u16>,
    /// The body (cut one byte past the table limit).
    pub body: Vec<u8>,
}

/// A `:status` value as a number: three digits, the first not 0.
pub fn parse_status(value: &[u8]) -> Option<u16> {
    match *value {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Header maps the filter reads or edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// The request's headers.
    Request,
    /// The response's headers.
    Response,
    /// The headers of the answer to a dispatched call.
    HttpCallResponse,
}

/// Buffers the filter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// The body of the answer to a dispatched call.
    HttpCallResponseBody,
    /// The plugin configuration.
    PluginConfiguration,
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
    /// Up to `max` bytes of a buffer (`None`: not available).
    fn buffer(&self, kind: Buffer, max: usize) -> Option<Vec<u8>>;
    /// A host property by path (`["node", "metadata", "X"]`).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// An environment variable of the VM.
    fn env(&self, name: &str) -> Option<String>;
    /// A random seed for this VM (the pick and the VM id).
    fn random_seed(&self) -> u64;
    /// Ask for a tick every `ms` milliseconds; false if refused.
    fn set_tick_period_ms(&self, ms: u32) -> bool;
}

/// The per-request part of the host: the headers of the stream being
/// called back for. Generic, not `dyn`: a header value is borrowed from
/// where the host placed it ([`HttpHost::Value`]), with no copy per request.
pub trait HttpHost: Host {
    /// A header value the host placed in the VM.
    type Value: Deref<Target = [u8]>;
    /// A header's raw value (`None`: absent, or the map is not available).
    fn header(&self, map: Map, name: &str) -> Option<Self::Value>;
    /// Set a header (replacing any value it has); false if refused.
    fn set_header(&self, map: Map, name: &str, value: &str) -> bool;
    /// Remove a header; false if refused.
    fn remove_header(&self, map: Map, name: &str) -> bool;
    /// Answer the stream being called back for with a local response
    /// (`status`, extra `headers`, `body`; `details`: the proxy's response
    /// code details, no whitespace) instead of sending it upstream; false
    /// if refused. After a `true` the callback must stop the iteration.
    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> bool;
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

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn a_status_is_three_digits() {
        assert_eq!(parse_status(b"200"), Some(200));
        assert_eq!(parse_status(b"503"), Some(503));
        assert_eq!(parse_status(b"101"), Some(101));
        for bad in [&b""[..], b"20", b"2000", b"099", b"2x0", b" 200", b"\xff00"] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }
}
