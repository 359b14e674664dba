//! tierflow's kube-free core. Data flows one way:
//!
//! [`crd`] types → [`validate`] (spec → [`model`]) → [`plan`] (everything desired, for the
//! operator and the CLI alike) → [`render`] (one module per backend) → objects. The [`engine`]
//! simulates any policy objects, [`verify`] checks rendered objects against the intent,
//! [`lint`] finds mistakes, and [`adopt`] turns what a cluster already has (observed flows) into
//! AppNetworks and replays observed flows against them. [`vocab`] defines every label key, well-known name and default once.
//!
//! This crate cannot use the Kubernetes client (it does not depend on it): the operator adds
//! observation and action around it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admit;
pub mod adopt;
pub mod core;
pub mod crd;
pub mod engine;
pub mod lint;
pub mod model;
pub mod plan;
pub mod render;
pub mod review;
pub mod validate;
pub mod verify;
pub mod vocab;
