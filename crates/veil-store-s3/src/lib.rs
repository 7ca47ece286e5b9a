//! An S3-compatible object store behind [`veil_store::Store`].
//!
//! The relay keeps ciphertext chunks and small metadata objects in a bucket (AWS S3,
//! Garage, MinIO, Ceph, R2, ...). [`S3Store::connect`] builds an `aws-sdk-s3` client from an
//! [`S3Config`] and checks, before the relay starts serving, that the endpoint answers, the
//! credentials work, the bucket exists and an object can be written, read back and deleted.
//! Each failure is one line naming the problem:
//!
//! - `bucket 'veil' does not exist at http://127.0.0.1:3900`
//! - `access denied by http://127.0.0.1:3900: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY ...`
//! - `cannot reach http://127.0.0.1:3900: connection refused`
//!
//! All stores share the conformance suite in [`veil_store::conformance`]; this one passes it
//! against Garage 2.5.0 (see `tests/conformance.rs`).
//!
//! # Keys
//!
//! A store key `k` is the S3 object `<prefix>k`, where the prefix ([`S3Config::prefix`],
//! normalised to end in `/` when not empty) lets several deployments share a bucket.
//! [`Store::list`] returns keys without the prefix and skips objects whose remainder is not
//! a valid store key (such as the `.veil-probe-*` objects of the startup check).
//!
//! # Transfers and memory
//!
//! Objects are chunk-sized (at most about 17 MiB) and the [`Store`] trait hands whole
//! objects or byte ranges around as [`Bytes`], so a put is one `PutObject` with the
//! in-memory body and a get is one `GetObject` whose body streams into a buffer sized from
//! `Content-Length`. A file is never in memory as a whole: the relay moves it chunk by
//! chunk. Multipart upload does not pay at this size: it costs three requests more per
//! object (create, complete, and an abort on failure), its 5 MiB minimum part size leaves at
//! most three parts, and it needs cleanup of abandoned uploads. Ranged reads
//! ([`Store::get_range`]) send a `Range` header, so the relay can serve part of a chunk
//! without fetching all of it.
//!
//! # Checksums
//!
//! aws-sdk-s3's default (since early 2025) is `RequestChecksumCalculation::WhenSupported`:
//! every `PutObject` carries a CRC32 (`x-amz-sdk-checksum-algorithm: CRC32`). For an
//! in-memory body it is an `x-amz-checksum-crc32` header; for a streaming body (a file, a
//! channel) the SDK switches to a signed `aws-chunked` payload (`Content-Encoding:
//! aws-chunked`, `x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`,
//! `x-amz-decoded-content-length`, `x-amz-trailer: x-amz-checksum-crc32`) with the checksum
//! in a trailer after the last chunk. Many S3-compatible servers handle neither: Garage
//! 2.5.0 rejects the signed aws-chunked trailer with `400 InvalidRequest`. The default
//! response mode (`WhenSupported`) also validates checksums that servers return, which
//! some compute differently. This store sets both to `WhenRequired`: a `PutObject` is then
//! a plain body whose SHA-256 is signed (`x-amz-content-sha256`) with no checksum headers,
//! and only operations whose API demands a checksum carry one (`DeleteObjects` sends
//! `x-amz-checksum-crc32`; if a server rejects that, `delete_prefix` falls back to single
//! deletes). The headers are pinned by `tests/checksum_headers.rs`. The data itself is
//! authenticated ciphertext: the receiver detects any corruption.
//!
//! # Retries and timeouts
//!
//! The SDK's standard retry mode retries throttling (`SlowDown`, 429, 503), 5xx answers,
//! timeouts and connection errors with exponential backoff and jitter, reconnecting after
//! transient errors; [`S3Config::max_attempts`] bounds the attempts (4 by default).
//! Connecting times out after 3 s and each attempt after 30 s; the SDK's stalled-stream
//! protection additionally fails a transfer whose body stops moving.
//!
//! # Concurrent writers and conditional requests
//!
//! Every put is atomic on S3: readers see the old object or the new one. [`Store::put_new`]
//! (create only if absent) checks with `HeadObject` first (so an existing object costs no
//! upload) and then writes with `If-None-Match: *`; a `412 Precondition Failed` means
//! another writer won and gives `Ok(false)`. On servers that implement conditional writes
//! (AWS S3 since 2024, MinIO, Ceph, R2) this is safe across any number of relay instances.
//!
//! **Some servers silently ignore `If-None-Match`** and overwrite (Garage 2.5.0 answers
//! `200 OK`). [`S3Store::connect`] detects this with its probe object and then
//! [`S3Store::conditional_writes`] is `false`. `put_new` is then serialised per key within
//! one store instance (so racers inside one relay process still get exactly one winner), but
//! across instances it is **best effort**: two instances racing within one round trip may
//! both see "absent" and both write, the later body winning. The relay's correctness does
//! not depend on `put_new` across instances: every object it writes concurrently lives under
//! a key with a random component (transfer ids are random) and is written once with the
//! same meaning, so the worst case is a duplicate write of an equivalent object. The store
//! uses no `If-Match`: the [`Store`] trait has no compare-and-swap operation.
//!
//! # Durability
//!
//! A put returns when the server acknowledged it. Whether that survives a power loss is the
//! server's promise: AWS S3 and R2 replicate before acknowledging; a Garage node needs
//! `data_fsync = true` and `metadata_fsync = true` in `garage.toml` for it.
//!
//! # Credentials
//!
//! [`S3Config::credentials`] takes an explicit key; without one the standard AWS chain is
//! used: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`), then the
//! profile (`AWS_PROFILE` or [`S3Config::profile`], `~/.aws/credentials` and
//! `~/.aws/config`), web identity tokens and container or instance metadata. SSO profiles
//! and `credential_process` are not compiled in.
//!
//! # TLS
//!
//! HTTPS uses rustls with the *ring* provider (the same crypto stack as the relay's QUIC
//! side) and the system's root certificates; no OpenSSL and no aws-lc.
#![forbid(unsafe_code)]

