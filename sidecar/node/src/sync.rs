//! Sync: what canonical settlement lacks, fetched from peers over the request/response
//! protocols of `sidecar-p2p`, and the same protocols served to peers.
//!
//! * **Records by range** ([`SyncProtocol::RecordsByRange`]): the request is the SSZ container
//!   `{start_slot: uint64, count: uint64}` (`count` at most [`MAX_RANGE`]); the response is one
//!   chunk per known record of those slots, each the record's SSZ.
//! * **Messages by id** ([`SyncProtocol::MessagesById`]): the request is an SSZ
//!   `List[Root, MAX_IDS]` of signing roots (of round messages and of prover registrations,
//!   which records name alike); the response is one chunk per message held, each a kind byte
//!   (1 commitment, 2 decline, 3 partial proof, 4 full proof, 5 AggProof, 6 prover
//!   registration) followed by the signed message's SSZ.
//!
//! The fetcher asks the driver what the settling engine waits for (records committed to by
//! canonical blocks, messages named by canonical records), asks a connected peer (a different
//! one each round), and hands what comes back to the driver as if it had been gossiped: a
//! record is kept only if a block commits to it, a message is checked like any other
//! (signature, STARKs). A peer whose response does not decode, or carries what was not asked
//! for, is penalised. Progress goes to the log and to `sidecar_sync_*` metrics.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use phase_engine::{
    InclusionRecord, ProtocolMessage, Root, Sealer, SignedProverRegistration, SigningContext, Slot,
};
use sidecar_metrics::Metrics;
use sidecar_p2p::{
    ErrorCode, InboundRequest, NetworkHandle, PeerId, ResponseError, ResponseResult, SyncProtocol,
};
use ssz::{Decode, Encode};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tracing::{debug, info};

use crate::Store;
use crate::driver::{Driver, Input};
use crate::gossip::Gossiped;
use crate::log::{self, LoggedInput};

/// Most slots one records-by-range request covers.
pub(crate) const MAX_RANGE: u64 = 64;
/// Most ids one messages-by-id request names.
pub(crate) const MAX_IDS: usize = 256;
/// How often the fetcher looks at what is missing.
const FETCH_INTERVAL: Duration = Duration::from_millis(300);
/// How soon it looks again after a round that fetched something (a node catching up asks for
/// the next window as soon as the last one is handled).
const FETCH_AGAIN: Duration = Duration::from_millis(20);

/// What the settling engine waits for, and how far it got.
#[derive(Clone, Debug, Default)]
pub(crate) struct SyncNeeds {
    /// Slots whose committed record is missing.
    pub(crate) records: Vec<Slot>,
    /// Messages named by canonical records and not held.
    pub(crate) messages: Vec<Root>,
}

/// The request of records by range.
pub fn records_request(start_slot: u64, count: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&start_slot.to_le_bytes());
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes
}

/// Decodes a records-by-range request: `(start_slot, count)`. Never panics (a fuzz target of
/// `fuzz/`).
///
/// # Errors
/// Why the bytes are not a request: a wrong length or a count outside `1..=64`.
pub fn decode_records_request(bytes: &[u8]) -> Result<(u64, u64), &'static str> {
    if bytes.len() != 16 {
        return Err("a records-by-range request is 16 bytes");
    }
    let (start, count) = bytes.split_at(8);
    let word = |b: &[u8]| b.try_into().map(u64::from_le_bytes).map_err(|_| "not 8 bytes");
    let count = word(count)?;
    if count == 0 || count > MAX_RANGE {
        return Err("count must be between 1 and 64");
    }
    Ok((word(start)?, count))
}

/// What a messages-by-id response carries: what inclusion records name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncItem {
    /// A round message.
    Message(ProtocolMessage),
    /// A prover registration.
    Registration(SignedProverRegistration),
}

