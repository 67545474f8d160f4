//! The lab's `--quick` pass thresholds, in one place: the quick run checks
//! them and its end-to-end test asserts its report against the same values.

/// The most a pod's served share may differ from its expected share.
pub const MAX_SPLIT_ERROR: f64 = 0.07;
/// The fewest requests the split load must have served.
pub const MIN_SPLIT_REQUESTS: u64 = 300;
/// The fewest requests of the failure drill (weight server killed mid-load).
pub const MIN_DRILL_REQUESTS: u64 = 400;
/// How close the served weights must come to the operator's before the split load.
pub const SETTLE_TOLERANCE: f64 = 0.05;
