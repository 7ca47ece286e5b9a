//! Prometheus metrics of the relay.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label for rejected requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why the request was rejected.
    pub reason: String,
}

/// All relay metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Registry to encode.
    pub registry: Registry,
    /// Ciphertext bytes received.
    pub bytes_in: Counter,
    /// Ciphertext bytes sent.
    pub bytes_out: Counter,
    /// Transfers being uploaded or downloaded.
    pub transfers_active: Gauge,
    /// Transfers created.
    pub transfers_created: Counter,
    /// Transfers whose upload completed.
    pub transfers_completed: Counter,
    /// Downloads confirmed by a receipt.
    pub downloads_completed: Counter,
    /// Transfers that failed (aborted uploads, errors).
    pub transfers_failed: Counter,
    /// Open QUIC connections.
    pub connections: Gauge,
    /// Store latency of chunk puts and gets, seconds.
    pub chunk_latency: Histogram,
    /// Rejected requests by reason.
    pub rejected: Family<Reason, Counter>,
    /// Nameplates in use.
    pub nameplates: Gauge,
    /// Transfers deleted by the sweeper.
    pub swept: Counter,
    /// Live streams being published.
    pub streams_active: Gauge,
    /// Viewers attached to live streams.
    pub viewers: Gauge,
    /// Stream bytes forwarded to viewers.
    pub stream_bytes: Counter,
    /// Times a slow viewer was skipped forward to the next segment.
    pub viewers_skipped: Counter,
    /// Segments of recorded streams written to the store.
    pub segments_recorded: Counter,
}

impl Metrics {
    /// Create and register everything.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("veil_relay");
        let m = Metrics {
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            transfers_active: Gauge::default(),
            transfers_created: Counter::default(),
            transfers_completed: Counter::default(),
            downloads_completed: Counter::default(),
            transfers_failed: Counter::default(),
            connections: Gauge::default(),
            chunk_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            rejected: Family::default(),
            nameplates: Gauge::default(),
            swept: Counter::default(),
            streams_active: Gauge::default(),
            viewers: Gauge::default(),
            stream_bytes: Counter::default(),
            viewers_skipped: Counter::default(),
            segments_recorded: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("bytes_in", "Ciphertext bytes received", m.bytes_in.clone());
        registry.register("bytes_out", "Ciphertext bytes sent", m.bytes_out.clone());
        registry.register("transfers_active", "Transfers with requests in flight", m.transfers_active.clone());
        registry.register("transfers_created", "Transfers created", m.transfers_created.clone());
        registry.register("transfers_completed", "Uploads completed", m.transfers_completed.clone());
        registry.register("downloads_completed", "Downloads confirmed by a receipt", m.downloads_completed.clone());
        registry.register("transfers_failed", "Transfers that failed", m.transfers_failed.clone());
        registry.register("connections", "Open QUIC connections", m.connections.clone());
        registry.register("chunk_store_seconds", "Store latency of chunk operations", m.chunk_latency.clone());
        registry.register("rejected_requests", "Rejected requests by reason", m.rejected.clone());
        registry.register("nameplates", "Nameplates in use", m.nameplates.clone());
        registry.register("swept_transfers", "Expired transfers deleted", m.swept.clone());
        registry.register("streams_active", "Live streams being published", m.streams_active.clone());
        registry.register("stream_viewers", "Viewers attached to live streams", m.viewers.clone());
        registry.register("stream_bytes", "Stream bytes forwarded to viewers", m.stream_bytes.clone());
        registry.register(
            "stream_viewers_skipped",
            "Slow viewers skipped forward a segment",
            m.viewers_skipped.clone(),
        );
        registry.register(
            "stream_segments_recorded",
            "Segments of recorded streams stored",
            m.segments_recorded.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Count a rejection.
    pub fn reject(&self, reason: &str) {
        self.rejected.get_or_create(&Reason { reason: reason.to_string() }).inc();
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