mod errors;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, ProvideCredentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, SharedHttpClient,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::{Bytes, BytesMut};
use veil_store::{Store, StoreError, validate_key, validate_prefix};

use crate::errors::{describe, describe_head_bucket, has_code, in_op, status};

/// Where and how to reach the bucket.
///
/// ```
/// let mut cfg = veil_store_s3::S3Config::new("veil-chunks");
/// cfg.endpoint = Some("http://127.0.0.1:3900".into());
/// cfg.region = "garage".into();
/// cfg.path_style = true;
/// cfg.prefix = "relay-1/".into();
/// ```
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Bucket name. It must exist; the store never creates buckets.
    pub bucket: String,
    /// Endpoint URL such as `http://127.0.0.1:3900`; `None` for AWS S3 itself.
    pub endpoint: Option<String>,
    /// Region the requests are signed for. For Garage it must equal `s3_region` in
    /// `garage.toml`.
    pub region: String,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`) instead of virtual-hosted style
    /// (`BUCKET.ENDPOINT/KEY`). Most self-hosted servers need it.
    pub path_style: bool,
    /// Prefix of every object name; empty, or normalised to end with `/`. Must be a valid
    /// store prefix (see [`veil_store::validate_prefix`]).
    pub prefix: String,
    /// An explicit access key; `None` uses the standard AWS environment and profile chain.
    pub credentials: Option<S3Credentials>,
    /// Profile to read when `credentials` is `None` (default: `AWS_PROFILE`, else
    /// `default`).
    pub profile: Option<String>,
    /// Time limit for opening a connection.
    pub connect_timeout: Duration,
    /// Time limit for one attempt of a request, body included.
    pub attempt_timeout: Duration,
    /// Attempts per request, the first included (throttling, 5xx, timeouts and connection
    /// errors are retried with backoff).
    pub max_attempts: u32,
}

impl S3Config {
    /// A configuration for `bucket` on AWS S3 in `us-east-1`, virtual-hosted style, no
    /// prefix, credentials from the environment, 3 s connect and 30 s attempt timeouts, 4
    /// attempts.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            path_style: false,
            prefix: String::new(),
            credentials: None,
            profile: None,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(30),
            max_attempts: 4,
        }
    }

    /// The endpoint as shown in messages: the configured URL, or AWS's regional one.
    pub fn endpoint_display(&self) -> String {
        match &self.endpoint {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

/// An explicit S3 access key. `Debug` never shows the secret.
#[derive(Clone)]
pub struct S3Credentials {
    /// Access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// Secret access key (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Keys per `DeleteObjects` request (the S3 maximum).
const DELETE_BATCH: usize = 1000;

/// Single deletes in flight when batch delete is unavailable.
const DELETE_PARALLEL: usize = 16;

/// Tries of a conditional put that meets `409 ConditionalRequestConflict`.
const PUT_NEW_TRIES: usize = 4;

/// A [`Store`] on an S3-compatible bucket. Cheap to clone (all clones share one client).
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
    region: String,
    /// The server honours `If-None-Match: *` (found by the startup probe).
    conditional_writes: bool,
    /// `DeleteObjects` works; cleared on the first rejection.
    batch_delete: AtomicBool,
    /// Per-key locks serialising `put_new` when the server ignores `If-None-Match`.
    put_new_locks: KeyLocks,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.inner.bucket)
            .field("prefix", &self.inner.prefix)
            .field("endpoint", &self.inner.endpoint)
            .field("region", &self.inner.region)
            .field("conditional_writes", &self.inner.conditional_writes)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client and runs the startup check: `HeadBucket`, then a probe object
    /// under the prefix that is written, written again with `If-None-Match: *` (to learn
    /// whether the server honours conditional writes), read back and deleted.
    ///
    /// # Errors
    ///
    /// One line per problem: [`StoreError::Unavailable`] when the endpoint cannot be
    /// reached or fails (`cannot reach ENDPOINT: connection refused`), and
    /// [`StoreError::Other`] for a bad configuration (`bucket 'x' does not exist at
    /// ENDPOINT`, `access denied by ENDPOINT: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
    /// ...`, a wrong region, no credentials, an invalid prefix or endpoint).
    pub async fn connect(cfg: S3Config) -> Result<S3Store, StoreError> {
        let prefix = normalise_prefix(&cfg.prefix)?;
        let endpoint = cfg.endpoint_display();
        let client = build_client(&cfg).await?;
        let mut inner = Inner {
            client,
            bucket: cfg.bucket.clone(),
            prefix,
            endpoint,
            region: cfg.region.clone(),
            conditional_writes: false,
            batch_delete: AtomicBool::new(true),
            put_new_locks: KeyLocks::default(),
        };
        inner.head_bucket().await?;
        inner.conditional_writes = inner.probe().await?;
        if inner.conditional_writes {
            tracing::info!(bucket = %inner.bucket, endpoint = %inner.endpoint, "S3 store ready");
        } else {
            tracing::warn!(
                bucket = %inner.bucket,
                endpoint = %inner.endpoint,
                "S3 store ready, but the server ignores If-None-Match: create-only writes are \
                 atomic within this relay instance only"
            );
        }
        Ok(S3Store { inner: Arc::new(inner) })
    }

    /// Whether the server honours `If-None-Match: *`, so that [`Store::put_new`] is atomic
    /// across relay instances (see the crate docs).
    pub fn conditional_writes(&self) -> bool {
        self.inner.conditional_writes
    }

    /// Whether `delete_prefix` still uses batch `DeleteObjects` (false after the server
    /// rejected it once; single deletes are used from then on).
    pub fn batch_delete(&self) -> bool {
        self.inner.batch_delete.load(Ordering::Relaxed)
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The normalised object-name prefix (empty or ending with `/`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The endpoint as shown in messages.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }
}

