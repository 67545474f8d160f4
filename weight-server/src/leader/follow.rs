//! A follower's mirror of the leader's table: poll `GET /v1/weights` on the
//! leader with the served ETag, validate what comes back as any reader
//! would, and take it only when its version is above the one served.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use mplb_wire::{MAX_TABLE_BYTES, WeightsTable};

use super::{Replica, Role};
use crate::weights::Served;

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Not following anybody.
    Idle,
    /// The leader's table is the one served (304, or an older version).
    Unchanged,
    /// A newer table was taken.
    Took(u64),
    /// The leader did not answer with a usable table (kept the last one).
    Failed(String),
}

/// A table as the leader sent it, checked.
pub fn served_of(body: Bytes) -> Result<Served, String> {
    if body.len() > MAX_TABLE_BYTES {
        return Err(format!("table of {} bytes is too large", body.len()));
    }
    let table = WeightsTable::parse(&body).map_err(|e| e.to_string())?;
    Ok(Served {
        etag: format!("\"{}\"", table.version),
        table,
        body,
    })
}

/// One poll of the leader's table.
pub async fn poll(replica: &Replica) -> Polled {
    let Role::Follower { address, .. } = replica.role() else {
        return Polled::Idle;
    };
    let mut req = http::Request::get(format!("http://{address}/v1/weights"));
    let v = replica.highest();
    if v > 0 {
        req = req.header(http::header::IF_NONE_MATCH, format!("\"{v}\""));
    }
    let req = match req.body(Full::new(Bytes::new())) {
        Ok(r) => r,
        Err(e) => return Polled::Failed(format!("GET {address}/v1/weights: {e}")),
    };
    let body = match replica.http.send(req, MAX_TABLE_BYTES).await {
        Ok((s, _, _)) if s == http::StatusCode::NOT_MODIFIED => return Polled::Unchanged,
        Ok((s, _, b)) if s == http::StatusCode::OK => b,
        Ok((s, _, _)) => return Polled::Failed(format!("GET {address}/v1/weights: status {s}")),
        Err(e) => return Polled::Failed(format!("GET {address}/v1/weights: {e}")),
    };
    match served_of(body) {
        Ok(s) => {
            let version = s.table.version;
            if replica.offer(Arc::new(s)) {
                Polled::Took(version)
            } else {
                Polled::Unchanged
            }
        }
        Err(e) => Polled::Failed(format!("the leader's table: {e}")),
    }
}

/// Poll every `every` while following (forever; aborted on shutdown).
pub async fn follow_loop(replica: Arc<Replica>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match poll(&replica).await {
            Polled::Took(v) => tracing::debug!(version = v, "took the leader's table"),
            Polled::Failed(e) => tracing::warn!(error = %e, "following the leader"),
            Polled::Idle | Polled::Unchanged => {}
        }
    }
}
