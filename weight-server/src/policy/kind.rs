//! The policy names an operator picks from (`--policy`, `PUT /admin/policy`).

use serde::{Deserialize, Serialize};

/// Which policy computes the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Equal weights over ready pods.
    #[default]
    Even,
    /// Operator weights (`PUT /admin/weights/{service}`), even elsewhere.
    Static,
    /// Proportional to the spare CPU of each pod's node.
    Spare,
    /// The multi-party linear program.
    Optimal,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Even => "even",
            PolicyKind::Static => "static",
            PolicyKind::Spare => "spare",
            PolicyKind::Optimal => "optimal",
        }
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