/// Empty stays empty; anything else must be a valid store prefix and gets a trailing `/`.
fn normalise_prefix(prefix: &str) -> Result<String, StoreError> {
    if prefix.is_empty() {
        return Ok(String::new());
    }
    validate_prefix(prefix).map_err(|e| StoreError::Other(format!("invalid S3 key prefix: {e}")))?;
    if prefix.ends_with('/') { Ok(prefix.to_owned()) } else { Ok(format!("{prefix}/")) }
}

/// The HTTP client: hyper with rustls on the *ring* provider.
pub(crate) fn http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// Builds the SDK client for `cfg` (no network traffic unless credentials come from the
/// default chain, which is resolved once here so that a missing key fails at startup).
pub(crate) async fn build_client(cfg: &S3Config) -> Result<Client, StoreError> {
    if cfg.bucket.is_empty() {
        return Err(StoreError::Other("no S3 bucket configured".to_owned()));
    }
    if cfg.region.is_empty() {
        return Err(StoreError::Other("no S3 region configured".to_owned()));
    }
    if let Some(url) = &cfg.endpoint
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(StoreError::Other(format!("S3 endpoint '{url}' must start with http:// or https://")));
    }
    let http = http_client();
    let credentials = match &cfg.credentials {
        Some(key) => SharedCredentialsProvider::new(Credentials::new(
            &key.access_key_id,
            &key.secret_access_key,
            None,
            None,
            "veil-config",
        )),
        None => default_credentials(cfg, http.clone()).await?,
    };
    let retry = RetryConfig::standard()
        .with_max_attempts(cfg.max_attempts.max(1))
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(cfg.connect_timeout)
        .operation_attempt_timeout(cfg.attempt_timeout)
        .build();
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(credentials)
        .region(Region::new(cfg.region.clone()))
        .force_path_style(cfg.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(url) = &cfg.endpoint {
        builder = builder.endpoint_url(url.trim_end_matches('/'));
    }
    Ok(Client::from_conf(builder.build()))
}

