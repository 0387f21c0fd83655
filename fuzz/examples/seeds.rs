//! Writes the seed corpora of the fuzz targets, `fuzz/corpus/<target>/`, from the project's
//! fixtures: messages of one round signed with fixed BLS keys, the
//! stored proof fixtures of `plonky3-prover`, the beacon block fixtures of `beacon-api`, the
//! shipped config and scenario files, and a cheap EIP-2335 keystore.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.
//! The files are small and committed; libFuzzer adds what it finds to the same folders during
//! a run, which `.gitignore` leaves out.

use std::fs;
use std::path::{Path, PathBuf};

use beacon_api::{
    AccountBalance, ApiResponse, BlockRounds, ErrorMessage, FinalizedProof, ProverDuties,
    ProvingEvent, RegistryEntry, RoundClosedEvent, SubmissionReceipt, SubmissionStatus,
    VerificationVerdict,
};
use phase_engine::bls::SecretKey;
use phase_engine::{
    AggProof, AirCommitment, AirIndex, Attempt, BlockInfo, Capabilities, Commitment, Decline,
    FullProof, FullProofBody, IncludedMessage, InclusionRecord, MessageKind, PartRef, PartialProof,
    ProtocolMessage, ProverIndex, ProverRecord, ProverRegistration, Root, RoundRef, SignedAggProof,
    SignedCommitment, SignedDecline, SignedFullProof, SignedPartialProof, SignedProverRegistration,
    SigningContext, Slot, SubBlockIndex, UnixMillis, ValidatorIndex, Verdict,
};

/// A prover's stake in the seeds (32 ETH in Gwei).
const STAKE: u64 = 32_000_000_000;
use plonky3_prover::{AggProofHeader, FORMAT_VERSION};
use serde::Serialize;
use sidecar_node::{
    BlockData, Gossiped, LoggedInput, SyncItem, encode_gossip, encode_sync_message,
};
use sidecar_p2p::{
    ErrorCode, ResponseError, SyncProtocol, encode_request_bytes, encode_response_bytes,
};
use ssz::Encode;
// Built with cargo fuzz's flags (docs/fuzzing.md) to reuse its build, the example needs the
// coverage callbacks of libFuzzer's runtime.
use libfuzzer_sys as _;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Result<Self> {
        let dir = root.join("fuzz/corpus").join(target);
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Writes `bytes` as seed `name`.
    fn put(&self, name: &str, bytes: impl AsRef<[u8]>) -> Result {
        Ok(fs::write(self.dir.join(format!("{name}.seed")), bytes)?)
    }

    /// Writes `selector` then `bytes` as seed `name`.
    fn put_with(&self, name: &str, selector: u8, bytes: impl AsRef<[u8]>) -> Result {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes.as_ref());
        self.put(name, seed)
    }

    /// Writes `selector` then the JSON of `value` as seed `name`.
    fn json<T: Serialize>(&self, name: &str, selector: u8, value: &T) -> Result {
        self.put_with(name, selector, serde_json::to_vec(value)?)
    }
}

