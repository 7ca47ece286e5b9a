//! The QUIC side: endpoint setup, connection limits, and one task per request stream.

use crate::Shared;
use crate::access::ConnCtx;
use crate::cut_through::{Next, Partial};
use crate::live;
use crate::rendezvous::Ending;
use crate::state::Body;
use bytes::{Bytes, BytesMut};
use quinn::{RecvStream, SendStream};
use std::sync::Arc;
use std::time::Duration;
use veil_wire::{ErrorCode, FrameError, MAX_CHUNK_BODY, MAX_MANIFEST_BODY, MailboxMsg, Request, Response, WireError};

/// How long a client may take to send a request frame.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a request body may go without a byte arriving.
const BODY_PROGRESS_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a GetChunk/GetManifest may wait for data.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// Transport tuning of relay endpoints (see `veil-quic`).
pub fn transport(idle: Duration) -> quinn::TransportConfig {
    veil_quic::server_transport(idle)
}

/// Accept connections until the endpoint closes.
pub async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let ip = incoming.remote_address().ip();
        let Some(permit) = shared.slots.connection(ip) else {
            shared.metrics.reject("too_many_connections");
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match incoming.await {
                Ok(conn) => {
                    shared.metrics.connections.inc();
                    handle_conn(shared.clone(), conn).await;
                    shared.metrics.connections.dec();
                }
                Err(e) => tracing::debug!(error = %e, "handshake failed"),
            }
        });
    }
}

async fn handle_conn(shared: Arc<Shared>, conn: quinn::Connection) {
    let mut exporter = [0u8; veil_wire::AUTH_EXPORTER_LEN];
    if conn.export_keying_material(&mut exporter, veil_wire::AUTH_EXPORTER_LABEL, b"").is_err() {
        tracing::debug!("no TLS exporter for this connection");
        conn.close(1u32.into(), b"tls exporter");
        return;
    }
    let ctx = Arc::new(ConnCtx::new(conn.remote_address().ip(), exporter));
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let (shared, ctx, conn) = (shared.clone(), ctx.clone(), conn.clone());
        tokio::spawn(async move {
            handle_stream(shared, ctx, &conn, send, recv).await;
        });
    }
}

async fn read_frame<T: for<'de> serde::Deserialize<'de>>(recv: &mut RecvStream) -> Result<Option<T>, WireError> {
    veil_quic::read_frame(recv).await.map_err(|e| match e {
        veil_quic::QuicError::Frame(FrameError::TooLarge(n)) => {
            WireError::new(ErrorCode::TooLarge, FrameError::TooLarge(n).to_string())
        }
        veil_quic::QuicError::Frame(f) => WireError::new(ErrorCode::BadRequest, f.to_string()),
        _ => WireError::new(ErrorCode::BadRequest, "stream ended inside a frame"),
    })
}

pub(crate) async fn write_frame<T: serde::Serialize>(send: &mut SendStream, v: &T) -> bool {
    veil_quic::write_frame(send, v).await.is_ok()
}

/// Read a request body of `len` bytes (at most `limit`). With `arriving`, every piece is
/// handed to it as it comes (cut-through: receivers waiting for this chunk get it now)
/// and it holds the body.
async fn read_body(
    recv: &mut RecvStream,
    len: u32,
    limit: u32,
    arriving: Option<&Partial>,
) -> Result<Bytes, WireError> {
    if len > limit {
        return Err(WireError::new(ErrorCode::TooLarge, format!("body of {len} bytes exceeds the {limit}-byte limit")));
    }
    // Grown as bytes arrive (a declared length costs nothing until it is sent), with a
    // progress deadline so a client cannot hold a request open by going quiet.
    let len = len as usize;
    let mut buf = BytesMut::with_capacity(if arriving.is_some() { 0 } else { len.min(1 << 20) });
    let mut got = 0;
    while got < len {
        let chunk = match tokio::time::timeout(BODY_PROGRESS_TIMEOUT, recv.read_chunk(len - got, true)).await {
            Err(_) => return Err(WireError::new(ErrorCode::Timeout, "the body stopped coming")),
            Ok(Ok(Some(c))) => c,
            Ok(_) => return Err(WireError::new(ErrorCode::BadRequest, "body shorter than declared")),
        };
        got += chunk.bytes.len();
        match arriving {
            Some(p) => p.push(&chunk.bytes),
            None => buf.extend_from_slice(&chunk.bytes),
        }
    }
    match arriving {
        Some(p) => p.complete().ok_or_else(|| WireError::new(ErrorCode::Internal, "lock poisoned")),
        None => Ok(buf.freeze()),
    }
}

