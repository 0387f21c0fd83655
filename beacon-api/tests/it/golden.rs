//! Golden vectors: the examples of `ethereum/beacon-APIs` (`apis/eventstream/index.yaml`,
//! `apis/config/spec.yaml`, `apis/**` error examples) decoded and re-encoded, and block fixtures
//! assembled from the schema's field examples (`fixtures/`, one per fork shape).

use beacon_api::{
    ApiResponse, BeaconEvent, BlockHeaderData, Epoch, ErrorMessage, FinalityCheckpoints, ForkName,
    GenesisData, ProposerDuty, RandaoData, SignedBeaconBlock, Slot, SpecConfig, SyncingData,
    ValidatorIndex,
};
use serde_json::{Value, json};

const ROOT: &str = "0xcf8e0d4e9587369b2301d0790347320302cc0943d5a1884560367e8208d920f2";

/// Decodes `json` as `T`, re-encodes it and checks that nothing changed.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(json: &str) -> T {
    let value: T = serde_json::from_str(json).expect("decodes");
    let original: Value = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_value(&value).unwrap(), original, "re-encoding changed {json}");
    value
}

#[test]
fn event_examples_from_spec() {
    // Verbatim `data:` lines of `apis/eventstream/index.yaml`.
    let head = r#"{"slot":"10", "block":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf", "state":"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9", "epoch_transition":false, "previous_duty_dependent_root":"0x5e0043f107cb57913498fbf2f99ff55e730bf1e151f02f221e977c91a90a0e91", "current_duty_dependent_root":"0x5e0043f107cb57913498fbf2f99ff55e730bf1e151f02f221e977c91a90a0e91", "execution_optimistic": false}"#;
    let block = r#"{"slot":"10", "block":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf", "execution_optimistic": false}"#;
    let finalized = r#"{"block":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf", "state":"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9", "epoch":"2", "execution_optimistic": false }"#;
    let reorg = r#"{"slot":"200", "depth":"50", "old_head_block":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf", "new_head_block":"0x76262e91970d375a19bfe8a867288d7b9cde43c8635f598d93d39d041706fc76", "old_head_state":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf", "new_head_state":"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9", "epoch":"2", "execution_optimistic": false}"#;

    for (name, data) in [
        ("head", head),
        ("block", block),
        ("finalized_checkpoint", finalized),
        ("chain_reorg", reorg),
    ] {
        let event = BeaconEvent::decode(name, data).unwrap();
        assert_eq!(event.topic().as_str(), name);
        let original: Value = serde_json::from_str(data).unwrap();
        let reencoded: Value = serde_json::from_str(&event.data_json()).unwrap();
        assert_eq!(reencoded, original, "{name}");
    }
    let BeaconEvent::ChainReorg(r) = BeaconEvent::decode("chain_reorg", reorg).unwrap() else {
        panic!("not a reorg")
    };
    assert_eq!((r.slot, r.depth, r.epoch), (Slot(200), 50, Epoch(2)));
}

#[test]
fn spec_example_with_blob_schedule() {
    let json = r#"{"data":{"DEPOSIT_CONTRACT_ADDRESS":"0x00000000219ab540356cBB839Cbe05303d7705Fa","DEPOSIT_NETWORK_ID":"1","DOMAIN_AGGREGATE_AND_PROOF":"0x06000000","INACTIVITY_PENALTY_QUOTIENT":"67108864","INACTIVITY_PENALTY_QUOTIENT_ALTAIR":"50331648","BLOB_SCHEDULE":[{"EPOCH":"269568","MAX_BLOBS_PER_BLOCK":"6"},{"EPOCH":"364032","MAX_BLOBS_PER_BLOCK":"9"}]}}"#;
    let spec: ApiResponse<SpecConfig> = round_trip(json);
    assert_eq!(spec.data.get_u64("DEPOSIT_NETWORK_ID").unwrap(), Some(1));
    assert_eq!(spec.data.get("BLOB_SCHEDULE").unwrap().as_array().unwrap().len(), 2);
}

#[test]
fn error_examples() {
    for json in [
        r#"{"code":404,"message":"Block not found"}"#,
        r#"{"code":400,"message":"Invalid block ID: current"}"#,
        r#"{"code":500,"message":"Internal server error","stacktraces":["at a","at b"]}"#,
    ] {
        let e: ErrorMessage = round_trip(json);
        assert!(e.code >= 400);
    }
}

