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
pub mod error;
pub mod leader;
pub mod metrics;
pub mod server;
pub mod status;

pub use tierflow_core::{
    admit, adopt, core, crd, engine, lint, model, plan, render, review, validate, verify, vocab,
};

pub use error::{Error, Result};
