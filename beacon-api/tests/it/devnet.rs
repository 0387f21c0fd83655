//! The client against the embedded devnet node over real loopback HTTP.

use std::{sync::Arc, time::Duration};

use beacon_api::{
    ApiResponse, Backoff, BeaconClient, BeaconEvent, BlockId, DevnetConfig, DevnetNode, Epoch,
    Error, EventStreamItem, EventTopic, ForkName, Health, ManualClock, Root, Slot,
};
use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

const GENESIS: u64 = 1_700_000_000;

fn config() -> DevnetConfig {
    DevnetConfig {
        seconds_per_slot: 2,
        slots_per_epoch: 4,
        genesis_time: Some(GENESIS),
        validator_count: 16,
        min_gas_used: 1_000_000,
        max_gas_used: 3_000_000,
        max_transactions: 40,
        history_slots: 64,
        keep_alive_secs: 1,
        ..DevnetConfig::default()
    }
}

struct Net {
    clock: ManualClock,
    node: DevnetNode,
}

impl Net {
    fn new() -> Self {
        let clock = ManualClock::new(Duration::from_secs(GENESIS));
        let node = DevnetNode::spawn_with_clock(config(), Arc::new(clock.clone())).unwrap();
        Self { clock, node }
    }

    /// Moves the clock to the start of `slot` and waits for the node to produce it.
    async fn to_slot(&self, slot: u64) {
        self.clock.set(Duration::from_secs(GENESIS + slot * 2));
        self.node.wait_for_slot(Slot(slot)).await;
    }
}

