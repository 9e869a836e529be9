//! Ports for processes a test starts and that bind them later.
//!
//! A port that was free a moment ago can be taken before the child binds it: by another test process
//! handed the same port, or as the local end of any outgoing connection on the machine (Linux picks
//! those from `ip_local_port_range`). So [`free_port`] hands out ports *below* the ephemeral range and
//! reserves each one for the life of the calling process with a lock file that every test process on
//! the machine honours. Where no such range exists it falls back to asking the kernel for a port.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::TcpListener;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// The lowest port handed out; below it live well-known services.
const FIRST_PORT: u16 = 10_000;

/// Locks held by this process: a reserved port stays reserved until the process exits.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// How many candidates this process has tried; the next search starts after them.
static TRIED: AtomicU32 = AtomicU32::new(0);

/// Returns a TCP port on 127.0.0.1 that is free now and that no other test process on this machine
/// (using this function) and no outgoing connection will take while this process lives.
pub fn free_port() -> io::Result<u16> {
    let Some(range) = reservable_range() else {
        return kernel_port();
    };
    let dir = std::env::temp_dir().join("flexcord-ports");
    std::fs::create_dir_all(&dir)?;
    let size = u32::from(range.end - range.start);
    // Processes start their search at different places so that they rarely contend for a lock.
    let start = std::process::id().wrapping_mul(7_919) % size;
    for _ in 0..size {
        let n = TRIED.fetch_add(1, Ordering::Relaxed);
        let offset = u16::try_from((start + n) % size).map_err(io::Error::other)?;
        let port = range.start + offset;
        if let Some(lock) = reserve(dir.join(format!("{port}.lock")))? {
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                HELD.lock()
                    .map_err(|_| io::Error::other("port reservations poisoned"))?
                    .push(lock);
                return Ok(port);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free port left in {range:?}"),
    ))
}

/// Takes the lock file for one port, or `None` if another process holds it.
fn reserve(path: PathBuf) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Ports from [`FIRST_PORT`] up to the start of the kernel's ephemeral range, if that leaves any.
fn reservable_range() -> Option<Range<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let ephemeral_start: u16 = text.split_whitespace().next()?.parse().ok()?;
    (ephemeral_start > FIRST_PORT + 1_000).then_some(FIRST_PORT..ephemeral_start)
}

/// A port the kernel picked, free a moment ago (the fallback).
fn kernel_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port was handed out twice");
        if let Some(range) = reservable_range() {
            assert!(ports.iter().all(|p| range.contains(p)), "{ports:?}");
        }
        for p in ports {
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }

    #[test]
    fn a_reserved_port_is_locked_against_other_openers() {
        let port = free_port().unwrap();
        if reservable_range().is_none() {
            return;
        }
        let path = std::env::temp_dir()
            .join("flexcord-ports")
            .join(format!("{port}.lock"));
        // A second open file description of the same lock file, as another process would have.
        assert!(reserve(path).unwrap().is_none(), "port {port} not locked");
    }
}
