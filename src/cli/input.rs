//! Reading input files: YAML or JSON, one or more documents each (`---`), `-` for standard
//! input. Every error names the file, the 1-based document number and, where there is one, the
//! field path.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{CliError, InputError, Problem};
use crate::crd::{AppNetwork, ClusterBaseline};
use crate::engine::EngineError;
use crate::model::{AppModel, ClusterBaselineModel};
use crate::validate;

/// One input file, as read.
#[derive(Clone, Debug)]
pub struct Source {
    /// How the file is named in messages (`<stdin>` for `-`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// One document of an input file.
#[derive(Clone, Debug)]
pub struct Document {
    /// Index of its file in [`Input::sources`].
    pub source: usize,
    /// 1-based position in its file (empty documents count).
    pub index: usize,
    /// The document as JSON (`null` for an empty document).
    pub value: Value,
}

impl Document {
    /// `apiVersion` and `kind`, empty when absent.
    pub fn type_meta(&self) -> (&str, &str) {
        let s = |k: &str| {
            self.value
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        (s("apiVersion"), s("kind"))
    }

    /// `Kind namespace/name` (or `Kind name`) as far as it can be read.
    pub fn describe(&self) -> Option<String> {
        let (_, kind) = self.type_meta();
        if kind.is_empty() {
            return None;
        }
        let meta = self.value.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
        let ns = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str);
        Some(match (ns, name) {
            (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
            (None, Some(n)) => format!("{kind} {n}"),
            _ => kind.to_string(),
        })
    }

    /// Whether this is a `v1` Pod (or a `v1` List holding one).
    pub fn holds_pods(&self) -> bool {
        fn pods(v: &Value) -> bool {
            match (
                v.get("apiVersion").and_then(Value::as_str),
                v.get("kind").and_then(Value::as_str),
            ) {
                (Some("v1"), Some("Pod")) => true,
                (_, Some(k)) if k.ends_with("List") => v
                    .get("items")
                    .and_then(Value::as_array)
                    .is_some_and(|items| items.iter().any(pods)),
                _ => false,
            }
        }
        pods(&self.value)
    }
}

/// Every document of every input file, in order.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// The files.
    pub sources: Vec<Source>,
    /// Their documents, file by file.
    pub documents: Vec<Document>,
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads one file (`-` is standard input): its display name and its text.
pub fn read_text(path: &Path) -> Result<(String, String), CliError> {
    let name = display_name(path);
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::Read {
        file: name.clone(),
        message: e.to_string(),
    })?;
    Ok((name, text))
}

/// Reads and parses the files (`-` is standard input).
pub fn read_files(paths: &[PathBuf]) -> Result<Input, CliError> {
    let mut input = Input::default();
    for path in paths {
        let (name, text) = read_text(path)?;
        input.add(name, text)?;
    }
    Ok(input)
}

/// Parses one file's text (for tests and callers that have the text already).
pub fn parse(name: &str, text: &str) -> Result<Input, CliError> {
    let mut input = Input::default();
    input.add(name.to_string(), text.to_string())?;
    Ok(input)
}

impl Input {
    /// Adds a file and its documents.
    pub fn add(&mut self, name: String, text: String) -> Result<(), CliError> {
        let source = self.sources.len();
        let mut documents = Vec::new();
        for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let index = i + 1;
            let yaml = serde_yaml::Value::deserialize(doc).map_err(|e| InputError {
                file: name.clone(),
                document: index,
                object: None,
                problems: vec![Problem {
                    path: None,
                    message: format!("not YAML or JSON: {e}"),
                }],
            })?;
            let value = serde_json::to_value(&yaml).map_err(|e| InputError {
                file: name.clone(),
                document: index,
                object: None,
                problems: vec![Problem {
                    path: None,
                    message: format!("cannot be read as JSON: {e}"),
                }],
            })?;
            documents.push(Document {
                source,
                index,
                value,
            });
        }
        self.sources.push(Source { name, text });
        self.documents.extend(documents);
        Ok(())
    }