fn client(urls: &[String]) -> BeaconClient {
    BeaconClient::builder()
        .urls(urls.iter().cloned())
        .request_timeout(Duration::from_secs(5))
        .backoff(Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200) })
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_reads_every_endpoint() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    net.to_slot(10).await;
    let c = client(&[server.url()]);

    let genesis = c.genesis().await.unwrap();
    assert_eq!(genesis, net.node.genesis());
    assert_eq!(genesis.genesis_time, GENESIS);

    let spec = c.spec().await.unwrap();
    assert_eq!(spec.seconds_per_slot().unwrap(), Some(2));
    assert_eq!(spec.slots_per_epoch().unwrap(), Some(4));
    assert!(spec.get("BLOB_SCHEDULE").unwrap().is_array());

    let syncing = c.syncing().await.unwrap();
    assert_eq!(
        (syncing.head_slot, syncing.sync_distance, syncing.is_syncing),
        (Slot(10), 0, false)
    );
    assert_eq!(c.health().await.unwrap(), Health::Ready);

    let head = c.header(BlockId::Head).await.unwrap();
    assert_eq!(head.data.header.message.slot, Slot(10));
    assert!(head.data.canonical);
    assert_eq!(head.data, net.node.head());
    let by_slot = c.header(BlockId::Slot(Slot(10))).await.unwrap();
    let by_root = c.header(BlockId::Root(head.data.root)).await.unwrap();
    assert_eq!(by_slot.data, head.data);
    assert_eq!(by_root.data, head.data);

    // Blocks: execution payloads with transactions and varying gas; parents chain.
    let mut gas = Vec::new();
    let mut parent_root = c.header(BlockId::Genesis).await.unwrap().data.root;
    for slot in 1..=10 {
        let block = c.block(BlockId::Slot(Slot(slot))).await.unwrap();
        assert_eq!(block.version, Some(ForkName::Electra));
        let message = &block.data.message;
        assert_eq!(message.parent_root, parent_root);
        let header = c.header(BlockId::Slot(Slot(slot))).await.unwrap().data;
        parent_root = header.root;
        let payload = message.body.execution_payload.as_ref().unwrap();
        assert!((1_000_000..=3_000_000).contains(&payload.gas_used));
        assert_eq!(payload.transactions.len() as u64, payload.gas_used.div_ceil(100_000).min(40));
        assert_eq!(payload.timestamp, GENESIS + slot * 2);
        gas.push(payload.gas_used);

        // RANDAO per spec: mix = xor(previous mix, sha256(reveal)); the payload's prev_randao is
        // the parent state's mix.
        let mix = c.randao(BlockId::Root(message.state_root), None).await.unwrap().data.randao;
        let reveal_hash = Sha256::digest(message.body.randao_reveal.as_slice());
        let expected: Vec<u8> =
            payload.prev_randao.iter().zip(reveal_hash).map(|(a, b)| a ^ b).collect();
        assert_eq!(mix.as_slice(), expected.as_slice(), "slot {slot}");
    }
    assert!(gas.windows(2).any(|w| w[0] != w[1]), "gas used must vary: {gas:?}");

    // RANDAO of past epochs from the head state; future epochs are out of range.
    let mix_epoch1 = c.randao(BlockId::Head, Some(Epoch(1))).await.unwrap().data.randao;
    let state7 = c.block(BlockId::Slot(Slot(7))).await.unwrap().data.message.state_root;
    assert_eq!(mix_epoch1, c.randao(BlockId::Root(state7), None).await.unwrap().data.randao);
    let err = c.randao(BlockId::Head, Some(Epoch(9))).await.unwrap_err();
    assert_eq!(err.status(), Some(400));

    // Finality: epoch 2 entered at slot 8 finalizes epoch 0.
    let fin = c.finality_checkpoints(BlockId::Head).await.unwrap();
    assert_eq!(fin.data.finalized.epoch, Epoch(0));
    assert_eq!(fin.data.current_justified.epoch, Epoch(1));
    let finalized_block = c.header(BlockId::Finalized).await.unwrap();
    assert_eq!(finalized_block.data.root, fin.data.finalized.root);
    assert_eq!(finalized_block.finalized, Some(true));

    // Proposer duties match the blocks' proposers, for the current and next epoch.
    let duties = c.proposer_duties(Epoch(2)).await.unwrap();
    assert_eq!(duties.data.len(), 4);
    assert_eq!(
        duties.dependent_root,
        Some(c.header(BlockId::Slot(Slot(7))).await.unwrap().data.root)
    );
    for duty in duties.data.iter().filter(|d| d.slot <= Slot(10)) {
        let block = c.block(BlockId::Slot(duty.slot)).await.unwrap();
        assert_eq!(block.data.message.proposer_index, duty.validator_index);
    }
    let next = c.proposer_duties(Epoch(3)).await.unwrap();
    net.to_slot(15).await;
    for duty in &next.data {
        let block = c.block(BlockId::Slot(duty.slot)).await.unwrap();
        assert_eq!(block.data.message.proposer_index, duty.validator_index);
    }
    server.shutdown().await.unwrap();
}

