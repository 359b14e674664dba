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
}

impl Error {
    /// A short CamelCase reason from a fixed set (safe as a metric label and condition reason).
    pub fn reason(&self) -> &'static str {
        match self {
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
