//! tierflow turns application network intent into correct, self-healing NetworkPolicies.
//!
//! Data flows one way: [`crd`] types → [`validate`] (spec → [`model`], no client) →
//! [`render`] (model → objects, pure, one module per backend) → [`apply`] (server-side apply and
//! prune) → [`status`]. [`core`] holds the kube-free CIDR, port, selector and naming logic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apply;
pub mod cli;
pub mod controller;
pub mod core;
pub mod crd;
pub mod engine;
pub mod error;
pub mod leader;
pub mod lint;
pub mod metrics;
pub mod model;
pub mod render;
pub mod server;
pub mod status;
pub mod validate;

pub use error::{Error, Result};