    /// Every document's value, `null` for empty ones, in order (what the engine reads; its
    /// 1-based document numbers index this list).
    pub fn values(&self) -> Vec<Value> {
        self.documents.iter().map(|d| d.value.clone()).collect()
    }

    /// Whether any document holds a Pod.
    pub fn holds_pods(&self) -> bool {
        self.documents.iter().any(Document::holds_pods)
    }

    /// The name of a document's file.
    pub fn file_of(&self, doc: &Document) -> &str {
        self.sources
            .get(doc.source)
            .map_or("<input>", |s| s.name.as_str())
    }

    /// An error about a document.
    pub fn error(&self, doc: &Document, path: Option<String>, message: String) -> InputError {
        InputError {
            file: self.file_of(doc).to_string(),
            document: doc.index,
            object: doc.describe(),
            problems: vec![Problem { path, message }],
        }
    }

    /// An engine error located in its file: the engine numbers documents over the whole input
    /// ([`values`](Self::values)), this names the file and the document within it.
    pub fn locate(&self, e: EngineError) -> InputError {
        let (document, object, path, message) = match e {
            EngineError::Field {
                document,
                object,
                path,
                message,
            } => (document, Some(object), Some(path), message),
            EngineError::UnknownKind {
                document,
                api_version,
                kind,
            } => (
                document,
                None,
                None,
                format!(
                    "unsupported apiVersion/kind {api_version}/{kind} (this command reads v1 \
                     Namespace, Pod and List, networking.k8s.io/v1 NetworkPolicy, \
                     projectcalico.org/v3 NetworkPolicy and GlobalNetworkPolicy (and their Staged \
                     variants) and Tier, cilium.io/v2 CiliumNetworkPolicy and \
                     CiliumClusterwideNetworkPolicy, policy.networking.k8s.io/v1alpha2 \
                     ClusterNetworkPolicy)"
                ),
            ),
        };
        match document.checked_sub(1).and_then(|i| self.documents.get(i)) {
            Some(doc) => InputError {
                file: self.file_of(doc).to_string(),
                document: doc.index,
                object: object.or_else(|| doc.describe()),
                problems: vec![Problem { path, message }],
            },
            None => InputError {
                file: "<input>".to_string(),
                document,
                object,
                problems: vec![Problem { path, message }],
            },
        }
    }

    /// Deserialises a document as `T` straight from its text, so that the error carries
    /// serde's field path and the line and column.
    pub fn typed<T: for<'de> Deserialize<'de>>(&self, doc: &Document) -> Result<T, InputError> {
        let text = self.sources.get(doc.source).map_or("", |s| s.text.as_str());
        let Some(de) = serde_yaml::Deserializer::from_str(text).nth(doc.index - 1) else {
            return Err(self.error(doc, None, "document not found".to_string()));
        };
        T::deserialize(de).map_err(|e| self.error(doc, None, e.to_string()))
    }

