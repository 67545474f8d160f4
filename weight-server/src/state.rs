//! What every HTTP handler shares: the engine and who may do what.

use std::sync::Arc;

use crate::auth::{AdminAuth, ReportAuth};
use crate::engine::Engine;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine: topology, reports, policy, the served table.
    pub engine: Arc<Engine>,
    /// Who may mutate through the admin API.
    pub auth: Arc<AdminAuth>,
    /// Who may post host reports.
    pub reports_auth: Arc<ReportAuth>,
    /// With `--leader-elect`: this replica's role and served table.
    pub replica: Option<Arc<crate::leader::Replica>>,
}
