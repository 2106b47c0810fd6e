//! `socwatch cluster status`: the nodes that beat, who owns each partition and how far behind it
//! is, and how far the console is behind, read from the NATS server.

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::Link;
use super::wire::{self, Heartbeat};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterReport {
    pub nodes: Vec<Heartbeat>,
    pub partitions: Vec<PartitionReport>,
    /// Changes the console has not stored yet.
    pub console_lag: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionReport {
    pub partition: u32,
    pub owner: Option<String>,
    /// Matches waiting for the partition's worker (published, not yet committed); none before a
    /// worker first owned it.
    pub lag: Option<u64>,
}

/// Reads the cluster's state from the server; a cluster no node has started yet (no buckets or
/// streams) reads as empty rather than as an error.
pub async fn report(link: &Link) -> anyhow::Result<ClusterReport> {
    // A round trip first, so an unreachable or refusing server is the error, not a missing bucket.
    link.client.flush().await?;
    let mut nodes = Vec::new();
    if let Ok(nodes_bucket) = link.bucket(wire::NODES_BUCKET).await {
        let mut keys = nodes_bucket.keys().await?;
        while let Some(key) = keys.next().await {
            if let Some(value) = nodes_bucket.get(key?).await?
                && let Ok(beat) = serde_json::from_slice::<Heartbeat>(&value)
            {
                nodes.push(beat);
            }
        }
    }
    nodes.sort_by(|a, b| (&a.role, &a.node).cmp(&(&b.role, &b.node)));
    let owners = link.bucket(wire::OWNERS_BUCKET).await.ok();
    let matches = link.js.get_stream(wire::MATCH_STREAM).await.ok();
    let mut partitions = Vec::new();
    for partition in 0..link.partitions() {
        let owner = match &owners {
            Some(owners) => owners
                .get(wire::lease_key(partition))
                .await?
                .map(|value| String::from_utf8_lossy(&value).into_owned()),
            None => None,
        };
        // No consumer: no worker has owned the partition yet.
        let lag = match &matches {
            Some(matches) => matches
                .consumer_info(wire::partition_consumer(partition))
                .await
                .ok()
                .map(|info| info.num_pending + info.num_ack_pending as u64),
            None => None,
        };
        partitions.push(PartitionReport {
            partition,
            owner,
            lag,
        });
    }
    let console_lag = match link.js.get_stream(wire::CHANGE_STREAM).await {
        Ok(changes) => changes
            .consumer_info(wire::CONSOLE_CONSUMER)
            .await
            .ok()
            .map(|info| info.num_pending + info.num_ack_pending as u64),
        Err(_) => None,
    };
    Ok(ClusterReport {
        nodes,
        partitions,
        console_lag,
    })
}
