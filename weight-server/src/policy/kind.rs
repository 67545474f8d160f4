//! The policy names an operator picks from (`--policy`, `PUT /admin/policy`):
//! the admin contract's [`mplb_wire::admin::PolicyKind`].

pub use mplb_wire::admin::PolicyKind;
