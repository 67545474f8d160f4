//! The agent loop: sample every interval, publish the newest report to the
//! sender, log problems when they appear and when they clear.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mplb_wire::HostReport;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::sampler::Sampler;
use crate::sender::Sender;

/// Remembers which problems were already logged, so a file that stays broken
/// is logged once (and once more when it recovers), not every second.
#[derive(Debug, Default)]
pub struct ProblemLog {
    seen: HashSet<String>,
}

impl ProblemLog {
    /// Log new problems at warn and cleared ones at info; returns how many are new.
    pub fn update(&mut self, problems: &[crate::AgentError]) -> usize {
        let now: HashSet<String> = problems.iter().map(ToString::to_string).collect();
        let mut new = 0;
        for p in now.difference(&self.seen) {
            tracing::warn!(problem = %p, "sampling problem (other pods still reported)");
            new += 1;
        }
        for p in self.seen.difference(&now) {
            tracing::info!(problem = %p, "sampling problem cleared");
        }
        self.seen = now;
        new
    }
}

/// Sample every `interval` and push through `sender` until `shutdown` resolves.
pub async fn run(
    mut sampler: Sampler,
    sender: Sender,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (tx, rx) = watch::channel::<Option<Arc<HostReport>>>(None);
    let sending = tokio::spawn(sender.run(rx));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut problems = ProblemLog::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        let sample = sampler.sample();
        problems.update(&sample.problems);
        if let Some(report) = sample.report {
            tracing::debug!(
                pods = report.pods.len(),
                used = report.used_millicores,
                capacity = report.capacity_millicores,
                "sampled"
            );
            tx.send_replace(Some(Arc::new(report)));
        }
    }
    drop(tx);
    sending.abort();
    tracing::info!("host agent stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AgentError;

    #[test]
    fn problems_are_logged_once_until_they_clear() {
        let a = || AgentError::Config("a broken".into());
        let b = || AgentError::Config("b broken".into());
        let mut log = ProblemLog::default();
        assert_eq!(log.update(&[a()]), 1);
        assert_eq!(log.update(&[a()]), 0);
        assert_eq!(log.update(&[a(), b()]), 1);
        assert_eq!(log.update(&[]), 0);
        assert_eq!(
            log.update(&[a()]),
            1,
            "a problem that returns is logged again"
        );
    }
}
