//! Free loopback ports for children to bind, picked so that a port handed
//! out cannot be taken in the meantime by an outgoing connection.
//!
//! `bind(127.0.0.1:0)` returns a port from the kernel's ephemeral range
//! (`net.ipv4.ip_local_port_range`), the same range every outgoing
//! connection's source port comes from: between our releasing the port and
//! Envoy binding it, any client connection on the machine may take it, and
//! Envoy exits with "Address already in use". Ports below that range are
//! never chosen as source ports, so we hand those out: each process walks
//! the range from its own offset (no two tests of one process get the same
//! port) and checks that a port is free before returning it.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};

/// The lowest port handed out (above the well-known and most registered
/// service ports people run locally).
const LOW: u32 = 20_000;
/// Used when the kernel's range cannot be read: Linux's default start.
const DEFAULT_EPHEMERAL_START: u32 = 32_768;

/// The first port of the kernel's ephemeral range, read from `procfs`
/// (`<root>/sys/net/ipv4/ip_local_port_range`).
pub fn ephemeral_start(proc_root: &Path) -> u32 {
    std::fs::read_to_string(proc_root.join("sys/net/ipv4/ip_local_port_range"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START)
}

/// The `n`th candidate of a walk over `[LOW, end)` starting at `offset`.
fn candidate(offset: u32, n: u32, end: u32) -> Option<u16> {
    let span = end.checked_sub(LOW).filter(|s| *s > 0)?;
    u16::try_from(LOW + (offset + n) % span).ok()
}

/// A free loopback port below the ephemeral range: bound, then released for
/// a child to take. Falls back to a kernel-chosen port if none is free.
pub fn free_port() -> Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let end = ephemeral_start(Path::new("/proc"));
    // Each process starts at its own place, spread by its pid.
    let offset = std::process::id().wrapping_mul(7_919);
    for _ in 0..256 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let Some(port) = candidate(offset, n, end) else {
            break;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Io {
            what: "bind a free loopback port".into(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_stay_below_the_ephemeral_range_and_do_not_repeat_in_a_process() {
        let end = ephemeral_start(Path::new("/proc"));
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        for p in &ports {
            assert!(
                u32::from(*p) >= LOW && u32::from(*p) < end,
                "{p} outside [{LOW}, {end})"
            );
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port was handed out twice: {ports:?}"
        );
    }

    #[test]
    fn the_ephemeral_start_is_read_from_procfs_or_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ephemeral_start(dir.path()), DEFAULT_EPHEMERAL_START);
        let file = dir.path().join("sys/net/ipv4");
        std::fs::create_dir_all(&file).unwrap();
        std::fs::write(file.join("ip_local_port_range"), "40000\t60999\n").unwrap();
        assert_eq!(ephemeral_start(dir.path()), 40_000);
    }

    #[test]
    fn the_walk_wraps_inside_the_range() {
        assert_eq!(candidate(0, 0, 20_010), Some(20_000));
        assert_eq!(candidate(7, 5, 20_010), Some(20_002));
        assert_eq!(candidate(0, 0, LOW), None);
    }
}