/// Serve one request stream of the connection described by `ctx`.
pub async fn handle_stream(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    conn: &quinn::Connection,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let req = match tokio::time::timeout(REQUEST_TIMEOUT, read_frame::<Request>(&mut recv)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            shared.metrics.reject(if e.code == ErrorCode::TooLarge { "frame_too_large" } else { "bad_frame" });
            let _ = write_frame(&mut send, &Response::Error(e)).await;
            let _ = send.finish();
            let _ = recv.stop(0u32.into());
            return;
        }
        Err(_) => {
            shared.metrics.reject("request_timeout");
            return;
        }
    };
    match req {
        Request::Mailbox { nameplate, side } => {
            let slot = match shared.slots.mailbox(&ctx) {
                Ok(slot) => slot,
                Err(e) => {
                    shared.metrics.reject("too_many_mailboxes");
                    let _ = write_frame(&mut send, &Response::Error(e)).await;
                    let _ = send.finish();
                    return;
                }
            };
            mailbox(shared, send, recv, nameplate, side).await;
            drop(slot);
            return;
        }
        Request::StreamPublish { tid, owner, download, max_viewers } => {
            let p = live::Publish { tid, owner, download, max_viewers, record: None };
            return live::publish(shared, ctx, send, recv, p).await;
        }
        Request::StreamPublishRecorded { tid, owner, download, max_viewers, receipt, expire_secs } => {
            let p = live::Publish { tid, owner, download, max_viewers, record: Some((receipt, expire_secs)) };
            return live::publish(shared, ctx, send, recv, p).await;
        }
        Request::StreamWatch { tid, download } => return live::watch(shared, send, tid, download).await,
        _ => {}
    }
    shared.metrics.transfers_active.inc();
    let result = dispatch(&shared, &ctx, conn, req, &mut send, &mut recv).await;
    shared.metrics.transfers_active.dec();
    if let Err(e) = result {
        if matches!(e.code, ErrorCode::Forbidden | ErrorCode::BadRequest | ErrorCode::TooLarge | ErrorCode::NotFound) {
            shared.metrics.reject(match e.code {
                ErrorCode::Forbidden => "forbidden",
                ErrorCode::BadRequest => "bad_request",
                ErrorCode::TooLarge => "too_large",
                _ => "not_found",
            });
        }
        let _ = write_frame(&mut send, &Response::Error(e)).await;
    }
    let _ = send.finish();
}

fn forbid_other_inbox(ctx: &ConnCtx, inbox: &veil_wire::InboxId) -> Result<(), WireError> {
    match ctx.identity() {
        Some(k) if veil_wire::inbox_id(&k) == *inbox => Ok(()),
        Some(_) => Err(WireError::new(
            ErrorCode::Forbidden,
            "this inbox belongs to another identity: only its owner can list, fetch or delete it",
        )),
        None => Err(WireError::new(
            ErrorCode::AuthRequired,
            "reading an inbox needs the connection to be authenticated as its owner",
        )),
    }
}

