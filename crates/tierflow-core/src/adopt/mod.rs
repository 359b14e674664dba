//! Adoption: turning what a cluster already has into AppNetworks a person can review.
//!
//! - [`import`]: existing policies (NetworkPolicy, Calico, Cilium) and pods → AppNetworks that
//!   express the same reachability, with every connection where they differ and why.
//! - [`flows`] reads observed traffic (Hubble, Calico flow logs, CSV), [`suggest`] proposes the
//!   smallest AppNetworks that allow it, and [`replay`] decides observed flows against
//!   AppNetworks (the audit, and the check of a suggestion) with the planner and the engine.

pub mod flows;
pub mod import;
pub mod replay;
pub mod suggest;
