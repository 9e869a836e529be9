//! End to end on this machine, every process running: nats-server, both emulators (in this process)
//! and the five services' release binaries.
//!
//! Setup (not measured): `E2E_BENCH_CONVERSATIONS` users (default 50) each ask for a person; an agent
//! accepts every task; one warm-up DM per conversation goes through.
//!
//! * `e2e.dm_to_agent_per_s`: `E2E_BENCH_BURST` DMs (default 6000, round-robin over the
//!   conversations) sent as fast as the Discord emulator takes them, divided by the time until the
//!   Twilio emulator (no added latency) has stored the last of them.
//! * `e2e.dm_to_agent_p50_ms` / `p99_ms`: DMs paced at 200/s for `E2E_BENCH_PACED_S` seconds (default
//!   10); each one's latency is from the gateway dispatch to the moment the Twilio emulator stores it.
//! * `e2e.twilio_calls_per_msg`: Twilio API requests during the paced phase per DM (steady state).
//! * `e2e.rss_mb_max`: the largest peak resident set (`VmHWM`) of the five services after set-up and
//!   the paced phase (which runs first).
//! * `e2e.rss_mb_max_burst`: the same after the burst too. discord-ingress peaks there: serenity spawns
//!   one task per gateway event, holding the parsed message, and a burst read from one socket buffer is
//!   parsed before those tasks run.
//!
//! Every DM is checked to arrive exactly once; the run fails otherwise.
//! Run: `cargo build --release --workspace --bins && cargo bench -p flexcord-e2e --bench e2e`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use flexcord_e2e::system::{System, SystemOptions};
use flexcord_e2e::Service;
use tokio::sync::Notify;

/// DMs seen by the Twilio emulator, by body, with the instant each was stored.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, (Instant, u32)>>,
    changed: Notify,
}

impl Arrivals {
    fn record(&self, body: String, at: Instant) {
        let mut map = self.at.lock().unwrap();
        map.entry(body).or_insert((at, 0)).1 += 1;
        drop(map);
        self.changed.notify_waiters();
    }

