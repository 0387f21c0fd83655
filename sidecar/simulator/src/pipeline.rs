//! Messages built and sealed ahead of delivery, on a second thread.
//!
//! Most of what the engine spends on a message is its signing root (SSZ merkleization,
//! SHA-256), and most of what the simulator spends on building one is its modelled trace roots
//! (SHA-256 too). Neither depends on the state of the run: a modelled message is a pure function
//! of its [`Recipe`]. When the simulator plans a round it already knows most of the messages the
//! round will carry, long (in event-loop terms) before they are delivered, and once T2 has closed
//! it knows the full proofs the round's aggregators will build. It hands those recipes to a
//! helper thread, which builds and seals them ([`Sealer`]) from the last to be delivered while
//! the engine's thread goes on. At delivery the engine's thread takes the sealed message — or builds and
//! seals it itself if the helper thread has not started on it, so it never waits for work nobody
//! began. A message is the same whichever thread built it, so a run stays deterministic.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use phase_engine::{
    AirIndex, BlsSignature, PartRef, ProtocolMessage, ProverIndex, RoundRef, RoundSealer,
    SealedMessage, Sealer,
};

use super::modelled;

/// How to build a message.
#[derive(Debug)]
pub(crate) enum Recipe {
    /// A message already built.
    Built(ProtocolMessage),
    /// A modelled commitment of `prover` to its AIRs `airs` (no full proof).
    Commitment { round: RoundRef, prover: ProverIndex, airs: Vec<AirIndex> },
    /// A modelled partial proof of `air` sent by `prover`; `author` made the proof (another
    /// prover when a copier sends it).
    Partial { round: RoundRef, prover: ProverIndex, air: AirIndex, author: ProverIndex },
    /// A modelled full proof with `parts`, sent by `submitter`, whose bundle `bundle_builder`
    /// assembled.
    FullProof {
        round: RoundRef,
        submitter: ProverIndex,
        bundle_builder: ProverIndex,
        parts: Vec<PartRef>,
    },
}

impl Recipe {
    /// The round of the message, if the recipe names it.
    fn round(&self) -> Option<RoundRef> {
        match self {
            Self::Built(_) => None,
            Self::Commitment { round, .. }
            | Self::Partial { round, .. }
            | Self::FullProof { round, .. } => Some(*round),
        }
    }

    /// The message (placeholder signature: modelled messages are not signed).
    pub(crate) fn build(self) -> ProtocolMessage {
        match self {
            Self::Built(message) => message,
            Self::Commitment { round, prover, airs } => {
                modelled::commitment(round, prover, &airs, None, BlsSignature::ZERO)
            }
            Self::Partial { round, prover, air, author } => {
                modelled::partial(round, prover, air, author, BlsSignature::ZERO)
            }
            Self::FullProof { round, submitter, bundle_builder, parts } => {
                let body = modelled::full_body(submitter, bundle_builder, &parts);
                modelled::full_proof(round, submitter, body, BlsSignature::ZERO)
            }
        }
    }
}

/// A [`Sealer`] that keeps the [`RoundSealer`] of the last round it sealed for: batches and
/// deliveries come round by round, so a round's reference is hashed about once, not in every
/// message. One per thread.
#[derive(Debug)]
pub(crate) struct Sealing {
    sealer: Sealer,
    round: Option<RoundSealer>,
}

impl Sealing {
    pub(crate) fn new(sealer: Sealer) -> Self {
        Self { sealer, round: None }
    }

    /// Builds the message of `recipe` and seals it.
    fn seal(&mut self, recipe: Recipe) -> SealedMessage {
        let Some(round) = recipe.round() else { return self.sealer.seal(recipe.build()) };
        if self.round.as_ref().is_none_or(|r| *r.round() != round) {
            self.round = Some(self.sealer.for_round(round));
        }
        match &self.round {
            Some(round) => round.seal(recipe.build()),
            None => self.sealer.seal(recipe.build()),
        }
    }
}

/// A message on its way to the engine: built and sealed by the first thread that gets to it.
#[derive(Debug)]
pub(crate) struct Outgoing {
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    /// Nobody has started on it.
    Recipe(Recipe),
    /// The helper thread is building it.
    Building,
    /// Built and sealed, waiting for delivery.
    Sealed(SealedMessage),
    /// Delivered.
    Taken,
}

