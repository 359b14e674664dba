//! `--from-cluster`: the live objects the engine reads, through `kube::Client::try_default()`
//! (in-cluster config, else KUBECONFIG / `~/.kube/config`): Namespaces, Pods, NetworkPolicies,
//! and the Calico and Cilium policies the cluster serves (Calico's `Tier` objects with them). Calico is read through
//! `projectcalico.org/v3` when served, else through `crd.projectcalico.org/v1`.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ApiResource, DynamicObject, ListParams, TypeMeta};
use kube::core::GroupVersionKind;
use kube::discovery::Discovery;
use kube::{Api, Client, Resource};
use serde_json::Value;

use super::input::Input;
use super::CliError;
use crate::crd::{AppNetwork, ClusterBaseline};

fn cluster_error(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Cluster(format!("{what}: {e}"))
}

async fn typed<K>(client: &Client, out: &mut Vec<Value>) -> Result<(), CliError>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let api: Api<K> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| cluster_error(&format!("listing {}", K::plural(&())), e))?;
    for item in list.items {
        let mut v =
            serde_json::to_value(&item).map_err(|e| cluster_error("reading an object", e))?;
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                Value::from(K::api_version(&()).as_ref()),
            );
            m.insert("kind".into(), Value::from(K::kind(&()).as_ref()));
        }
        out.push(v);
    }
    Ok(())
}

async fn dynamic(client: &Client, ar: &ApiResource, out: &mut Vec<Value>) -> Result<(), CliError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| cluster_error(&format!("listing {}", ar.plural), e))?;
    for mut item in list.items {
        item.types = Some(TypeMeta {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
        });
        out.push(serde_json::to_value(&item).map_err(|e| cluster_error("reading an object", e))?);
    }
    Ok(())
}

/// Reads the live objects (see the module documentation).
pub async fn live_objects(client: Client) -> Result<Vec<Value>, CliError> {
    let mut out = Vec::new();
    typed::<Namespace>(&client, &mut out).await?;
    typed::<Pod>(&client, &mut out).await?;
    typed::<NetworkPolicy>(&client, &mut out).await?;
    let discovery = Discovery::new(client.clone())
        .filter(&[
            "projectcalico.org",
            "crd.projectcalico.org",
            "cilium.io",
            "policy.networking.k8s.io",
        ])
        .run()
        .await
        .map_err(|e| cluster_error("discovering the served APIs", e))?;
    let calico_v3 = discovery.has_group("projectcalico.org");
    let wanted: &[(&str, &str, &[&str])] = &[
        (
            if calico_v3 {
                "projectcalico.org"
            } else {
                "crd.projectcalico.org"
            },
            if calico_v3 { "v3" } else { "v1" },
            &[
                "NetworkPolicy",
                "GlobalNetworkPolicy",
                "StagedNetworkPolicy",
                "StagedGlobalNetworkPolicy",
                "Tier",
            ],
        ),
        (
            "cilium.io",
            "v2",
            &["CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"],
        ),
        (
            "policy.networking.k8s.io",
            "v1alpha2",
            &["ClusterNetworkPolicy"],
        ),
    ];
    for (group, version, kinds) in wanted {
        for kind in *kinds {
            if let Some((ar, _)) =
                discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
            {
                dynamic(&client, &ar, &mut out).await?;
            }
        }
    }
    Ok(out)
}

/// Connects with the default configuration and reads the live objects into an [`Input`]
/// (one document per object, in a source called `cluster`).
pub async fn read_cluster() -> Result<Input, CliError> {
    let objects = live_objects(connect().await?).await?;
    let mut input = Input::default();
    input.sources.push(super::input::Source {
        name: "cluster".to_string(),
        text: String::new(),
    });
    input.documents = objects
        .into_iter()
        .enumerate()
        .map(|(i, value)| super::input::Document {
            source: 0,
            index: i + 1,
            value,
        })
        .collect();
    Ok(input)
}

async fn connect() -> Result<Client, CliError> {
    Client::try_default().await.map_err(|e| {
        cluster_error(
            "connecting (in-cluster config, KUBECONFIG or ~/.kube/config)",
            e,
        )
    })
}

/// The live AppNetworks and ClusterBaselines (none when their CRDs are not installed).
pub async fn live_intent(client: Client) -> Result<Vec<Value>, CliError> {
    let mut out = Vec::new();
    for result in [
        typed::<AppNetwork>(&client, &mut out).await,
        typed::<ClusterBaseline>(&client, &mut out).await,
    ] {
        match result {
            // Not installed: nothing to read.
            Err(CliError::Cluster(m)) if m.contains("404") || m.contains("NotFound") => {}
            other => other?,
        }
    }
    Ok(out)
}

/// [`read_cluster`] plus the live AppNetworks and ClusterBaselines (what `verify`, `explain`
/// and `why` read with `--from-cluster`), as one YAML text, so that errors in a live
/// AppNetwork name its document and field as they would in a file.
pub async fn read_cluster_with_intent() -> Result<Input, CliError> {
    let client = connect().await?;
    let mut objects = live_intent(client.clone()).await?;
    objects.extend(live_objects(client).await?);
    let mut text = String::new();
    for o in &objects {
        text.push_str("---\n");
        text.push_str(
            &serde_yaml::to_string(o).map_err(|e| cluster_error("writing an object as YAML", e))?,
        );
    }
    // The first `---` opens the first document: no empty one before it.
    super::input::parse("cluster", text.strip_prefix("---\n").unwrap_or(&text))
}

/// The identity label filter of the cluster's Cilium agent: the `labels` key of
/// `kube-system/cilium-config` (`None` when there is no such ConfigMap or key).
pub async fn cilium_identity() -> Result<Option<crate::engine::CiliumIdentityFilter>, CliError> {
    use crate::plan::features;
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(connect().await?, features::CILIUM_CONFIG_NAMESPACE);
    let cm = api
        .get_opt(features::CILIUM_CONFIG)
        .await
        .map_err(|e| cluster_error("reading kube-system/cilium-config", e))?;
    let Some(labels) = cm.and_then(|cm| cm.data?.remove(features::LABELS)) else {
        return Ok(None);
    };
    crate::engine::CiliumIdentityFilter::from_labels(&labels)
        .map(Some)
        .map_err(|e| CliError::Cluster(format!("kube-system/cilium-config labels: {e}")))
}
