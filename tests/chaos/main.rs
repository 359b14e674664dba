//! Chaos scenarios (see RELIABILITY.md): the operator as a separate process against a control
//! plane of its own (`target/chaos-cluster`, started with `hack/cluster.sh up` when it is not
//! running and left running for the next run; `hack/chaos.sh down` stops it). The operator is
//! SIGKILLed, SIGSTOPped and failed over; the API server and etcd are crashed and restarted;
//! other writers fight it; namespaces vanish under it; a fake API server makes it panic.
//!
//! The fast scenarios run in `make test`; the slow ones are `#[ignore]`d and run with
//! `make chaos` (`cargo test --test chaos -- --include-ignored`). Every scenario skips, saying
//! why, with `USE_EXISTING_CLUSTER=true` or when the chaos control plane cannot be started.
//! Lines starting with `CHAOS-REPORT` carry the numbers RELIABILITY.md quotes.

#[path = "../e2e/support.rs"]
mod support;

mod control_plane;
mod failover;
mod harness;
mod kill;
mod lifecycle;
mod oversized;
mod paging;
mod panic;
mod recorder;
mod status_loss;
mod workload;
mod writers;
