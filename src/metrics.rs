//! Prometheus metrics. Labels are bounded: controller names, reasons from `Error::reason()`,
//! backends and kinds — never object names.

use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::error::{Error, Result};

/// Every metric tierflow exports.
pub struct Metrics {
    registry: Registry,
    /// Reconcile runs by controller and result (`success`, `error`).
    pub reconciles: IntCounterVec,
    /// Reconcile failures by controller and bounded reason.
    pub reconcile_errors: IntCounterVec,
    /// Reconcile duration by controller.
    pub reconcile_duration: HistogramVec,
    /// Objects tierflow manages, by backend and kind.
    pub policies: IntGaugeVec,
    /// Managed objects put back after someone changed or deleted them, by kind.
    pub drift_corrections: IntCounterVec,
    /// Specs found invalid, by kind (AppNetwork, ClusterBaseline).
    pub invalid_specs: IntCounterVec,
    /// Namespaces that have a baseline in place.
    pub baseline_namespaces: IntGauge,
    /// The detected CNI and chosen backend (value 1).
    pub cni: IntGaugeVec,
    /// 1 while this replica is the leader (or runs without leader election).
    pub leader: IntGauge,
    /// API writes the operator made, by verb and resource (a resource plural: bounded).
    pub writes: IntCounterVec,
}

fn err(e: prometheus::Error) -> Error {
    Error::Config(format!("metrics: {e}"))
}

impl Metrics {
    /// Creates and registers every metric (plus process CPU and memory metrics).
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let m = Metrics {
            reconciles: IntCounterVec::new(
                Opts::new(
                    "tierflow_reconcile_total",
                    "Reconcile runs by controller and result",
                ),
                &["controller", "result"],
            )
            .map_err(err)?,
            reconcile_errors: IntCounterVec::new(
                Opts::new(
                    "tierflow_reconcile_errors_total",
                    "Reconcile failures by controller and reason",
                ),
                &["controller", "reason"],
            )
            .map_err(err)?,
            reconcile_duration: HistogramVec::new(
                HistogramOpts::new(
                    "tierflow_reconcile_duration_seconds",
                    "Reconcile duration by controller",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["controller"],
            )
            .map_err(err)?,
            policies: IntGaugeVec::new(
                Opts::new(
                    "tierflow_managed_objects",
                    "Objects tierflow manages, by backend and kind",
                ),
                &["backend", "kind"],
            )
            .map_err(err)?,
            drift_corrections: IntCounterVec::new(
                Opts::new(
                    "tierflow_drift_corrections_total",
                    "Managed objects restored after a change by someone else",
                ),
                &["kind"],
            )
            .map_err(err)?,
            invalid_specs: IntCounterVec::new(
                Opts::new(
                    "tierflow_invalid_specs_total",
                    "Specs found invalid, by kind",
                ),
                &["kind"],
            )
            .map_err(err)?,
            baseline_namespaces: IntGauge::new(
                "tierflow_baseline_namespaces",
                "Namespaces with a deny-all baseline in place",
            )
            .map_err(err)?,
            cni: IntGaugeVec::new(
                Opts::new(
                    "tierflow_cni_info",
                    "The detected CNI and the backend Auto resolves to",
                ),
                &["cni", "backend"],
            )
            .map_err(err)?,
            leader: IntGauge::new("tierflow_leader", "1 while this replica is the leader")
                .map_err(err)?,
            writes: IntCounterVec::new(
                Opts::new(
                    "tierflow_api_writes_total",
                    "API writes made by the operator, by verb and resource",
                ),
                &["verb", "resource"],
            )
            .map_err(err)?,
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.reconciles.clone()),
            Box::new(m.reconcile_errors.clone()),
            Box::new(m.reconcile_duration.clone()),
            Box::new(m.policies.clone()),
            Box::new(m.drift_corrections.clone()),
            Box::new(m.invalid_specs.clone()),
            Box::new(m.baseline_namespaces.clone()),
            Box::new(m.cni.clone()),
            Box::new(m.leader.clone()),
            Box::new(m.writes.clone()),
        ];
        for c in collectors {
            m.registry.register(c).map_err(err)?;
        }
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(err)?;
        Ok(m)
    }

    /// Records one reconcile.
    pub fn observe<T>(&self, controller: &str, started: Instant, result: &Result<T>) {
        self.reconcile_duration
            .with_label_values(&[controller])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(_) => self
                .reconciles
                .with_label_values(&[controller, "success"])
                .inc(),
            Err(e) => {
                self.reconciles
                    .with_label_values(&[controller, "error"])
                    .inc();
                self.reconcile_errors
                    .with_label_values(&[controller, e.reason()])
                    .inc();
            }
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The resource (plural) a request path names: `/apis/g/v/namespaces/ns/networkpolicies/x` →
/// `networkpolicies`; subresources are kept (`appnetworks/status`).
pub fn resource_of(path: &str) -> String {
    let segs: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let rest: &[&str] = match segs.first() {
        Some(&"api") => segs.get(2..).unwrap_or_default(),
        Some(&"apis") => segs.get(3..).unwrap_or_default(),
        _ => return "other".into(),
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        r => r,
    };
    match rest {
        [resource, _name, sub, ..] => format!("{resource}/{sub}"),
        [resource, ..] => (*resource).to_string(),
        [] => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_paths_name_their_resource() {
        use super::resource_of;
        assert_eq!(
            resource_of("/apis/networking.k8s.io/v1/namespaces/a/networkpolicies/x"),
            "networkpolicies"
        );
        assert_eq!(
            resource_of(
                "/apis/tierflow.dev/v1alpha1/namespaces/a/appnetworks/shop/status?fieldManager=t"
            ),
            "appnetworks/status"
        );
        assert_eq!(
            resource_of("/apis/coordination.k8s.io/v1/namespaces/t/leases"),
            "leases"
        );
        assert_eq!(
            resource_of("/apis/projectcalico.org/v3/globalnetworkpolicies/g"),
            "globalnetworkpolicies"
        );
        assert_eq!(
            resource_of("/api/v1/namespaces/default/endpoints/kubernetes"),
            "endpoints"
        );
        assert_eq!(resource_of("/api/v1/namespaces"), "namespaces");
    }

    use super::*;

    #[test]
    fn metrics_register_and_encode_with_bounded_labels() {
        let m = Metrics::new().unwrap();
        m.observe::<()>("namespace", Instant::now(), &Ok(()));
        m.observe::<()>("namespace", Instant::now(), &Err(Error::MissingField("x")));
        m.cni.with_label_values(&["Calico", "Calico"]).set(1);
        let text = m.encode();
        assert!(
            text.contains(
                "tierflow_reconcile_total{controller=\"namespace\",result=\"success\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains(
            "tierflow_reconcile_errors_total{controller=\"namespace\",reason=\"MissingField\"} 1"
        ));
        assert!(text.contains("tierflow_cni_info{backend=\"Calico\",cni=\"Calico\"} 1"));
    }
}
