//! Bench-only: like `probe`, but written against the proxy-wasm ABI directly
//! (as mplb-filter is), exporting only `proxy_on_request_headers` and
//! `proxy_on_log`, so `scripts/bench-filter` can price the filter's floor:
//! two callbacks and the host calls, with no logic (`VARIANTS="rawprobe:auth+endpt+set+status"`).
//! Not shipped, not a production configuration.
//!
//! Steps (the plugin configuration, joined by `+`): `auth` get `:authority`;
//! `endpt` get `x-lb-endpt`; `pairs` get all request headers in one call and
//! find both in them (decoded in place); `set` replace `x-lb-endpt` with
//! p0/p1/p2 (60/30/10 by a counter); `add` add it instead (the header is
//! known absent); `status` get `:status` in the log callback; `bump` place
//! host values in a static arena instead of the heap.
//! Build: `cargo build -p mplb-filter --example rawprobe --target wasm32-wasip1 --profile wasm-release`.

#[cfg(target_arch = "wasm32")]
mod rawprobe {
    use std::cell::Cell;
    use std::ptr::null_mut;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
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
        fn proxy_get_header_map_pairs(
            map: u32,
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
        fn proxy_add_header_map_value(
            map: u32,
            key: *const u8,
            key_size: usize,
            value: *const u8,
            value_size: usize,
        ) -> u32;
    }

    const AUTH: u32 = 1;
    const ENDPT: u32 = 2;
    const PAIRS: u32 = 4;
    const SET: u32 = 8;
    const ADD: u32 = 16;
    const STATUS: u32 = 32;
    const BUMP: u32 = 64;

    thread_local! {
        static STEPS: Cell<u32> = const { Cell::new(0) };
        static COUNT: Cell<u32> = const { Cell::new(0) };
        static ARENA_USED: Cell<usize> = const { Cell::new(0) };
    }

    const ARENA_SIZE: usize = 64 * 1024;
    static mut ARENA: [u8; ARENA_SIZE] = [0; ARENA_SIZE];

    fn steps() -> u32 {
        STEPS.with(Cell::get)
    }

    unsafe extern "C" {
        fn __wasm_call_ctors();
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn _initialize() {
        // SAFETY: called once by the host before any other export.
        unsafe { __wasm_call_ctors() }
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_abi_version_0_2_1() {}

    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
        1
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
        if steps() & BUMP != 0 {
            let used = ARENA_USED.with(Cell::get);
            if used + size <= ARENA_SIZE {
                ARENA_USED.with(|u| u.set(used + size));
                // SAFETY: in bounds of the static arena; single-threaded VM.
                return unsafe { (&raw mut ARENA).cast::<u8>().add(used) };
            }
            return null_mut();
        }
        let mut buf: Vec<u8> = Vec::with_capacity(size);
        let ptr = buf.as_mut_ptr();
        std::mem::forget(buf);
        ptr
    }

    /// Runs `f` on a value the host placed, then frees it.
    fn with_value<R>(data: *mut u8, size: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        if data.is_null() {
            return f(&[]);
        }
        if steps() & BUMP != 0 {
            // SAFETY: the host wrote `size` bytes at `data` in the arena.
            let r = f(unsafe { std::slice::from_raw_parts(data, size) });
            ARENA_USED.with(|u| u.set(0));
            return r;
        }
        // SAFETY: allocated by proxy_on_memory_allocate as a Vec of `size`.
        let v = unsafe { Vec::from_raw_parts(data, size, size) };
        f(&v)
    }

    fn header_len(map: u32, name: &str) -> usize {
        let (mut data, mut size) = (null_mut(), 0usize);
        // SAFETY: live str; out-pointers to locals.
        let st = unsafe {
            proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size)
        };
        if st != 0 {
            return 0;
        }
        with_value(data, size, <[u8]>::len)
    }

    fn pairs_find() -> usize {
        let (mut data, mut size) = (null_mut(), 0usize);
        // SAFETY: out-pointers to locals.
        if unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) } != 0 {
            return 0;
        }
        with_value(data, size, |b| {
            let word = |at: usize| -> usize {
                b.get(at..at + 4)
                    .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as usize)
            };
            let n = word(0);
            let mut at = 4 + 8 * n;
            let mut found = 0;
            for i in 0..n {
                let (k, v) = (word(4 + 8 * i), word(8 + 8 * i));
                let name = b.get(at..at + k).unwrap_or_default();
                if name == b":authority" || name == b"x-lb-endpt" {
                    found += 1;
                }
                at += k + 1 + v + 1;
            }
            found
        })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_configure(_root: u32, _size: usize) -> u32 {
        let (mut data, mut size) = (null_mut(), 0usize);
        // SAFETY: out-pointers to locals.
        let st = unsafe { proxy_get_buffer_bytes(7, 0, usize::MAX, &mut data, &mut size) };
        let text = if st == 0 && !data.is_null() {
            // SAFETY: allocated by proxy_on_memory_allocate (BUMP not set yet).
            let v = unsafe { Vec::from_raw_parts(data, size, size) };
            String::from_utf8_lossy(&v).into_owned()
        } else {
            String::new()
        };
        let mut s = 0;
        for t in text.split('+') {
            s |= match t.trim() {
                "auth" => AUTH,
                "endpt" => ENDPT,
                "pairs" => PAIRS,
                "set" => SET,
                "add" => ADD,
                "status" => STATUS,
                "bump" => BUMP,
                _ => 0,
            };
        }
        STEPS.with(|c| c.set(s));
        1
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_request_headers(_id: u32, _n: usize, _eos: u32) -> u32 {
        let s = steps();
        let mut seen = 0;
        if s & AUTH != 0 {
            seen += header_len(0, ":authority");
        }
        if s & ENDPT != 0 {
            seen += header_len(0, "x-lb-endpt");
        }
        if s & PAIRS != 0 {
            seen += pairs_find();
        }
        let n = COUNT.with(|c| {
            let n = c.get().wrapping_add(1);
            c.set(n);
            n
        });
        let pod: &str = match n % 10 {
            0..=5 => "p0",
            6..=8 => "p1",
            _ => "p2",
        };
        let name = "x-lb-endpt";
        if s & SET != 0 && seen < usize::MAX {
            // SAFETY: live strs.
            let _ = unsafe {
                proxy_replace_header_map_value(0, name.as_ptr(), name.len(), pod.as_ptr(), 2)
            };
        }
        if s & ADD != 0 {
            // SAFETY: live strs.
            let _ = unsafe {
                proxy_add_header_map_value(0, name.as_ptr(), name.len(), pod.as_ptr(), 2)
            };
        }
        0
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn proxy_on_log(_id: u32) {
        if steps() & STATUS != 0 {
            let _ = header_len(2, ":status");
        }
    }
}