/// A message as a messages-by-id response chunk: its kind byte and its SSZ (`None` for a kind
/// sync does not carry).
pub fn encode_message(item: &SyncItem) -> Option<Vec<u8>> {
    let (kind, body) = match item {
        SyncItem::Message(ProtocolMessage::Commitment(m)) => (1u8, m.as_ssz_bytes()),
        SyncItem::Message(ProtocolMessage::Decline(m)) => (2, m.as_ssz_bytes()),
        SyncItem::Message(ProtocolMessage::PartialProof(m)) => (3, m.as_ssz_bytes()),
        SyncItem::Message(ProtocolMessage::FullProof(m)) => (4, m.as_ssz_bytes()),
        SyncItem::Message(ProtocolMessage::AggProof(m)) => (5, m.as_ssz_bytes()),
        SyncItem::Registration(m) => (6, m.as_ssz_bytes()),
        SyncItem::Message(_) => return None,
    };
    let mut chunk = Vec::with_capacity(body.len().saturating_add(1));
    chunk.push(kind);
    chunk.extend_from_slice(&body);
    Some(chunk)
}

/// Decodes a messages-by-id response chunk (see [`encode_message`]). Never panics (a fuzz
/// target of `fuzz/`).
///
/// # Errors
/// An empty chunk, an unknown kind byte, or a body that is not that kind's SSZ.
pub fn decode_message(chunk: &[u8]) -> Result<SyncItem, String> {
    let ssz = |e: ssz::DecodeError| format!("{e:?}");
    let (kind, body) = chunk.split_first().ok_or("an empty message chunk")?;
    let message = SyncItem::Message;
    Ok(match kind {
        1 => message(ProtocolMessage::Commitment(Decode::from_ssz_bytes(body).map_err(ssz)?)),
        2 => message(ProtocolMessage::Decline(Decode::from_ssz_bytes(body).map_err(ssz)?)),
        3 => message(ProtocolMessage::PartialProof(Decode::from_ssz_bytes(body).map_err(ssz)?)),
        4 => message(ProtocolMessage::FullProof(Decode::from_ssz_bytes(body).map_err(ssz)?)),
        5 => message(ProtocolMessage::AggProof(Decode::from_ssz_bytes(body).map_err(ssz)?)),
        6 => SyncItem::Registration(Decode::from_ssz_bytes(body).map_err(ssz)?),
        other => return Err(format!("unknown message kind {other}")),
    })
}

/// Runs `read` on the driver's state.
async fn query<T: Send + 'static>(
    tx: &mpsc::Sender<Input>,
    read: impl FnOnce(&Driver) -> T + Send + 'static,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    let input = Input::Query(Box::new(move |driver| {
        let _ = reply.send(read(driver));
    }));
    tx.send(input).await.ok()?;
    answer.await.ok()
}

/// Starts the server of the sync protocols and the fetcher; messages only the input log still
/// has are read from `store`.
pub(crate) fn spawn(
    handle: NetworkHandle,
    mut requests: mpsc::Receiver<InboundRequest>,
    tx: mpsc::Sender<Input>,
    store: Arc<Store>,
    ctx: SigningContext,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> (JoinHandle<()>, JoinHandle<()>) {
    let serve_tx = tx.clone();
    let mut stop = shutdown.clone();
    let server = tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                r = requests.recv() => match r {
                    Some(r) => r,
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            };
            let tx = serve_tx.clone();
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let answer = serve(&tx, &store, request.protocol, &request.payload).await;
                request.reply.send(answer);
            });
        }
    });
    let fetcher = tokio::spawn(async move {
        let mut fetcher = Fetcher { handle, tx, sealer: Sealer::new(&ctx), ctx, metrics, turn: 0 };
        let mut wait = FETCH_INTERVAL;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            wait = match fetcher.round().await {
                Round::Stopped => break,
                Round::Fetched => FETCH_AGAIN,
                Round::Idle => FETCH_INTERVAL,
            };
        }
    });
    (server, fetcher)
}

