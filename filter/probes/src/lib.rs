//! `mplb-filter-probes`: bench-only proxy-wasm filters for
//! `mplb-lab bench-filter`, built as this crate's examples (not shipped, not
//! a production configuration):
//!
//! - `noop`: a do-nothing filter on the SDK, the baseline;
//! - `probe`: on the SDK, makes just the host calls its configuration names;
//! - `rawprobe`: the same on the filter's own ABI layer (`mplb-proxy-abi`)
//!   with the filter's two callbacks, the floor of its per-request cost.
//!
//! This library holds what the probes share: how a configuration names its
//! steps.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// How many times the configuration `text` names `step`: steps are joined
/// by `+` or `,`, and `step*N` counts N (a bad N counts 1).
pub fn step_count(text: &str, step: &str) -> u32 {
    text.split(['+', ','])
        .filter_map(|t| {
            let (name, n) = t.trim().split_once('*').unwrap_or((t.trim(), "1"));
            (name == step).then(|| n.parse::<u32>().unwrap_or(1))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_counted_with_their_repeats() {
        let text = "auth+set*3, status+auth";
        assert_eq!(step_count(text, "auth"), 2);
        assert_eq!(step_count(text, "set"), 3);
        assert_eq!(step_count(text, "status"), 1);
        assert_eq!(step_count(text, "time"), 0);
        assert_eq!(step_count("set*x", "set"), 1);
    }
}
