//! `mplb-lab validate-wasm`: does Envoy load a filter module? A listener
//! answering directly with the module as its wasm filter (fail closed, the
//! given weight-server cluster in its configuration), checked with
//! `envoy --mode validate` (build-and-push.sh's load check).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mplb_envoy_harness::{Bootstrap, Cluster, HttpFilter, Listener, Route, WasmFilter};
use serde_json::json;

use crate::error::{Error, Result};

/// The bootstrap that loads `wasm` with `weight_server_cluster` configured.
pub fn bootstrap(wasm: &Path, weight_server_cluster: &str) -> Bootstrap {
    let mut filter = WasmFilter::new(
        "mplb",
        wasm,
        json!({"weight_server_cluster": weight_server_cluster}).to_string(),
    );
    filter.fail_open = Some(false);
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut b = Bootstrap::default();
    b.listeners.push(
        Listener::new("validate", nowhere, vec![Route::direct(200, None)])
            .filter(HttpFilter::Wasm(filter)),
    );
    b.clusters.push(Cluster::new(
        weight_server_cluster,
        [SocketAddr::from(([127, 0, 0, 1], 1))],
    ));
    b
}

/// Write the bootstrap into `dir` and have Envoy validate it (2 minutes at most).
pub fn run(envoy: &Path, wasm: &Path, weight_server_cluster: &str, dir: &Path) -> Result<()> {
    if !wasm.is_file() {
        return Err(Error::Precondition(format!(
            "wasm module not found: {}",
            wasm.display()
        )));
    }
    let cfg = dir.join("envoy-validate.json");
    bootstrap(wasm, weight_server_cluster)
        .write(&cfg)
        .map_err(|e| Error::Results(e.to_string()))?;
    mplb_envoy_harness::validate(envoy, &cfg, Duration::from_secs(120))
        .map_err(|e| Error::Precondition(format!("Envoy refused the module: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_is_loaded_fail_closed_with_the_cluster_configured() {
        let b = bootstrap(Path::new("/p/plugin.wasm"), "outbound|8080||ws").to_json();
        let l = &b["static_resources"]["listeners"][0];
        let f = &l["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0];
        let c = &f["typed_config"]["config"];
        assert_eq!(c["fail_open"], false);
        assert_eq!(
            c["configuration"]["value"],
            r#"{"weight_server_cluster":"outbound|8080||ws"}"#
        );
        assert_eq!(
            b["static_resources"]["clusters"][0]["name"],
            "outbound|8080||ws"
        );
    }
}
