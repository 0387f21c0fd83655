//! The proving extension server over real loopback HTTP, with the in-memory backend.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use beacon_api::{
    ApiResponse, BlockRounds, ErrorMessage, FinalizedProof, InMemoryBackend, OPENAPI_JSON,
    PROVING_ROUTES, PhaseChangedEvent, ProverDuties, ProvingEvent, ProvingServerConfig,
    RegistryEntry, ServerHandle, SubmissionReceipt, SubmissionStatus, VerificationVerdict,
};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use phase_engine::{
    AggProof, AirCommitment, AirIndex, Attempt, Capabilities, Commitment, Deadlines, Decline,
    FullProof, FullProofBody, MessageKind, PartRef, PartialProof, Phase, ProtocolMessage,
    ProverIndex, ProverRegistration, Root, RoundKey, RoundRef, RoundStatus, SignedAggProof,
    SignedCommitment, SignedDecline, SignedFullProof, SignedPartialProof, SignedProverRegistration,
    SigningContext, Slot, SubBlockIndex, UnixMillis, bls::SecretKey,
};
use serde_json::{Value, json};
use ssz::Encode;

const BLOCK: Root = Root::repeat_byte(0xb1);

fn key(i: u8) -> SecretKey {
    SecretKey::from_ikm(&[i; 32]).unwrap()
}

fn ctx() -> SigningContext {
    SigningContext { fork_version: [1, 2, 3, 4], genesis_validators_root: Root::repeat_byte(7) }
}

fn registration(k: &SecretKey, stake: u64) -> SignedProverRegistration {
    let message = ProverRegistration {
        pubkey: k.public_key(),
        stake,
        capabilities: Capabilities { gpu_count: 1, gpu_memory_mib: 24_576, max_trace_log_rows: 22 },
        proof_of_possession: k.proof_of_possession(),
    };
    SignedProverRegistration::sign(message, k, &ctx())
}

fn round_ref() -> RoundRef {
    RoundRef { slot: Slot(5), block_root: BLOCK, sub_block: SubBlockIndex(0), attempt: Attempt(0) }
}

fn round_key() -> RoundKey {
    round_ref().key()
}

fn commitment(k: &SecretKey, prover: u64) -> SignedCommitment {
    let message = Commitment {
        round: round_ref(),
        prover: ProverIndex(prover),
        trace_roots: vec![AirCommitment { air: AirIndex(0), trace_root: Root::repeat_byte(3) }]
            .try_into()
            .unwrap(),
        full_proof: Vec::new().try_into().unwrap(),
    };
    SignedCommitment::sign(message, k, &ctx())
}

fn partial(k: &SecretKey, prover: u64) -> SignedPartialProof {
    let message = PartialProof {
        round: round_ref(),
        prover: ProverIndex(prover),
        air: AirIndex(0),
        trace_root: Root::repeat_byte(3),
        proof: vec![9u8; 1000].try_into().unwrap(),
    };
    SignedPartialProof::sign(message, k, &ctx())
}

fn full_proof(k: &SecretKey, prover: u64) -> SignedFullProof {
    let message = FullProof {
        round: round_ref(),
        submitter: ProverIndex(prover),
        body: FullProofBody {
            parts: vec![PartRef { author: ProverIndex(prover), air: AirIndex(0) }]
                .try_into()
                .unwrap(),
            reuse_bloom: vec![0u8; 8].try_into().unwrap(),
            bundle: vec![1, 2, 3, 4].try_into().unwrap(),
        },
    };
    SignedFullProof::sign(message, k, &ctx())
}

fn block_rounds() -> BlockRounds {
    let deadlines = Deadlines {
        start: UnixMillis(1_000),
        closes: [
            UnixMillis(2_000),
            UnixMillis(3_000),
            UnixMillis(4_000),
            UnixMillis(5_000),
            UnixMillis(6_000),
        ],
        grace_ms: 500,
    };
    BlockRounds {
        block_root: BLOCK,
        slot: Slot(5),
        rounds: vec![RoundStatus {
            key: round_key(),
            slot: Slot(5),
            phase: Some(Phase::T1),
            deadlines,
            num_airs: 1,
            selected: vec![(ProverIndex(0), vec![AirIndex(0)])],
            open_airs: Vec::new(),
            commitments: 0,
            partials: 0,
            finalized_in: None,
            closed: false,
        }],
        closed: Vec::new(),
        outcome: None,
    }
}

