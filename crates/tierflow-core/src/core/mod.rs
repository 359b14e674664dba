//! The kube-free core: CIDRs, ports, label selectors and names.
//!
//! Nothing here talks to a cluster or knows about `kube`; the validator, the renderers,
//! the simulator and the linter all build on it.

pub mod cidr;
pub mod names;
pub mod port;
pub mod selector;

pub use cidr::{Cidr, CidrError};
pub use port::{Port, PortId, PortName, Protocol};
pub use selector::{Requirement, Selector, SelectorError, SelectorOp};