/// Required keys per `ethereum/beacon-APIs` (`types/electra/block.yaml`,
/// `types/deneb/execution_payload.yaml`, `types/phase0/block.yaml`, `apis/**`).
#[tokio::test]
async fn responses_have_the_fields_the_spec_requires() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    net.to_slot(3).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("{}{path}", server.url());
        let http = http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            assert!(response.status().is_success());
            response.json::<Value>().await.unwrap()
        }
    };
    fn has(value: &Value, keys: &[&str], what: &str) {
        for key in keys {
            assert!(value.get(key).is_some(), "{what} lacks {key}: {value}");
        }
    }
    fn is_quoted_uint(value: &Value) -> bool {
        value.as_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
    }

    let block = get("/eth/v2/beacon/blocks/head").await;
    has(&block, &["version", "execution_optimistic", "finalized", "data"], "GetBlockV2Response");
    has(&block["data"], &["message", "signature"], "SignedBeaconBlock");
    let message = &block["data"]["message"];
    has(message, &["slot", "proposer_index", "parent_root", "state_root", "body"], "BeaconBlock");
    has(
        &message["body"],
        &[
            "randao_reveal",
            "eth1_data",
            "graffiti",
            "proposer_slashings",
            "attester_slashings",
            "attestations",
            "deposits",
            "voluntary_exits",
            "sync_aggregate",
            "bls_to_execution_changes",
            "blob_kzg_commitments",
            "execution_payload",
            "execution_requests",
        ],
        "Electra.BeaconBlockBody",
    );
    let payload = &message["body"]["execution_payload"];
    has(
        payload,
        &[
            "parent_hash",
            "fee_recipient",
            "state_root",
            "receipts_root",
            "logs_bloom",
            "prev_randao",
            "block_number",
            "gas_limit",
            "gas_used",
            "timestamp",
            "extra_data",
            "base_fee_per_gas",
            "blob_gas_used",
            "excess_blob_gas",
            "block_hash",
            "transactions",
            "withdrawals",
        ],
        "Deneb.ExecutionPayload",
    );
    has(
        &message["body"]["execution_requests"],
        &["deposits", "withdrawals", "consolidations"],
        "ExecutionRequests",
    );
    for key in ["block_number", "gas_limit", "gas_used", "timestamp", "base_fee_per_gas"] {
        assert!(is_quoted_uint(&payload[key]), "{key} must be a quoted integer: {}", payload[key]);
    }
    assert!(is_quoted_uint(&message["slot"]));
    assert_eq!(payload["logs_bloom"].as_str().unwrap().len(), 2 + 512);

    let header = get("/eth/v1/beacon/headers/head").await;
    has(&header, &["execution_optimistic", "finalized", "data"], "GetBlockHeaderResponse");
    has(&header["data"], &["root", "canonical", "header"], "header data");
    has(
        &header["data"]["header"]["message"],
        &["slot", "proposer_index", "parent_root", "state_root", "body_root"],
        "BeaconBlockHeader",
    );

    let genesis = get("/eth/v1/beacon/genesis").await;
    has(
        &genesis["data"],
        &["genesis_time", "genesis_validators_root", "genesis_fork_version"],
        "genesis",
    );
    let syncing = get("/eth/v1/node/syncing").await;
    has(
        &syncing["data"],
        &["head_slot", "sync_distance", "is_syncing", "is_optimistic", "el_offline"],
        "syncing",
    );
    let randao = get("/eth/v1/beacon/states/head/randao").await;
    has(&randao, &["execution_optimistic", "finalized", "data"], "GetStateRandaoResponse");
    has(&randao["data"], &["randao"], "randao");
    let fin = get("/eth/v1/beacon/states/head/finality_checkpoints").await;
    has(&fin["data"], &["previous_justified", "current_justified", "finalized"], "finality");
    has(&fin["data"]["finalized"], &["epoch", "root"], "Checkpoint");
    let duties = get("/eth/v1/validator/duties/proposer/0").await;
    has(&duties, &["dependent_root", "execution_optimistic", "data"], "GetProposerDutiesResponse");
    has(&duties["data"][0], &["pubkey", "validator_index", "slot"], "ProposerDuty");
    assert_eq!(duties["data"][0]["pubkey"].as_str().unwrap().len(), 2 + 96);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_paths_surface_code_and_message() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    net.to_slot(2).await;
    let c = client(&[server.url()]);

    let err = c.block(BlockId::Slot(Slot(99))).await.unwrap_err();
    assert_eq!(err.api_error().unwrap().code, 404);
    assert_eq!(err.api_error().unwrap().message, "Block not found");
    let err = c.header(BlockId::Root(Root::repeat_byte(9))).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = c.proposer_duties(Epoch(50)).await.unwrap_err();
    assert_eq!(err.status(), Some(400));

    let http = reqwest::Client::new();
    for (path, accept, status, message) in [
        ("/eth/v2/beacon/blocks/current", "application/json", 400, "Invalid block ID: current"),
        ("/eth/v1/beacon/states/0x12/randao", "application/json", 400, "Invalid state ID: 0x12"),
        ("/eth/v1/beacon/states/head/randao?epoch=x", "application/json", 400, "Invalid epoch: x"),
        (
            "/eth/v1/events?topics=weather_forecast",
            "text/event-stream",
            400,
            "Invalid topic: weather_forecast",
        ),
        ("/eth/v1/events", "text/event-stream", 400, "Missing topics"),
        ("/eth/v2/beacon/blocks/head", "application/octet-stream", 406, ""),
        ("/eth/v1/no/such/route", "application/json", 404, ""),
    ] {
        let response = http
            .get(format!("{}{path}", server.url()))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: beacon_api::ErrorMessage = response.json().await.unwrap();
        assert_eq!(body.code, status);
        assert!(body.message.contains(message), "{path}: {}", body.message);
    }
    let response = http.post(format!("{}/eth/v1/node/health", server.url())).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.shutdown().await.unwrap();
}

