//! Adoption: from what a cluster already has to AppNetworks. [`flows`] reads observed traffic
//! (Hubble, Calico flow logs, CSV), [`suggest`] proposes the smallest AppNetworks that allow
//! it, and [`replay`] decides observed flows against AppNetworks (the audit, and the check of
//! a suggestion) with the planner and the engine.

pub mod flows;
pub mod replay;
pub mod suggest;
