//! The benchmark's variants: what wasm filter (if any) a listener runs, with
//! what configuration, and which Host its load names.

use std::path::Path;

use mplb_envoy_harness::{HttpFilter, WasmFilter};

use crate::error::{Error, Result};

/// One variant (`VARIANTS`; `none` and `noop` always run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variant {
    /// No wasm filter.
    None,
    /// A do-nothing proxy-wasm filter (filter/examples/noop.rs).
    Noop,
    /// mplb-filter, load to `backend` (or `--mplb-host`).
    Mplb,
    /// mplb-filter, load sent to a host not in the table (lookup only).
    Nobody,
    /// mplb-filter stamping `x-lb-nomatch` (no route matches it).
    Nomatch,
    /// Another build of the filter (`alt`, `alt2`, ...) with mplb's configuration.
    Alt(String),
    /// filter/examples/probe.rs making only the host calls named.
    Probe(String),
    /// filter/examples/rawprobe.rs: the same on the raw ABI.
    RawProbe(String),
}

impl Variant {
    /// Parse a variant name.
    pub fn parse(s: &str) -> Result<Variant> {
        Ok(match s {
            "none" => Variant::None,
            "noop" => Variant::Noop,
            "mplb" => Variant::Mplb,
            "nobody" => Variant::Nobody,
            "nomatch" => Variant::Nomatch,
            _ if s
                .strip_prefix("alt")
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())) =>
            {
                Variant::Alt(s.into())
            }
            _ if s.starts_with("probe:") => Variant::Probe(s["probe:".len()..].into()),
            _ if s.starts_with("rawprobe:") => Variant::RawProbe(s["rawprobe:".len()..].into()),
            _ => return Err(Error::Precondition(format!("unknown variant {s}"))),
        })
    }

    /// Its name, as given.
    pub fn name(&self) -> String {
        match self {
            Variant::None => "none".into(),
            Variant::Noop => "noop".into(),
            Variant::Mplb => "mplb".into(),
            Variant::Nobody => "nobody".into(),
            Variant::Nomatch => "nomatch".into(),
            Variant::Alt(n) => n.clone(),
            Variant::Probe(s) => format!("probe:{s}"),
            Variant::RawProbe(s) => format!("rawprobe:{s}"),
        }
    }

    /// The Host header of its load.
    pub fn host(&self, mplb_host: Option<&str>) -> String {
        match self {
            Variant::Mplb => mplb_host.unwrap_or("backend").into(),
            Variant::Nobody => "nobody".into(),
            _ => "backend".into(),
        }
    }

    /// Does it run mplb-filter (or a build of it)? Those print their per-pod routes.
    pub fn is_mplb(&self) -> bool {
        matches!(self, Variant::Mplb | Variant::Alt(_) | Variant::Nomatch)
    }

    /// Its wasm filter (module from `modules/<module>.wasm`, VM id suffixed), or none.
    pub fn filter(&self, modules: &Path, suffix: &str) -> Option<HttpFilter> {
        let mplb = r#"{"weight_server_cluster":"weight-server","weight_server_authority":"weight-server","service":"bench-client"}"#.to_string();
        let (module, config) = match self {
            Variant::None => return None,
            Variant::Noop => ("noop".to_string(), String::new()),
            Variant::Mplb | Variant::Nobody => ("mplb".into(), mplb),
            Variant::Nomatch => (
                "mplb".into(),
                r#"{"weight_server_cluster":"weight-server","weight_server_authority":"weight-server","service":"bench-client","header":"x-lb-nomatch"}"#.into(),
            ),
            Variant::Alt(n) => (n.clone(), mplb),
            Variant::Probe(s) => ("probe".into(), s.clone()),
            Variant::RawProbe(s) => ("rawprobe".into(), s.clone()),
        };
        Some(HttpFilter::Wasm(WasmFilter::new(
            format!("{module}{suffix}"),
            modules.join(format!("{module}.wasm")),
            config,
        )))
    }
}

/// The variants to run: `none noop` first, then the others asked for, then
/// `alt` (with an alt module) and `alt2..` (one per further module).
pub fn plan(wanted: &str, alt: bool, more: usize) -> Result<Vec<Variant>> {
    let mut out = vec![Variant::None, Variant::Noop];
    for w in wanted.split_whitespace() {
        let v = Variant::parse(w)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if alt && !out.contains(&Variant::Alt("alt".into())) {
        out.push(Variant::Alt("alt".into()));
    }
    for i in 0..more {
        out.push(Variant::Alt(format!("alt{}", i + 2)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(v: &Variant) -> String {
        let f = v.filter(Path::new("/m"), "-1").unwrap().to_json();
        f["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn none_and_noop_always_run_first_and_alts_follow() {
        let p = plan("mplb probe:auth+set", true, 2).unwrap();
        let names: Vec<String> = p.iter().map(Variant::name).collect();
        assert_eq!(
            names,
            [
                "none",
                "noop",
                "mplb",
                "probe:auth+set",
                "alt",
                "alt2",
                "alt3"
            ]
        );
        assert!(plan("bogus", false, 0).is_err());
    }

    #[test]
    fn each_variant_runs_its_module_with_its_configuration() {
        assert!(Variant::None.filter(Path::new("/m"), "-1").is_none());
        assert!(config(&Variant::Mplb).contains(r#""service":"bench-client"}"#));
        assert!(config(&Variant::Nomatch).contains("x-lb-nomatch"));
        assert_eq!(config(&Variant::Probe("auth*20".into())), "auth*20");
        let f = Variant::RawProbe("set".into())
            .filter(Path::new("/m"), "-4")
            .unwrap()
            .to_json();
        assert_eq!(
            f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"],
            "/m/rawprobe.wasm"
        );
        assert_eq!(
            f["typed_config"]["config"]["vm_config"]["vm_id"],
            "rawprobe-4"
        );
        assert_eq!(Variant::Nobody.host(Some("x")), "nobody");
        assert_eq!(Variant::Mplb.host(Some("x")), "x");
    }
}
