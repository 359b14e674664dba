//! `/metrics`, `/healthz` (the process serves) and `/readyz` (every watch has synced and, with
//! leader election, a leader is known).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kube::ResourceExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::controller::Context;
use crate::core::names::BASELINE_NAME;
use crate::error::{Error, Result};
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::model::Coverage;

/// What the endpoints report from.
#[derive(Clone)]
pub struct State {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// True once every watch has synced.
    pub synced: watch::Receiver<bool>,
    /// Leadership, when leader election is on.
    pub leadership: Option<watch::Receiver<Leadership>>,
    /// The running operator's context, once caches exist (for gauges computed at scrape time).
    pub context: watch::Receiver<Option<Arc<Context>>>,
}

impl State {
    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        *self.synced.borrow()
            && self
                .leadership
                .as_ref()
                .is_none_or(|l| l.borrow().leader_known)
    }
}

/// Serves until the process ends.
pub async fn serve(addr: SocketAddr, state: State) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("listen on {addr}: {e}")))?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req.uri().path()).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Whether the API server answers now (1 s budget): during an API server or etcd outage the
/// caches are stale and nothing can be repaired, which `/readyz` must say.
async fn api_server_answers(state: &State) -> bool {
    let Some(ctx) = state.context.borrow().clone() else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            ctx.client.apiserver_version()
        )
        .await,
        Ok(Ok(_))
    )
}

async fn route(state: &State, path: &str) -> Response<Full<Bytes>> {
    let (code, body, content_type) = match path {
        "/healthz" => (StatusCode::OK, "ok\n".to_string(), "text/plain"),
        "/readyz" if state.ready() && api_server_answers(state).await => {
            (StatusCode::OK, "ok\n".to_string(), "text/plain")
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: caches not synced, no leader known, or the API server does not answer\n"
                .to_string(),
            "text/plain",
        ),
        "/metrics" => {
            if let Some(ctx) = state.context.borrow().clone() {
                refresh(&ctx, &state.metrics);
            }
            (
                StatusCode::OK,
                state.metrics.encode(),
                "text/plain; version=0.0.4",
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            "not found\n".to_string(),
            "text/plain",
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Gauges computed from the caches when scraped.
pub fn refresh(ctx: &Context, m: &Metrics) {
    m.policies.reset();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for kind in ctx.managed.kinds() {
        let objects = ctx.managed.list(kind);
        m.policies
            .with_label_values(&[crate::plan::backend_of(kind).as_str(), kind.kind()])
            .set(objects.len() as i64);
        if kind.namespaced() {
            covered.extend(
                objects
                    .iter()
                    .filter(|o| o.name == BASELINE_NAME)
                    .filter_map(|o| o.namespace.clone()),
            );
        }
    }
    // ClusterBaselines on Calico and Cilium cover namespaces with one cluster-wide object.
    let cluster = ctx.cluster();
    for plan in ctx.plan_cluster_baselines() {
        if plan.backend.is_none_or(crate::plan::per_namespace_backend) {
            continue;
        }
        for ns in ctx.namespaces.state() {
            if plan.coverage(&ns.name_any(), ns.labels(), &cluster) == Some(Coverage::Covered) {
                covered.insert(ns.name_any());
            }
        }
    }
    m.baseline_namespaces.set(covered.len() as i64);
    let d = ctx.detected();
    m.cni.reset();
    let backend = ctx.default_backend.unwrap_or(d.backend);
    m.cni
        .with_label_values(&[d.cni.as_str(), backend.as_str()])
        .set(1);
}
