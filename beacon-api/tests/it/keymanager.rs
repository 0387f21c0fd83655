//! The keymanager client against the devnet node's keymanager API over real loopback HTTP: the
//! token is required, the validators are listed, and a graffiti set for a validator is carried
//! by the blocks it proposes.

use std::{sync::Arc, time::Duration};

use beacon_api::{
    BeaconClient, BlockId, DevnetConfig, DevnetNode, Epoch, Error, KeymanagerClient, ManualClock,
    Slot,
};

const GENESIS: u64 = 1_700_000_000;
const TOKEN: &str = "api-token-0123456789";

fn config() -> DevnetConfig {
    DevnetConfig {
        seconds_per_slot: 2,
        slots_per_epoch: 4,
        genesis_time: Some(GENESIS),
        validator_count: 8,
        max_gas_used: 2_000_000,
        min_gas_used: 1_000_000,
        keymanager_token: Some(TOKEN.into()),
        ..DevnetConfig::default()
    }
}

#[tokio::test]
async fn graffiti_set_through_the_keymanager_api_lands_in_the_proposers_blocks() {
    let clock = ManualClock::new(Duration::from_secs(GENESIS));
    let node = DevnetNode::spawn_with_clock(config(), Arc::new(clock.clone())).unwrap();
    let server = node.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let keymanager = KeymanagerClient::new(&server.url(), TOKEN).unwrap();
    let beacon = BeaconClient::new([server.url()]).unwrap();

    // The token is required: none is 401, a wrong one 403.
    let wrong = KeymanagerClient::new(&server.url(), "wrong").unwrap();
    assert!(matches!(wrong.validators().await, Err(Error::Api { status: 403, .. })));
    let no_token = reqwest::get(format!("{}/eth/v1/keystores", server.url())).await.unwrap();
    assert_eq!(no_token.status(), 401);

    let validators = keymanager.validators().await.unwrap();
    assert_eq!(validators.len(), 8);
    assert!(validators.iter().all(|v| v.starts_with("0x") && v.len() == 98));

    // Every validator gets its own graffiti; each block carries its proposer's.
    for (i, v) in validators.iter().enumerate() {
        keymanager.set_graffiti(v, &format!("pv1:validator-{i}")).await.unwrap();
    }
    assert_eq!(keymanager.graffiti(&validators[3]).await.unwrap(), "pv1:validator-3");
    let duties = beacon.proposer_duties(Epoch(0)).await.unwrap().data;
    for slot in 1..=3u64 {
        clock.set(Duration::from_secs(GENESIS + slot * 2));
        node.wait_for_slot(Slot(slot)).await;
        let block = beacon.block(BlockId::Slot(Slot(slot))).await.unwrap().data;
        let proposer = block.message.proposer_index.0;
        let duty = duties.iter().find(|d| d.slot == Slot(slot)).unwrap();
        assert_eq!(duty.validator_index.0, proposer);
        let expected = format!("pv1:validator-{proposer}");
        assert_eq!(&block.message.body.graffiti[..expected.len()], expected.as_bytes());
        assert!(block.message.body.graffiti[expected.len()..].iter().all(|b| *b == 0));
    }

    // Over-long graffiti is refused by the client before it is sent, and by the server.
    assert!(matches!(
        keymanager.set_graffiti(&validators[0], &"x".repeat(33)).await,
        Err(Error::InvalidInput { .. })
    ));
    let raw = reqwest::Client::new()
        .post(format!("{}/eth/v1/validator/{}/graffiti", server.url(), validators[0]))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "graffiti": "x".repeat(33) }))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    // An unknown key is 404.
    let unknown = format!("0x{}", "ab".repeat(48));
    assert!(matches!(keymanager.graffiti(&unknown).await, Err(Error::Api { status: 404, .. })));
    server.shutdown().await.unwrap();
}

#[test]
fn an_empty_token_is_refused() {
    assert!(KeymanagerClient::new("http://127.0.0.1:5500", "  \n").is_err());
    assert!(KeymanagerClient::new("ftp://127.0.0.1:5500", "t").is_err());
    let bad = DevnetConfig { keymanager_token: Some(String::new()), ..DevnetConfig::default() };
    assert!(bad.validate().is_err());
}
