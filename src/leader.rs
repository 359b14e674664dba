//! Leader election on a `coordination.k8s.io/v1` Lease, so several replicas run safely: only the
//! leader writes. Updates use the Lease's resourceVersion (optimistic concurrency), so two
//! replicas can never both believe they acquired it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::error::Result;

/// The name of tierflow's Lease.
pub const LEASE_NAME: &str = "tierflow-leader";

/// What a replica knows about leadership.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This replica holds the lease.
    pub leading: bool,
    /// Some replica holds a valid lease.
    pub leader_known: bool,
    /// While leading: until when this replica may write (its last successful renewal plus the
    /// renew deadline). A process paused past it (SIGSTOP, a long stall) must not write when it
    /// wakes up before the elector has looked at the lease again: `controller::start` refuses
    /// writes after this instant.
    pub write_until: Option<tokio::time::Instant>,
}

impl Leadership {
    /// A valid lease is held, by this replica (`leading`) or another.
    fn held(leading: bool) -> Self {
        Leadership {
            leading,
            leader_known: true,
            write_until: None,
        }
    }
}

/// Lease timing.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a lease is valid without renewal (default 15 s).
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up (default 10 s).
    pub renew_deadline: Duration,
    /// How often to try (default 2 s).
    pub retry_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Competes for the lease.
pub struct Elector {
    api: Api<Lease>,
    identity: String,
    config: Config,
}

impl Elector {
    /// An elector for `identity` (unique per replica: the pod name) in `namespace`.
    pub fn new(client: Client, namespace: &str, identity: String, config: Config) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            identity,
            config,
        }
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Runs forever, publishing leadership. Returns only when the lease was lost after being held
    /// (the caller must stop writing at once: exit).
    pub async fn run(&self, tx: watch::Sender<Leadership>) -> Result<()> {
        let mut last_renewed: Option<tokio::time::Instant> = None;
        loop {
            let mut expires_in = None;
            // The lease's renewTime is stamped when the attempt starts: measure from then, so a
            // slow answer never stretches how long this replica believes (and writes) it leads.
            let attempt = tokio::time::Instant::now();
            let state = match self.try_acquire_or_renew().await {
                Ok((s, expiry)) => {
                    if s.leading {
                        last_renewed = Some(attempt);
                    }
                    expires_in = expiry;
                    s
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease update failed");
                    *tx.borrow()
                }
            };
            let was_leading = tx.borrow().leading;
            let still_leading = state.leading
                || (was_leading
                    && last_renewed.is_some_and(|t| t.elapsed() < self.config.renew_deadline));
            if was_leading && !still_leading {
                tx.send_replace(Leadership {
                    leading: false,
                    leader_known: state.leader_known,
                    write_until: None,
                });
                tracing::error!(identity = %self.identity, "lost the leader lease; stopping");
                return Ok(());
            }
            if !was_leading && still_leading {
                tracing::info!(identity = %self.identity, "became the leader");
            }
            tx.send_replace(Leadership {
                leading: still_leading,
                leader_known: state.leader_known || still_leading,
                write_until: last_renewed
                    .filter(|_| still_leading)
                    .map(|t| t + self.config.renew_deadline),
            });
            // A standby tries again right when the holder's lease runs out, so it takes over
            // within the lease duration of the leader's last renewal, not up to a retry period
            // later.
            let wait = expires_in.map_or(self.config.retry_period, |e: Duration| {
                self.config.retry_period.min(e + Duration::from_millis(20))
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether this replica leads now, and, when another replica holds a valid lease, how long
    /// until that lease expires.
    async fn try_acquire_or_renew(&self) -> Result<(Leadership, Option<Duration>)> {
        let now = Timestamp::now();
        let duration_s = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(15);
        let Some(lease) = self.api.get_opt(LEASE_NAME).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_s),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok((Leadership::held(true), None)),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok((Leadership::held(false), None)),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let valid_for = i64::from(spec.lease_duration_seconds.unwrap_or(duration_s)) * 1000;
        let age = spec
            .renew_time
            .as_ref()
            .map(|t| now.as_millisecond().saturating_sub(t.0.as_millisecond()));
        let expired = age.is_none_or(|a| a > valid_for);
        let mine = holder == self.identity;
        if !mine && !holder.is_empty() && !expired {
            let left = u64::try_from(valid_for - age.unwrap_or(0)).unwrap_or(0);
            return Ok((Leadership::held(false), Some(Duration::from_millis(left))));
        }
        let mut new = lease.clone();
        let mut s = spec.clone();
        if !mine {
            s.acquire_time = Some(MicroTime(now));
            s.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        s.holder_identity = Some(self.identity.clone());
        s.lease_duration_seconds = Some(duration_s);
        s.renew_time = Some(MicroTime(now));
        new.spec = Some(s);
        // replace() carries the resourceVersion we read: a concurrent update makes it fail (409).
        match self
            .api
            .replace(LEASE_NAME, &PostParams::default(), &new)
            .await
        {
            Ok(_) => Ok((Leadership::held(true), None)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok((Leadership::held(false), None)),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up (on graceful shutdown) so a standby takes over at once.
    pub async fn release(&self) -> Result<()> {
        let Some(lease) = self.api.get_opt(LEASE_NAME).await? else {
            return Ok(());
        };
        if lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            != Some(self.identity.as_str())
        {
            return Ok(());
        }
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"holderIdentity": null, "renewTime": null}
        });
        self.api
            .patch(LEASE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(identity = %self.identity, "released the leader lease");
        Ok(())
    }
}