#[test]
fn genesis_syncing_randao_finality_duties_headers() {
    let g: ApiResponse<GenesisData> = round_trip(&format!(
        r#"{{"data":{{"genesis_time":"1590832934","genesis_validators_root":"{ROOT}","genesis_fork_version":"0x00000000"}}}}"#
    ));
    assert_eq!(g.data.genesis_time, 1_590_832_934);

    let s: ApiResponse<SyncingData> = round_trip(
        r#"{"data":{"head_slot":"1","sync_distance":"1","is_syncing":true,"is_optimistic":true,"el_offline":false}}"#,
    );
    assert!(s.data.is_syncing);
    // Older nodes omit `is_optimistic` and `el_offline`.
    let old: ApiResponse<SyncingData> = serde_json::from_str(
        r#"{"data":{"head_slot":"1","sync_distance":"0","is_syncing":false}}"#,
    )
    .unwrap();
    assert_eq!(old.data.el_offline, None);

    let r: ApiResponse<RandaoData> = round_trip(&format!(
        r#"{{"execution_optimistic":false,"finalized":false,"data":{{"randao":"{ROOT}"}}}}"#
    ));
    assert_eq!(r.data.randao.to_string(), ROOT);

    let f: ApiResponse<FinalityCheckpoints> = round_trip(&format!(
        r#"{{"execution_optimistic":false,"finalized":false,"data":{{"previous_justified":{{"epoch":"1","root":"{ROOT}"}},"current_justified":{{"epoch":"1","root":"{ROOT}"}},"finalized":{{"epoch":"1","root":"{ROOT}"}}}}}}"#
    ));
    assert_eq!(f.data.finalized.epoch, Epoch(1));

    let d: ApiResponse<Vec<ProposerDuty>> = round_trip(&format!(
        r#"{{"dependent_root":"{ROOT}","execution_optimistic":false,"data":[{{"pubkey":"0x93247f2209abcacf57b75a51dafae777f9dd38bc7053d1af526f220a7489a6d3a2753e5f3e8b1cfe39b56f43611df74a","validator_index":"1","slot":"1"}}]}}"#
    ));
    assert_eq!(d.data[0].validator_index, ValidatorIndex(1));

    let sig = format!("0x{}", "1b".repeat(96));
    let h: ApiResponse<BlockHeaderData> = round_trip(&format!(
        r#"{{"execution_optimistic":false,"finalized":false,"data":{{"root":"{ROOT}","canonical":true,"header":{{"message":{{"slot":"1","proposer_index":"1","parent_root":"{ROOT}","state_root":"{ROOT}","body_root":"{ROOT}"}},"signature":"{sig}"}}}}}}"#
    ));
    assert!(h.data.canonical);
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/it/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn blocks_v2_of_every_fork_shape() {
    let electra: ApiResponse<SignedBeaconBlock> = round_trip(&fixture("block_v2_electra.json"));
    assert_eq!(electra.version, Some(ForkName::Electra));
    let payload = electra.data.message.body.execution_payload.as_ref().unwrap();
    assert_eq!(payload.gas_used, 21_000);
    assert_eq!(payload.transactions.len(), 1);
    assert_eq!(payload.blob_gas_used, Some(131_072));

    // Lodestar-style: no `execution_optimistic` / `finalized`; Deneb has no execution requests.
    let deneb: ApiResponse<SignedBeaconBlock> =
        round_trip(&fixture("block_v2_deneb_lodestar.json"));
    assert_eq!(deneb.version, Some(ForkName::Deneb));
    assert_eq!(deneb.finalized, None);
    assert!(deneb.data.message.body.execution_requests.is_none());

    // Gloas moves the payload out of the block: no payload, the bid kept as an unknown field.
    let gloas: ApiResponse<SignedBeaconBlock> = round_trip(&fixture("block_v2_gloas.json"));
    assert!(gloas.data.message.body.execution_payload.is_none());
    assert!(gloas.data.message.body.other.contains_key("signed_execution_payload_bid"));

    let phase0: ApiResponse<SignedBeaconBlock> = round_trip(&fixture("block_v2_phase0.json"));
    assert!(phase0.data.message.body.sync_aggregate.is_none());
    assert!(phase0.data.message.body.execution_payload.is_none());
}

#[test]
fn quoted_integers_reject_garbage() {
    let bad = json!({"data": {"head_slot": "-1", "sync_distance": "0", "is_syncing": false}});
    assert!(serde_json::from_value::<ApiResponse<SyncingData>>(bad).is_err());
}
