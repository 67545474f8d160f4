//! The filter configuration: the WasmPlugin `pluginConfig` JSON object.
//!
//! Every key but `weight_server_cluster` is optional. Parsing is strict: an
//! unknown key, a wrong type or an out-of-range value is a [`FilterError::Config`]
//! naming the field and the reason, and the plugin refuses to start.

use serde_json::{Map, Value};

use crate::FilterError;

/// Largest accepted configuration body.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// How the chosen endpoint is handed to Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stamp `header: <pod>`; a route per pod (VirtualService subset) matches it.
    Subset,
    /// Stamp `session_header: base64(ip:port)` for Envoy's stateful_session filter.
    Session,
}

/// The parsed, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub weight_server_cluster: String,
    pub weight_server_authority: String,
    pub weights_path: String,
    pub stats_path: String,
    pub poll_interval_ms: u64,
    pub poll_timeout_ms: u64,
    pub table_ttl_ms: u64,
    pub header: String,
    pub mode: Mode,
    pub session_header: String,
    /// This workload's own service; `None` when the config does not say
    /// (the glue then asks the environment and the node metadata).
    pub service: Option<String>,
    /// Responses a VM observes (reads the status of, and times) per
    /// destination pod and second, about; the others are counted by number
    /// (see [`crate::sample`]).
    pub response_samples_per_s: u64,
    /// Read the status of every response, so error counts are exact, not
    /// estimated (one more host call per request).
    pub exact_errors: bool,
}

const KEYS: [&str; 13] = [
    "weight_server_cluster",
    "weight_server_authority",
    "weights_path",
    "stats_path",
    "poll_interval_ms",
    "poll_timeout_ms",
    "table_ttl_ms",
    "header",
    "mode",
    "session_header",
    "service",
    "response_samples_per_s",
    "exact_errors",
];

impl Config {
    /// Parse and validate the plugin configuration bytes.
    pub fn parse(body: &[u8]) -> Result<Config, FilterError> {
        if body.len() > MAX_CONFIG_BYTES {
            return Err(FilterError::config(
                "<config>",
                format!("{} bytes exceed {MAX_CONFIG_BYTES}", body.len()),
            ));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| FilterError::config("<config>", format!("not JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(FilterError::config("<config>", "not a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(FilterError::config(unknown.as_str(), "unknown key"));
        }
        let cluster = string(&map, "weight_server_cluster")?
            .ok_or_else(|| FilterError::config("weight_server_cluster", "is required"))?;
        check_token("weight_server_cluster", &cluster)?;
        let authority = match string(&map, "weight_server_authority")? {
            Some(a) => {
                check_token("weight_server_authority", &a)?;
                a
            }
            None => default_authority(&cluster),
        };
        let weights_path = path(&map, "weights_path", "/v1/weights")?;
        let stats_path = path(&map, "stats_path", "/v1/stats")?;
        let poll_interval_ms = integer(&map, "poll_interval_ms", 1000, 10, 3_600_000)?;
        let poll_timeout_ms = integer(&map, "poll_timeout_ms", 500, 1, 60_000)?;
        let table_ttl_ms = integer(&map, "table_ttl_ms", 30_000, 1, 86_400_000)?;
        let response_samples_per_s = integer(&map, "response_samples_per_s", 32, 1, 1_000_000)?;
        let exact_errors = boolean(&map, "exact_errors", false)?;
        let endpoint_header = header_name(&map, "header", "x-lb-endpt")?;
        let session_header = header_name(&map, "session_header", "x-lb-session")?;
        if endpoint_header == session_header {
            return Err(FilterError::config(
                "session_header",
                "must differ from `header`",
            ));
        }
        let mode = match string(&map, "mode")?.as_deref() {
            None | Some("subset") => Mode::Subset,
            Some("session") => Mode::Session,
            Some(other) => {
                return Err(FilterError::config(
                    "mode",
                    format!("{other:?} is not `subset` or `session`"),
                ));
            }
        };
        let service = string(&map, "service")?;
        if let Some(s) = &service {
            check_token("service", s)?;
        }
        Ok(Config {
            weight_server_cluster: cluster,
            weight_server_authority: authority,
            weights_path,
            stats_path,
            poll_interval_ms,
            poll_timeout_ms,
            table_ttl_ms,
            header: endpoint_header,
            mode,
            session_header,
            service: service.map(|s| s.to_ascii_lowercase()),
            response_samples_per_s,
            exact_errors,
        })
    }

    /// How often each VM's tick runs: a quarter of the poll interval, kept
    /// between 10 ms and 1 s, so a new table reaches every worker well within
    /// two poll periods.
    pub fn tick_ms(&self) -> u64 {
        (self.poll_interval_ms / 4).clamp(10, 1000)
    }

    /// Responses a VM observes per destination pod and tick: its share of
    /// `response_samples_per_s` (at least 1).
    pub fn samples_per_tick(&self) -> u32 {
        let n = (self.response_samples_per_s * self.tick_ms()).div_ceil(1000);
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// Istio names clusters `outbound|<port>||<host>`; its authority is `<host>:<port>`.
fn default_authority(cluster: &str) -> String {
    let parts: Vec<&str> = cluster.split('|').collect();
    match parts.as_slice() {
        [_, port, _, host] if !host.is_empty() && !port.is_empty() => format!("{host}:{port}"),
        _ => cluster.to_string(),
    }
}

fn string(map: &Map<String, Value>, field: &str) -> Result<Option<String>, FilterError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(FilterError::config(
            field,
            format!("must be a string, got {}", kind(other)),
        )),
    }
}

fn boolean(map: &Map<String, Value>, field: &str, default: bool) -> Result<bool, FilterError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(FilterError::config(
            field,
            format!("must be a boolean, got {}", kind(other)),
        )),
    }
}

fn integer(
    map: &Map<String, Value>,
    field: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, FilterError> {
    let value = match map.get(field) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(other) => {
            return Err(FilterError::config(
                field,
                format!("must be an integer, got {}", kind(other)),
            ));
        }
    };
    match value {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(FilterError::config(
            field,
            format!("must be an integer between {min} and {max}"),
        )),
    }
}

fn path(map: &Map<String, Value>, field: &str, default: &str) -> Result<String, FilterError> {
    let p = string(map, field)?.unwrap_or_else(|| default.to_string());
    if !p.starts_with('/') {
        return Err(FilterError::config(field, "must start with `/`"));
    }
    check_token(field, &p)?;
    Ok(p)
}

fn header_name(
    map: &Map<String, Value>,
    field: &str,
    default: &str,
) -> Result<String, FilterError> {
    let h = string(map, field)?.unwrap_or_else(|| default.to_string());
    let ok = !h.is_empty()
        && h.len() <= 128
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(FilterError::config(
            field,
            "must be a lowercase header name of [a-z0-9-_], at most 128 bytes",
        ));
    }
    Ok(h)
}

fn check_token(field: &str, value: &str) -> Result<(), FilterError> {
    if value.is_empty() {
        return Err(FilterError::config(field, "is empty"));
    }
    if value.len() > 1024 {
        return Err(FilterError::config(field, "is longer than 1024 bytes"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(FilterError::config(
            field,
            "contains whitespace or control characters",
        ));
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
