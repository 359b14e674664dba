//! Integration tests against a real control plane (see `support` for how it is found).

mod appnetwork;
mod backends;
mod clusterbaseline;
mod cni_objects;
mod cnp;
mod control_plane;
mod flows;
mod from_cluster;
mod intent;
mod planner;
mod support;
