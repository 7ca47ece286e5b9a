//! # veil-client: send and receive through a veil relay
//!
//! The library behind the `veil` command. It connects to a relay over QUIC (pinning its
//! certificate), runs the code key exchange, seals and uploads chunks in parallel, and
//! downloads, authenticates and writes them safely. It knows nothing about terminals:
//! progress comes out as [`Event`]s and consent goes in as a callback.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod conn;
pub mod contacts;
pub mod error;
pub mod events;
pub mod files;
pub mod home;
pub mod inbox;
pub mod pake;
pub mod pipe;
mod pipeline;
pub mod receive;
pub mod send;
mod state;
pub mod stream;

pub use conn::{ConnectOptions, DEFAULT_RELAY, Relay, RelayAddr};
pub use contacts::{Contacts, SenderStatus};
pub use error::{ClientError, Result};
pub use events::{Event, EventSink, Revealed, no_events};
pub use home::Home;
pub use receive::{Offer, ReceiveFrom, ReceiveOptions, ReceiveOutcome, receive};
pub use send::{SendInput, SendMode, SendOptions, SendOutcome, send};