    /// Waits until every body in `bodies` arrived; fails after `timeout`.
    ///
    /// Each wake-up only checks from the first body still missing (bodies arrive roughly in the
    /// order sent), so this process does not spend the CPU the system under test needs.
    async fn wait_all(&self, bodies: &[String], timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut arrived = 0;
        loop {
            let notified = self.changed.notified();
            {
                let map = self.at.lock().unwrap();
                while arrived < bodies.len() && map.contains_key(&bodies[arrived]) {
                    arrived += 1;
                }
                if arrived == bodies.len() {
                    return Ok(bodies
                        .iter()
                        .filter_map(|b| map.get(b).map(|(t, _)| *t))
                        .max()
                        .unwrap_or_else(Instant::now));
                }
                if Instant::now() > deadline {
                    let missing = bodies.iter().filter(|b| !map.contains_key(*b)).count();
                    bail!("{missing} of {} DMs never reached the agent", bodies.len());
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    fn check_once(&self, bodies: &[String]) -> Result<()> {
        let map = self.at.lock().unwrap();
        let dup: Vec<_> = bodies
            .iter()
            .filter(|b| map.get(*b).is_some_and(|(_, n)| *n != 1))
            .collect();
        ensure!(dup.is_empty(), "DMs delivered more than once: {dup:?}");
        Ok(())
    }

    fn latency_ms(&self, body: &str, sent: Instant) -> Option<f64> {
        let map = self.at.lock().unwrap();
        map.get(body)
            .map(|(at, _)| at.saturating_duration_since(sent).as_secs_f64() * 1000.0)
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set of a process in MiB (`VmHWM` in `/proc/<pid>/status`).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Current resident set of a process in MiB (`VmRSS`).
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The services' peak resident sets in MiB, printed to stderr under `label`.
fn service_peaks(sys: &System, label: &str) -> Result<Vec<(u32, f64)>> {
    let mut out = Vec::new();
    for s in Service::ALL {
        let pid = sys
            .stack
            .pid(s)
            .with_context(|| format!("{} is not running", s.binary()))?;
        let mb = peak_rss_mb(pid).with_context(|| format!("no VmHWM for {}", s.binary()))?;
        eprintln!("peak RSS {label} {}: {mb:.1} MiB", s.binary());
        out.push((pid, mb));
    }
    Ok(out)
}

fn max_mb(peaks: &[(u32, f64)]) -> f64 {
    peaks.iter().map(|(_, mb)| *mb).fold(0.0, f64::max)
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the state field.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn bench() -> Result<()> {
    let conversations = env_or("E2E_BENCH_CONVERSATIONS", 50);
    let burst = env_or("E2E_BENCH_BURST", 6000);
    let paced_s = env_or("E2E_BENCH_PACED_S", 10);

    let sys = System::start(SystemOptions::new("bench-e2e").fast_users()).await?;

    // Hand-offs, outside the measurement.
    let mut users = Vec::new();
    for i in 0..conversations {
        let user = sys.new_user(&format!("bench{i}"), "en-US")?;
        let h = sys
            .request_agent(user.id, "I want to talk to a person")
            .await?;
        sys.accept(&h, "Ana").await?;
        users.push(user.id);
    }

    let arrivals = Arc::new(Arrivals::default());
    let mut feed = sys.twilio.watch_messages();
    let sink = Arc::clone(&arrivals);
    let watcher = tokio::spawn(async move {
        while let Some(m) = feed.recv().await {
            if let Some(body) = m.body {
                sink.record(body, m.at);
            }
        }
    });

    // Warm-up: one DM per conversation.
    let warm: Vec<String> = (0..users.len()).map(|i| format!("warm-up {i}")).collect();
    for (user, body) in users.iter().zip(&warm) {
        sys.send_dm(*user, body)?;
    }
    arrivals
        .wait_all(&warm, Duration::from_secs(60))
        .await
        .map_err(|e| sys.failure(e))?;

    // Latency at 200 DMs per second (steady state), and Twilio calls per DM.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls_before = sys.twilio.counters().total;
    let count = paced_s * 200;
    let step = Duration::from_millis(5);
    let mut sent = Vec::with_capacity(count as usize);
    let paced_start = tokio::time::Instant::now();
    for i in 0..count {
        tokio::time::sleep_until(paced_start + step * i as u32).await;
        let body = format!("paced {i}");
        let at = Instant::now();
        sys.send_dm(users[i as usize % users.len()], &body)?;
        sent.push((body, at));
    }
    let paced_bodies: Vec<String> = sent.iter().map(|(b, _)| b.clone()).collect();
    arrivals
        .wait_all(&paced_bodies, Duration::from_secs(120))
        .await
        .map_err(|e| sys.failure(e))?;
    arrivals.check_once(&paced_bodies)?;
    // Let any trailing call land before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = sys.twilio.counters().total - calls_before;
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter_map(|(b, at)| arrivals.latency_ms(b, *at))
        .collect();
    latencies.sort_by(f64::total_cmp);

    let paced_peaks = service_peaks(&sys, "after the paced phase")?;

    // Where the CPU goes during the burst (diagnostics on stderr).
    let mut pids: Vec<(String, u32)> = Service::ALL
        .iter()
        .filter_map(|s| sys.stack.pid(*s).map(|p| (s.binary().to_owned(), p)))
        .collect();
    if let flexcord_e2e::system::Nats::Single(server) = &sys.nats {
        pids.extend(server.pid().map(|p| ("nats-server".to_owned(), p)));
    }
    pids.push(("bench+emulators".to_owned(), std::process::id()));
    let cpu_before: Vec<f64> = pids.iter().map(|(_, p)| cpu_s(*p)).collect();
    for (name, pid) in &pids {
        if let Some(mb) = rss_mb(*pid) {
            eprintln!("RSS before the burst {name}: {mb:.1} MiB");
        }
    }

    // Throughput.
    let bodies: Vec<String> = (0..burst).map(|i| format!("burst {i}")).collect();
    let started = Instant::now();
    for (i, body) in bodies.iter().enumerate() {
        sys.send_dm(users[i % users.len()], body)?;
        if i % 256 == 255 {
            // Let the emulators' tasks run on this process's two worker threads.
            tokio::task::yield_now().await;
        }
    }
    let last = arrivals
        .wait_all(&bodies, Duration::from_secs(300))
        .await
        .map_err(|e| sys.failure(e))?;
    arrivals.check_once(&bodies)?;
    let elapsed = last.duration_since(started).as_secs_f64();
    let per_s = burst as f64 / elapsed;
    for ((name, pid), before) in pids.iter().zip(&cpu_before) {
        eprintln!(
            "burst CPU {name}: {:.2} s of {elapsed:.2} s, RSS after {:.1} MiB",
            cpu_s(*pid) - before,
            rss_mb(*pid).unwrap_or(0.0)
        );
    }

    let burst_peaks = service_peaks(&sys, "after the burst")?;
    watcher.abort();

    println!("BENCH e2e.dm_to_agent_per_s {per_s:.0} msgs/s");
    println!(
        "BENCH e2e.dm_to_agent_p50_ms {:.2} ms",
        percentile(&latencies, 50.0)
    );
    println!(
        "BENCH e2e.dm_to_agent_p99_ms {:.2} ms",
        percentile(&latencies, 99.0)
    );
    println!(
        "BENCH e2e.twilio_calls_per_msg {:.2} calls/msg",
        calls as f64 / count as f64
    );
    println!("BENCH e2e.rss_mb_max {:.1} MiB", max_mb(&paced_peaks));
    println!("BENCH e2e.rss_mb_max_burst {:.1} MiB", max_mb(&burst_peaks));
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench())
}
