//! The bad-input matrix (issue 14, "Operations"): one real node (`sidecar_node::Node`, gossip
//! on) against the embedded devnet beacon node, both on one virtual clock, receives over HTTP and
//! over gossip (from a fresh libp2p peer per message) each kind of bad input: truncated, oversize
//! and malformed SSZ and JSON, a wrong content type, an unknown prover, a bad signature, another
//! prover's proof, a replay, an equivocation, a wrong phase, a late message, a far-future slot
//! and an unknown block. For every row it checks the typed rejection, then that the node still
//! serves (`GET /eth/v1/node/syncing` answers and a fresh prover registration is accepted). At the
//! end, and again after a crash and a restart on the same data directory (the node replays its
//! input log), every acknowledged submission is still there: the round's commitments and
//! equivocation evidence, its settled ledger, and every accepted registration in the registry.
//!
//! How a rejection is observed:
//!
//! * **HTTP**: the status and the Beacon-API error body `{"code", "message"}`, whose message
//!   names the reason (the engine's typed `Error`, or the decoder's).
//! * **Gossip** has no reply to the sender. A rejected message costs its sender gossipsub score
//!   (P4, invalid deliveries): the node's score of the fresh peer goes below 0. An ignored one
//!   costs nothing; it is seen to be judged through `sidecar_messages_total{kind, verdict,
//!   reason}` on the node's `/metrics` (reason `engine`: the engine's checks on arrival,
//!   `verification`: after the BLS check). An accepted one raises the score (P2).
//!
//! Time: the devnet beacon node and the sidecar both read one `ManualClock`; the test moves it
//! into T1, then T2, then past the round. The phase windows are long (120 s of virtual time), so
//! that nothing the test does in one phase can reach the next one in real time (the node's driver
//! sleeps in real time towards its next deadline). No message needs a STARK: the rows that would
//! (a copied partial or full proof whose trace binding only the STARK check catches) are covered
//! with real proofs in `faults.rs`.

use crate::support::{self, rewards_config};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beacon_api::{
    BeaconClient, BlockId, Clock as _, DevnetConfig, DevnetNode, ManualClock, ProvingClient,
    SubmissionStatus,
};
use phase_engine::{
    AirCommitment, AirIndex, BlsPublicKey, Capabilities, Commitment, Deadlines, Decline, FullProof,
    FullProofBody, MAX_PARTIAL_PROOF_BYTES, Phase, ProtocolMessage, ProverIndex,
    ProverRegistration, Root, RoundKey, RoundRef, SignedCommitment, SignedDecline, SignedFullProof,
    SignedPartialProof, SignedProverRegistration, SigningContext, Slot, UnixMillis, bls,
};
use sidecar_node::{Gossiped, Node, NodeConfig, NodeHandle, SlotClock, SlotTiming};
use sidecar_p2p::{NetworkConfig, NodeKey, PeerId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SECONDS_PER_SLOT: u64 = 12;
const GENESIS_PROVERS: u8 = 16;
/// Long phases (virtual time): see the module docs.
const T1_MS: i64 = 120_000;
const T2_MS: i64 = 120_000;
/// How long the test waits for any one thing the node does (real time).
const WAIT: Duration = Duration::from_secs(30);

const COMMITMENTS: &str = "/eth/v1/proving/commitments";
const DECLINES: &str = "/eth/v1/proving/declines";
const PARTIALS: &str = "/eth/v1/proving/partial_proofs";
const FULL_PROOFS: &str = "/eth/v1/proving/full_proofs";
const PROVERS: &str = "/eth/v1/proving/provers";
const JSON: Option<&str> = Some("application/json");
const SSZ: Option<&str> = Some("application/octet-stream");

fn genesis_key(i: u8) -> bls::SecretKey {
    support::prover_key(120, i)
}

/// Keys of the registrations the test sends (not of the same-byte pattern of `support`).
fn fresh_key(n: u32) -> bls::SecretKey {
    let mut ikm = [0xb1u8; 32];
    ikm[..4].copy_from_slice(&n.to_le_bytes());
    bls::SecretKey::from_ikm(&ikm).unwrap()
}

// ---- virtual time -----------------------------------------------------------------------------

/// The node's slot clock over the devnet's manual clock: both see the same time.
#[derive(Clone, Debug)]
struct SharedClock {
    clock: ManualClock,
    timing: SlotTiming,
}

impl SlotClock for SharedClock {
    fn timing(&self) -> SlotTiming {
        self.timing
    }
    fn now_duration(&self) -> Duration {
        self.clock.now()
    }
}

// ---- raw HTTP ---------------------------------------------------------------------------------

/// An HTTP answer: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The Beacon-API error body's message, or the receipt's status (`data.status`).
    fn reason(&self) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()));
        if let Some(code) = json.get("code") {
            assert_eq!(code.as_u64(), Some(u64::from(self.status)), "{json}");
            return json["message"].as_str().unwrap_or_default().to_owned();
        }
        json["data"]["status"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request on a fresh connection, written byte for byte (any content type, any body, as a
/// misbehaving client would send it), read until the server closes.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer (413) before it has read everything: write beside the read.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut raw = Vec::new();
    rd.read_to_end(&mut raw).await.unwrap();
    drop(writer.await);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    Answer { status, body }
}

fn unchunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = std::str::from_utf8(&bytes[..eol]).unwrap().split(';').next().unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&bytes[eol + 2..eol + 2 + size]);
        bytes = &bytes[eol + 2 + size + 2..];
    }
}

