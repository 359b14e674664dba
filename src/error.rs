//! The operator's errors, each with a bounded `reason()` for metrics and conditions.

use crate::validate::InvalidSpec;

/// Everything that can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be (de)serialised.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// An object with the name tierflow wants exists and was not created by tierflow.
    #[error(
        "{kind} {namespace}/{name} exists and is not managed by tierflow; rename or delete it"
    )]
    Conflict {
        /// Kind.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The spec cannot be turned into policy.
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),
    /// An object lacked a field the API server always sets.
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// Bad configuration of the operator itself.
    #[error("configuration: {0}")]
    Config(String),
    /// A step of a reconcile failed on one object.
    #[error("{step} {object}: {source}")]
    At {
        /// The step (`apply`, `prune`, `write status`).
        step: &'static str,
        /// The object, as `apiVersion Kind namespace/name`.
        object: String,
        /// What went wrong.
        source: Box<Error>,
    },
}

impl Error {
    /// This error, saying which step failed on which object.
    pub fn at(self, step: &'static str, object: &str) -> Error {
        match self {
            // A name conflict already names its object.
            e @ (Error::Conflict { .. } | Error::At { .. }) => e,
            e => Error::At {
                step,
                object: object.to_string(),
                source: Box::new(e),
            },
        }
    }

    /// The error without the step and object around it.
    pub fn root(&self) -> &Error {
        match self {
            Error::At { source, .. } => source.root(),
            e => e,
        }
    }

    /// A short CamelCase reason from a fixed set (safe as a metric label and condition reason).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::At { source, .. } => source.reason(),
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "ApiConflict",
            Error::Kube(kube::Error::Api(s)) if s.code == 403 => "Forbidden",
            Error::Kube(kube::Error::Api(s)) if s.code == 404 => "NotFound",
            Error::Kube(kube::Error::Api(s)) if s.code == 422 => "Rejected",
            Error::Kube(kube::Error::Api(_)) => "ApiError",
            Error::Kube(_) => "ApiUnavailable",
            Error::Serialization(_) => "SerializationError",
            Error::Conflict { .. } => "NameConflict",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::MissingField(_) => "MissingField",
            Error::Config(_) => "ConfigError",
        }
    }
}

/// Result with the operator's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
