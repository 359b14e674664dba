//! Verification: does a set of policy objects allow exactly what an AppNetwork declares?
//!
//! [`endpoints`] builds representative pods and addresses for an app, [`intent`] says what the
//! intent expects of each connection between them, and [`reach`] simulates the objects with the
//! [`engine`](crate::engine) and reports every difference as data: the flows it concerns (by
//! index into `spec.flows`) and the objects that decided it. The operator (inline, per
//! generation) and the CLI (`verify`, `explain`) both use this module.

pub mod across;
pub mod cluster;
pub mod endpoints;
pub mod guardrail;
pub mod intent;
pub mod reach;

pub use crate::engine::PolicyRef;
pub use endpoints::{representatives, Options, Representatives};
pub use reach::{
    reachability, verify, verify_backend, verify_in, verify_in_with, verify_objects, BackendReport,
    Difference, Matrix, Verification,
};