fn main() -> Result {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");

    // Messages of one round, signed with fixed keys (the targets decode, they do not verify, but
    // real signatures keep the seeds realistic).
    let ctx = SigningContext::default();
    let key = |i: u8| SecretKey::from_ikm(&[i; 32]).map_err(|e| format!("{e:?}"));
    let block = BlockInfo {
        slot: Slot(100),
        root: Root::repeat_byte(0xb1),
        parent_root: Root::repeat_byte(0xb0),
        proposer: ValidatorIndex(7),
        randao_mix: Root::repeat_byte(0x5e),
        gas_used: 10_000_000,
        slot_start: UnixMillis(1_700_000_000_000),
    };
    let round = RoundRef {
        slot: block.slot,
        block_root: block.root,
        sub_block: SubBlockIndex(0),
        attempt: Attempt(0),
    };
    let prover = ProverIndex(3);
    let air = AirIndex(1);
    let parts =
        vec![PartRef { author: prover, air: AirIndex(0) }, PartRef { author: ProverIndex(4), air }];
    let body = FullProofBody {
        parts: parts.try_into().map_err(|e| format!("{e:?}"))?,
        reuse_bloom: list(&[0x10; 64])?,
        bundle: list(b"full proof bundle")?,
    };
    let reg_key = key(20)?;
    let reg = SignedProverRegistration::sign(
        ProverRegistration {
            pubkey: reg_key.public_key(),
            stake: STAKE,
            capabilities: Capabilities {
                gpu_count: 1,
                gpu_memory_mib: 81_920,
                max_trace_log_rows: 22,
            },
            proof_of_possession: reg_key.proof_of_possession(),
        },
        &reg_key,
        &ctx,
    );
    let trace_roots = vec![
        AirCommitment { air: AirIndex(0), trace_root: Root::repeat_byte(0x70) },
        AirCommitment { air, trace_root: Root::repeat_byte(0x71) },
    ];
    let commitment = Commitment {
        round,
        prover,
        trace_roots: trace_roots.clone().try_into().map_err(|e| format!("{e:?}"))?,
        full_proof: Default::default(),
    };
    let commitment_full = Commitment {
        full_proof: vec![body.clone()].try_into().map_err(|e| format!("{e:?}"))?,
        ..commitment.clone()
    };
    let signer = key(3)?;
    let commitment = SignedCommitment::sign(commitment, &signer, &ctx);
    let commitment_full = SignedCommitment::sign(commitment_full, &signer, &ctx);
    let decline = SignedDecline::sign(Decline { round, prover }, &signer, &ctx);
    let partial = SignedPartialProof::sign(
        PartialProof {
            round,
            prover,
            air,
            trace_root: Root::repeat_byte(0x71),
            proof: list(b"partial proof")?,
        },
        &signer,
        &ctx,
    );
    let full = SignedFullProof::sign(FullProof { round, submitter: prover, body }, &signer, &ctx);
    let agg = SignedAggProof::sign(
        AggProof {
            slot: block.slot,
            block_root: block.root,
            submitter: prover,
            bundle: list(b"agg proof bundle")?,
        },
        &signer,
        &ctx,
    );
    let messages = [
        ProtocolMessage::Commitment(commitment.clone()),
        ProtocolMessage::Commitment(commitment_full.clone()),
        ProtocolMessage::Decline(decline.clone()),
        ProtocolMessage::PartialProof(partial.clone()),
        ProtocolMessage::FullProof(full.clone()),
        ProtocolMessage::AggProof(agg.clone()),
    ];
    let record = InclusionRecord {
        slot: block.slot,
        proposer_index: block.proposer,
        messages: messages
            .iter()
            .enumerate()
            .map(|(i, m)| IncludedMessage {
                id: m.signing_root(&ctx),
                arrived_at: UnixMillis(block.slot_start.0 + 100 * i as u64),
            })
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|e| format!("{e:?}"))?,
    };
    let finalized = FinalizedProof {
        slot: block.slot,
        block_root: block.root,
        full_proofs: vec![full.clone()].try_into().map_err(|e| format!("{e:?}"))?,
        agg_proof: vec![agg.clone()].try_into().map_err(|e| format!("{e:?}"))?,
    };
    let ids: Vec<Root> = messages.iter().map(|m| m.signing_root(&ctx)).collect();

    let c = Corpus::new(&root, "ssz_messages")?;
    c.put_with("registration", 0, reg.as_ssz_bytes())?;
    c.put_with("commitment", 1, commitment.as_ssz_bytes())?;
    c.put_with("commitment_full", 1, commitment_full.as_ssz_bytes())?;
    c.put_with("decline", 2, decline.as_ssz_bytes())?;
    c.put_with("partial", 3, partial.as_ssz_bytes())?;
    c.put_with("full", 4, full.as_ssz_bytes())?;
    c.put_with("agg", 5, agg.as_ssz_bytes())?;
    c.put_with("record", 6, record.as_ssz_bytes())?;
    c.put_with("finalized", 7, finalized.as_ssz_bytes())?;
    c.put_with("partials", 8, vec![partial.clone()].as_ssz_bytes())?;
    c.put_with("ids", 9, ids.as_ssz_bytes())?;
    c.put_with("graffiti", 10, record.graffiti())?;

    let c = Corpus::new(&root, "gossip_envelope")?;
    let gossiped = messages
        .iter()
        .cloned()
        .map(Gossiped::Message)
        .chain([Gossiped::Registration(reg.clone()), Gossiped::Record(record.clone())]);
    for (i, item) in gossiped.enumerate() {
        let (topic, bytes) = encode_gossip(&item, UnixMillis(1_700_000_000_000));
        let selector =
            sidecar_node::GOSSIP_TOPICS.iter().position(|t| *t == topic).ok_or("unknown topic")?;
        c.put_with(&format!("{topic}_{i}"), selector as u8, &bytes)?;
        // The same payload compressed as gossipsub carries it.
        let compressed = snap::raw::Encoder::new().compress_vec(&bytes)?;
        Corpus::new(&root, "snappy_gossip")?.put_with(&format!("{topic}_{i}"), 0, compressed)?;
    }

    let c = Corpus::new(&root, "sync_payloads")?;
    c.put_with("records_request", 0, sidecar_node::records_request(7, 64))?;
    c.put_with("ids", 1, ids.as_ssz_bytes())?;
    for (i, m) in messages.iter().enumerate() {
        c.put_with(
            &format!("message_{i}"),
            2,
            encode_sync_message(&SyncItem::Message(m.clone())).ok_or("no kind")?,
        )?;
    }

    let c = Corpus::new(&root, "reqresp_frames")?;
    let limits = SyncProtocol::MessagesById.default_limits();
    c.put_with("request_ids", 2, encode_request_bytes(&ids.as_ssz_bytes(), &limits)?)?;
    c.put_with("request_empty", 2, encode_request_bytes(&[], &limits)?)?;
    let chunks: Vec<Vec<u8>> = messages
        .iter()
        .filter_map(|m| encode_sync_message(&SyncItem::Message(m.clone())))
        .take(3)
        .collect();
    c.put_with("response", 0x82, encode_response_bytes(chunks.clone(), None, &limits)?)?;
    let error = ResponseError::new(ErrorCode::ResourceUnavailable, "pruned");
    c.put_with(
        "response_error",
        0x80,
        encode_response_bytes(chunks[..1].to_vec(), Some(error), &limits)?,
    )?;
    let records = vec![record.as_ssz_bytes()];
    c.put_with("response_records", 0x81, encode_response_bytes(records, None, &limits)?)?;

    let c = Corpus::new(&root, "proof_encodings")?;
    let fixtures = root.join("plonky3-prover/tests/fixtures");
    for name in ["partial_v1.bin", "batch_v1.bin", "full_v1.bin"] {
        c.put(name.trim_end_matches(".bin"), fs::read(fixtures.join(name))?)?;
    }
    // An AggProof of the one full proof (its envelope only: the fixture's block plan is not at
    // hand, and the decoder checks only the count of sub-blocks against the header).
    let full_proof =
        plonky3_prover::FullProof::from_bytes(&fs::read(fixtures.join("full_v1.bin"))?)?;
    let header = AggProofHeader {
        round_digest: full_proof.header().round_digest,
        initial_state: full_proof.header().input_state,
        output_state: full_proof.header().output_state,
        builder: full_proof.header().builder,
        num_sub_blocks: 1,
    };
    let agg_bytes = postcard::to_extend(
        &(header, vec![full_proof.as_bytes().to_vec()]),
        vec![FORMAT_VERSION, 3],
    )?;
    plonky3_prover::AggProof::from_bytes(&agg_bytes)?;
    c.put("agg_v1", agg_bytes)?;

    let c = Corpus::new(&root, "api_json")?;
    c.json("registration", 0, &reg)?;
    for (i, m) in messages.iter().enumerate() {
        c.json(&format!("message_{i}"), 1, m)?;
    }
    c.json("commitment", 2, &commitment_full)?;
    c.json("decline", 3, &decline)?;
    c.json("partial", 4, &partial)?;
    c.json("full", 5, &full)?;
    c.json("agg", 6, &agg)?;
    let receipt = SubmissionReceipt {
        kind: MessageKind::Commitment,
        signing_root: ids[0],
        status: SubmissionStatus::Accepted,
        prover_index: Some(prover),
    };
    c.json("receipt", 7, &ApiResponse::new(receipt))?;
    let rounds = BlockRounds {
        block_root: block.root,
        slot: block.slot,
        rounds: vec![],
        closed: vec![],
        outcome: None,
    };
    c.json("rounds", 8, &ApiResponse::new(rounds))?;
    let duties = ProverDuties { prover, duties: vec![], aggregation: vec![] };
    c.json("duties", 9, &ApiResponse::new(duties))?;
    c.json("finalized", 10, &ApiResponse::new(finalized.clone()))?;
    c.json("partials", 11, &ApiResponse::new(vec![partial.clone()]))?;
    let balances = vec![
        AccountBalance {
            account: rewards::Account::Prover(prover),
            balance: phase_engine::Amount(42),
        },
        AccountBalance {
            account: rewards::Account::Validator(block.proposer),
            balance: phase_engine::Amount(-7),
        },
    ];
    c.json("balances", 13, &ApiResponse::new(balances))?;
    let entry = RegistryEntry {
        index: ProverIndex(0),
        record: ProverRecord {
            pubkey: reg.message.pubkey,
            stake: STAKE,
            capabilities: Default::default(),
            active: true,
            reputation: 0,
        },
    };
    c.json("registry", 14, &ApiResponse::new(vec![entry]))?;
    c.json("reward_config", 15, &ApiResponse::new(rewards::Config::default().to_file()))?;
    c.json("verdict", 16, &ApiResponse::new(VerificationVerdict::invalid("bad proof")))?;
    let error = ErrorMessage { code: 400, message: "Invalid JSON body".into(), stacktraces: None };
    c.json("error", 17, &error)?;
    let event =
        ProvingEvent::RoundClosed(RoundClosedEvent { round: round.key(), finalized_in: None });
    let topic = beacon_api::ProvingTopic::ALL
        .iter()
        .position(|t| *t == event.topic())
        .ok_or("unknown topic")?;
    // A selector `s` with `s % 20 >= 18` reads an event of topic `s % 6`.
    let selector = (0u8..=255).find(|s| s % 20 >= 18 && usize::from(*s) % 6 == topic);
    c.put_with("event_round_closed", selector.ok_or("no selector")?, event.data_json())?;

    let c = Corpus::new(&root, "beacon_json")?;
    let blocks = root.join("beacon-api/tests/it/fixtures");
    for name in ["block_v2_phase0", "block_v2_deneb_lodestar", "block_v2_electra", "block_v2_gloas"]
    {
        c.put_with(name, 4, fs::read(blocks.join(format!("{name}.json")))?)?;
    }
    c.put_with(
        "genesis",
        0,
        r#"{"data":{"genesis_time":"1606824023","genesis_validators_root":"0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95","genesis_fork_version":"0x00000000"}}"#,
    )?;
    c.put_with(
        "spec",
        1,
        r#"{"data":{"SECONDS_PER_SLOT":"12","SLOTS_PER_EPOCH":"32","SLOT_DURATION_MS":"12000"}}"#,
    )?;
    c.put_with("syncing", 2, r#"{"data":{"head_slot":"100","sync_distance":"0","is_syncing":false,"is_optimistic":false,"el_offline":false}}"#)?;
    c.put_with(
        "randao",
        5,
        r#"{"execution_optimistic":false,"finalized":false,"data":{"randao":"0xcf8e0d4e9587369b2301d0790347320302cc0943d5a1884560367e8208d920f2"}}"#,
    )?;
    c.put_with(
        "duties",
        7,
        r#"{"dependent_root":"0xcf8e0d4e9587369b2301d0790347320302cc0943d5a1884560367e8208d920f2","execution_optimistic":false,"data":[{"pubkey":"0xa1d1ad0714035353258038e964ae9675dc0252ee22cea896825c01458e1807bfad2f9969338798548d9858a571f7425c","validator_index":"1","slot":"1"}]}"#,
    )?;
    c.put_with("keystores", 8, r#"{"data":[{"validating_pubkey":"0xa1d1ad0714035353258038e964ae9675dc0252ee22cea896825c01458e1807bfad2f9969338798548d9858a571f7425c","derivation_path":"m/12381/3600/0/0/0","readonly":false}]}"#)?;
    c.put_with("graffiti", 9, r#"{"data":{"pubkey":"0xa1d1ad0714035353258038e964ae9675dc0252ee22cea896825c01458e1807bfad2f9969338798548d9858a571f7425c","graffiti":"pv1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#)?;
    c.put_with("error", 10, r#"{"code":404,"message":"Block not found","stacktraces":[]}"#)?;
    c.put_with(
        "events",
        11 + 13 * 3,
        "event: head\ndata: {\"slot\":\"10\",\"block\":\"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf\",\"state\":\"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9\",\"epoch_transition\":false,\"previous_duty_dependent_root\":\"0x5e0043f107cb57913498fbf2f99ff55e730bf1e151f02f221e977c91a90a0e91\",\"current_duty_dependent_root\":\"0x5e0043f107cb57913498fbf2f99ff55e730bf1e151f02f221e977c91a90a0e91\",\"execution_optimistic\":false}\n\n: keep-alive\n\nevent: finalized_checkpoint\ndata: {\"block\":\"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf\",\"state\":\"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9\",\"epoch\":\"2\",\"execution_optimistic\":false}\n\n",
    )?;

    let c = Corpus::new(&root, "keystore")?;
    let prover_key = sidecar_keystore::ProverKey::from_ikm(&[7; 32])?;
    let password = sidecar_keystore::Password::new("testpassword");
    for (name, kdf) in [
        ("scrypt", sidecar_keystore::Kdf::Scrypt { log_n: 4, r: 8, p: 1 }),
        ("pbkdf2", sidecar_keystore::Kdf::Pbkdf2 { c: 16 }),
    ] {
        let keystore = sidecar_keystore::Keystore::encrypt(&prover_key, &password, kdf)?;
        c.put(name, keystore.to_json())?;
    }

    let c = Corpus::new(&root, "config_toml")?;
    for (name, path) in [
        ("sidecar", "configs/sidecar.toml"),
        ("local", "testnets/local/sidecar.toml"),
        ("rewards", "configs/rewards.toml"),
        ("rewards_proposed", "configs/rewards-proposed.toml"),
    ] {
        c.put(name, fs::read(root.join(path))?)?;
    }

    let c = Corpus::new(&root, "scenario_toml")?;
    for entry in fs::read_dir(root.join("configs/scenarios"))? {
        let path = entry?.path();
        let name = path.file_stem().and_then(|s| s.to_str()).ok_or("bad name")?.to_owned();
        c.put(&name, fs::read(&path)?)?;
    }

    let c = Corpus::new(&root, "input_log")?;
    let inputs = [
        LoggedInput::Block {
            info: block,
            data: BlockData {
                parent_hash: block.parent_root,
                transactions: vec![vec![0x02, 0xf8, 0x70]],
            },
            now: block.slot_start,
            graffiti: Some(Root::repeat_byte(7)),
        },
        LoggedInput::Registration {
            record: entry_record(&reg),
            first_seen: Some(UnixMillis(5)),
            signed: Some(Box::new(reg.clone())),
        },
        LoggedInput::Message { message: messages[0].clone(), arrived: UnixMillis(10) },
        LoggedInput::Relayed {
            message: messages[3].clone(),
            arrived: UnixMillis(11),
            received: Some(UnixMillis(12)),
        },
        LoggedInput::Verdict(Verdict { request: Default::default(), valid: true }),
        LoggedInput::Record(record.clone()),
        LoggedInput::GaveUp(block.slot),
        LoggedInput::Tick(UnixMillis(13)),
        LoggedInput::Reorg { orphaned: vec![block.root], fork: (block.slot, block.parent_root) },
    ];
    for (i, input) in inputs.iter().enumerate() {
        c.put(&format!("input_{i}"), serde_json::to_vec(input)?)?;
        c.put(&format!("entry_{i}"), sidecar_node::encode_log_entry(input)?)?;
    }
    Ok(())
}

/// A byte list of an SSZ type.
fn list<N: ssz_types::typenum::Unsigned>(bytes: &[u8]) -> Result<ssz_types::VariableList<u8, N>> {
    Ok(bytes.to_vec().try_into().map_err(|e| format!("{e:?}"))?)
}

fn entry_record(reg: &SignedProverRegistration) -> ProverRecord {
    ProverRecord {
        pubkey: reg.message.pubkey,
        stake: STAKE,
        capabilities: Default::default(),
        active: true,
        reputation: 0,
    }
}
