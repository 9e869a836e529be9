use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::server::{NatsServer, NatsServerOptions};
use crate::HarnessError;

/// Three JetStream nodes clustered on loopback, each with an HTTP monitoring port.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes (server names `n0`, `n1`, `n2`); index them to stop, kill or restart one.
    pub nodes: Vec<NatsServer>,
}

/// The JetStream meta group as one node reports it (`/jsz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaGroup {
    /// Name of the meta leader (empty while there is none).
    pub leader: String,
    /// Cluster size the node expects.
    pub cluster_size: u64,
    /// Followers the leader sees as current (only the leader reports followers).
    pub current_followers: Vec<String>,
}

impl NatsCluster {
    /// Starts a three-node cluster and returns once every node reports ready. Call
    /// [`wait_for_meta_leader`](Self::wait_for_meta_leader) before creating replicated streams: a node
    /// is "ready" before the JetStream meta group has elected a leader.
    pub fn start() -> Result<Self, HarnessError> {
        let size = 3;
        let client_ports = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let cluster_ports = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let monitor_ports = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let routes = cluster_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::with_capacity(size);
        for i in 0..size {
            let extra = format!(
                "cluster {{\n  name: \"flexcord-test\"\n  listen: \"127.0.0.1:{}\"\n  routes: [{routes}]\n}}\n",
                cluster_ports[i]
            );
            nodes.push(NatsServer::start_with(NatsServerOptions {
                extra_config: extra,
                server_name: Some(format!("n{i}")),
                port: Some(client_ports[i]),
                monitor_port: Some(monitor_ports[i]),
            })?);
        }
        Ok(NatsCluster { nodes })
    }

    /// A comma-separated list of every node's URL, as async-nats accepts it.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// The meta group as node `i` reports it (`None` when the node does not answer).
    pub fn meta_group(&self, i: usize) -> Option<MetaGroup> {
        let url = self.nodes.get(i)?.monitor_url()?;
        let body = http_get(&url, "/jsz")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let meta = v.get("meta_cluster")?;
        Some(MetaGroup {
            leader: meta
                .get("leader")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned(),
            cluster_size: meta
                .get("cluster_size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            current_followers: meta
                .get("replicas")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| r.get("current").and_then(serde_json::Value::as_bool) == Some(true))
                .filter_map(|r| r.get("name").and_then(serde_json::Value::as_str))
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Index of the node that is the JetStream meta leader, as the running nodes agree.
    pub fn meta_leader(&mut self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_running() {
                continue;
            }
            let Some(group) = self.meta_group(i) else {
                continue;
            };
            let me = self.nodes[i].server_name().unwrap_or_default();
            if !group.leader.is_empty() && group.leader == me {
                return Some(i);
            }
        }
        None
    }

    /// Waits until a meta leader is elected and sees every other running node as a current follower, so
    /// streams replicated on all nodes can be created. Returns the leader's index.
    pub fn wait_for_meta_leader(&mut self, timeout: Duration) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer from the monitoring endpoints");
        while Instant::now() < deadline {
            let running = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].is_running())
                .count();
            if let Some(leader) = self.meta_leader() {
                if let Some(group) = self.meta_group(leader) {
                    if group.current_followers.len() + 1 >= running {
                        return Ok(leader);
                    }
                    last = format!("{group:?}");
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(HarnessError::NotReady(
            timeout,
            format!("no JetStream meta leader with every node current: {last}"),
        ))
    }
}

/// A minimal HTTP/1.0 GET on loopback (the monitoring endpoint), without a client library.
fn http_get(base: &str, path: &str) -> Option<String> {
    let addr = base.strip_prefix("http://")?;
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.split_whitespace().nth(1) == Some("200"))?;
    Some(body.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn cluster_elects_a_meta_leader_and_a_new_one_after_the_leader_dies() {
        let mut cluster = NatsCluster::start().unwrap();
        let leader = cluster
            .wait_for_meta_leader(Duration::from_secs(30))
            .unwrap();
        let group = cluster.meta_group(leader).unwrap();
        assert_eq!(group.cluster_size, 3);
        assert_eq!(group.current_followers.len(), 2, "{group:?}");
        cluster.nodes[leader].kill();
        let next = cluster
            .wait_for_meta_leader(Duration::from_secs(30))
            .unwrap();
        assert_ne!(next, leader);
    }
}
