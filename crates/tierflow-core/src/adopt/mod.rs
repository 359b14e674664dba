//! Adoption: turning what a cluster already has into AppNetworks a person can review.
//!
//! - [`import`]: existing policies (NetworkPolicy, Calico, Cilium) and pods → AppNetworks that
//!   express the same reachability, with every connection where they differ and why.

pub mod import;