impl Outgoing {
    pub(crate) fn new(recipe: Recipe) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State::Recipe(recipe)) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The helper thread: builds and seals the message unless another thread has started on
    /// it.
    fn prepare(&self, sealing: &mut Sealing) {
        let recipe = {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Building) {
                State::Recipe(recipe) => recipe,
                other => {
                    *state = other;
                    return;
                }
            }
        };
        let sealed = sealing.seal(recipe);
        *self.lock() = State::Sealed(sealed);
    }

    /// The engine's thread, at delivery: the sealed message, built and sealed here if nobody
    /// started on it, or (briefly) waited for if the helper thread is building it. `None` if
    /// it was taken before.
    pub(crate) fn take(&self, sealing: &mut Sealing) -> Option<SealedMessage> {
        loop {
            let mut state = self.lock();
            if matches!(*state, State::Building) {
                drop(state);
                std::thread::yield_now();
                continue;
            }
            return match std::mem::replace(&mut *state, State::Taken) {
                State::Recipe(recipe) => {
                    drop(state);
                    Some(sealing.seal(recipe))
                }
                State::Sealed(sealed) => Some(sealed),
                State::Taken | State::Building => None,
            };
        }
    }
}

/// The sealing side of the helper thread: prepares a batch. A batch comes in delivery order and
/// the engine's thread takes its messages from the front, so this works from the back: the two
/// meet in the middle instead of racing for the same messages.
pub(crate) fn seal_batch(sealing: &mut Sealing, batch: &[Arc<Outgoing>]) {
    for message in batch.iter().rev() {
        message.prepare(sealing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phase_engine::{Attempt, Root, SigningContext, Slot, SubBlockIndex};

    fn round() -> RoundRef {
        RoundRef {
            slot: Slot(3),
            block_root: Root::from([1u8; 32]),
            sub_block: SubBlockIndex(0),
            attempt: Attempt(1),
        }
    }

    fn recipes() -> Vec<Recipe> {
        let parts = vec![
            PartRef { author: ProverIndex(2), air: AirIndex(0) },
            PartRef { author: ProverIndex(5), air: AirIndex(1) },
        ];
        vec![
            Recipe::Commitment { round: round(), prover: ProverIndex(2), airs: vec![AirIndex(0)] },
            Recipe::Partial {
                round: round(),
                prover: ProverIndex(2),
                air: AirIndex(0),
                author: ProverIndex(2),
            },
            Recipe::FullProof {
                round: round(),
                submitter: ProverIndex(2),
                bundle_builder: ProverIndex(2),
                parts,
            },
        ]
    }

    #[test]
    fn a_message_is_the_same_whichever_thread_prepares_it() {
        let sealer = Sealer::new(&SigningContext::default());
        let mut sealing = Sealing::new(sealer);
        let here: Vec<SealedMessage> =
            recipes().into_iter().map(|r| Outgoing::new(r).take(&mut sealing).unwrap()).collect();
        let outgoing: Vec<Arc<Outgoing>> = recipes().into_iter().map(Outgoing::new).collect();
        std::thread::scope(|s| {
            s.spawn(|| seal_batch(&mut Sealing::new(sealer), &outgoing));
        });
        let there: Vec<SealedMessage> =
            outgoing.into_iter().map(|o| o.take(&mut sealing).unwrap()).collect();
        assert_eq!(here, there);
        for sealed in &here {
            assert_eq!(
                sealed.signing_root(),
                sealed.message().signing_root(&SigningContext::default())
            );
        }
    }

    /// The engine's thread takes messages while the helper thread prepares the same ones:
    /// every message is taken exactly once and equals one built on a single thread.
    #[test]
    fn taking_while_the_sealing_thread_prepares_loses_nothing() {
        let sealer = Sealer::new(&SigningContext::default());
        let make = |i: u64| Recipe::Partial {
            round: round(),
            prover: ProverIndex(i),
            air: AirIndex(0),
            author: ProverIndex(i),
        };
        let expected: Vec<SealedMessage> =
            (0..2_000).map(|i| sealer.seal(make(i).build())).collect();
        let outgoing: Vec<Arc<Outgoing>> = (0..2_000).map(|i| Outgoing::new(make(i))).collect();
        let taken: Vec<SealedMessage> = std::thread::scope(|s| {
            s.spawn(|| {
                let mut sealing = Sealing::new(sealer);
                for chunk in outgoing.chunks(50) {
                    seal_batch(&mut sealing, chunk);
                }
            });
            let mut sealing = Sealing::new(sealer);
            outgoing.iter().map(|o| o.take(&mut sealing).unwrap()).collect()
        });
        assert_eq!(taken, expected);
    }

    #[test]
    fn a_message_is_taken_once() {
        let sealer = Sealer::new(&SigningContext::default());
        let mut sealing = Sealing::new(sealer);
        let message = Outgoing::new(recipes().swap_remove(0));
        assert!(message.take(&mut sealing).is_some());
        assert!(message.take(&mut sealing).is_none());
        message.prepare(&mut sealing);
        assert!(message.take(&mut sealing).is_none());
    }
}
