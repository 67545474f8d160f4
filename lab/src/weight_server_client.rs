//! The `--quick` checks' client of a running stack: the weight server's
//! admin API (put, typed state, fresh nodes), waiting for a condition or for
//! the served weights to settle, and the pods' request counters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mplb_wire::admin::StateSummary;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::measure;
use crate::stack::Stack;

/// `PUT` a JSON body to an admin URL; a non-2xx answer is an error with its text.
pub async fn admin_put(client: &reqwest::Client, url: &str, body: &impl Serialize) -> Result<()> {
    let resp = client
        .put(url)
        .json(body)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| Error::http(url, e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(Error::http(url, format!("{status}: {text}")));
    }
    Ok(())
}

/// `GET /admin/state`, typed.
pub async fn get_state(client: &reqwest::Client, url: &str) -> Result<StateSummary> {
    client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| Error::http(url, e))?
        .json()
        .await
        .map_err(|e| Error::http(url, e))
}

/// Nodes marked fresh in `GET /admin/state`.
pub fn fresh_nodes(state: &StateSummary) -> Vec<String> {
    state
        .fresh_nodes()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Poll `f` every 200 ms until it holds, or time out naming `what`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(Error::Timeout(what.to_string()))
}

/// Wait until two polls `interval * 2` apart serve the same version.
pub async fn wait_stable(
    client: &reqwest::Client,
    server: std::net::SocketAddr,
    interval: Duration,
) -> Result<mplb_wire::WeightsTable> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = measure::weights(client, server).await;
    while Instant::now() < deadline {
        tokio::time::sleep(interval * 2).await;
        let now = measure::weights(client, server).await;
        if let (Some(a), Some(b)) = (&last, &now)
            && a.version == b.version
        {
            return Ok(b.clone());
        }
        last = now;
    }
    Err(Error::Timeout("the served weights to settle".into()))
}

/// Every pod's request counters, by pod name.
pub async fn pod_counts(
    client: &reqwest::Client,
    stack: &Stack,
) -> Result<BTreeMap<String, crate::app::AppStats>> {
    let mut out = BTreeMap::new();
    for (pod, addr) in &stack.pod_addrs {
        out.insert(pod.clone(), measure::app_stats(client, *addr).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_nodes_reads_admin_state() {
        let node = |fresh| mplb_wire::admin::NodeState {
            fresh,
            ..Default::default()
        };
        let mut s = StateSummary::default();
        s.nodes.insert("node-a".into(), node(true));
        s.nodes.insert("node-b".into(), node(false));
        s.nodes.insert("node-c".into(), node(true));
        assert_eq!(fresh_nodes(&s), ["node-a", "node-c"]);
        assert!(fresh_nodes(&StateSummary::default()).is_empty());
    }
}
