//! Progress lines of a comparison on stderr: phase and time left.

use std::time::{Duration, Instant};

/// Progress lines on stderr: phase and time left.
pub struct Progress {
    start: Instant,
    total: Duration,
}

impl Progress {
    /// Start counting down from `total`.
    pub fn new(total: Duration) -> Self {
        Progress {
            start: Instant::now(),
            total,
        }
    }
    /// Print `what` with the elapsed time and the time left.
    pub fn say(&self, what: &str) {
        let left = self.total.saturating_sub(self.start.elapsed());
        eprintln!(
            "[lab {:>4}s] {what} (about {}s left)",
            self.start.elapsed().as_secs(),
            left.as_secs()
        );
    }
}
