//! A readable, typed wrapper for AWS SDK errors: the operation, the service's error code and its message.
//! Callers decide by [`AwsError::class`] (throttling, not found) — by code, never by message text.

use crate::aws::{ErrorClass, classify_code};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {detail}")]
pub struct AwsError {
    /// The API operation (`RunInstances`).
    pub op: &'static str,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// Code and message, or the transport error.
    pub detail: String,
}

impl AwsError {
    /// Wraps any SDK error.
    pub fn new<E>(op: &'static str, err: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error,
    {
        let code = err.code().map(str::to_string);
        let detail = match (err.code(), err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            // No AWS error code: a transport failure or an unparseable answer. The full context can be
            // kilobytes of response dump; the first line says what happened.
            _ => {
                let full = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
                let head = full.lines().next().unwrap_or_default();
                let first: String = head
                    .split(" (")
                    .next()
                    .unwrap_or(head)
                    .chars()
                    .take(240)
                    .collect();
                first
            }
        };
        AwsError { op, code, detail }
    }

    /// Throttled, not found, or other.
    pub fn class(&self) -> ErrorClass {
        classify_code(self.code.as_deref())
    }

    /// True when the resource asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }

    /// True when AWS answered with an error that means the call did nothing (a client error, or
    /// throttling): not a transport failure or a server error, after which the call may have taken effect.
    pub fn is_refusal(&self) -> bool {
        match self.code.as_deref() {
            None => false,
            Some(c) => !matches!(
                c,
                "InternalError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "Unavailable"
                    | "RequestTimeout"
            ),
        }
    }

    /// True when the error code is exactly `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// `.aws("Op")?` on SDK results.
pub trait AwsResultExt<T> {
    /// Maps the error into an [`AwsError`] naming the operation.
    fn aws(self, op: &'static str) -> Result<T, AwsError>;
}

impl<T, E> AwsResultExt<T> for Result<T, E>
where
    E: ProvideErrorMetadata + std::error::Error,
{
    fn aws(self, op: &'static str) -> Result<T, AwsError> {
        self.map_err(|e| AwsError::new(op, e))
    }
}

impl From<AwsError> for crate::poll::PollError {
    fn from(e: AwsError) -> Self {
        match e.class() {
            ErrorClass::Throttled => crate::poll::PollError::Throttled,
            ErrorClass::NotFound => crate::poll::PollError::NotFound,
            ErrorClass::Other => crate::poll::PollError::Fatal(Box::new(e)),
        }
    }
}
