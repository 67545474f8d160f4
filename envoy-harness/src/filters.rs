//! The HTTP filters the project puts in front of the router: the proxy-wasm
//! filter (the mplb filter, the benchmark's noop and probes) and Envoy's
//! header-based stateful session (session mode).

use std::path::PathBuf;

use serde_json::{Value, json};

/// A proxy-wasm filter on V8, with its plugin configuration string.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    /// The plugin name (also its VM id).
    pub name: String,
    /// The `.wasm` module.
    pub file: PathBuf,
    /// The plugin configuration (JSON text for the mplb filter; may be empty).
    pub configuration: String,
    /// Envoy's `fail_open`, when set.
    pub fail_open: Option<bool>,
}

impl WasmFilter {
    /// A filter named `name` (and VM id `name`) running `file` with `configuration`.
    pub fn new(
        name: impl Into<String>,
        file: impl Into<PathBuf>,
        configuration: impl Into<String>,
    ) -> Self {
        WasmFilter {
            name: name.into(),
            file: file.into(),
            configuration: configuration.into(),
            fail_open: None,
        }
    }
}

/// An HTTP filter of a listener.
#[derive(Debug, Clone)]
pub enum HttpFilter {
    /// `envoy.filters.http.wasm`.
    Wasm(WasmFilter),
    /// `envoy.filters.http.stateful_session` keyed by a header.
    StatefulSession {
        /// The session header (`x-lb-session`).
        header: String,
    },
    /// `envoy.filters.http.router` (the listener adds it last).
    Router,
}

impl HttpFilter {
    /// The filter as Envoy configuration.
    pub fn to_json(&self) -> Value {
        match self {
            HttpFilter::Wasm(w) => {
                let mut config = json!({
                    "name": w.name,
                    "vm_config": {
                        "vm_id": w.name,
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": w.file.display().to_string()}},
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": w.configuration,
                    },
                });
                if let Some(f) = w.fail_open {
                    config["fail_open"] = f.into();
                }
                json!({
                    "name": "envoy.filters.http.wasm",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                        "config": config,
                    },
                })
            }
            HttpFilter::StatefulSession { header } => json!({
                "name": "envoy.filters.http.stateful_session",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession",
                    "session_state": {
                        "name": "envoy.http.stateful_session.header",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState",
                            "name": header,
                        },
                    },
                },
            }),
            HttpFilter::Router => json!({
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasm_filter_carries_its_module_vm_id_and_configuration() {
        let mut w = WasmFilter::new("mplb", "/x/f.wasm", r#"{"service":"a"}"#);
        w.fail_open = Some(false);
        let j = HttpFilter::Wasm(w).to_json();
        let c = &j["typed_config"]["config"];
        assert_eq!(c["vm_config"]["vm_id"], "mplb");
        assert_eq!(c["vm_config"]["code"]["local"]["filename"], "/x/f.wasm");
        assert_eq!(c["configuration"]["value"], r#"{"service":"a"}"#);
        assert_eq!(c["fail_open"], false);
        let s = HttpFilter::StatefulSession {
            header: "x-lb-session".into(),
        }
        .to_json();
        assert_eq!(
            s["typed_config"]["session_state"]["typed_config"]["name"],
            "x-lb-session"
        );
    }
}