/// The standard AWS chain (environment, profile, web identity, container, instance
/// metadata), checked once.
async fn default_credentials(cfg: &S3Config, http: SharedHttpClient) -> Result<SharedCredentialsProvider, StoreError> {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(http).region(Region::new(cfg.region.clone()));
    if let Some(profile) = &cfg.profile {
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    let Some(provider) = sdk.credentials_provider() else {
        return Err(no_credentials("no credential provider"));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(provider),
        Err(e) => Err(no_credentials(&errors::chain(&e))),
    }
}

fn no_credentials(why: &str) -> StoreError {
    StoreError::Other(format!("no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE ({why})"))
}

impl Inner {
    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn fail<E>(&self, op: &str, key: &str, err: &aws_sdk_s3::error::SdkError<E>) -> StoreError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        in_op(op, key, describe(err, &self.endpoint, &self.bucket))
    }

    /// `HeadBucket`, failures as one line without an operation prefix.
    async fn head_bucket(&self) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(describe_head_bucket(&e, &self.endpoint, &self.bucket, &self.region)),
        }
    }

    /// Writes, conditionally rewrites, reads back and deletes a probe object. Returns
    /// whether the server honoured `If-None-Match: *`.
    async fn probe(&self) -> Result<bool, StoreError> {
        let key = self.full_key(&format!(".veil-probe-{}", random_hex(8)?));
        let body = Bytes::from(format!("veil storage probe {}", random_hex(8)?));
        let probe = |err: StoreError| match err {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("startup probe: {m}")),
            StoreError::Other(m) => StoreError::Other(format!("startup probe: {m}")),
            other => other,
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .map_err(|e| probe(describe(&e, &self.endpoint, &self.bucket)))?;
        let conditional = match self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
        {
            Ok(_) => false,
            Err(e) if matches!(status(&e), Some(412 | 409)) => true,
            // Servers that know the header but not the feature may refuse it outright.
            Err(e) if matches!(status(&e), Some(400 | 501)) => false,
            Err(e) => return Err(probe(describe(&e, &self.endpoint, &self.bucket))),
        };
        let read = self.get_object(&key, None).await.map_err(probe)?;
        if read.as_ref().map(|got| &got.body) != Some(&body) {
            return Err(StoreError::Other(format!(
                "startup probe: object written to bucket '{}' at {} did not read back intact",
                self.bucket, self.endpoint
            )));
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| probe(describe(&e, &self.endpoint, &self.bucket)))?;
        Ok(conditional)
    }

    /// `GetObject` of a full object name, optionally ranged. `None` if missing; a
    /// `416 Range Not Satisfiable` is returned as `Ok(Some(Got { unsatisfiable: true }))`.
    async fn get_object(&self, full: &str, range: Option<String>) -> Result<Option<Got>, StoreError> {
        let request = self.client.get_object().bucket(&self.bucket).key(full).set_range(range);
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) if status(&e) == Some(404) && !has_code(&e, "NoSuchBucket") => return Ok(None),
            Err(e) if status(&e) == Some(416) => {
                return Ok(Some(Got { body: Bytes::new(), partial: false, unsatisfiable: true }));
            }
            Err(e) => return Err(describe(&e, &self.endpoint, &self.bucket)),
        };
        let partial = out.content_range().is_some();
        let expected = out.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        // Objects are chunk-sized; the cap only guards against a nonsense header.
        let mut buf = BytesMut::with_capacity(expected.min(64 << 20));
        let mut stream = out.body;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| {
                StoreError::Unavailable(format!(
                    "reading the body from {} failed: {}",
                    self.endpoint,
                    errors::chain(&e)
                ))
            })?;
            buf.extend_from_slice(&piece);
        }
        Ok(Some(Got { body: buf.freeze(), partial, unsatisfiable: false }))
    }

    async fn head_object(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let full = self.full_key(key);
        match self.client.head_object().bucket(&self.bucket).key(&full).send().await {
            Ok(out) => {
                let len = out.content_length().unwrap_or(0);
                u64::try_from(len)
                    .map(Some)
                    .map_err(|_| in_op("head", key, StoreError::Other(format!("negative Content-Length {len}"))))
            }
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.fail("head", key, &e)),
        }
    }

    /// Every object name (full, with the configured prefix) under `full_prefix`.
    async fn list_full(&self, op: &str, prefix: &str, full_prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(full_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.fail(op, prefix, &e))?;
            names.extend(out.contents().iter().filter_map(|object| object.key().map(str::to_owned)));
            if out.is_truncated() != Some(true) {
                break;
            }
            match out.next_continuation_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => {
                    return Err(in_op(
                        op,
                        prefix,
                        StoreError::Other(format!(
                            "{} sent a truncated listing without a continuation token",
                            self.endpoint
                        )),
                    ));
                }
            }
        }
        Ok(names)
    }

    async fn delete_one(
        client: Client,
        bucket: String,
        full: String,
    ) -> Result<(), aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::delete_object::DeleteObjectError>> {
        match client.delete_object().bucket(bucket).key(full).send().await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) && !has_code(&e, "NoSuchBucket") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes full object names one by one, [`DELETE_PARALLEL`] at a time.
    async fn delete_singly(&self, prefix: &str, names: Vec<String>) -> Result<(), StoreError> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = names.into_iter();
        let mut first_error = None;
        loop {
            while tasks.len() < DELETE_PARALLEL {
                let Some(full) = names.next() else { break };
                tasks.spawn(Self::delete_one(self.client.clone(), self.bucket.clone(), full));
            }
            let Some(joined) = tasks.join_next().await else { break };
            let result = joined.map_err(|e| StoreError::Other(format!("delete task failed: {e}")));
            let result = result.and_then(|r| r.map_err(|e| self.fail("delete_prefix", prefix, &e)));
            if let Err(e) = result {
                first_error.get_or_insert(e);
                // Stop starting new deletes; let the running ones finish.
                names = Vec::new().into_iter();
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One `DeleteObjects` request. `Ok(None)` if the server does not support it; else the
    /// names it failed to delete.
    async fn delete_batch(&self, prefix: &str, names: &[String]) -> Result<Option<Vec<String>>, StoreError> {
        let objects = names
            .iter()
            .map(|name| ObjectIdentifier::builder().key(name).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| in_op("delete_prefix", prefix, StoreError::Other(format!("cannot build request: {e}"))))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| in_op("delete_prefix", prefix, StoreError::Other(format!("cannot build request: {e}"))))?;
        match self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await {
            Ok(out) => Ok(Some(
                out.errors()
                    .iter()
                    .filter(|error| error.code() != Some("NoSuchKey"))
                    .filter_map(|error| error.key().map(str::to_owned))
                    .collect(),
            )),
            Err(e) if matches!(status(&e), Some(400 | 405 | 501)) => {
                tracing::warn!(
                    endpoint = %self.endpoint,
                    error = %describe(&e, &self.endpoint, &self.bucket),
                    "S3 server rejected DeleteObjects; deleting objects one by one"
                );
                Ok(None)
            }
            Err(e) => Err(self.fail("delete_prefix", prefix, &e)),
        }
    }
}

