//! `mplb-proxy-abi`: the one place that calls the proxy-wasm ABI 0.2.1
//! (wasm32 only; empty elsewhere). It holds the host calls the filter makes,
//! as safe functions: every status is handled (none panics, unlike the
//! SDK's wrappers, which panic on a status they do not expect), and values
//! the host hands over are taken as bytes. [`ProxyHost`] implements the
//! filter core's host traits over them, and the module exports every
//! proxy-wasm module needs besides its callbacks (`_initialize`, the ABI
//! version, VM start, memory allocation) are here too, so the filter shim
//! (`mplb-filter`) and the bench's `rawprobe` share one ABI layer.
//!
//! The filter does not use the SDK (`proxy-wasm` crate): linking it exports
//! every `proxy_on_*` callback, and Envoy calls each exported callback on
//! every request whether the filter needs it or not.

#![cfg(target_arch = "wasm32")]
// The ABI is `extern "C"`: unsafe here is the point of the crate. Each
// unsafe block says why it is sound (`SAFETY:`).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod host;
mod value;

pub use host::ProxyHost;
use value::take;
pub use value::{HostValue, proxy_on_memory_allocate};

use std::ptr::{null, null_mut};

use mplb_filter_core::{Buffer, Level, Map, SharedError};

unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// WASI reactor start: run static constructors (as the SDK does).
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: called once by the host before any other export.
    unsafe { __wasm_call_ctors() }
}

/// The ABI version this module speaks.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The VM started: nothing to do (configuration comes per root context).
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
    1
}

/// proxy-wasm status codes (`WasmResult`).
const OK: u32 = 0;
const CAS_MISMATCH: u32 = 8;

/// A header map's number in the ABI.
fn map_type(map: Map) -> u32 {
    match map {
        Map::Request => 0,
        Map::Response => 2,
        Map::HttpCallResponse => 6,
    }
}

/// A buffer's number in the ABI.
fn buffer_type(kind: Buffer) -> u32 {
    match kind {
        Buffer::HttpCallResponseBody => 4,
        Buffer::PluginConfiguration => 7,
    }
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(ret: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        kind: u32,
        start: usize,
        max: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, ret_data: *mut *mut u8, ret_size: *mut usize) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
        ret_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_http_call(
        upstream: *const u8,
        upstream_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        ret_token: *mut u32,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details: *const u8,
        status_code_details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

/// Writes one log line.
pub fn log(level: Level, msg: &str) {
    // proxy-wasm log levels: trace 0, debug 1, info 2, warn 3, error 4.
    let level = match level {
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    };
    // SAFETY: pointer and length of a live str.
    let _ = unsafe { proxy_log(level, msg.as_ptr(), msg.len()) };
}

/// Wall clock in nanoseconds since the Unix epoch.
pub fn now_ns() -> Option<u64> {
    let mut t = 0u64;
    // SAFETY: `t` is a live u64 the host writes.
    (unsafe { proxy_get_current_time_nanoseconds(&mut t) } == OK).then_some(t)
}

/// Asks for `proxy_on_tick` every `ms` milliseconds.
pub fn set_tick_period_ms(ms: u32) -> bool {
    // SAFETY: plain value.
    unsafe { proxy_set_tick_period_milliseconds(ms) == OK }
}

/// Up to `max` bytes of a buffer.
pub fn buffer(kind: Buffer, max: usize) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers to live locals.
    let status = unsafe { proxy_get_buffer_bytes(buffer_type(kind), 0, max, &mut data, &mut size) };
    let value = take(data, size);
    (status == OK).then_some(value)
}

/// A header's raw value (`None`: absent, or the map is not available).
pub fn header(map: Map, name: &str) -> Option<HostValue> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: pointer and length of a live str; out-pointers to live locals.
    let status = unsafe {
        proxy_get_header_map_value(
            map_type(map),
            name.as_ptr(),
            name.len(),
            &mut data,
            &mut size,
        )
    };
    // Taken either way: a value placed before a failure is released.
    let value = HostValue::take(data, size);
    (status == OK).then_some(value)
}

/// Sets a header (replacing any value it has).
pub fn set_header(map: Map, name: &str, value: &str) -> bool {
    // SAFETY: pointers and lengths of live strs.
    let status = unsafe {
        proxy_replace_header_map_value(
            map_type(map),
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status == OK
}

/// Adds a header value (keeping any it has).
pub fn add_header(map: Map, name: &str, value: &str) -> bool {
    // SAFETY: pointers and lengths of live strs.
    let status = unsafe {
        proxy_add_header_map_value(
            map_type(map),
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status == OK
}

/// All headers of a map in one call, in the proxy-wasm pairs encoding.
pub fn header_pairs(map: Map) -> Option<HostValue> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers to live locals.
    let status = unsafe { proxy_get_header_map_pairs(map_type(map), &mut data, &mut size) };
    let value = HostValue::take(data, size);
    (status == OK).then_some(value)
}

/// Removes a header.
pub fn remove_header(map: Map, name: &str) -> bool {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_remove_header_map_value(map_type(map), name.as_ptr(), name.len()) == OK }
}

/// A host property by path (`["xds", "node", "metadata", "X"]`).
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let encoded = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: pointer and length of a live String; out-pointers to live locals.
    let status =
        unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    let value = take(data, size);
    (status == OK).then_some(value)
}

/// A shared-data value and its CAS token (`None`: absent or refused).
pub fn shared_get(key: &str) -> Option<(Vec<u8>, u32)> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: pointer and length of a live str; out-pointers to live locals.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    let value = take(data, size);
    (status == OK).then_some((value, cas))
}

/// Writes shared data (`cas` 0: unconditionally).
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
    // SAFETY: pointers and lengths of a live str and slice.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match status {
        OK => Ok(()),
        CAS_MISMATCH => Err(SharedError::CasMismatch),
        _ => Err(SharedError::Failed),
    }
}

/// The proxy-wasm header-map encoding: count, (name, value) sizes, then
/// each name and value followed by a NUL.
fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        4 + pairs
            .iter()
            .map(|(n, v)| n.len() + v.len() + 10)
            .sum::<usize>(),
    );
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (n, v) in pairs {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Dispatches an HTTP call to a cluster; the call's token, or the status.
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout_ms: u64,
) -> Result<u32, u32> {
    let headers = encode_pairs(headers);
    let trailers = encode_pairs(&[]);
    let (body_ptr, body_len) = body.map_or((null(), 0), |b| (b.as_ptr(), b.len()));
    let mut token = 0u32;
    // SAFETY: pointers and lengths of live buffers; out-pointer to a local.
    let status = unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body_ptr,
            body_len,
            trailers.as_ptr(),
            trailers.len(),
            u32::try_from(timeout_ms).unwrap_or(u32::MAX),
            &mut token,
        )
    };
    if status == OK { Ok(token) } else { Err(status) }
}

/// Answers the current stream with a local response: `status`, extra
/// `headers`, `body`; `details` is the response-code details Envoy logs.
/// No gRPC status (-1). The caller's callback must then stop iterating.
pub fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> bool {
    let headers = encode_pairs(headers);
    // SAFETY: pointers and lengths of live buffers.
    let result = unsafe {
        proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    };
    result == OK
}