async fn start(limit: usize) -> (Arc<InMemoryBackend>, ServerHandle) {
    let backend = Arc::new(InMemoryBackend::new(ctx()));
    backend.insert_rounds(block_rounds());
    let config = ProvingServerConfig { body_limit: limit, keep_alive: Duration::from_secs(1) };
    let server = beacon_api::serve(Arc::clone(&backend), config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (backend, server)
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(server: &ServerHandle) -> Self {
        Self { http: reqwest::Client::new(), base: server.url() }
    }

    async fn post_json(&self, path: &str, body: &impl serde::Serialize) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).json(body).send().await.unwrap()
    }

    async fn post_ssz(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap()
    }
}

async fn data<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> T {
    assert!(response.status().is_success(), "status {}", response.status());
    response.json::<ApiResponse<T>>().await.unwrap().data
}

async fn error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: ErrorMessage = response.json().await.unwrap();
    assert_eq!(body.code, status);
    body.message
}

#[tokio::test]
async fn every_route_is_documented_served_and_routed() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routes: BTreeSet<(String, String)> =
        PROVING_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, routes, "the OpenAPI document and the router disagree");

    let (_backend, server) = start(1 << 20).await;
    let api = Api::new(&server);
    let served: Value = api.get("/eth/v1/proving/openapi.json").await.json().await.unwrap();
    assert_eq!(served, doc);
    for (method, path) in PROVING_ROUTES {
        let path = path.replace("{block_id}", "head").replace("{prover_index}", "0");
        let url = format!("{}{path}?topics=phase_changed", api.base);
        let request = match *method {
            "GET" => api.http.get(url),
            _ => api.http.post(url).json(&json!({})),
        };
        let response =
            tokio::time::timeout(Duration::from_secs(10), request.send()).await.unwrap().unwrap();
        let status = response.status().as_u16();
        assert_ne!(status, 405, "{method} {path}");
        if status == 404 {
            let message = response.json::<ErrorMessage>().await.unwrap().message;
            assert!(!message.starts_with("No route"), "{method} {path} is not routed");
        }
    }
    let message = error(api.get("/eth/v1/proving/nothing").await, 404).await;
    assert!(message.starts_with("No route"));
    let response =
        api.http.get(format!("{}/eth/v1/proving/commitments", api.base)).send().await.unwrap();
    assert_eq!(error(response, 405).await, "Method not allowed");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn submissions_as_json_and_ssz() {
    let (_backend, server) = start(1 << 20).await;
    let api = Api::new(&server);
    let (k0, k1, k2) = (key(1), key(2), key(3));

    // Registrations: JSON, then SSZ; a repeat is a duplicate; another message for the same key
    // is a conflict; a bad proof of possession is rejected.
    let r0 = registration(&k0, 32);
    let receipt: SubmissionReceipt =
        data(api.post_json("/eth/v1/proving/provers", &r0).await).await;
    assert_eq!(
        (receipt.kind, receipt.status, receipt.prover_index),
        (MessageKind::Registration, SubmissionStatus::Accepted, Some(ProverIndex(0)))
    );
    assert_eq!(receipt.signing_root, r0.signing_root(&ctx()));
    let receipt: SubmissionReceipt =
        data(api.post_ssz("/eth/v1/proving/provers", registration(&k1, 64).as_ssz_bytes()).await)
            .await;
    assert_eq!(receipt.prover_index, Some(ProverIndex(1)));
    let receipt: SubmissionReceipt =
        data(api.post_json("/eth/v1/proving/provers", &r0).await).await;
    assert_eq!(receipt.status, SubmissionStatus::Duplicate);
    error(api.post_json("/eth/v1/proving/provers", &registration(&k0, 99)).await, 409).await;
    let mut bad = registration(&k2, 32);
    bad.message.proof_of_possession = k0.proof_of_possession();
    let message = error(api.post_json("/eth/v1/proving/provers", &bad).await, 400).await;
    assert!(message.contains("proof of possession"), "{message}");

    let registry: Vec<RegistryEntry> = data(api.get("/eth/v1/proving/registry").await).await;
    assert_eq!(registry.len(), 2);
    assert_eq!(registry[1].record.pubkey, k1.public_key());
    let raw: Value = api.get("/eth/v1/proving/registry").await.json().await.unwrap();
    assert_eq!(raw["data"][1]["stake"], "64", "quoted integers: {raw}");

    // Round messages of both encodings.
    let c0 = commitment(&k0, 0);
    let receipt: SubmissionReceipt =
        data(api.post_json("/eth/v1/proving/commitments", &c0).await).await;
    assert_eq!(
        (receipt.kind, receipt.status),
        (MessageKind::Commitment, SubmissionStatus::Accepted)
    );
    let receipt: SubmissionReceipt =
        data(api.post_ssz("/eth/v1/proving/commitments", c0.as_ssz_bytes()).await).await;
    assert_eq!(receipt.status, SubmissionStatus::Duplicate);
    let decline =
        SignedDecline::sign(Decline { round: round_ref(), prover: ProverIndex(1) }, &k1, &ctx());
    let receipt: SubmissionReceipt =
        data(api.post_ssz("/eth/v1/proving/declines", decline.as_ssz_bytes()).await).await;
    assert_eq!(receipt.kind, MessageKind::Decline);
    let receipt: SubmissionReceipt =
        data(api.post_ssz("/eth/v1/proving/partial_proofs", partial(&k0, 0).as_ssz_bytes()).await)
            .await;
    assert_eq!(receipt.kind, MessageKind::PartialProof);
    let receipt: SubmissionReceipt =
        data(api.post_json("/eth/v1/proving/full_proofs", &full_proof(&k0, 0)).await).await;
    assert_eq!(receipt.kind, MessageKind::FullProof);
    let agg = SignedAggProof::sign(
        AggProof {
            slot: Slot(5),
            block_root: BLOCK,
            submitter: ProverIndex(0),
            bundle: vec![5u8; 10].try_into().unwrap(),
        },
        &k0,
        &ctx(),
    );
    let receipt: SubmissionReceipt =
        data(api.post_json("/eth/v1/proving/agg_proofs", &agg).await).await;
    assert_eq!(receipt.kind, MessageKind::AggProof);

    // Rejections: a signature by another key, an unknown prover, an unknown block.
    let forged = commitment(&k1, 0);
    let message = error(api.post_json("/eth/v1/proving/commitments", &forged).await, 400).await;
    assert!(message.contains("invalid signature"), "{message}");
    let message =
        error(api.post_json("/eth/v1/proving/commitments", &commitment(&k2, 7)).await, 400).await;
    assert!(message.contains("unknown prover 7"), "{message}");
    let mut elsewhere = commitment(&k0, 0).message;
    elsewhere.round.block_root = Root::repeat_byte(0xee);
    let message = error(
        api.post_json(
            "/eth/v1/proving/commitments",
            &SignedCommitment::sign(elsewhere, &k0, &ctx()),
        )
        .await,
        400,
    )
    .await;
    assert!(message.contains("no round"), "{message}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn verify_gives_a_verdict_with_a_reason() {
    let (backend, server) = start(1 << 20).await;
    let api = Api::new(&server);
    let k0 = key(1);
    api.post_json("/eth/v1/proving/provers", &registration(&k0, 32)).await;

    let good = ProtocolMessage::from(partial(&k0, 0));
    let verdict: VerificationVerdict =
        data(api.post_json("/eth/v1/proving/verify", &good).await).await;
    assert_eq!(verdict, VerificationVerdict::valid());
    let mut tampered = partial(&k0, 0);
    tampered.message.proof = vec![8u8; 1000].try_into().unwrap();
    let verdict: VerificationVerdict =
        data(api.post_json("/eth/v1/proving/verify", &ProtocolMessage::from(tampered)).await).await;
    assert!(!verdict.valid);
    assert!(verdict.reason.unwrap().contains("invalid signature"));

    let ssz = partial(&k0, 0).as_ssz_bytes();
    let verdict: VerificationVerdict =
        data(api.post_ssz("/eth/v1/proving/verify?kind=partial_proof", ssz.clone()).await).await;
    assert!(verdict.valid);
    let message = error(api.post_ssz("/eth/v1/proving/verify", ssz.clone()).await, 400).await;
    assert!(message.contains("?kind="), "{message}");
    error(api.post_ssz("/eth/v1/proving/verify?kind=weather", ssz).await, 400).await;
    // Nothing was submitted by verifying.
    assert!(backend.registry_len() == 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn queries_and_downloads() {
    let (backend, server) = start(1 << 20).await;
    let api = Api::new(&server);
    let k0 = key(1);
    api.post_json("/eth/v1/proving/provers", &registration(&k0, 32)).await;

    let rounds: BlockRounds = data(api.get("/eth/v1/proving/rounds/head").await).await;
    assert_eq!(rounds, block_rounds());
    let by_slot: BlockRounds = data(api.get("/eth/v1/proving/rounds/5").await).await;
    assert_eq!(by_slot, rounds);
    let by_root: BlockRounds =
        data(api.get(&format!("/eth/v1/proving/rounds/{BLOCK}")).await).await;
    assert_eq!(by_root, rounds);
    let raw: Value = api.get("/eth/v1/proving/rounds/head").await.json().await.unwrap();
    assert_eq!(raw["data"]["rounds"][0]["phase"], "T1");
    assert_eq!(raw["data"]["slot"], "5");
    let message =
        error(api.get(&format!("/eth/v1/proving/rounds/{}", Root::repeat_byte(1))).await, 404)
            .await;
    assert!(message.contains("not found"));
    assert_eq!(
        error(api.get("/eth/v1/proving/rounds/current").await, 400).await,
        "Invalid block ID: current"
    );
    let response = api
        .http
        .get(format!("{}/eth/v1/proving/rounds/head", api.base))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    error(response, 406).await;

    // Duties.
    let duties: ProverDuties = data(api.get("/eth/v1/proving/provers/0/duties").await).await;
    assert!(duties.duties.is_empty());
    backend.set_duties(ProverDuties {
        prover: ProverIndex(0),
        duties: Vec::new(),
        aggregation: vec![phase_engine::AggregationDuty {
            block_root: BLOCK,
            slot: Slot(5),
            aggregator: true,
            ready: false,
        }],
    });
    let duties: ProverDuties = data(api.get("/eth/v1/proving/provers/0/duties").await).await;
    assert_eq!(duties.aggregation.len(), 1);
    error(api.get("/eth/v1/proving/provers/9/duties").await, 404).await;
    assert_eq!(
        error(api.get("/eth/v1/proving/provers/x/duties").await, 400).await,
        "Invalid prover index: x"
    );

    // The finalised proof, as JSON and as SSZ.
    error(api.get("/eth/v1/proving/proofs/head").await, 404).await;
    let proof = FinalizedProof {
        slot: Slot(5),
        block_root: BLOCK,
        full_proofs: vec![full_proof(&k0, 0)].try_into().unwrap(),
        agg_proof: Vec::new().try_into().unwrap(),
    };
    backend.insert_proof(proof.clone());
    let json_proof: FinalizedProof = data(api.get("/eth/v1/proving/proofs/head").await).await;
    assert_eq!(json_proof, proof);
    let response = api
        .http
        .get(format!("{}/eth/v1/proving/proofs/5", api.base))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(<FinalizedProof as ssz::Decode>::from_ssz_bytes(&bytes).unwrap(), proof);

    // The partial proofs of a round, as JSON and as SSZ.
    error(
        api.get(&format!("/eth/v1/proving/rounds/{}/partial_proofs", Root::repeat_byte(9))).await,
        404,
    )
    .await;
    let partials = vec![partial(&k0, 0)];
    backend.insert_partial_proofs(BLOCK, partials.clone());
    let json_partials: Vec<SignedPartialProof> =
        data(api.get("/eth/v1/proving/rounds/head/partial_proofs").await).await;
    assert_eq!(json_partials, partials);
    let response = api
        .http
        .get(format!("{}/eth/v1/proving/rounds/5/partial_proofs", api.base))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(<Vec<SignedPartialProof> as ssz::Decode>::from_ssz_bytes(&bytes).unwrap(), partials);

    // Ledger and balances.
    error(api.get("/eth/v1/proving/ledgers/head").await, 404).await;
    let rule = rewards::Rule::ALL[0];
    let entry = |account, amount| rewards::LedgerEntry {
        sub_block: SubBlockIndex(0),
        attempt: Attempt(0),
        phase: Phase::T1,
        rule,
        account,
        amount: phase_engine::Amount(amount),
    };
    let ledger = rewards::Ledger::new(
        BLOCK,
        Slot(5),
        vec![
            entry(rewards::Account::Prover(ProverIndex(0)), 9000),
            entry(rewards::Account::Prover(ProverIndex(1)), -1),
        ],
    )
    .unwrap();
    backend.insert_ledger(ledger.clone());
    let served: rewards::Ledger = data(api.get("/eth/v1/proving/ledgers/5").await).await;
    assert_eq!(served, ledger);
    let balances: Vec<beacon_api::AccountBalance> =
        data(api.get("/eth/v1/proving/balances").await).await;
    assert_eq!(balances.len(), 2);
    assert!(
        balances
            .iter()
            .any(|b| b.account == rewards::Account::Prover(ProverIndex(1)) && b.balance.0 == -1)
    );

    let config: Value = data(api.get("/eth/v1/proving/reward_config").await).await;
    assert!(config.get("PROVERS_PER_PROOF").is_some(), "{config}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_never_a_5xx() {
    let (_backend, server) = start(64 * 1024).await;
    let api = Api::new(&server);
    let k0 = key(1);
    api.post_json("/eth/v1/proving/provers", &registration(&k0, 32)).await;

    let response = api
        .http
        .post(format!("{}/eth/v1/proving/commitments", api.base))
        .header("content-type", "application/json")
        .body("{\"round\":")
        .send()
        .await
        .unwrap();
    assert!(error(response, 400).await.starts_with("Invalid JSON body"));
    let response = api
        .http
        .post(format!("{}/eth/v1/proving/commitments", api.base))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    error(response, 415).await;
    // A JSON body of the wrong shape, and quoted integers that are not integers.
    let mut wrong = serde_json::to_value(commitment(&k0, 0)).unwrap();
    wrong["message"]["prover"] = json!("zero");
    assert!(
        error(api.post_json("/eth/v1/proving/commitments", &wrong).await, 400)
            .await
            .contains("Invalid JSON body")
    );

    // Every truncation of a valid SSZ message, and garbage, is a 400: undecodable, or (cut
    // inside the trailing proof bytes) decodable but no longer matching its signature.
    let ssz = partial(&k0, 0).as_ssz_bytes();
    for len in (0..ssz.len()).step_by(37).chain([ssz.len() - 1]) {
        let message =
            error(api.post_ssz("/eth/v1/proving/partial_proofs", ssz[..len].to_vec()).await, 400)
                .await;
        assert!(
            message.starts_with("Invalid SSZ body") || message.contains("invalid signature"),
            "{len}: {message}"
        );
    }
    for seed in 0u8..20 {
        let garbage: Vec<u8> = (0..(seed as usize * 13))
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        for path in [
            "/eth/v1/proving/commitments",
            "/eth/v1/proving/full_proofs",
            "/eth/v1/proving/agg_proofs",
            "/eth/v1/proving/provers",
        ] {
            let status = api.post_ssz(path, garbage.clone()).await.status().as_u16();
            assert_eq!(status, 400, "{path} with {} garbage bytes", garbage.len());
        }
    }
    // Over the body limit: 413, both encodings.
    let big = vec![0u8; 100 * 1024];
    let message = error(api.post_ssz("/eth/v1/proving/partial_proofs", big).await, 413).await;
    assert!(message.contains("limit"), "{message}");
    let mut huge = partial(&k0, 0);
    huge.message.proof = vec![1u8; 200 * 1024].try_into().unwrap();
    error(api.post_json("/eth/v1/proving/partial_proofs", &huge).await, 413).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_stream_round_and_phase_transitions() {
    let (backend, server) = start(1 << 20).await;
    let api = Api::new(&server);
    error(api.get("/eth/v1/proving/events?topics=weather").await, 400).await;
    error(api.get("/eth/v1/proving/events").await, 400).await;

    let response = api.get("/eth/v1/proving/events?topics=phase_changed,round_closed").await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = response.bytes_stream().eventsource();
    let phase =
        ProvingEvent::PhaseChanged(PhaseChangedEvent { round: round_key(), phase: Phase::T2 });
    // The subscription is live once the response headers arrived; publish an unsubscribed topic
    // first, which must not come through.
    backend.publish(ProvingEvent::BlockProven(beacon_api::BlockEventData {
        block_root: BLOCK,
        slot: Slot(5),
    }));
    backend.publish(phase.clone());
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.event, "phase_changed");
    assert_eq!(ProvingEvent::decode(&event.event, &event.data).unwrap(), phase);
    // Shutting down ends open streams instead of hanging.
    tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await.unwrap().unwrap();
}

#[tokio::test]
async fn proving_client_against_the_server() {
    let (backend, server) = start(1 << 20).await;
    // A dead sidecar first: the client falls back to the live one.
    let dead = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let client = beacon_api::ProvingClient::new(
        beacon_api::BeaconClient::new([dead, server.url()]).unwrap(),
    );
    let k0 = key(1);

    let receipt = client.register(&registration(&k0, 32)).await.unwrap();
    assert_eq!(receipt.prover_index, Some(ProverIndex(0)));
    for message in [
        ProtocolMessage::from(commitment(&k0, 0)),
        ProtocolMessage::from(partial(&k0, 0)),
        ProtocolMessage::from(full_proof(&k0, 0)),
    ] {
        let receipt = client.submit(&message).await.unwrap();
        assert_eq!((receipt.kind, receipt.status), (message.kind(), SubmissionStatus::Accepted));
        assert_eq!(client.verify(&message).await.unwrap(), VerificationVerdict::valid());
    }
    let err = client.submit(&ProtocolMessage::from(commitment(&key(2), 0))).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.api_error().unwrap().message.contains("invalid signature"));

    assert_eq!(client.rounds(beacon_api::BlockId::Head).await.unwrap(), block_rounds());
    assert!(client.duties(ProverIndex(0)).await.unwrap().duties.is_empty());
    assert_eq!(client.registry().await.unwrap().len(), 1);
    assert_eq!(client.reward_config().await.unwrap(), rewards::RewardsFile::default());
    let err = client.finalized_proof(beacon_api::BlockId::Head).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let proof = FinalizedProof {
        slot: Slot(5),
        block_root: BLOCK,
        full_proofs: vec![full_proof(&k0, 0)].try_into().unwrap(),
        agg_proof: Vec::new().try_into().unwrap(),
    };
    backend.insert_proof(proof.clone());
    assert_eq!(client.finalized_proof(beacon_api::BlockId::Root(BLOCK)).await.unwrap(), proof);
    assert!(client.partial_proofs(beacon_api::BlockId::Head).await.unwrap().is_empty());
    backend.insert_partial_proofs(BLOCK, vec![partial(&k0, 0)]);
    assert_eq!(
        client.partial_proofs(beacon_api::BlockId::Root(BLOCK)).await.unwrap(),
        vec![partial(&k0, 0)]
    );
    assert!(client.balances().await.unwrap().is_empty());
    server.shutdown().await.unwrap();
}