/// A loopback address with nothing listening.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn falls_back_in_order_and_times_out() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    net.to_slot(1).await;

    let dead = dead_url().await;
    let c = client(&[dead.clone(), server.url()]);
    assert_eq!(c.syncing().await.unwrap().head_slot, Slot(1));
    // A definitive 400 from a live node is returned as is, not retried elsewhere.
    let err = c.proposer_duties(Epoch(99)).await.unwrap_err();
    assert!(matches!(&err, Error::Api { status: 400, .. }), "{err}");
    // A 404 is retried on the next node; with every node failing, each error is kept in order.
    let c = client(&[server.url(), server.url()]);
    let err = c.block(BlockId::Slot(Slot(50))).await.unwrap_err();
    assert!(matches!(&err, Error::AllEndpointsFailed { errors } if errors.len() == 2), "{err}");
    assert_eq!(err.status(), Some(404));

    let c = client(&[dead.clone(), dead_url().await]);
    assert!(
        matches!(c.genesis().await, Err(Error::AllEndpointsFailed { errors }) if errors.len() == 2)
    );

    // A node that accepts connections and never answers: the request times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let c = BeaconClient::builder()
        .url(silent_url)
        .request_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(matches!(c.genesis().await, Err(Error::Timeout { .. })));
    hold.abort();
    server.shutdown().await.unwrap();
}

async fn next_event(stream: &mut beacon_api::EventStream) -> EventStreamItem {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an event within 20 s")
        .expect("the stream does not end")
        .expect("a decodable event")
}

