//! Progress and status events. The library knows nothing about terminals: the CLI turns
//! these into progress bars or JSON lines.

use serde::Serialize;
use std::sync::Arc;

/// A code or ticket on its way to the user: serialized as its text (the user must see
/// it), but never shown by `Debug`.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct Revealed(String);

impl Revealed {
    /// Wrap a code or ticket for the user.
    pub fn new(text: String) -> Self {
        Revealed(text)
    }

    /// The text, to show the user.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revealed(..)")
    }
}

/// Something worth telling the user.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The one-time code to give the receiver (secret: show it only to the user).
    Code {
        /// The code.
        code: Revealed,
    },
    /// The link-mode ticket (secret).
    Ticket {
        /// The ticket.
        ticket: Revealed,
        /// The same ticket as a link that opens in a browser (`https://RELAY/#TICKET`),
        /// when the relay serves its web page (secret: the ticket is its fragment).
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<Revealed>,
    },
    /// A warning that does not stop the transfer.
    Warning {
        /// What to tell the user.
        message: String,
    },
    /// Waiting for something (the other side, the upload).
    Waiting {
        /// What we are waiting for.
        what: String,
    },
    /// The key exchange succeeded.
    KeyExchanged {
        /// Words both sides can compare.
        verifier: String,
    },
    /// What the sender offers (receiver side).
    Offer {
        /// Sender fingerprint.
        sender: String,
        /// How the sender relates to our contacts.
        status: crate::contacts::SenderStatus,
        /// Number of files.
        files: usize,
        /// Number of folders.
        folders: usize,
        /// Total bytes.
        bytes: u64,
        /// Entry names (control characters escaped).
        names: Vec<String>,
    },
    /// Identity mode: the sealed key is in the recipient's inbox on the relay.
    Delivered {
        /// Recipient fingerprint.
        recipient: String,
    },
    /// Bytes moved so far (plaintext).
    Progress {
        /// Done.
        done: u64,
        /// Total.
        total: u64,
    },
    /// Viewers attached to a live stream now.
    Viewers {
        /// How many.
        count: u32,
    },
    /// Resuming an interrupted transfer.
    Resumed {
        /// Bytes already there.
        done: u64,
        /// Total.
        total: u64,
    },
    /// Finished.
    Done {
        /// Plaintext bytes.
        bytes: u64,
        /// Written paths (receiver) or sent names (sender).
        files: Vec<String>,
        /// Seconds taken.
        seconds: f64,
    },
}

/// Where events go.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// A sink that drops everything.
pub fn no_events() -> EventSink {
    Arc::new(|_| {})
}