/// Answers one inbound request from the driver's state.
async fn serve(
    tx: &mpsc::Sender<Input>,
    store: &Arc<Store>,
    protocol: SyncProtocol,
    payload: &[u8],
) -> ResponseResult {
    let invalid = |reason: &str| ResponseError::new(ErrorCode::InvalidRequest, reason);
    let unavailable = || ResponseError::new(ErrorCode::ServerError, "the node is stopping");
    match protocol {
        SyncProtocol::RecordsByRange => {
            let (start, count) = decode_records_request(payload).map_err(invalid)?;
            let end = start.saturating_add(count);
            let records = query(tx, move |d| d.records_in(Slot(start), Slot(end)))
                .await
                .ok_or_else(unavailable)?;
            Ok(records.iter().map(Encode::as_ssz_bytes).collect())
        }
        SyncProtocol::MessagesById => {
            let ids = Vec::<Root>::from_ssz_bytes(payload)
                .map_err(|e| invalid(&format!("not a list of roots: {e:?}")))?;
            if ids.len() > MAX_IDS {
                return Err(invalid("more than 256 ids"));
            }
            let (mut messages, logged) =
                query(tx, move |d| d.held_messages(&ids)).await.ok_or_else(unavailable)?;
            if !logged.is_empty() {
                let store = Arc::clone(store);
                let read = tokio::task::spawn_blocking(move || read_logged(&store, &logged));
                let read = read.await.map_err(|_| unavailable())?;
                messages.extend(read.into_iter().map(SyncItem::Message));
            }
            Ok(messages.iter().filter_map(encode_message).collect())
        }
    }
}

/// How a fetch round went.
enum Round {
    /// The driver is gone.
    Stopped,
    /// Something came back.
    Fetched,
    /// Nothing was missing, no peer had it, or no peer answered.
    Idle,
}

/// The messages at these input-log positions (those that are messages and still there).
pub(crate) fn read_logged(store: &Store, seqs: &[u64]) -> Vec<ProtocolMessage> {
    seqs.iter()
        .filter_map(|seq| match log::read(store, *seq) {
            Ok(Some(
                LoggedInput::Message { message, .. } | LoggedInput::Relayed { message, .. },
            )) => Some(message),
            Ok(_) => None,
            Err(e) => {
                debug!(seq, error = %e, "sync: a logged message cannot be read");
                None
            }
        })
        .collect()
}

struct Fetcher {
    handle: NetworkHandle,
    tx: mpsc::Sender<Input>,
    sealer: Sealer,
    ctx: SigningContext,
    metrics: Metrics,
    turn: usize,
}

impl Fetcher {
    /// One round: asks one peer for what is missing.
    async fn round(&mut self) -> Round {
        let Some(needs) = query(&self.tx, Driver::sync_needs).await else { return Round::Stopped };
        self.metrics.set_sync_wanted(needs.records.len(), needs.messages.len());
        if needs.records.is_empty() && needs.messages.is_empty() {
            return Round::Idle;
        }
        let Ok(peers) = self.handle.connected_peers().await else { return Round::Stopped };
        if peers.is_empty() {
            debug!("sync: records or messages missing, but no peer to ask");
            return Round::Idle;
        }
        self.turn = self.turn.wrapping_add(1);
        let Some(&peer) = peers.get(self.turn % peers.len()) else { return Round::Idle };
        let mut fetched = 0;
        if let (Some(first), Some(last)) = (needs.records.first(), needs.records.last()) {
            let count = last.0.saturating_sub(first.0).saturating_add(1).min(MAX_RANGE);
            fetched += self.fetch_records(peer, first.0, count).await;
        }
        for ids in needs.messages.chunks(MAX_IDS) {
            fetched += self.fetch_messages(peer, ids).await;
        }
        if fetched > 0 { Round::Fetched } else { Round::Idle }
    }

    async fn penalise(&self, peer: PeerId, reason: &'static str) {
        debug!(%peer, reason, "sync: peer penalised");
        let _ = self.handle.penalise(peer, reason).await;
    }