/// One async lock per key in use; entries go away with their last holder.
#[derive(Default)]
struct KeyLocks {
    map: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = Arc::clone(self.entries().entry(key.to_owned()).or_default());
        KeyGuard { locks: self, key: key.to_owned(), _held: lock.lock_owned().await }
    }
}

/// Holds one key's lock; removes the map entry when no one else holds or waits for it.
struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: String,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut entries = self.locks.entries();
        // Two references: the map's and the one inside `_held` (dropped after this).
        if entries.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 2) {
            entries.remove(&self.key);
        }
    }
}

/// A fetched body.
struct Got {
    body: Bytes,
    /// The server answered with `Content-Range` (206): the body is the requested range.
    partial: bool,
    /// The server answered `416 Range Not Satisfiable`.
    unsatisfiable: bool,
}

/// Clamps `[start, end)` to an object of `len` bytes, following [`Store::get_range`].
fn clamp(start: u64, end: u64, len: u64) -> Result<(u64, u64), StoreError> {
    if start > len || end < start {
        return Err(StoreError::InvalidRange);
    }
    Ok((start, end.min(len)))
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Other(format!("system random number generator: {e}")))?;
    Ok(hex::encode(buf))
}

#[async_trait::async_trait]
impl Store for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        let s = &self.inner;
        s.client
            .put_object()
            .bucket(&s.bucket)
            .key(s.full_key(key))
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| s.fail("put", key, &e))
    }

    async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, StoreError> {
        validate_key(key)?;
        let s = &self.inner;
        // Without server-side conditional writes, serialise racers of this instance.
        let _guard = if s.conditional_writes { None } else { Some(s.put_new_locks.lock(key).await) };
        for _ in 0..PUT_NEW_TRIES {
            if s.head_object(key).await.map_err(|e| relabel(e, "put_new"))?.is_some() {
                return Ok(false);
            }
            let result = s
                .client
                .put_object()
                .bucket(&s.bucket)
                .key(s.full_key(key))
                .if_none_match("*")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) if status(&e) == Some(412) => return Ok(false),
                // A concurrent conditional write is in progress (AWS S3): look again.
                Err(e) if status(&e) == Some(409) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(s.fail("put_new", key, &e)),
            }
        }
        Err(in_op(
            "put_new",
            key,
            StoreError::Unavailable(format!("{} kept reporting conflicting conditional writes", s.endpoint)),
        ))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let s = &self.inner;
        let got = s.get_object(&s.full_key(key), None).await.map_err(|e| in_op("get", key, e))?;
        Ok(got.map(|got| got.body))
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let s = &self.inner;
        if start >= end {
            // An HTTP range cannot be empty: the length alone decides.
            let Some(len) = s.head_object(key).await.map_err(|e| relabel(e, "get_range"))? else {
                return Ok(None);
            };
            clamp(start, end, len)?;
            return Ok(Some(Bytes::new()));
        }
        let range = format!("bytes={start}-{}", end - 1);
        let full = s.full_key(key);
        let Some(got) = s.get_object(&full, Some(range)).await.map_err(|e| in_op("get_range", key, e))? else {
            return Ok(None);
        };
        if got.unsatisfiable {
            // `start` is at or past the end: empty if exactly at the end, else invalid.
            let Some(len) = s.head_object(key).await.map_err(|e| relabel(e, "get_range"))? else {
                return Ok(None);
            };
            let (start, end) = clamp(start, end, len)?;
            if start < end {
                return Err(in_op(
                    "get_range",
                    key,
                    StoreError::Unavailable("the object changed during the read; try again".to_owned()),
                ));
            }
            return Ok(Some(Bytes::new()));
        }
        if got.partial {
            return Ok(Some(got.body));
        }
        // The server ignored the Range header and sent the whole object.
        let len = u64::try_from(got.body.len()).map_err(|_| StoreError::InvalidRange)?;
        let (start, end) = clamp(start, end, len)?;
        let start = usize::try_from(start).map_err(|_| StoreError::InvalidRange)?;
        let end = usize::try_from(end).map_err(|_| StoreError::InvalidRange)?;
        Ok(Some(got.body.slice(start..end)))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        validate_key(key)?;
        self.inner.head_object(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let s = &self.inner;
        let names = s.list_full("list", prefix, &s.full_key(prefix)).await?;
        let mut keys: Vec<String> = names
            .into_iter()
            .filter_map(|name| name.strip_prefix(&s.prefix).map(str::to_owned))
            .filter(|key| key.starts_with(prefix) && validate_key(key).is_ok())
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let s = &self.inner;
        Inner::delete_one(s.client.clone(), s.bucket.clone(), s.full_key(key))
            .await
            .map_err(|e| s.fail("delete", key, &e))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        validate_prefix(prefix)?;
        let s = &self.inner;
        let names = s.list_full("delete_prefix", prefix, &s.full_key(prefix)).await?;
        for batch in names.chunks(DELETE_BATCH) {
            let leftover = if s.batch_delete.load(Ordering::Relaxed) {
                match s.delete_batch(prefix, batch).await? {
                    Some(failed) => failed,
                    None => {
                        s.batch_delete.store(false, Ordering::Relaxed);
                        batch.to_vec()
                    }
                }
            } else {
                batch.to_vec()
            };
            if !leftover.is_empty() {
                s.delete_singly(prefix, leftover).await?;
            }
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.head_bucket().await
    }
}

