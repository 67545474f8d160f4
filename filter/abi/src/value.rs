//! Values the host places in the VM (through [`proxy_on_memory_allocate`]):
//! a small one in a scratch buffer, others on the heap, owned by a
//! [`HostValue`] until it drops.

use std::cell::{Cell, UnsafeCell};

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
    pub(crate) fn take(data: *mut u8, size: usize) -> HostValue {
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
pub(crate) fn take(data: *mut u8, size: usize) -> Vec<u8> {
    HostValue::take(data, size).into_vec()
}
