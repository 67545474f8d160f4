//! The proxy-wasm ABI 0.2.1 host calls the filter makes (wasm32 only), as
//! safe functions: every status is handled (none panics, unlike the SDK's
//! wrappers, which panic on a status they do not expect), and values the
//! host hands over are taken as bytes.
//!
//! The filter does not use the SDK (`proxy-wasm` crate): linking it exports
//! every `proxy_on_*` callback, and Envoy calls each exported callback on
//! every request whether the filter needs it or not (see `glue`).

use std::cell::{Cell, UnsafeCell};
use std::ptr::{null, null_mut};

use crate::host::{Level, SharedError};

/// proxy-wasm status codes (`WasmResult`).
const OK: u32 = 0;
const CAS_MISMATCH: u32 = 8;

/// Header maps (the headers of the request, the response, a call's response).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Map {
    Request = 0,
    Response = 2,
    HttpCallResponse = 6,
}

/// Buffers.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
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
}

/// Small values the host returns (a header, a status) are placed in this
/// buffer instead of the heap: one at a time, released when its
/// [`HostValue`] drops. Larger ones, or one while the buffer is taken, go to
/// the heap.
const SCRATCH_BYTES: usize = 512;

struct Scratch {
    bytes: UnsafeCell<[u8; SCRATCH_BYTES]>,
    taken: Cell<bool>,
}

// SAFETY: a Wasm VM runs one thread (wasm32-wasip1 has no threads).
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch {
    bytes: UnsafeCell::new([0; SCRATCH_BYTES]),
    taken: Cell::new(false),
};

fn scratch_ptr() -> *mut u8 {
    SCRATCH.bytes.get().cast()
}

/// The host allocates the values it returns by calling this export.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    if size <= SCRATCH_BYTES && !SCRATCH.taken.replace(true) {
        return scratch_ptr();
    }
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// A value the host placed with [`proxy_on_memory_allocate`].
pub struct HostValue {
    data: *mut u8,
    size: usize,
}

impl HostValue {
    /// Takes ownership (null: an empty value).
    fn take(data: *mut u8, size: usize) -> HostValue {
        HostValue { data, size }
    }

    fn in_scratch(&self) -> bool {
        self.data == scratch_ptr()
    }

    /// The bytes as an owned `Vec` (no copy when on the heap).
    pub fn into_vec(self) -> Vec<u8> {
        if self.data.is_null() || self.in_scratch() {
            return self.to_vec(); // the scratch is released on drop
        }
        let this = std::mem::ManuallyDrop::new(self);
        this.reclaim()
    }

    /// The heap `Vec` behind a value that is not in the scratch buffer.
    fn reclaim(&self) -> Vec<u8> {
        // SAFETY: a heap value: the host returned `data` from
        // `proxy_on_memory_allocate(size)` (a `Vec<u8>` of capacity `size`,
        // leaked there) and wrote `size` bytes; the caller gives up the value
        // (`into_vec` does not drop it, `drop` is its last use).
        unsafe { Vec::from_raw_parts(self.data, self.size, self.size) }
    }
}

impl std::ops::Deref for HostValue {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.data.is_null() {
            return &[];
        }
        // SAFETY: the host wrote `size` bytes at `data` (scratch or heap),
        // owned by this value until it drops.
        unsafe { std::slice::from_raw_parts(self.data, self.size) }
    }
}

impl Drop for HostValue {
    fn drop(&mut self) {
        if self.data.is_null() {
            return;
        }
        if self.in_scratch() {
            SCRATCH.taken.set(false);
        } else {
            drop(self.reclaim());
        }
    }
}

/// Takes ownership of a value the host placed, as a `Vec`.
fn take(data: *mut u8, size: usize) -> Vec<u8> {
    HostValue::take(data, size).into_vec()
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
    let status = unsafe { proxy_get_buffer_bytes(kind as u32, 0, max, &mut data, &mut size) };
    let value = take(data, size);
    (status == OK).then_some(value)
}

/// A header's raw value (`None`: absent, or the map is not available).
pub fn header(map: Map, name: &str) -> Option<HostValue> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: pointer and length of a live str; out-pointers to live locals.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
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
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    status == OK
}

/// Removes a header.
pub fn remove_header(map: Map, name: &str) -> bool {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) == OK }
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
