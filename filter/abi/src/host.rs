//! The filter core's host traits over the proxy-wasm host calls.

use mplb_filter_core::{Buffer, Host, HttpHost, Level, Map, SharedError};
use rand::TryRng;

use crate::HostValue;

/// The real host: proxy-wasm host calls (a unit type: the ABI has no handle).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyHost;

impl Host for ProxyHost {
    fn now_ms(&self) -> u64 {
        crate::now_ns().map_or(0, |ns| ns / 1_000_000)
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        crate::shared_get(key)
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        crate::shared_set(key, value, cas)
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout_ms: u64,
    ) -> Result<u32, String> {
        crate::http_call(cluster, headers, body, timeout_ms).map_err(|s| format!("status {s}"))
    }

    fn log(&self, level: Level, msg: &str) {
        crate::log(level, msg);
    }

    fn buffer(&self, kind: Buffer, max: usize) -> Option<Vec<u8>> {
        crate::buffer(kind, max)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        crate::property(path)
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn random_seed(&self) -> u64 {
        let mut bytes = [0u8; 8];
        match rand::rngs::SysRng.try_fill_bytes(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => crate::now_ns().unwrap_or(0),
        }
    }

    fn set_tick_period_ms(&self, ms: u32) -> bool {
        crate::set_tick_period_ms(ms)
    }
}

impl HttpHost for ProxyHost {
    type Value = HostValue;

    #[inline]
    fn header(&self, map: Map, name: &str) -> Option<HostValue> {
        crate::header(map, name)
    }

    #[inline]
    fn set_header(&self, map: Map, name: &str, value: &str) -> bool {
        crate::set_header(map, name, value)
    }

    #[inline]
    fn remove_header(&self, map: Map, name: &str) -> bool {
        crate::remove_header(map, name)
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> bool {
        crate::send_local_response(status, details, headers, body)
    }
}
