//! The engine's rounds in time: recompute every interval, at once when the
//! topology or the admin state changes, and, when the engine has a report
//! debounce and the policy's decisions are undamped (`optimal`), when a host
//! report arrives (no sooner than the debounce after the last round, so the
//! agents' reports of one interval coalesce); a failed round keeps the last
//! table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Engine;

/// Recompute every `every`, at once on a topology change or an admin change,
/// and on a report after the engine's report debounce.
pub async fn recompute_loop(engine: Arc<Engine>, every: Duration) {
    let debounce = engine.cfg.report_debounce_ms.map(Duration::from_millis);
    let mut last_round = Instant::now();
    let mut topo = engine.topology_rx();
    let mut topo_open = true;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = topo.changed(), if topo_open => if r.is_err() {
                tracing::info!("topology source ended; weights keep the last topology");
                topo_open = false;
            },
            _ = engine.changed.notified() => {}
            _ = engine.reported.notified(), if debounce.is_some() => {
                if !engine.follows_reports() {
                    continue;
                }
                let wait = debounce.unwrap_or_default().saturating_sub(last_round.elapsed());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        last_round = Instant::now();
        let e = engine.clone();
        match tokio::task::spawn_blocking(move || e.recompute()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "recompute failed; the last table stays"),
            Err(err) => tracing::error!(error = %err, "recompute task died; the last table stays"),
        }
    }
}