/// `sidecar_messages_total{kind, verdict, reason}` in a `/metrics` text (0 when absent).
fn counted(metrics: &str, kind: &str, verdict: &str, reason: &str) -> u64 {
    let series = format!(
        "sidecar_messages_total{{kind=\"{kind}\",verdict=\"{verdict}\",reason=\"{reason}\"}}"
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

// ---- gossip peer ------------------------------------------------------------------------------

/// A libp2p peer of its own for one message, connected to the node only.
struct Peer {
    net: sidecar_p2p::Network,
}

impl Peer {
    /// Starts and connects a peer. Its outgoing size caps are raised (a well-behaved publisher
    /// refuses to send over them), so that it can send oversize payloads.
    async fn connect(node: &NodeHandle) -> Self {
        let mut config = NetworkConfig::loopback(NodeKey::generate().unwrap());
        for cap in config.max_topic_sizes.values_mut() {
            *cap = (*cap).max(64 * 1024);
        }
        let net = sidecar_p2p::start_network(config, None).await.unwrap();
        net.handle.dial(p2p(node).listen_address().clone()).await.unwrap();
        let node_id = p2p(node).local_peer_id();
        let handle = &net.handle;
        wait("the peer to connect", || async move {
            handle.connected_peers().await.unwrap().contains(&node_id)
        })
        .await;
        Self { net }
    }

    fn id(&self) -> PeerId {
        self.net.handle.local_peer_id()
    }

    /// Publishes `payload` on the node's topic `name` (retried until gossipsub knows that the
    /// node subscribes to it).
    async fn publish(&self, name: &str, payload: Vec<u8>) {
        let (handle, payload) = (&self.net.handle, &payload);
        wait("the node's subscription", || async move {
            match handle.publish(name, payload.clone()).await {
                Ok(_) => true,
                Err(e) => {
                    let reason = e.to_string();
                    assert!(reason.contains("NoPeersSubscribedToTopic"), "{name}: {reason}");
                    false
                }
            }
        })
        .await;
    }

    async fn close(self) {
        self.net.handle.shutdown().await;
        let _ = self.net.task.await;
    }
}

fn p2p(node: &NodeHandle) -> &sidecar_p2p::NetworkHandle {
    node.p2p().expect("the node runs gossip")
}

/// The node's gossipsub score of `peer` (0 before it is known).
async fn score(node: &NodeHandle, peer: PeerId) -> f64 {
    p2p(node).gossip_score(peer).await.unwrap().unwrap_or(0.0)
}

/// Polls `done` until it holds (panics after [`WAIT`]).
async fn wait<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(WAIT, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited {WAIT:?} for {what}"));
}

// ---- the matrix -------------------------------------------------------------------------------

/// What a row sends.
enum Send {
    /// `POST path` with this content type (or none) and body.
    Http { path: &'static str, content_type: Option<&'static str>, body: Vec<u8> },
    /// Published on the node's topic `topic` by a fresh peer.
    Gossip { topic: &'static str, payload: Vec<u8> },
}

/// What the node must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// HTTP: this status, and a message (or receipt status) containing this phrase.
    Status(u16, &'static str),
    /// HTTP: a receipt `accepted`: acknowledged.
    Accepted,
    /// Gossip: `Reject`, the sender's score falls below 0; when the message reached the engine,
    /// counted as `{kind, "reject", reason}` (kind, reason).
    Rejected(Option<(&'static str, &'static str)>),
    /// Gossip: `Ignore`, counted as `{kind, "ignore", reason}`, the sender not penalised.
    Ignored(&'static str, &'static str),
    /// Gossip: for a block the node has not seen: held, not judged (no commitment verdict
    /// counted by the time a later message of the same peer is accepted); once the node has fed
    /// the blocks it waits for, dropped without blame (checked after the T2 jump).
    Held,
    /// Gossip: accepted (the sender's score rises above 0): acknowledged.
    Delivered,
}

struct Row {
    case: &'static str,
    send: Send,
    expect: Expect,
}

fn row(case: &'static str, send: Send, expect: Expect) -> Row {
    Row { case, send, expect }
}

fn post(path: &'static str, content_type: Option<&'static str>, body: Vec<u8>) -> Send {
    Send::Http { path, content_type, body }
}

fn post_json(path: &'static str, value: &impl serde::Serialize) -> Send {
    post(path, JSON, serde_json::to_vec(value).unwrap())
}

fn publish(topic: &'static str, payload: Vec<u8>) -> Send {
    Send::Gossip { topic, payload }
}

/// The SSZ encoding of `message`, taken from its gossip envelope (`GossipEnvelope { first_seen:
/// uint64, message }`: 8 bytes, then a 4-byte offset for a variable-size message).
fn ssz(message: &ProtocolMessage) -> Vec<u8> {
    let (_, envelope) = sidecar_node::gossip_payload(message, UnixMillis(0));
    let fixed_size = matches!(message, ProtocolMessage::Decline(_));
    let start = if fixed_size { 8 } else { 12 };
    if !fixed_size {
        assert_eq!(envelope[8..12], 12u32.to_le_bytes(), "the envelope's message offset");
    }
    envelope[start..].to_vec()
}

/// The topic and gossip envelope of `message`, first seen at `first_seen`.
fn envelope(message: &ProtocolMessage, first_seen: UnixMillis) -> (&'static str, Vec<u8>) {
    sidecar_node::gossip_payload(message, first_seen)
}

fn gossip_of(message: &ProtocolMessage, first_seen: UnixMillis) -> Send {
    let (topic, payload) = envelope(message, first_seen);
    publish(topic, payload)
}

fn cut(mut bytes: Vec<u8>, n: usize) -> Vec<u8> {
    bytes.truncate(bytes.len() - n);
    bytes
}

/// The trace root a prover commits to for an AIR (any root will do: no STARK is checked).
fn trace_root(prover: ProverIndex, air: AirIndex) -> Root {
    let mut bytes = [0x7eu8; 32];
    bytes[..8].copy_from_slice(&prover.0.to_le_bytes());
    bytes[8..12].copy_from_slice(&air.0.to_le_bytes());
    Root::from(bytes)
}

fn registration(
    key: &bls::SecretKey,
    signer: &bls::SecretKey,
    ctx: &SigningContext,
) -> SignedProverRegistration {
    let message = ProverRegistration {
        pubkey: key.public_key(),
        stake: 32_000_000_000,
        capabilities: Capabilities { gpu_count: 0, gpu_memory_mib: 0, max_trace_log_rows: 20 },
        proof_of_possession: key.proof_of_possession(),
    };
    SignedProverRegistration::sign(message, signer, ctx)
}

/// The round under test and how to build its messages.
struct World {
    ctx: SigningContext,
    key: RoundKey,
    slot: Slot,
    deadlines: Deadlines,
    /// Selected provers, in the order the node lists them, with their AIRs.
    selected: Vec<(ProverIndex, Vec<AirIndex>)>,
    /// Genesis provers' keys by index.
    keys: Vec<(ProverIndex, bls::SecretKey)>,
}

impl World {
    fn prover(&self, role: usize) -> ProverIndex {
        self.selected[role].0
    }

    fn secret(&self, prover: ProverIndex) -> &bls::SecretKey {
        &self.keys.iter().find(|(i, _)| *i == prover).expect("a genesis prover").1
    }

    fn airs(&self, prover: ProverIndex) -> &[AirIndex] {
        &self.selected.iter().find(|(p, _)| *p == prover).expect("selected").1
    }

    fn round(&self) -> RoundRef {
        RoundRef {
            slot: self.slot,
            block_root: self.key.block_root,
            sub_block: self.key.sub_block,
            attempt: self.key.attempt,
        }
    }

    /// `prover`'s commitment to its AIRs in `round`, signed by `signer`.
    fn commitment_in(
        &self,
        round: RoundRef,
        prover: ProverIndex,
        signer: &bls::SecretKey,
    ) -> ProtocolMessage {
        let trace_roots: Vec<AirCommitment> = self
            .airs(prover)
            .iter()
            .map(|&air| AirCommitment { air, trace_root: trace_root(prover, air) })
            .collect();
        let message = Commitment {
            round,
            prover,
            trace_roots: trace_roots.try_into().unwrap(),
            full_proof: Default::default(),
        };
        ProtocolMessage::Commitment(SignedCommitment::sign(message, signer, &self.ctx))
    }

    fn commitment(&self, prover: ProverIndex) -> ProtocolMessage {
        self.commitment_in(self.round(), prover, self.secret(prover))
    }

    fn decline(&self, prover: ProverIndex) -> ProtocolMessage {
        let message = Decline { round: self.round(), prover };
        ProtocolMessage::Decline(SignedDecline::sign(message, self.secret(prover), &self.ctx))
    }

    fn partial(
        &self,
        prover: ProverIndex,
        air: AirIndex,
        trace_root: Root,
        proof: Vec<u8>,
        signer: &bls::SecretKey,
    ) -> ProtocolMessage {
        let message = phase_engine::PartialProof {
            round: self.round(),
            prover,
            air,
            trace_root,
            proof: proof.try_into().unwrap(),
        };
        ProtocolMessage::PartialProof(SignedPartialProof::sign(message, signer, &self.ctx))
    }

    /// A full proof whose body does not matter (it is refused before the body is looked at).
    fn full_proof(&self, submitter: ProverIndex) -> ProtocolMessage {
        let body = FullProofBody {
            parts: Default::default(),
            reuse_bloom: Default::default(),
            bundle: vec![0x5a; 64].try_into().unwrap(),
        };
        let message = FullProof { round: self.round(), submitter, body };
        ProtocolMessage::FullProof(SignedFullProof::sign(
            message,
            self.secret(submitter),
            &self.ctx,
        ))
    }

    /// JSON of a message as its route takes it.
    fn json(message: &ProtocolMessage) -> serde_json::Value {
        match message {
            ProtocolMessage::Commitment(m) => serde_json::to_value(m),
            ProtocolMessage::Decline(m) => serde_json::to_value(m),
            ProtocolMessage::PartialProof(m) => serde_json::to_value(m),
            ProtocolMessage::FullProof(m) => serde_json::to_value(m),
            ProtocolMessage::AggProof(m) => serde_json::to_value(m),
            other => panic!("{:?}", other.kind()),
        }
        .unwrap()
    }
}

/// Roles of the selected provers: `P0` commits over HTTP, `P1` over gossip, `P2` after a
/// badly signed commitment, `P3` never gets a valid T1 message in.
const P0: usize = 0;
const P1: usize = 1;
const P2: usize = 2;
const P3: usize = 3;

/// The rows sent in T1 (the node's clock 1 s into the round).
fn t1_rows(w: &World, now: UnixMillis) -> Vec<Row> {
    let (p0, p1, p2, p3) = (w.prover(P0), w.prover(P1), w.prover(P2), w.prover(P3));
    let c0 = w.commitment(p0);
    let c1 = w.commitment(p1);
    let c3 = w.commitment(p3);
    let c3_json = serde_json::to_vec(&World::json(&c3)).unwrap();

    // Malformed SSZ: the first offset (of the signed container's variable message) points past
    // the end.
    let mut bad_offset = ssz(&c3);
    bad_offset[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let (_, mut bad_envelope) = envelope(&c3, now);
    bad_envelope[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    // Malformed JSON: the right shape, a field of the wrong type.
    let mut wrong_type = World::json(&c3);
    wrong_type["message"]["prover"] = serde_json::json!("prover three");

    // Oversize within a body: a partial proof one byte over its SSZ list bound (the proof is
    // the last field, so appending a byte lengthens it), and the same as JSON.
    let (air0, holder) = shared_air(w, p0);
    let max_partial = w.partial(
        p0,
        air0,
        trace_root(p0, air0),
        vec![0xab; MAX_PARTIAL_PROOF_BYTES],
        w.secret(p0),
    );
    let mut long_ssz = ssz(&max_partial);
    long_ssz.push(0);
    let (_, mut long_envelope) = envelope(&max_partial, now);
    long_envelope.push(0);
    let mut long_json = World::json(&max_partial);
    long_json["message"]["proof"] =
        serde_json::json!(format!("0x{}", hex::encode(vec![0xab; MAX_PARTIAL_PROOF_BYTES + 1])));
    // Oversize bodies: one byte over the HTTP body limit (40 MiB), and 4 KiB on the decline
    // topic, whose gossip cap is 1 KiB.
    let over_limit = vec![b' '; beacon_api::ProvingServerConfig::default().body_limit + 1];
    let oversize_decline: Vec<u8> =
        (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();

    // Another prover's proof: `holder`'s partial proof of an AIR it shares with P0 (its own
    // trace root), signed again by P0 as its own. P0 committed another root for that AIR.
    let copied = w.partial(p0, air0, trace_root(holder, air0), vec![0xcd; 512], w.secret(p0));
    // An unknown prover's partial proof.
    let stranger = fresh_key(9_999);
    let unknown_prover =
        w.partial(ProverIndex(10_000), air0, Root::repeat_byte(9), vec![1; 64], &stranger);
    // P2's commitment signed with P3's key.
    let badly_signed = w.commitment_in(w.round(), p2, w.secret(p3));
    // A registration whose signature is not its key's.
    let forged = registration(&fresh_key(7_001), &fresh_key(7_002), &w.ctx);
    let forged_ssz = {
        let (_, envelope) =
            sidecar_node::encode_gossip(&Gossiped::Registration(forged.clone()), now);
        envelope[8..].to_vec()
    };
    let (registration_topic, forged_envelope) =
        sidecar_node::encode_gossip(&Gossiped::Registration(forged), now);
    let (_, gossip_registration) = sidecar_node::encode_gossip(
        &Gossiped::Registration(registration(&fresh_key(8_000), &fresh_key(8_000), &w.ctx)),
        now,
    );
    // A block nobody has, at the round's slot; and at a slot far in the future.
    let elsewhere = RoundRef { block_root: Root::repeat_byte(0xee), ..w.round() };
    let unknown_block = w.commitment_in(elsewhere, p3, w.secret(p3));
    let far = RoundRef {
        slot: Slot(w.slot.0 + 1_000_000),
        block_root: Root::repeat_byte(0xef),
        ..w.round()
    };
    let far_future = w.commitment_in(far, p3, w.secret(p3));
    let later = UnixMillis(now.0 + 1);

    use Expect::*;
    #[rustfmt::skip]
    let rows = vec![
        row("valid commitment", post_json(COMMITMENTS, &World::json(&c0)), Accepted),
        // ---- the bytes ----
        row("truncated SSZ", post(COMMITMENTS, SSZ, cut(ssz(&c3), 7)), Status(400, "Invalid SSZ body")),
        row("truncated SSZ", publish("trace_commitment", cut(envelope(&c3, now).1, 7)), Rejected(None)),
        row("truncated JSON", post(COMMITMENTS, JSON, cut(c3_json.clone(), 20)), Status(400, "Invalid JSON body")),
        // Gossip carries SSZ only: JSON there is bytes that are not the topic's SSZ.
        row("JSON instead of SSZ", publish("trace_commitment", c3_json.clone()), Rejected(None)),
        row("malformed SSZ (offset out of bounds)", post(COMMITMENTS, SSZ, bad_offset), Status(400, "Invalid SSZ body")),
        row("malformed SSZ (offset out of bounds)", publish("trace_commitment", bad_envelope), Rejected(None)),
        row("malformed JSON (syntax)", post(COMMITMENTS, JSON, b"{\"message\": {\"round\": ".to_vec()), Status(400, "Invalid JSON body")),
        row("malformed JSON (wrong type)", post_json(COMMITMENTS, &wrong_type), Status(400, "Invalid JSON body")),
        row("oversize SSZ (list over its bound)", post(PARTIALS, SSZ, long_ssz), Status(400, "Invalid SSZ body")),
        row("oversize SSZ (list over its bound)", publish("partial_proof", long_envelope), Rejected(None)),
        row("oversize JSON (list over its bound)", post_json(PARTIALS, &long_json), Status(400, "Invalid JSON body")),
        row("oversize SSZ body (over the HTTP limit)", post(COMMITMENTS, SSZ, over_limit.clone()), Status(413, "larger than the server's limit")),
        row("oversize JSON body (over the HTTP limit)", post(COMMITMENTS, JSON, over_limit), Status(413, "larger than the server's limit")),
        row("oversize payload (over the topic's cap)", publish("prover_decline", oversize_decline), Rejected(None)),
        row("wrong content type", post(COMMITMENTS, Some("text/plain"), c3_json), Status(415, "Unsupported content type")),
        // Gossip has no content type; the closest is a message on another kind's topic.
        row("wrong topic (a decline on the commitment topic)", publish("trace_commitment", envelope(&w.decline(p3), now).1), Rejected(None)),
        // After the bytes: gossip still takes valid messages.
        row("valid commitment", gossip_of(&c1, now), Delivered),
        row("valid registration", publish(registration_topic, gossip_registration), Delivered),
        // ---- the protocol ----
        row("unknown prover", post_json(PARTIALS, &World::json(&unknown_prover)), Status(400, "unknown prover 10000")),
        row("unknown prover", gossip_of(&unknown_prover, now), Rejected(Some(("partial_proof", "engine")))),
        row("bad signature", post_json(COMMITMENTS, &World::json(&badly_signed)), Status(400, "bad signature")),
        row("bad signature", gossip_of(&badly_signed, now), Rejected(Some(("commitment", "verification")))),
        row("valid commitment after a badly signed one", post(COMMITMENTS, SSZ, ssz(&w.commitment(p2))), Accepted),
        row("bad signature (registration)", post(PROVERS, SSZ, forged_ssz), Status(400, "invalid registration signature")),
        row("bad signature (registration)", publish(registration_topic, forged_envelope), Rejected(None)),
        row("another prover's proof", post_json(PARTIALS, &World::json(&copied)), Status(400, "but opened")),
        row("another prover's proof", gossip_of(&copied, now), Rejected(Some(("partial_proof", "engine")))),
        // A replay of an acknowledged message: over HTTP the receipt says so; over gossip (a
        // new envelope, so not gossipsub's own duplicate) the engine ignores it.
        row("replay", post_json(COMMITMENTS, &World::json(&c0)), Status(200, "duplicate")),
        row("replay", gossip_of(&c1, later), Ignored("commitment", "engine")),
        // A decline after the prover's commitment: the first stands, the pair is evidence.
        row("equivocation", post_json(DECLINES, &World::json(&w.decline(p0))), Status(409, "equivocation")),
        row("equivocation", gossip_of(&w.decline(p1), now), Ignored("decline", "verification")),
        // A selected prover's standalone full proof is taken from T2 on.
        row("wrong phase", post_json(FULL_PROOFS, &World::json(&w.full_proof(p3))), Status(400, "not accepted in phase T1")),
        row("wrong phase", gossip_of(&w.full_proof(p3), now), Ignored("full_proof", "engine")),
        row("unknown block", post_json(COMMITMENTS, &World::json(&unknown_block)), Status(400, "unknown block")),
        row("unknown block", gossip_of(&unknown_block, now), Ignored("commitment", "engine")),
        row("far-future slot", post_json(COMMITMENTS, &World::json(&far_future)), Status(400, "unknown block")),
        row("far-future slot", gossip_of(&far_future, now), Held),
    ];
    rows
}

/// The rows sent in T2 (the node's clock 1 s into T2).
fn t2_rows(w: &World, now: UnixMillis) -> Vec<Row> {
    let late = w.commitment(w.prover(P3));
    use Expect::*;
    #[rustfmt::skip]
    let rows = vec![
        row("late", post_json(COMMITMENTS, &World::json(&late)), Status(400, "after its deadline")),
        row("late", gossip_of(&late, now), Ignored("commitment", "engine")),
    ];
    rows
}

/// An AIR of `prover` and its other holder (every AIR has two: redundancy 2).
fn shared_air(w: &World, prover: ProverIndex) -> (AirIndex, ProverIndex) {
    let air = w.airs(prover)[0];
    let holder = w
        .selected
        .iter()
        .find(|(p, airs)| *p != prover && airs.contains(&air))
        .map(|(p, _)| *p)
        .expect("a second holder");
    (air, holder)
}

// ---- running it -------------------------------------------------------------------------------

/// The test's view of the node: its handle, and what it acknowledged.
struct Harness {
    node: NodeHandle,
    client: ProvingClient,
    ctx: SigningContext,
    /// Registrations accepted so far (the liveness probes and the gossiped one).
    registered: Vec<BlsPublicKey>,
    next_probe: u32,
    /// Gossip peers whose message is held, checked later.
    held: Vec<(&'static str, Peer)>,
    clock: SharedClock,
}

impl Harness {
    /// The node's clock, in unix ms.
    fn node_now(&self) -> u64 {
        self.clock.now_unix_millis()
    }

    async fn metrics(&self) -> String {
        let answer = http(self.node.http_addr(), "GET", "/metrics", None, Vec::new()).await;
        assert_eq!(answer.status, 200);
        answer.text()
    }

    /// Sends one row and checks the node's answer.
    async fn check(&mut self, row: Row) {
        let Row { case, send, expect } = row;
        let addr = self.node.http_addr();
        match (send, expect) {
            (Send::Http { path, content_type, body }, expect) => {
                let answer = http(addr, "POST", path, content_type, body).await;
                let reason = answer.reason();
                match expect {
                    Expect::Status(status, phrase) => {
                        assert_eq!(answer.status, status, "{case} (HTTP): {reason}");
                        assert!(
                            reason.contains(phrase),
                            "{case} (HTTP): {reason:?} lacks {phrase:?}"
                        );
                    }
                    Expect::Accepted => {
                        assert_eq!(
                            (answer.status, reason.as_str()),
                            (200, "accepted"),
                            "{case} (HTTP)"
                        );
                    }
                    other => panic!("{case}: {other:?} is not an HTTP answer"),
                }
            }
            (Send::Gossip { topic, payload }, expect) => {
                let before = self.metrics().await;
                let peer = Peer::connect(&self.node).await;
                peer.publish(topic, payload).await;
                let (this, node, id) = (&*self, &self.node, peer.id());
                match expect {
                    Expect::Rejected(counted_as) => {
                        wait(&format!("{case} (gossip) to cost its sender"), || async move {
                            score(node, id).await < 0.0
                        })
                        .await;
                        if let Some((kind, reason)) = counted_as {
                            let after = self.metrics().await;
                            assert_eq!(
                                counted(&after, kind, "reject", reason),
                                counted(&before, kind, "reject", reason) + 1,
                                "{case} (gossip): counted as {kind}/reject/{reason}"
                            );
                        }
                    }
                    Expect::Ignored(kind, reason) => {
                        let was = counted(&before, kind, "ignore", reason);
                        let what = format!("{case} (gossip) counted as {kind}/ignore/{reason}");
                        wait(&what, || async move {
                            counted(&this.metrics().await, kind, "ignore", reason) > was
                        })
                        .await;
                        let s = score(node, id).await;
                        assert!(s >= 0.0, "{case} (gossip): ignored, yet its sender scores {s}");
                    }
                    Expect::Delivered => {
                        wait(&format!("{case} (gossip) to be accepted"), || async move {
                            score(node, id).await > 0.0
                        })
                        .await;
                    }
                    Expect::Held => {
                        // The same peer then sends a valid registration: the node takes one
                        // peer's messages in order, so once that one is accepted the first was
                        // taken too, and it was held: the engine judged no commitment.
                        let key = fresh_key(self.next_probe);
                        self.next_probe += 1;
                        let probe = registration(&key, &key, &self.ctx);
                        let (topic, payload) = sidecar_node::encode_gossip(
                            &Gossiped::Registration(probe),
                            UnixMillis(self.node_now()),
                        );
                        peer.publish(topic, payload).await;
                        wait(
                            &format!("{case} (gossip): the registration after it"),
                            || async move { score(node, id).await > 0.0 },
                        )
                        .await;
                        self.registered.push(key.public_key());
                        let after = self.metrics().await;
                        for verdict in ["accept", "reject", "ignore"] {
                            for reason in ["valid", "engine", "verification"] {
                                assert_eq!(
                                    counted(&after, "commitment", verdict, reason),
                                    counted(&before, "commitment", verdict, reason),
                                    "{case} (gossip): judged ({verdict}/{reason}), not held"
                                );
                            }
                        }
                        self.held.push((case, peer));
                        self.still_serving(case).await;
                        return;
                    }
                    other => panic!("{case}: {other:?} is not a gossip verdict"),
                }
                peer.close().await;
            }
        }
        self.still_serving(case).await;
    }

    /// The node answers the Beacon API and accepts a fresh registration (acknowledged: it must
    /// be in the registry at the end).
    async fn still_serving(&mut self, case: &str) {
        let answer =
            http(self.node.http_addr(), "GET", "/eth/v1/node/syncing", None, Vec::new()).await;
        assert_eq!(answer.status, 200, "after {case}: {}", answer.text());
        let key = fresh_key(self.next_probe);
        self.next_probe += 1;
        let receipt = self.client.register(&registration(&key, &key, &self.ctx)).await;
        let receipt = receipt.unwrap_or_else(|e| panic!("after {case}: {e}"));
        assert_eq!(receipt.status, SubmissionStatus::Accepted, "after {case}");
        self.registered.push(key.public_key());
    }
}

/// The acknowledged state of the round and the registry: P0, P1 and P2 committed, P0 and P1's
/// declines kept as equivocation evidence, every accepted registration registered.
async fn check_acknowledged(
    client: &ProvingClient,
    w: &World,
    registered: &[BlsPublicKey],
    when: &str,
) {
    let rounds = client.rounds(BlockId::Slot(beacon_api::Slot::from(w.slot.0))).await.unwrap();
    let outcome = rounds
        .closed
        .iter()
        .find(|o| o.key == w.key)
        .unwrap_or_else(|| panic!("{when}: {rounds:?}"));
    let committed: BTreeSet<ProverIndex> = outcome.commitments.iter().map(|c| c.prover).collect();
    let expected: BTreeSet<ProverIndex> = [P0, P1, P2].iter().map(|r| w.prover(*r)).collect();
    assert_eq!(committed, expected, "{when}: the acknowledged commitments");
    assert!(outcome.declined.is_empty(), "{when}: {outcome:?}");
    let equivocators: BTreeSet<ProverIndex> =
        outcome.equivocations.iter().map(|e| e.prover).collect();
    assert_eq!(equivocators, [P0, P1].iter().map(|r| w.prover(*r)).collect(), "{when}");
    let registry: BTreeSet<BlsPublicKey> =
        client.registry().await.unwrap().into_iter().map(|e| e.record.pubkey).collect();
    for pubkey in registered {
        assert!(
            registry.contains(pubkey),
            "{when}: the acknowledged registration of {pubkey} is lost"
        );
    }
}

/// Waits until the round's outcome is known, its block settled and every registration in
/// `registered` joined; returns the block's ledger.
async fn settled(
    client: &ProvingClient,
    w: &World,
    registered: &[BlsPublicKey],
) -> rewards::Ledger {
    let (slot, key) = (w.slot, w.key);
    wait("the round's outcome", || async move {
        client
            .rounds(BlockId::Slot(beacon_api::Slot::from(slot.0)))
            .await
            .is_ok_and(|r| r.closed.iter().any(|o| o.key == key))
    })
    .await;
    wait("the registrations to join", || async move {
        let registry = client.registry().await.unwrap();
        registered.iter().all(|p| registry.iter().any(|e| e.record.pubkey == *p))
    })
    .await;
    let block = BlockId::Root(key.block_root);
    wait("the block's ledger", || async move { client.ledger(block).await.is_ok() }).await;
    client.ledger(block).await.unwrap()
}

fn node_config(beacon_url: &str, dir: &std::path::Path, clock: &SharedClock) -> NodeConfig {
    let mut config = NodeConfig::new(vec![beacon_url.to_owned()], dir.to_path_buf());
    config.rewards = rewards_config(&[
        ("PROVERS_PER_PROOF", 4),
        ("selection.redundancy_factor", 2),
        ("gas.gas_per_air", 100_000),
        ("retries.max_retries", 0),
        ("phases.max_clock_disparity_ms", 500),
        ("phases.t1_ms", T1_MS),
        ("phases.t2_ms", T2_MS),
        ("phases.t3_ms", 1_000),
        ("phases.t4_ms", 1_000),
        ("phases.t5_ms", 1_000),
    ]);
    config.genesis_provers =
        (0..GENESIS_PROVERS).map(|i| support::genesis_record(&genesis_key(i))).collect();
    config.clock = Some(Arc::new(clock.clone()));
    config.p2p = Some(NetworkConfig::loopback(NodeKey::generate().unwrap()));
    config
}

fn set_clock(clock: &ManualClock, at: UnixMillis) {
    clock.set(Duration::from_millis(at.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_over_http_and_gossip_is_refused_by_type_and_nothing_acknowledged_is_lost() {
    tokio::time::timeout(Duration::from_secs(300), matrix())
        .await
        .expect("the matrix ran within 300 s");
}

async fn matrix() {
    let genesis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let clock = ManualClock::new(Duration::from_secs(genesis));
    let devnet = DevnetNode::spawn_with_clock(
        DevnetConfig {
            seconds_per_slot: SECONDS_PER_SLOT,
            genesis_time: Some(genesis),
            min_gas_used: 200_000,
            max_gas_used: 400_000,
            avg_transaction_gas: 100_000,
            ..DevnetConfig::default()
        },
        Arc::new(clock.clone()),
    )
    .unwrap();
    let beacon = devnet.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let shared = SharedClock {
        clock: clock.clone(),
        timing: SlotTiming::from_secs(genesis, SECONDS_PER_SLOT).unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(node_config(&beacon.url(), dir.path(), &shared)).await.unwrap();
    let client = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
    let ctx = devnet.genesis().signing_context();

    // Slot 1's block: its round is the one under test.
    set_clock(&clock, UnixMillis((genesis + SECONDS_PER_SLOT) * 1000 + 1000));
    let n = &node;
    wait("the node to feed slot 1", || async move {
        n.head().await.unwrap().is_some_and(|(slot, _)| slot.0 >= 1)
    })
    .await;
    let rounds = client.rounds(BlockId::Slot(beacon_api::Slot::from(1))).await.unwrap();
    let status = rounds.rounds.first().expect("slot 1's round is open").clone();
    assert!(status.selected.len() >= 4, "four selected provers: {status:?}");
    let by_pubkey = client.registry().await.unwrap();
    let keys = (0..GENESIS_PROVERS)
        .map(genesis_key)
        .map(|k| {
            let index = by_pubkey.iter().find(|e| e.record.pubkey == k.public_key()).unwrap().index;
            (index, k)
        })
        .collect();
    let w = World {
        ctx,
        key: status.key,
        slot: status.slot,
        deadlines: status.deadlines,
        selected: status.selected.clone(),
        keys,
    };
    let mut h = Harness {
        node,
        client: client.clone(),
        ctx,
        registered: Vec::new(),
        next_probe: 0,
        held: Vec::new(),
        clock: shared.clone(),
    };

    // T1.
    let t1 = UnixMillis(w.deadlines.open(Phase::T1).0 + 1000);
    set_clock(&clock, t1);
    for row in t1_rows(&w, t1) {
        h.check(row).await;
    }
    h.registered.push(fresh_key(8_000).public_key());

    // T2: the blocks produced meanwhile let the held message go (without blame).
    let t2 = UnixMillis(w.deadlines.open(Phase::T2).0 + 1000);
    set_clock(&clock, t2);
    let fed = w.slot.0 + 4;
    let n = &h.node;
    wait("the node to feed the blocks of T1", || async move {
        n.head().await.unwrap().is_some_and(|(slot, _)| slot.0 >= fed)
    })
    .await;
    for row in t2_rows(&w, t2) {
        h.check(row).await;
    }
    for (case, peer) in std::mem::take(&mut h.held) {
        let s = score(&h.node, peer.id()).await;
        assert!(s >= 0.0, "{case} (gossip): held, then dropped without blame, yet scores {s}");
        peer.close().await;
    }

    // Past the round: it closes unproven, its outcome lists what was acknowledged.
    let after = UnixMillis(w.deadlines.graced_close(Phase::T5).0 + 3 * SECONDS_PER_SLOT * 1000);
    set_clock(&clock, after);
    let registered = h.registered.clone();
    let ledger = settled(&client, &w, &registered).await;
    check_acknowledged(&client, &w, &registered, "before the restart").await;

    // A crash (every task killed, nothing drained) and a restart on the same data directory:
    // the node replays its input log (checks whose verdict was not yet durable run again).
    h.node.abort().await;
    let node = Node::spawn(node_config(&beacon.url(), dir.path(), &shared)).await.unwrap();
    let client = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
    assert_eq!(settled(&client, &w, &registered).await, ledger, "the settled ledger, replayed");
    check_acknowledged(&client, &w, &registered, "after the restart").await;
    let mut h = Harness {
        node,
        client: client.clone(),
        ctx,
        registered,
        next_probe: 10_000,
        held: Vec::new(),
        clock: shared.clone(),
    };
    h.still_serving("the restart").await;

    h.node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
    drop(devnet);
}