#[tokio::test]
async fn events_follow_slots_and_a_reorg() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // The first URL is dead: the event stream falls back to the second.
    let c = client(&[dead_url().await, server.url()]);
    let mut stream = c.events(&EventTopic::ALL);
    // Wait until the subscription is live: keep producing slots until an event arrives.
    let mut slot = 0;
    let first = loop {
        slot += 1;
        net.to_slot(slot).await;
        if let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(300), stream.next()).await
        {
            break item.unwrap();
        }
    };
    assert!(matches!(first, EventStreamItem::Event(BeaconEvent::Block(_))), "{first:?}");
    let EventStreamItem::Event(BeaconEvent::Head(head)) = next_event(&mut stream).await else {
        panic!("head expected")
    };
    assert_eq!(head.slot, Slot(slot));

    net.to_slot(slot + 6).await;
    let mut last_head = None;
    while last_head != Some(Slot(slot + 6)) {
        if let EventStreamItem::Event(BeaconEvent::Head(h)) = next_event(&mut stream).await {
            last_head = Some(h.slot);
        }
    }
    let old_head = net.node.head();
    let reorg = net.node.inject_reorg(2).unwrap();
    let mut blocks = 0;
    loop {
        match next_event(&mut stream).await {
            EventStreamItem::Event(BeaconEvent::Block(_)) => blocks += 1,
            // Left over from the slots before the reorg.
            EventStreamItem::Event(BeaconEvent::FinalizedCheckpoint(_)) => {}
            EventStreamItem::Event(BeaconEvent::ChainReorg(r)) => {
                assert_eq!(r, reorg);
                assert_eq!(r.old_head_block, old_head.root);
                assert_eq!(r.depth, 2);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(blocks, 2);
    let EventStreamItem::Event(BeaconEvent::Head(h)) = next_event(&mut stream).await else {
        panic!("head expected")
    };
    assert_eq!(h.block, reorg.new_head_block);
    // The old head is still served, as non-canonical.
    let old = c.header(BlockId::Root(old_head.root)).await.unwrap();
    assert!(!old.data.canonical);
    assert_eq!(c.header(BlockId::Head).await.unwrap().data.root, reorg.new_head_block);
    assert!(matches!(net.node.inject_reorg(1000), Err(Error::ReorgTooDeep { .. })));
    drop(stream);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_reconnect_after_a_server_restart_and_resume_from_the_head() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.addr();
    let c = client(&[server.url()]);
    let mut stream = c.events(&[EventTopic::Head]);
    let mut slot = 0;
    loop {
        slot += 1;
        net.to_slot(slot).await;
        if let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(300), stream.next()).await
        {
            assert!(matches!(item.unwrap(), EventStreamItem::Event(BeaconEvent::Head(_))));
            break;
        }
    }
    // Restart: the stream breaks, slots pass unseen, the server comes back on the same port.
    server.shutdown().await.unwrap();
    net.to_slot(slot + 3).await;
    let server = net.node.serve(addr).await.unwrap();
    let item = next_event(&mut stream).await;
    let EventStreamItem::Reconnected { head, .. } = item else {
        panic!("expected a reconnect, got {item:?}")
    };
    assert_eq!(head.data.header.message.slot, Slot(slot + 3));
    // Events flow again on the new connection.
    net.to_slot(slot + 4).await;
    let EventStreamItem::Event(BeaconEvent::Head(h)) = next_event(&mut stream).await else {
        panic!("head expected")
    };
    assert_eq!(h.slot, Slot(slot + 4));
    drop(stream);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_from_head_start_with_the_head_read_after_subscribing() {
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    net.to_slot(2).await;
    let c = client(&[server.url()]);
    let mut stream = c.events_from_head(&[EventTopic::Head]);
    // The first item is the head at subscription, although no event has been emitted since.
    let EventStreamItem::Reconnected { head, .. } = next_event(&mut stream).await else {
        panic!("the head first")
    };
    assert_eq!(head.data.header.message.slot, Slot(2));
    // Then the heads that follow, none missed.
    net.to_slot(3).await;
    let EventStreamItem::Event(BeaconEvent::Head(h)) = next_event(&mut stream).await else {
        panic!("head expected")
    };
    assert_eq!(h.slot, Slot(3));
    drop(stream);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn envelope_of_raw_block_response_decodes_with_and_without_header() {
    // Lodestar omits the Eth-Consensus-Version header: the body's `version` suffices.
    let net = Net::new();
    let server = net.node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    net.to_slot(1).await;
    let response = reqwest::get(format!("{}/eth/v2/beacon/blocks/1", server.url())).await.unwrap();
    assert_eq!(response.headers()["eth-consensus-version"], "electra");
    let body: ApiResponse<beacon_api::SignedBeaconBlock> = response.json().await.unwrap();
    assert_eq!(body.version, Some(ForkName::Electra));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn system_clock_catches_up_from_a_past_genesis() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let config = DevnetConfig {
        seconds_per_slot: 1,
        slots_per_epoch: 4,
        genesis_time: Some(now - 6),
        validator_count: 8,
        history_slots: 64,
        ..DevnetConfig::default()
    };
    let node = DevnetNode::spawn(config).unwrap();
    // Slots since genesis are produced at once, without waiting for real time.
    tokio::time::timeout(Duration::from_secs(30), node.wait_for_slot(Slot(6))).await.unwrap();
    let server = node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = client(&[server.url()]);
    let syncing = c.syncing().await.unwrap();
    assert!(syncing.head_slot >= Slot(6));
    assert!(!syncing.is_syncing);
    server.shutdown().await.unwrap();
}