    /// Asks `peer` for the records of `count` slots from `start`; returns how many came.
    async fn fetch_records(&self, peer: PeerId, start: u64, count: u64) -> u64 {
        let request = records_request(start, count);
        let chunks =
            match self.handle.send_request(peer, SyncProtocol::RecordsByRange, request).await {
                Ok(chunks) => chunks,
                Err(e) => {
                    self.failed(peer, &e).await;
                    return 0;
                }
            };
        let mut fetched = 0u64;
        for chunk in chunks {
            let Ok(record) = InclusionRecord::from_ssz_bytes(&chunk) else {
                self.penalise(peer, "undecodable_record").await;
                break;
            };
            if record.slot.0 < start || record.slot.0 >= start.saturating_add(count) {
                self.penalise(peer, "unrequested_record").await;
                break;
            }
            fetched = fetched.saturating_add(1);
            let input = Input::Fetched { item: Gossiped::Record(record) };
            if self.tx.send(input).await.is_err() {
                break;
            }
        }
        if fetched > 0 {
            self.metrics.sync_fetched("record", fetched);
            info!(%peer, records = fetched, from_slot = start, "sync: inclusion records fetched");
        }
        fetched
    }

    /// Asks `peer` for the messages `ids`; returns how many came.
    async fn fetch_messages(&self, peer: PeerId, ids: &[Root]) -> u64 {
        let request = ids.to_vec().as_ssz_bytes();
        let chunks = match self.handle.send_request(peer, SyncProtocol::MessagesById, request).await
        {
            Ok(chunks) => chunks,
            Err(e) => {
                self.failed(peer, &e).await;
                return 0;
            }
        };
        let wanted: BTreeSet<Root> = ids.iter().copied().collect();
        let mut fetched = 0u64;
        for chunk in chunks {
            let Ok(item) = decode_message(&chunk) else {
                self.penalise(peer, "undecodable_message").await;
                break;
            };
            let (id, item) = match item {
                SyncItem::Message(m) => (self.sealer.signing_root(&m), Gossiped::Message(m)),
                SyncItem::Registration(r) => (r.signing_root(&self.ctx), Gossiped::Registration(r)),
            };
            if !wanted.contains(&id) {
                self.penalise(peer, "unrequested_message").await;
                break;
            }
            fetched = fetched.saturating_add(1);
            let input = Input::Fetched { item };
            if self.tx.send(input).await.is_err() {
                break;
            }
        }
        if fetched > 0 {
            self.metrics.sync_fetched("message", fetched);
            info!(%peer, messages = fetched, asked = ids.len(), "sync: messages fetched");
        }
        fetched
    }

