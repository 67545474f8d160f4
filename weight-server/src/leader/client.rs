//! The plain-HTTP client replicas use to reach each other (the leader's
//! table, forwarded reports): hyper's, with a connect timeout, an overall
//! timeout and a bounded answer.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer: status, headers, body.
pub type Answer = (StatusCode, HeaderMap, Bytes);

/// A pooled HTTP/1.1 client.
#[derive(Debug, Clone)]
pub struct Peer {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Peer {
    /// Connect within `connect`, answer within `timeout`.
    pub fn new(connect: Duration, timeout: Duration) -> Peer {
        let mut c = HttpConnector::new();
        c.set_connect_timeout(Some(connect));
        c.set_nodelay(true);
        Peer {
            client: Client::builder(TokioExecutor::new()).build(c),
            timeout,
        }
    }

    /// Send `req`; an answer body above `limit` bytes is an error.
    pub async fn send(&self, req: Request<Full<Bytes>>, limit: usize) -> Result<Answer, String> {
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok((parts.status, parts.headers, body))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}
