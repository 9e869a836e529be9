use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Locates the nats-server binary: `NATS_SERVER_BIN`, then `PATH`, then `/usr/sbin/nats-server`.
pub fn nats_server_binary() -> Result<PathBuf, HarnessError> {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let fallback = PathBuf::from("/usr/sbin/nats-server");
    if fallback.is_file() {
        return Ok(fallback);
    }
    Err(HarnessError::BinaryNotFound)
}

/// Options for a test server.
#[derive(Debug, Clone, Default)]
pub struct NatsServerOptions {
    /// Extra lines appended to the generated config file (e.g. a `cluster { ... }` block).
    pub extra_config: String,
    /// JetStream server name (needed in clusters).
    pub server_name: Option<String>,
    /// Client port; `None` reserves one with [`crate::free_port`].
    pub port: Option<u16>,
    /// HTTP monitoring port (`/varz`, `/jsz`); `None`: no monitoring listener.
    pub monitor_port: Option<u16>,
}

/// A running (or stopped) nats-server with JetStream, owned by one test.
///
/// Dropping it kills the process and removes the store directory.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    opts: NatsServerOptions,
}

impl NatsServer {
    /// Starts a single JetStream server on a free port with a fresh store directory.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(NatsServerOptions::default())
    }

    /// Starts a server with the given options.
    pub fn start_with(opts: NatsServerOptions) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("flexcord-nats-")
            .tempdir()?;
        let mut server = NatsServer {
            child: None,
            // A reserved port, so that a restart finds it free (see `free_port`).
            port: match opts.port {
                Some(port) => port,
                None => crate::ports::free_port()?,
            },
            dir,
            opts,
        };
        server.spawn()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP monitoring URL (`http://127.0.0.1:<port>`), when a monitoring port was asked for.
    pub fn monitor_url(&self) -> Option<String> {
        self.opts
            .monitor_port
            .map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// The server name given in the options.
    pub fn server_name(&self) -> Option<&str> {
        self.opts.server_name.as_deref()
    }

    /// The JetStream store directory (kept across restarts).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 10 s) but keeps its port and store, so
    /// [`restart`](Self::restart) resumes it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server at once (SIGKILL), keeping its port and store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.spawn()
    }

    /// The last lines of the server's log (all runs), for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// The whole log of the server (all runs), followed by anything it wrote to stderr (a crash).
    pub fn log_text(&self) -> String {
        let mut text = read_from(&self.log_path(), 0);
        let stderr = read_from(&self.dir.path().join("nats.stderr"), 0);
        if !stderr.trim().is_empty() {
            text.push_str("\n--- stderr ---\n");
            text.push_str(&stderr);
        }
        text
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let bin = nats_server_binary()?;
        let store = self.store_dir();
        std::fs::create_dir_all(&store)?;
        let log = self.log_path();
        let log_offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let port = if self.port == 0 {
            -1
        } else {
            i32::from(self.port)
        };
        let name = self
            .opts
            .server_name
            .as_deref()
            .map(|n| format!("server_name: \"{n}\"\n"))
            .unwrap_or_default();
        let monitor = self
            .opts
            .monitor_port
            .map(|p| format!("http: \"127.0.0.1:{p}\"\n"))
            .unwrap_or_default();
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n{name}{monitor}jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 256MB\n  max_file_store: 2GB\n}}\nmax_payload: 8MB\n{}\n",
            store.display(),
            self.opts.extra_config
        );
        let config_path = self.dir.path().join("nats.conf");
        std::fs::write(&config_path, config)?;
        // A crash (a Go panic) goes to stderr, not to the log: keep it next to the log.
        let stderr = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.stderr"))?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config_path)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()?;
        self.child = Some(child);
        let timeout = Duration::from_secs(15);
        let port = wait_for_port(&log, log_offset, timeout)
            .ok_or_else(|| HarnessError::NotReady(timeout, log_tail(&log)))?;
        if self.port == 0 {
            self.port = port;
        }
        wait_for_jetstream(&log, log_offset, timeout)
            .ok_or_else(|| HarnessError::NotReady(timeout, log_tail(&log)))?;
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_string(&mut s);
        }
    }
    s
}

fn wait_for_port(log: &Path, offset: u64, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let text = read_from(log, offset);
        for line in BufReader::new(text.as_bytes())
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                if let Some(port) = rest.trim().rsplit(':').next().and_then(|p| p.parse().ok()) {
                    return Some(port);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn wait_for_jetstream(log: &Path, offset: u64, timeout: Duration) -> Option<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if read_from(log, offset).contains("Server is ready") {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn log_tail(log: &Path) -> String {
    let text = read_from(log, 0);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