    async fn failed(&self, peer: PeerId, error: &sidecar_p2p::Error) {
        match error {
            sidecar_p2p::Error::ResponseOverCap { .. } => {
                self.penalise(peer, "response_over_cap").await;
            }
            sidecar_p2p::Error::InvalidResponse { .. } => {
                self.penalise(peer, "invalid_response").await;
            }
            other => debug!(%peer, error = %other, "sync: request failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_requests_round_trip_and_are_bounded() {
        assert_eq!(decode_records_request(&records_request(7, 64)), Ok((7, 64)));
        assert!(decode_records_request(&records_request(7, 0)).is_err());
        assert!(decode_records_request(&records_request(7, 65)).is_err());
        assert!(decode_records_request(&[0; 15]).is_err());
        assert!(decode_records_request(&[0; 17]).is_err());
    }

    /// The fetcher against a peer that answers with what was not asked for, or with bytes that
    /// do not decode: nothing of it reaches the driver, and the peer is penalised each time.
    #[tokio::test]
    async fn unrequested_or_undecodable_sync_data_is_dropped_and_penalised() {
        use sidecar_p2p::{NetworkConfig, NodeKey, start_network};

        let test = async {
            let metrics = Metrics::new();
            let network = |m| async move {
                let config = NetworkConfig::loopback(NodeKey::generate().unwrap());
                start_network(config, m).await.unwrap()
            };
            let us = network(Some(metrics.clone())).await;
            let mut peer = network(None).await;
            us.handle.dial(peer.handle.listen_address().clone()).await.unwrap();
            let peer_id = peer.handle.local_peer_id();
            while !us.handle.connected_peers().await.unwrap().contains(&peer_id) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }

            // The peer answers records-by-range with a record of slot 2 and messages-by-id with
            // a decline nobody asked for, then with garbage.
            let (unasked, ctx) = signed_decline();
            let record = phase_engine::build_record(
                Slot(2),
                phase_engine::ValidatorIndex(1),
                phase_engine::UnixMillis(0),
                std::iter::empty(),
            );
            let mut requests = std::mem::replace(&mut peer.requests, mpsc::channel(1).1);
            tokio::spawn(async move {
                let mut garbage = false;
                while let Some(request) = requests.recv().await {
                    let chunk = match (request.protocol, garbage) {
                        (_, true) => vec![0xff; 5],
                        (SyncProtocol::RecordsByRange, false) => record.as_ssz_bytes(),
                        (SyncProtocol::MessagesById, false) => {
                            encode_message(&SyncItem::Message(unasked.clone())).unwrap()
                        }
                    };
                    garbage = request.protocol == SyncProtocol::MessagesById;
                    request.reply.send(Ok(vec![chunk]));
                }
            });

            let (tx, mut rx) = mpsc::channel(8);
            let fetcher = Fetcher {
                handle: us.handle.clone(),
                tx,
                sealer: Sealer::new(&ctx),
                ctx,
                metrics: metrics.clone(),
                turn: 0,
            };
            assert_eq!(fetcher.fetch_records(peer_id, 10, 4).await, 0);
            assert_eq!(fetcher.fetch_messages(peer_id, &[Root::repeat_byte(9)]).await, 0);
            assert_eq!(fetcher.fetch_records(peer_id, 10, 4).await, 0);
            assert!(rx.try_recv().is_err(), "nothing reaches the driver");
            // The network runs its commands in order: once this one is answered, every
            // penalty before it is counted.
            let _ = us.handle.connected_peers().await;
            let text = metrics.encode();
            for reason in ["unrequested_record", "unrequested_message", "undecodable_record"] {
                let line = format!("sidecar_p2p_peer_penalties_total{{reason=\"{reason}\"}} 1");
                assert!(text.contains(&line), "{line} in {text}");
            }
            us.handle.shutdown().await;
            peer.handle.shutdown().await;
        };
        tokio::time::timeout(Duration::from_secs(60), test).await.expect("finished in time");
    }

    /// A signed decline (the smallest round message) and its signing context.
    fn signed_decline() -> (ProtocolMessage, SigningContext) {
        use phase_engine::{Attempt, ProverIndex, RoundRef, SignedDecline, SubBlockIndex, bls};
        let key = bls::SecretKey::from_ikm(&[7; 32]).unwrap();
        let ctx = SigningContext { fork_version: [0; 4], genesis_validators_root: Root::ZERO };
        let round = RoundRef {
            slot: Slot(3),
            block_root: Root::repeat_byte(1),
            sub_block: SubBlockIndex(0),
            attempt: Attempt(0),
        };
        let decline = phase_engine::Decline { round, prover: ProverIndex(2) };
        (ProtocolMessage::Decline(SignedDecline::sign(decline, &key, &ctx)), ctx)
    }

    #[test]
    fn message_chunks_round_trip_and_bad_ones_are_errors() {
        let (message, ctx) = signed_decline();
        let message = SyncItem::Message(message);
        let chunk = encode_message(&message).unwrap();
        assert_eq!(chunk[0], 2);
        assert_eq!(decode_message(&chunk).unwrap(), message);
        let registration =
            SyncItem::Registration(phase_engine::test_utils::registration(3, 32, &ctx));
        let chunk = encode_message(&registration).unwrap();
        assert_eq!(chunk[0], 6, "registrations are kind 6");
        assert_eq!(decode_message(&chunk).unwrap(), registration);
        assert!(decode_message(&[]).is_err());
        assert!(decode_message(&[9, 1, 2]).is_err());
        // The same body under another kind does not decode as that kind.
        let mut other = chunk.clone();
        other[0] = 4;
        assert!(decode_message(&other).is_err());
    }
}