async fn dispatch(
    shared: &Shared,
    ctx: &ConnCtx,
    conn: &quinn::Connection,
    req: Request,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Result<(), WireError> {
    let t = &shared.transfers;
    let resp = match req {
        Request::Ping => Response::Ok,
        Request::WebUrl => Response::Web { url: shared.web_url.clone() },
        req @ Request::Create { tid, size_hint, .. } => {
            shared.access.check_upload(ctx)?;
            shared.access.check_new(ctx, size_hint)?;
            if t.create(req).await? {
                shared.access.record_new(ctx, Some(tid));
            }
            Response::Ok
        }
        Request::PutChunk { tid, owner, index, len } => {
            t.check_owner(&tid, &owner).await?;
            shared.access.charge(ctx, &tid, len.into())?;
            shared.slots.widen(ctx, conn);
            let up = if len <= MAX_CHUNK_BODY { t.arriving(&tid, index, len).await } else { None };
            let body = read_body(recv, len, MAX_CHUNK_BODY, up.as_ref().map(|u| u.partial())).await?;
            t.put_chunk(&tid, &owner, index, body).await?;
            if let Some(up) = up {
                up.stored();
            }
            Response::Ok
        }
        Request::PutManifest { tid, owner, len } => {
            t.check_owner(&tid, &owner).await?;
            shared.access.charge(ctx, &tid, len.into())?;
            let body = read_body(recv, len, MAX_MANIFEST_BODY, None).await?;
            t.put_manifest(&tid, &owner, body).await?;
            Response::Ok
        }
        req @ (Request::AuthChallenge
        | Request::Auth { .. }
        | Request::InboxPut { .. }
        | Request::InboxList { .. }
        | Request::InboxDelete { .. }
        | Request::BundlePut { .. }) => identity_request(shared, ctx, req, recv).await?,
        Request::BundleGet { inbox } => {
            let b = shared.inboxes.get_bundle(&inbox).await?;
            return send_data(send, b).await;
        }
        Request::Complete { tid, owner, chunk_count } => {
            t.complete(&tid, &owner, chunk_count).await?;
            Response::Ok
        }
        Request::Status { tid, cap } => Response::Status(t.status(&tid, &cap).await?),
        Request::GetManifest { tid, download, wait_secs } => {
            let wait = Duration::from_secs(wait_secs.into()).min(MAX_WAIT);
            let b = t.get_manifest(&tid, &download, wait).await?;
            return send_data(send, b).await;
        }
        Request::GetChunk { tid, download, index, wait_secs } => {
            let wait = Duration::from_secs(wait_secs.into()).min(MAX_WAIT);
            return match t.get_chunk(&tid, &download, index, wait).await? {
                Body::Stored(b) => send_data(send, b).await,
                Body::Arriving(p) => send_arriving(send, &p).await,
            };
        }
        Request::Receipt { tid, receipt } => Response::Counted { remaining: t.receipt(&tid, &receipt).await? },
        Request::Delete { tid, owner } => {
            t.delete(&tid, &owner).await?;
            shared.access.release(&tid);
            Response::Ok
        }
        Request::Mailbox { .. }
        | Request::StreamPublish { .. }
        | Request::StreamPublishRecorded { .. }
        | Request::StreamWatch { .. } => {
            return Err(WireError::new(ErrorCode::BadRequest, "unexpected request"));
        }
    };
    write_frame(send, &resp).await;
    Ok(())
}

/// Authentication and inbox requests.
async fn identity_request(
    shared: &Shared,
    ctx: &ConnCtx,
    req: Request,
    recv: &mut RecvStream,
) -> Result<Response, WireError> {
    Ok(match req {
        Request::AuthChallenge => Response::Challenge { nonce: ctx.challenge()? },
        Request::Auth { ed25519, signature } => {
            ctx.authenticate(&ed25519, &signature)?;
            tracing::debug!("connection authenticated");
            Response::Ok
        }
        Request::InboxPut { inbox, expire_secs, len } => {
            shared.access.check_upload(ctx)?;
            let body = read_body(recv, len, veil_wire::MAX_INBOX_BODY, None).await?;
            shared.inboxes.put(&inbox, expire_secs, body).await?;
            Response::Ok
        }
        Request::InboxList { inbox, after } => {
            forbid_other_inbox(ctx, &inbox)?;
            let (entries, more) = shared.inboxes.list(&inbox, after).await?;
            Response::Inbox { entries, more }
        }
        Request::InboxDelete { inbox, entry } => {
            forbid_other_inbox(ctx, &inbox)?;
            shared.inboxes.delete(&inbox, &entry).await?;
            Response::Ok
        }
        Request::BundlePut { len } => {
            let Some(owner) = ctx.identity() else {
                return Err(WireError::new(
                    ErrorCode::AuthRequired,
                    "publishing a key bundle needs the connection to be authenticated as its owner",
                ));
            };
            let body = read_body(recv, len, veil_wire::MAX_BUNDLE_BODY, None).await?;
            shared.inboxes.put_bundle(&veil_wire::inbox_id(&owner), body).await?;
            Response::Ok
        }
        _ => return Err(WireError::new(ErrorCode::BadRequest, "unexpected request")),
    })
}

async fn send_data(send: &mut SendStream, b: Bytes) -> Result<(), WireError> {
    let len = u32::try_from(b.len()).map_err(|_| WireError::new(ErrorCode::Internal, "object too large"))?;
    if write_frame(send, &Response::Data { len }).await {
        let _ = send.write_chunk(b).await;
    }
    Ok(())
}

/// Serve a chunk as it arrives (see [`crate::cut_through`]); a chunk that will not be
/// stored resets the response, and the receiver asks again.
async fn send_arriving(send: &mut SendStream, p: &Partial) -> Result<(), WireError> {
    let len = u32::try_from(p.len()).map_err(|_| WireError::new(ErrorCode::Internal, "object too large"))?;
    if !write_frame(send, &Response::Data { len }).await {
        return Ok(());
    }
    let mut sent = 0;
    loop {
        match p.next(sent) {
            Next::Bytes(b) => {
                sent += b.len();
                if send.write_chunk(b).await.is_err() {
                    return Ok(());
                }
            }
            Next::Wait => p.changed(sent).await,
            Next::Done => return Ok(()),
            Next::Failed => {
                let _ = send.reset(1u32.into());
                return Ok(());
            }
        }
    }
}

async fn mailbox(
    shared: Arc<Shared>,
    mut send: SendStream,
    recv: RecvStream,
    nameplate: Option<u32>,
    side: veil_wire::Side,
) {
    let Some((member, rx)) = open_mailbox(&shared, &mut send, nameplate, side).await else { return };
    let how = relay_mailbox(&shared, &member, &mut send, recv, rx).await;
    if shared.rendezvous.end(&member, how) {
        // The one-guess rule: an exchange that did not end in a confirmed delivery.
        shared.rendezvous.record_burn(member.nameplate).await;
        let _ = write_frame(&mut send, &MailboxMsg::Burned).await;
    }
    let _ = send.finish();
}

type Opened = (crate::rendezvous::Membership, tokio::sync::mpsc::UnboundedReceiver<MailboxMsg>);

/// Place and open the mailbox; None when the client was answered otherwise (an error, or
/// a redirect to the instance holding the nameplate).
async fn open_mailbox(
    shared: &Shared,
    send: &mut SendStream,
    nameplate: Option<u32>,
    side: veil_wire::Side,
) -> Option<Opened> {
    let placed = shared.rendezvous.place(nameplate).await.and_then(|placed| match placed {
        (n, crate::rendezvous::Placement::Local) => shared.rendezvous.open(Some(n), side).map(Ok),
        (_, crate::rendezvous::Placement::Remote(owner)) => Ok(Err(owner)),
    });
    let answer = match placed {
        Ok(Ok((member, rx))) => {
            if !write_frame(send, &Response::MailboxOpened { nameplate: member.nameplate }).await {
                return None;
            }
            return Some((member, rx));
        }
        Ok(Err(owner)) => Response::Redirect { addr: owner.addr, fingerprint: owner.fingerprint },
        Err(e) => Response::Error(e),
    };
    let _ = write_frame(send, &answer).await;
    let _ = send.finish();
    None
}

/// Pass messages both ways until the client closes, breaks off, is flooding, or the
/// exchange runs past its deadline; says how it ended.
async fn relay_mailbox(
    shared: &Shared,
    member: &crate::rendezvous::Membership,
    send: &mut SendStream,
    mut recv: RecvStream,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<MailboxMsg>,
) -> Ending {
    // Frames are read on their own task: a quinn read is not safe to cancel, so it must
    // not race the peer's messages inside select!.
    let (ftx, mut frames) = tokio::sync::mpsc::channel::<Result<Option<MailboxMsg>, WireError>>(4);
    let reader = tokio::spawn(async move {
        loop {
            let f = read_frame::<MailboxMsg>(&mut recv).await;
            let stop = !matches!(f, Ok(Some(_)));
            if ftx.send(f).await.is_err() || stop {
                break;
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let how = loop {
        tokio::select! {
            frame = frames.recv() => match frame.unwrap_or(Ok(None)) {
                Ok(Some(MailboxMsg::Message(body))) => {
                    if let Err(e) = shared.rendezvous.post(member, body) {
                        tracing::debug!(error = %e, "mailbox post refused");
                        break Ending::Dropped;
                    }
                }
                Ok(Some(MailboxMsg::Burn)) => {
                    shared.rendezvous.burn(member);
                    shared.rendezvous.record_burn(member.nameplate).await;
                    shared.metrics.reject("key_confirmation_failed");
                    break Ending::Dropped;
                }
                Ok(Some(MailboxMsg::Close)) => break Ending::Closed,
                _ => break Ending::Dropped,
            },
            msg = rx.recv() => match msg {
                Some(m) => {
                    let end = m == MailboxMsg::Burned;
                    if !write_frame(send, &m).await || end {
                        break Ending::Dropped;
                    }
                }
                None => break Ending::Dropped,
            },
            _ = tick.tick() => {
                if shared.rendezvous.overdue(member) {
                    tracing::debug!("key exchange not confirmed in time");
                    break Ending::Dropped;
                }
            }
        }
    };
    reader.abort();
    how
}
