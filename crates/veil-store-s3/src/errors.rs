//! Turning SDK errors into one clear line each.
//!
//! The SDK's own `Display` for an error is often just "service error" or "dispatch failure";
//! the cause is several `source()` levels down. Operators need one line that says what is
//! wrong ("cannot reach http://127.0.0.1:3900: connection refused"), so this module looks at
//! the HTTP status, the S3 error code and the I/O error underneath, and never prints a
//! `Debug` representation (which could span lines or carry request details).

use std::error::Error as StdError;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use veil_store::StoreError;

/// The HTTP status of a failed request, if a response arrived.
pub(crate) fn status<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|response| response.status().as_u16())
}

/// Whether the server answered with `code` as the S3 error code.
pub(crate) fn has_code<E: ProvideErrorMetadata>(err: &SdkError<E>, code: &str) -> bool {
    err.code() == Some(code)
}

/// Describes a failed request to `endpoint` as a [`StoreError`] with a one-line message.
///
/// Unreachable endpoints, timeouts, throttling and 5xx answers are
/// [`StoreError::Unavailable`] (retrying later may help); everything else is
/// [`StoreError::Other`].
pub(crate) fn describe<E>(err: &SdkError<E>, endpoint: &str, bucket: &str) -> StoreError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!("cannot reach {endpoint}: request timed out")),
        SdkError::DispatchFailure(failure) => {
            let Some(connector) = failure.as_connector_error() else {
                return StoreError::Unavailable(format!("cannot reach {endpoint}: {}", chain(err)));
            };
            if let Some(io) = find_io(connector) {
                return StoreError::Unavailable(format!("cannot reach {endpoint}: {}", io_text(io)));
            }
            if connector.is_timeout() {
                return StoreError::Unavailable(format!("cannot reach {endpoint}: connection timed out"));
            }
            if connector.is_io() {
                return StoreError::Unavailable(format!("cannot reach {endpoint}: {}", chain(connector)));
            }
            // Identity resolution and other client-side failures surface here too.
            StoreError::Other(format!("request to {endpoint} failed: {}", chain(connector)))
        }
        SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("unreadable response from {endpoint}: {}", chain(err)))
        }
        SdkError::ConstructionFailure(_) => {
            StoreError::Other(format!("cannot build a request for {endpoint}: {}", chain(err)))
        }
        _ => describe_status(err, endpoint, bucket),
    }
}

/// Describes a failed `HeadBucket`, which has no error body: the status alone tells.
pub(crate) fn describe_head_bucket(
    err: &SdkError<HeadBucketError>,
    endpoint: &str,
    bucket: &str,
    region: &str,
) -> StoreError {
    match status(err) {
        Some(404) => bucket_missing(endpoint, bucket),
        Some(301 | 400) => StoreError::Other(format!(
            "{endpoint} rejected bucket '{bucket}' with HTTP {}: check the region (signing with \
             '{region}') and whether the server needs path-style addressing",
            status(err).unwrap_or_default()
        )),
        _ => describe(err, endpoint, bucket),
    }
}

fn describe_status<E>(err: &SdkError<E>, endpoint: &str, bucket: &str) -> StoreError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let Some(status) = status(err) else {
        return StoreError::Other(format!("request to {endpoint} failed: {}", chain(err)));
    };
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!(" ({code}: {})", one_line(message)),
        (Some(code), None) => format!(" ({code})"),
        (None, Some(message)) => format!(" ({})", one_line(message)),
        (None, None) => String::new(),
    };
    match status {
        403 => StoreError::Other(format!(
            "access denied by {endpoint}: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the \
             key's permissions on bucket '{bucket}'{detail}"
        )),
        404 if has_code(err, "NoSuchBucket") => bucket_missing(endpoint, bucket),
        429 | 500..=599 => StoreError::Unavailable(format!("{endpoint} answered HTTP {status}{detail}")),
        _ => StoreError::Other(format!("{endpoint} answered HTTP {status}{detail}")),
    }
}

fn bucket_missing(endpoint: &str, bucket: &str) -> StoreError {
    StoreError::Other(format!("bucket '{bucket}' does not exist at {endpoint}"))
}

/// Prefixes the message of `err` with the operation and key it happened in.
pub(crate) fn in_op(op: &str, key: &str, err: StoreError) -> StoreError {
    match err {
        StoreError::Unavailable(message) => StoreError::Unavailable(format!("S3 {op} of {key:?}: {message}")),
        StoreError::Other(message) => StoreError::Other(format!("S3 {op} of {key:?}: {message}")),
        other => other,
    }
}

/// The first `std::io::Error` in the source chain of `err` (itself included).
fn find_io<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a std::io::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

fn io_text(io: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset".to_owned(),
        ErrorKind::TimedOut => "connection timed out".to_owned(),
        _ => one_line(&io.to_string()),
    }
}

/// `err: cause: cause ...` on one line, without repeating a cause that a level already
/// printed.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = one_line(&e.to_string());
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
