//! The running operator: observation (watches and caches), the planner, and action (apply,
//! prune, status). Two controllers, both fed from the same caches:
//!
//! - [`namespace`]: everything a namespace holds — the per-tier objects of its AppNetworks,
//!   their merged baselines (with the share of ClusterBaselines on the standard backend), pruning,
//!   and the AppNetworks' status. One reconcile follows the planner's order: allows → baselines
//!   → prune.
//! - [`clusterbaseline`]: a ClusterBaseline's one cluster-wide object (Calico, Cilium), the
//!   removal of the old variant once the new one is in place, and its status.
//!
//! Both plan with [`crate::plan`], the function `tierflow render` calls; neither reads status
//! to decide anything ([`observe`]). [`detect`] decides the backend; [`watches`] keeps the
//! caches; [`fence`] refuses writes from a replica that no longer leads; [`retry`] backs off per
//! object.

pub mod cluster_ranges;
pub mod clusterbaseline;
pub mod context;
pub mod cpu;
pub mod detect;
mod fence;
pub mod flows;
pub mod memory;
pub mod namespace;
pub mod observe;
pub mod report;
pub mod reports;
pub mod retry;
pub mod run;
pub mod server_facts;
pub mod watches;

pub use context::{Context, Options};
pub use memory::Memory;
pub use run::{owner_app, start, Running};
pub use watches::{Managed, Triggers};
