//! The filter's plugin configuration: the WasmPlugin `pluginConfig` JSON
//! object, read by the filter when Envoy configures it.
//!
//! Every key but `weight_server_cluster` is optional. Parsing is strict: an
//! unknown key, a key given twice, a wrong type or an out-of-range value is a
//! [`WireError::Field`] naming the field and the reason (`<config>` when the
//! body itself is unusable), and the plugin refuses to start. The keys are
//! the fields of one struct (`Keys`), filled by one `match` on the key
//! names (an unknown name is refused there): there is no second list to keep
//! in step. The body is read by one small serde visitor (`given`) rather
//! than a derive, which keeps the wasm module no larger than the hand parser
//! it replaced.

mod given;

use crate::WireError;
use given::Given;

/// Largest accepted configuration body.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// How the chosen endpoint is handed to Envoy (also `--mode` of the weight
/// server's `render-istio` and of the lab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Mode {
    /// Stamp `header: <pod>`; a route per pod (VirtualService subset) matches it.
    Subset,
    /// Stamp `session_header: base64(ip:port)` for Envoy's stateful_session filter.
    Session,
    /// Stamp [`OVERRIDE_HEADER`]` ip:port`; an extension after the filter
    /// (Lua `setUpstreamOverrideHost`, non-strict) makes Envoy send the
    /// request to that host, or balance it as usual when the host is not in
    /// the cluster or unhealthy.
    Override,
}

/// The header override mode stamps with the chosen pod's `ip:port`: the one
/// the override-host extension (`weight-server render-istio --mode override`)
/// reads. Fixed, so the filter and the rendered extension cannot disagree.
pub const OVERRIDE_HEADER: &str = "x-lb-host";

/// The parsed, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The Envoy cluster of the weight server (`outbound|<port>||<host>` in Istio).
    pub weight_server_cluster: String,
    /// The `:authority` of calls to the weight server (default: from the cluster name).
    pub weight_server_authority: String,
    /// Path of the weights table (`GET`).
    pub weights_path: String,
    /// How often the lease holder polls, ms.
    pub poll_interval_ms: u64,
    /// Timeout of one call to the weight server, ms.
    pub poll_timeout_ms: u64,
    /// Time-to-live of a table when the server gives none shorter, ms.
    pub table_ttl_ms: u64,
    /// The endpoint header (`x-lb-endpt`).
    pub header: String,
    /// How the chosen endpoint is handed to Envoy.
    pub mode: Mode,
    /// The stateful-session header (`x-lb-session`).
    pub session_header: String,
    /// This workload's own service; `None` when the config does not say
    /// (the filter then asks the environment and the node metadata).
    pub service: Option<String>,
    /// This proxy admits requests into the mesh (an entry gateway): it sheds
    /// a destination's requests by the table's `admit` fraction, answering
    /// them with a 503 at once. Default `false`: sidecars never shed.
    pub admission: bool,
    /// Keys of earlier versions that are accepted and ignored
    /// ([`RETIRED_KEYS`]), as given: the filter warns about them once.
    pub retired: Vec<&'static str>,
}

/// Keys an earlier filter read, accepted (whatever their value) and ignored,
/// so a configuration written for it still starts the filter: the per-pod
/// proxy stats (`stats_path`, `response_samples_per_s`, `exact_errors`) were
/// removed, since no policy read them and they cost a second callback per
/// request.
pub const RETIRED_KEYS: [&str; 3] = ["stats_path", "response_samples_per_s", "exact_errors"];

/// The keys of `pluginConfig`, each as given (`None`: not given).
#[derive(Default)]
struct Keys {
    weight_server_cluster: Option<Given>,
    weight_server_authority: Option<Given>,
    weights_path: Option<Given>,
    poll_interval_ms: Option<Given>,
    poll_timeout_ms: Option<Given>,
    table_ttl_ms: Option<Given>,
    header: Option<Given>,
    mode: Option<Given>,
    session_header: Option<Given>,
    service: Option<Given>,
    admission: Option<Given>,
    /// Retired keys given, by their index in [`RETIRED_KEYS`].
    retired: [Option<Given>; RETIRED_KEYS.len()],
}

impl Keys {
    /// The object's entries as keys: an unknown key, or one given twice, is
    /// an error naming it (the first such key, in the order given).
    #[inline(never)]
    fn read(entries: Vec<(String, Given)>) -> Result<Keys, WireError> {
        let mut keys = Keys::default();
        for (name, value) in entries {
            let slot = match name.as_str() {
                "weight_server_cluster" => &mut keys.weight_server_cluster,
                "weight_server_authority" => &mut keys.weight_server_authority,
                "weights_path" => &mut keys.weights_path,
                "poll_interval_ms" => &mut keys.poll_interval_ms,
                "poll_timeout_ms" => &mut keys.poll_timeout_ms,
                "table_ttl_ms" => &mut keys.table_ttl_ms,
                "header" => &mut keys.header,
                "mode" => &mut keys.mode,
                "session_header" => &mut keys.session_header,
                "service" => &mut keys.service,
                "admission" => &mut keys.admission,
                other => match RETIRED_KEYS.iter().position(|k| *k == other) {
                    Some(i) => &mut keys.retired[i],
                    None => return Err(field(&name, "unknown key")),
                },
            };
            if slot.replace(value).is_some() {
                return Err(field(&name, "given twice"));
            }
        }
        Ok(keys)
    }
}