/// Re-labels an error from an inner `head` call with the outer operation's name.
fn relabel(err: StoreError, op: &str) -> StoreError {
    match err {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.replacen("S3 head ", &format!("S3 {op} "), 1)),
        StoreError::Other(m) => StoreError::Other(m.replacen("S3 head ", &format!("S3 {op} "), 1)),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalised_and_checked() {
        assert_eq!(normalise_prefix("").unwrap(), "");
        assert_eq!(normalise_prefix("veil").unwrap(), "veil/");
        assert_eq!(normalise_prefix("a/b/").unwrap(), "a/b/");
        for bad in ["/", "../x", "a//", ".probe", "a b"] {
            assert!(matches!(normalise_prefix(bad), Err(StoreError::Other(_))), "{bad:?}");
        }
    }

    #[test]
    fn ranges_clamp_like_the_trait_says() {
        assert_eq!(clamp(0, 10, 5).unwrap(), (0, 5));
        assert_eq!(clamp(5, 10, 5).unwrap(), (5, 5));
        assert!(matches!(clamp(6, 10, 5), Err(StoreError::InvalidRange)));
        assert!(matches!(clamp(3, 2, 5), Err(StoreError::InvalidRange)));
    }

    #[test]
    fn debug_hides_the_secret() {
        let mut cfg = S3Config::new("b");
        cfg.credentials = Some(S3Credentials {
            access_key_id: "GK0123".to_owned(),
            secret_access_key: "very-secret-value".to_owned(),
        });
        let text = format!("{cfg:?}");
        assert!(text.contains("GK0123") && !text.contains("very-secret-value"), "{text}");
    }

    #[tokio::test]
    async fn key_locks_serialise_one_key_and_clean_up() {
        let locks = KeyLocks::default();
        let a = locks.lock("a").await;
        let _b = locks.lock("b").await;
        let waiter = locks.lock("a");
        tokio::pin!(waiter);
        assert!(futures_poll_once(waiter.as_mut()).await.is_none(), "second holder of 'a' must wait");
        drop(a);
        let again = waiter.await;
        drop(again);
        assert_eq!(locks.entries().len(), 1, "only 'b' is still held");
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test]
    async fn bad_configurations_fail_before_any_request() {
        let mut cfg = S3Config::new("");
        let err = S3Store::connect(cfg.clone()).await.unwrap_err();
        assert!(err.to_string().contains("no S3 bucket"), "{err}");
        cfg.bucket = "b".to_owned();
        cfg.endpoint = Some("localhost:3900".to_owned());
        let err = S3Store::connect(cfg).await.unwrap_err();
        assert!(err.to_string().contains("must start with http://"), "{err}");
    }
}