    /// Reads and validates an AppNetwork document (namespace `default` when it names none).
    pub fn app_network(&self, doc: &Document) -> Result<AppModel, InputError> {
        let app: AppNetwork = self.typed(doc)?;
        let name = app.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(self.error(
                doc,
                Some("metadata.name".to_string()),
                "missing".to_string(),
            ));
        }
        let ns = app
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        validate::app_network(&name, &ns, &app.spec).map_err(|e| InputError {
            file: self.file_of(doc).to_string(),
            document: doc.index,
            object: Some(format!("AppNetwork {ns}/{name}")),
            problems: e
                .0
                .into_iter()
                .map(|f| Problem {
                    path: Some(f.field),
                    message: f.message,
                })
                .collect(),
        })
    }

    /// Reads and validates a ClusterBaseline document: its name and model.
    pub fn cluster_baseline(
        &self,
        doc: &Document,
    ) -> Result<(String, ClusterBaselineModel), InputError> {
        let cb: ClusterBaseline = self.typed(doc)?;
        let name = cb.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(self.error(
                doc,
                Some("metadata.name".to_string()),
                "missing".to_string(),
            ));
        }
        let model = validate::cluster_baseline(&cb.spec).map_err(|e| InputError {
            file: self.file_of(doc).to_string(),
            document: doc.index,
            object: Some(format!("ClusterBaseline {name}")),
            problems: e
                .0
                .into_iter()
                .map(|f| Problem {
                    path: Some(f.field),
                    message: f.message,
                })
                .collect(),
        })?;
        Ok((name, model))
    }

    /// Every AppNetwork of the input, validated, and a description of each ClusterBaseline
    /// document passed over (Namespace documents are passed over silently). Other kinds are an
    /// error naming them.
    pub fn app_networks(&self) -> Result<(Vec<AppModel>, Vec<String>), InputError> {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for doc in &self.documents {
            if doc.value.is_null() {
                continue;
            }
            match doc.type_meta() {
                ("tierflow.dev/v1alpha1", "AppNetwork") => out.push(self.app_network(doc)?),
                ("v1", "Namespace") => {}
                ("tierflow.dev/v1alpha1", "ClusterBaseline") => skipped.push(format!(
                    "{}: document {} ({})",
                    self.file_of(doc),
                    doc.index,
                    doc.describe().unwrap_or_default()
                )),
                (api_version, kind) => {
                    return Err(self.error(
                        doc,
                        None,
                        format!(
                            "expected a tierflow.dev/v1alpha1 AppNetwork, found {}",
                            type_text(api_version, kind)
                        ),
                    ))
                }
            }
        }
        Ok((out, skipped))
    }
}

/// `apiVersion/kind` for messages.
pub(crate) fn type_text(api_version: &str, kind: &str) -> String {
    match (api_version, kind) {
        ("", "") => "a document without apiVersion and kind".to_string(),
        (a, k) => format!("{a}/{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
---
apiVersion: tierflow.dev/v1alpha1
kind: AppNetwork
metadata: {name: shop, namespace: shop}
spec:
  tiers:
    - {name: web, selector: {matchLabels: {app: web}}, ports: [{port: http}]}
";

    #[test]
    fn empty_documents_count_for_document_numbers() {
        let input = parse("x.yaml", BROKEN).unwrap();
        assert_eq!(input.documents.len(), 3);
        assert!(input.documents[1].value.is_null());
        assert_eq!(input.documents[2].index, 3);
    }

    #[test]
    fn app_network_type_errors_carry_the_field_path() {
        let input = parse("x.yaml", BROKEN).unwrap();
        let e = input.app_network(&input.documents[2]).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(
                "x.yaml: document 3 (AppNetwork shop/shop): spec.tiers[0].ports[0].port"
            ),
            "{text}"
        );
    }

    #[test]
    fn validation_errors_list_every_field() {
        let input = parse(
            "y.yaml",
            "apiVersion: tierflow.dev/v1alpha1\nkind: AppNetwork\nmetadata: {name: a}\nspec:\n  tiers: [{name: Web, selector: {}}]\n",
        )
        .unwrap();
        let e = input.app_network(&input.documents[0]).unwrap_err();
        assert_eq!(e.object.as_deref(), Some("AppNetwork default/a"));
        let paths: Vec<_> = e.problems.iter().filter_map(|p| p.path.clone()).collect();
        assert!(
            paths.contains(&"spec.tiers[0].name".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"spec.tiers[0].selector".to_string()),
            "{paths:?}"
        );
    }

    #[test]
    fn engine_errors_are_located_in_their_file() {
        let mut input = parse(
            "a.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        )
        .unwrap();
        input
            .add(
                "b.yaml".into(),
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}\n".into(),
            )
            .unwrap();
        let err = crate::engine::Scenario::from_values(input.values()).unwrap_err();
        let e = input.locate(err);
        assert_eq!(e.file, "b.yaml");
        assert_eq!(e.document, 1);
        assert_eq!(
            e.problems[0].path.as_deref(),
            Some("spec.ingress[0].ports[0].port")
        );
    }
}
