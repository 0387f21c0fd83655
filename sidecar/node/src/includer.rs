//! The proposer side of canonical rounds: for every slot one of the served validators
//! proposes (the beacon node's proposer duties), at the record's cut-off the driver builds this
//! node's inclusion record, logs and gossips it, and this task sets the validator's graffiti
//! through the validator client's keymanager API (`POST /eth/v1/validator/{pubkey}/graffiti`)
//! to the record's commitment, so that the block the validator client proposes at the slot
//! start commits to the record.
//!
//! Timing: the cut-off is `inclusion.cutoff_margin_ms` before the slot starts; the record is
//! built then and the graffiti set right after, which leaves the margin for the keymanager call
//! before the validator client asks its beacon node for the block. A slot whose cut-off has
//! passed by more than half the margin when it is noticed (a start mid-slot) is skipped. The
//! duties of the next epoch are read ahead and read again once it is the current epoch (a
//! beacon node may answer them before they are final), and a duty whose slot is not in the epoch
//! asked for is ignored (Lodestar 1.5 answers the next epoch with the current epoch's slot
//! numbers; beside it the first slot of each epoch, whose cut-off is in the previous epoch,
//! includes nothing).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use beacon_api::{BeaconClient, KeymanagerClient};
use phase_engine::{Slot, ValidatorIndex};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::{SlotClock, driver::Input};

/// How a node takes part in canonical rounds ([`crate::NodeConfig::inclusion`]).
#[derive(Clone, Debug, Default)]
pub struct InclusionConfig {
    /// The validator client whose validators' blocks commit to this node's records; `None`:
    /// this node includes nothing (it settles from the records of other proposers' sidecars).
    pub validator_client: Option<ValidatorClientConfig>,
}

/// The operator's validator client, reached through its keymanager API.
#[derive(Clone, Debug)]
pub struct ValidatorClientConfig {
    /// The keymanager API's base URL.
    pub keymanager_url: String,
    /// Its bearer token (the content of the validator client's token file).
    pub token: String,
    /// The served validators' public keys (`0x` hex); empty: every key the validator client
    /// lists (`GET /eth/v1/keystores`, read again every epoch).
    pub validators: Vec<String>,
}

/// The includer task's settings.
pub(crate) struct Includer {
    pub(crate) beacon: BeaconClient,
    pub(crate) keymanager: KeymanagerClient,
    pub(crate) listed: Vec<String>,
    pub(crate) clock: Arc<dyn SlotClock>,
    pub(crate) slots_per_epoch: u64,
    pub(crate) cutoff_margin: Duration,
    pub(crate) tx: mpsc::Sender<Input>,
}

/// The longest the task sleeps before it looks at the clock again.
const POLL: Duration = Duration::from_millis(500);

impl Includer {
    /// Runs until `shutdown`.
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut duties: BTreeMap<Slot, (ValidatorIndex, String)> = BTreeMap::new();
        // Epochs whose duties are known, and whether they were fetched as the current epoch.
        let mut fetched_epochs: BTreeMap<u64, bool> = BTreeMap::new();
        let mut served: Vec<String> = Vec::new();
        let mut served_epoch = None;
        let mut done: Option<Slot> = None;
        loop {
            let Some(now) = self.clock.now() else {
                if sleep_or_stop(POLL, &mut shutdown).await {
                    return;
                }
                continue;
            };
            let epoch = now.0 / self.slots_per_epoch.max(1);
            if served_epoch != Some(epoch) {
                match self.served().await {
                    Ok(keys) => {
                        if served_epoch.is_none() {
                            info!(
                                validators = keys.len(),
                                "including for the validator client's validators"
                            );
                        }
                        served = keys;
                        served_epoch = Some(epoch);
                    }
                    Err(e) => warn!(error = %e, "cannot list the validator client's validators"),
                }
            }
            for e in [epoch, epoch.saturating_add(1)] {
                // The next epoch's duties are tentative (some beacon nodes answer them before
                // they are final): fetched again once the epoch is the current one.
                let current = e <= epoch;
                match fetched_epochs.get(&e) {
                    Some(true) => continue,
                    Some(false) if !current => continue,
                    _ => {}
                }
                match self.beacon.proposer_duties(beacon_api::Epoch(e)).await {
                    Ok(response) => {
                        let spe = self.slots_per_epoch.max(1);
                        duties.retain(|slot, _| slot.0 / spe != e);
                        for duty in response.data {
                            if duty.slot.get() / spe != e {
                                // Lodestar 1.5 answers a future epoch with the current one's
                                // slot numbers: such duties are not this epoch's.
                                debug!(
                                    epoch = e,
                                    slot = duty.slot.get(),
                                    "proposer duty outside its epoch: ignored"
                                );
                                continue;
                            }
                            let key = duty.pubkey.to_string().to_lowercase();
                            if served.contains(&key) {
                                let index = ValidatorIndex(duty.validator_index.get());
                                duties.insert(Slot(duty.slot.get()), (index, key));
                            }
                        }
                        fetched_epochs.insert(e, current);
                    }
                    Err(err) => debug!(epoch = e, error = %err, "no proposer duties yet"),
                }
            }
            while fetched_epochs.len() > 4 {
                fetched_epochs.pop_first();
            }
            duties = duties.split_off(&now);
            let next = duties.iter().find(|(slot, _)| done.is_none_or(|d| **slot > d));
            let Some((&slot, (proposer, pubkey))) = next else {
                if sleep_or_stop(POLL, &mut shutdown).await {
                    return;
                }
                continue;
            };
            let (proposer, pubkey) = (*proposer, pubkey.clone());
            let Some(start) = self.clock.start_of(slot) else { continue };
            let cutoff = start.saturating_sub(self.cutoff_margin);
            let now_d = self.clock.now_duration();
            if now_d < cutoff {
                if sleep_or_stop((cutoff - now_d).min(POLL), &mut shutdown).await {
                    return;
                }
                continue;
            }
            done = Some(slot);
            if now_d > cutoff + self.cutoff_margin / 2 {
                warn!(%slot, %proposer, "the record's cut-off has passed: this slot includes nothing");
                continue;
            }
            self.include(slot, proposer, &pubkey).await;
        }
    }

    /// The public keys served: the listed ones, or the validator client's.
    async fn served(&self) -> beacon_api::Result<Vec<String>> {
        if !self.listed.is_empty() {
            return Ok(self.listed.iter().map(|k| k.to_lowercase()).collect());
        }
        self.keymanager.validators().await
    }

    /// Builds the record of `slot` and sets `pubkey`'s graffiti to its commitment.
    async fn include(&self, slot: Slot, proposer: ValidatorIndex, pubkey: &str) {
        let (reply, record) = oneshot::channel();
        if self.tx.send(Input::BuildRecord { slot, proposer, reply }).await.is_err() {
            return;
        }
        let Ok(Some(record)) = record.await else { return };
        let graffiti = record.graffiti();
        let text = String::from_utf8_lossy(&graffiti).into_owned();
        match self.keymanager.set_graffiti(pubkey, &text).await {
            Ok(()) => info!(
                %slot, %proposer, messages = record.messages.len(), graffiti = %text,
                "inclusion record committed to in the proposer's graffiti"
            ),
            Err(e) => {
                warn!(%slot, %proposer, error = %e, "cannot set the proposer's graffiti: the block includes nothing")
            }
        }
    }
}

/// Sleeps for `d`; `true` if the node is stopping.
async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => None,
        _ = shutdown.wait_for(|s| *s) => Some(true),
    };
    stopped.unwrap_or_else(|| *shutdown.borrow())
}
