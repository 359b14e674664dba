//! The planner: from the inputs (AppNetworks, ClusterBaselines, namespaces, what the cluster
//! serves) to every object that should exist. The operator and the CLI call the same functions.

use crate::model::{AppModel, Backend, NamespaceBaseline};
use crate::render::{self, Env, Limitation, Object};

/// The objects of ONE AppNetwork on `backend`: its per-tier objects, then its namespace
/// baseline (from its own wish alone), and what the backend could not express.
pub fn app_objects(
    model: &AppModel,
    backend: Backend,
    env: &Env,
) -> (Vec<Object>, Vec<Limitation>) {
    let rendered = render::tier_objects(model, backend, None, env);
    let mut objects = rendered.objects;
    let baseline = NamespaceBaseline::merge([&model.baseline]);
    if let Some(b) =
        render::namespace_baseline(&model.namespace, &baseline, backend, model.audit, &[], env)
    {
        objects.push(b);
    }
    (objects, rendered.limitations)
}
