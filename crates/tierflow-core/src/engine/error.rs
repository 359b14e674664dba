//! Errors of the policy engine, each naming the document and the field that is wrong.

/// Why an input object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A field is missing, has the wrong type, or holds a value the API server would refuse.
    #[error("document {document} ({object}): {path}: {message}")]
    Field {
        /// 1-based position of the object in the input (items of a `List` share their list's).
        document: usize,
        /// `Kind namespace/name` of the object, as far as it could be read.
        object: String,
        /// Dotted field path, for example `spec.ingress[0].ports[1].port`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The apiVersion/kind pair is not one the engine reads.
    #[error(
        "document {document}: unsupported apiVersion/kind {api_version}/{kind} (the engine reads \
         v1 Namespace, Pod and List, networking.k8s.io/v1 NetworkPolicy, projectcalico.org/v3 \
         NetworkPolicy and GlobalNetworkPolicy (and their Staged variants), cilium.io/v2 \
         CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy)"
    )]
    UnknownKind {
        /// 1-based position of the object in the input.
        document: usize,
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
}