#[inline(never)]
fn field(field: &str, reason: impl Into<String>) -> WireError {
    WireError::Field {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl PluginConfig {
    /// Parse and validate the plugin configuration bytes.
    pub fn parse(body: &[u8]) -> Result<PluginConfig, WireError> {
        if body.len() > MAX_CONFIG_BYTES {
            return Err(field(
                "<config>",
                format!("{} bytes exceed {MAX_CONFIG_BYTES}", body.len()),
            ));
        }
        let keys = match serde_json::from_slice(body) {
            Ok(Given::Object(entries)) => Keys::read(entries)?,
            Ok(_) => return Err(field("<config>", "not a JSON object")),
            Err(e) => return Err(field("<config>", format!("not JSON: {e}"))),
        };
        let cluster = string("weight_server_cluster", keys.weight_server_cluster)?
            .ok_or_else(|| field("weight_server_cluster", "is required"))?;
        check_token("weight_server_cluster", &cluster)?;
        let authority = match string("weight_server_authority", keys.weight_server_authority)? {
            Some(a) => {
                check_token("weight_server_authority", &a)?;
                a
            }
            None => default_authority(&cluster),
        };
        let weights_path = path("weights_path", keys.weights_path, "/v1/weights")?;
        let poll_interval_ms = integer(
            "poll_interval_ms",
            keys.poll_interval_ms,
            1000,
            10,
            3_600_000,
        )?;
        let poll_timeout_ms = integer("poll_timeout_ms", keys.poll_timeout_ms, 500, 1, 60_000)?;
        let table_ttl_ms = integer("table_ttl_ms", keys.table_ttl_ms, 30_000, 1, 86_400_000)?;
        let endpoint_header = header_name("header", keys.header, "x-lb-endpt")?;
        let session_header = header_name("session_header", keys.session_header, "x-lb-session")?;
        if endpoint_header == session_header {
            return Err(field("session_header", "must differ from `header`"));
        }
        for (name, h) in [
            ("header", &endpoint_header),
            ("session_header", &session_header),
        ] {
            if h == OVERRIDE_HEADER {
                return Err(field(
                    name,
                    format!("must differ from `{OVERRIDE_HEADER}` (override mode's header)"),
                ));
            }
        }
        let mode = match string("mode", keys.mode)?.as_deref() {
            None | Some("subset") => Mode::Subset,
            Some("session") => Mode::Session,
            Some("override") => Mode::Override,
            Some(other) => {
                return Err(field(
                    "mode",
                    format!("{other:?} is not `subset`, `session` or `override`"),
                ));
            }
        };
        let service = string("service", keys.service)?;
        if let Some(s) = &service {
            check_token("service", s)?;
        }
        Ok(PluginConfig {
            weight_server_cluster: cluster,
            weight_server_authority: authority,
            weights_path,
            poll_interval_ms,
            poll_timeout_ms,
            table_ttl_ms,
            header: endpoint_header,
            mode,
            session_header,
            service: service.map(|s| s.to_ascii_lowercase()),
            admission: boolean("admission", keys.admission, false)?,
            retired: RETIRED_KEYS
                .iter()
                .zip(&keys.retired)
                .filter(|(_, given)| given.is_some())
                .map(|(k, _)| *k)
                .collect(),
        })
    }

    /// How often each VM's tick runs: a quarter of the poll interval, kept
    /// between 10 ms and 1 s, so a new table reaches every worker well within
    /// two poll periods.
    pub fn tick_ms(&self) -> u64 {
        (self.poll_interval_ms / 4).clamp(10, 1000)
    }
}

/// Istio names clusters `outbound|<port>||<host>`; its authority is `<host>:<port>`.
#[inline(never)]
fn default_authority(cluster: &str) -> String {
    let mut parts = cluster.split('|');
    match (parts.nth(1), parts.nth(1), parts.next()) {
        (Some(port), Some(host), None) if !host.is_empty() && !port.is_empty() => {
            format!("{host}:{port}")
        }
        _ => cluster.to_string(),
    }
}

#[inline(never)]
fn string(name: &str, given: Option<Given>) -> Result<Option<String>, WireError> {
    match given.unwrap_or_default() {
        Given::Missing => Ok(None),
        Given::Str(s) => Ok(Some(s)),
        other => Err(other.wrong(name, "a string")),
    }
}

#[inline(never)]
fn boolean(name: &str, given: Option<Given>, default: bool) -> Result<bool, WireError> {
    match given.unwrap_or_default() {
        Given::Missing => Ok(default),
        Given::Bool(b) => Ok(b),
        other => Err(other.wrong(name, "a boolean")),
    }
}

#[inline(never)]
fn integer(
    name: &str,
    given: Option<Given>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, WireError> {
    let value = match given.unwrap_or_default() {
        Given::Missing => return Ok(default),
        Given::Unsigned(v) => Some(v),
        // A number that is not a u64: negative, fractional or too large.
        Given::Other("a number") => None,
        other => return Err(other.wrong(name, "an integer")),
    };
    match value {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(field(
            name,
            format!("must be an integer between {min} and {max}"),
        )),
    }
}

#[inline(never)]
fn path(name: &str, given: Option<Given>, default: &str) -> Result<String, WireError> {
    let p = string(name, given)?.unwrap_or_else(|| default.to_string());
    if !p.starts_with('/') {
        return Err(field(name, "must start with `/`"));
    }
    check_token(name, &p)?;
    Ok(p)
}

#[inline(never)]
fn header_name(name: &str, given: Option<Given>, default: &str) -> Result<String, WireError> {
    let h = string(name, given)?.unwrap_or_else(|| default.to_string());
    let ok = !h.is_empty()
        && h.len() <= 128
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(field(
            name,
            "must be a lowercase header name of [a-z0-9-_], at most 128 bytes",
        ));
    }
    Ok(h)
}

#[inline(never)]
fn check_token(name: &str, value: &str) -> Result<(), WireError> {
    if value.is_empty() {
        return Err(field(name, "is empty"));
    }
    if value.len() > 1024 {
        return Err(field(name, "is longer than 1024 bytes"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(field(name, "contains whitespace or control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
