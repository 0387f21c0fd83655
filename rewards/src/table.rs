//! The reward table: one amount per spec constant, and the [`Rule`]s that name them.

use phase_engine::{Amount, Phase};
use serde::{Deserialize, Serialize};

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $field:ident; )*) => {
        /// A reward rule of the protocol, named after the spec constant that gives its amount.
        ///
        /// Serialised (JSON, TOML) as the constant's name; in SSZ as its one-byte [`Rule::code`].
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[non_exhaustive]
        pub enum Rule {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl Rule {
            /// Every rule, in canonical (code) order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The spec constant's name, e.g. `REWARD_FULL_PROOF_PROVER_T1`.
            pub const fn constant_name(self) -> &'static str {
                match self {
                    $(Rule::$variant => $name,)*
                }
            }

            /// Stable one-byte code used in the SSZ encoding and the settlement root.
            pub const fn code(self) -> u8 {
                match self {
                    $(Rule::$variant => $code,)*
                }
            }

            /// The rule with this code, if any.
            pub const fn from_code(code: u8) -> Option<Rule> {
                match code {
                    $($code => Some(Rule::$variant),)*
                    _ => None,
                }
            }
        }

        /// The amount of every rule, in reward units (penalties negative). Build it from a
        /// validated [`RewardsFile`](crate::RewardsFile); fields are named after the spec
        /// constants.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct RewardTable {
            $(
                #[doc = concat!("`", $name, "`.")]
                pub $field: Amount,
            )*
        }

        impl RewardTable {
            /// The amount of one rule.
            pub const fn amount(&self, rule: Rule) -> Amount {
                match rule {
                    $(Rule::$variant => self.$field,)*
                }
            }
        }
    };
}

rules! {
    /// Each selected prover, when a valid full proof arrives in T1.
    RewardFullProofProverT1 = 1, "REWARD_FULL_PROOF_PROVER_T1", reward_full_proof_prover_t1;
    /// The sender of the first valid full proof of T1, extra.
    RewardFullProofSenderT1 = 2, "REWARD_FULL_PROOF_SENDER_T1", reward_full_proof_sender_t1;
    /// The validator that included the first valid full proof of T1.
    RewardFullProofValidatorT1 = 3, "REWARD_FULL_PROOF_VALIDATOR_T1", reward_full_proof_validator_t1;
    /// Per valid commitment, to its including validator (no full proof in T1).
    RewardT1Validator = 4, "REWARD_T1_VALIDATOR", reward_t1_validator;
    /// Each selected prover that neither committed nor declined (no full proof in T1).
    PenaltyT1Prover = 5, "PENALTY_T1_PROVER", penalty_t1_prover;
    /// Each selected prover, when a valid full proof arrives in T2.
    RewardFullProofProverT2 = 6, "REWARD_FULL_PROOF_PROVER_T2", reward_full_proof_prover_t2;
    /// The sender of the first valid full proof of T2, extra.
    RewardFullProofSenderT2 = 7, "REWARD_FULL_PROOF_SENDER_T2", reward_full_proof_sender_t2;
    /// The validator that included the first valid full proof of T2.
    RewardFullProofValidatorT2 = 8, "REWARD_FULL_PROOF_VALIDATOR_T2", reward_full_proof_validator_t2;
    /// Per counted partial proof, to its including validator (no full proof by T2).
    RewardT2Validator = 9, "REWARD_T2_VALIDATOR", reward_t2_validator;
    /// Per counted partial proof, to its author (no full proof by T2).
    RewardT2Prover = 10, "REWARD_T2_PROVER", reward_t2_prover;
    /// Per assigned AIR without a partial proof by the end of T2 (no full proof by T2).
    PenaltyT2Prover = 11, "PENALTY_T2_PROVER", penalty_t2_prover;
    /// Per partial reused by a T3 full proof, to its submitter (averaged).
    RewardProverReusingT3 = 12, "REWARD_PROVER_REUSING_T3", reward_prover_reusing_t3;
    /// Per time a partial is reused by a T3 full proof, to its author (averaged).
    RewardProverReusedT3 = 13, "REWARD_PROVER_REUSED_T3", reward_prover_reused_t3;
    /// Each submitter of a valid T3 full proof.
    RewardProverT3 = 14, "REWARD_PROVER_T3", reward_prover_t3;
    /// Per valid T3 full proof, to its including validator.
    RewardValidatorT3 = 15, "REWARD_VALIDATOR_T3", reward_validator_t3;
    /// Each non-participating selected prover, once T3 is reached.
    PenaltyProverT3 = 16, "PENALTY_PROVER_T3", penalty_prover_t3;
    /// Per counted partial a T3 full proof did not reuse, to its author (averaged).
    PenaltyProverNotreusedT3 = 17, "PENALTY_PROVER_NOTREUSED_T3", penalty_prover_notreused_t3;
    /// As [`Rule::RewardProverReusingT3`], in T4.
    RewardProverReusingT4 = 18, "REWARD_PROVER_REUSING_T4", reward_prover_reusing_t4;
    /// As [`Rule::RewardProverReusedT3`], in T4.
    RewardProverReusedT4 = 19, "REWARD_PROVER_REUSED_T4", reward_prover_reused_t4;
    /// As [`Rule::RewardProverT3`], in T4.
    RewardProverT4 = 20, "REWARD_PROVER_T4", reward_prover_t4;
    /// As [`Rule::RewardValidatorT3`], in T4.
    RewardValidatorT4 = 21, "REWARD_VALIDATOR_T4", reward_validator_t4;
    /// As [`Rule::PenaltyProverT3`], once T4 is reached.
    PenaltyProverT4 = 22, "PENALTY_PROVER_T4", penalty_prover_t4;
    /// As [`Rule::PenaltyProverNotreusedT3`], in T4.
    PenaltyProverNotreusedT4 = 23, "PENALTY_PROVER_NOTREUSED_T4", penalty_prover_notreused_t4;
    /// As [`Rule::RewardProverReusingT3`], in T5.
    RewardProverReusingT5 = 24, "REWARD_PROVER_REUSING_T5", reward_prover_reusing_t5;
    /// As [`Rule::RewardProverReusedT3`], in T5.
    RewardProverReusedT5 = 25, "REWARD_PROVER_REUSED_T5", reward_prover_reused_t5;
    /// As [`Rule::RewardProverT3`], in T5.
    RewardProverT5 = 26, "REWARD_PROVER_T5", reward_prover_t5;
    /// As [`Rule::RewardValidatorT3`], in T5.
    RewardValidatorT5 = 27, "REWARD_VALIDATOR_T5", reward_validator_t5;
    /// As [`Rule::PenaltyProverT3`], once T5 is reached.
    PenaltyProverT5 = 28, "PENALTY_PROVER_T5", penalty_prover_t5;
    /// As [`Rule::PenaltyProverNotreusedT3`], in T5.
    PenaltyProverNotreusedT5 = 29, "PENALTY_PROVER_NOTREUSED_T5", penalty_prover_notreused_t5;
    /// Each prover of the aggregator group (and the sender of the first valid AggProof).
    RewardAggProofProver = 30, "REWARD_AGG_PROOF_PROVER", reward_agg_proof_prover;
    /// Each validator that included a valid AggProof.
    RewardAggProofValidator = 31, "REWARD_AGG_PROOF_VALIDATOR", reward_agg_proof_validator;
}

impl Rule {
    /// `true` for the `PENALTY_*` rules, whose amounts are `<= 0`.
    pub const fn is_penalty(self) -> bool {
        matches!(
            self,
            Rule::PenaltyT1Prover
                | Rule::PenaltyT2Prover
                | Rule::PenaltyProverT3
                | Rule::PenaltyProverNotreusedT3
                | Rule::PenaltyProverT4
                | Rule::PenaltyProverNotreusedT4
                | Rule::PenaltyProverT5
                | Rule::PenaltyProverNotreusedT5
        )
    }

    /// `true` for the rules whose amounts are averaged among the valid full proofs of an
    /// aggregation phase (reusing, reused, not reused).
    pub const fn is_averaged(self) -> bool {
        matches!(
            self,
            Rule::RewardProverReusingT3
                | Rule::RewardProverReusedT3
                | Rule::PenaltyProverNotreusedT3
                | Rule::RewardProverReusingT4
                | Rule::RewardProverReusedT4
                | Rule::PenaltyProverNotreusedT4
                | Rule::RewardProverReusingT5
                | Rule::RewardProverReusedT5
                | Rule::PenaltyProverNotreusedT5
        )
    }

    /// `true` if the rule pays a validator, `false` if it pays or charges a prover.
    pub const fn pays_validator(self) -> bool {
        matches!(
            self,
            Rule::RewardFullProofValidatorT1
                | Rule::RewardT1Validator
                | Rule::RewardFullProofValidatorT2
                | Rule::RewardT2Validator
                | Rule::RewardValidatorT3
                | Rule::RewardValidatorT4
                | Rule::RewardValidatorT5
                | Rule::RewardAggProofValidator
        )
    }

    /// `true` for the block-level rules (AggProof), which belong to no single round.
    pub const fn is_block_level(self) -> bool {
        matches!(self, Rule::RewardAggProofProver | Rule::RewardAggProofValidator)
    }
}

/// The rules of one aggregation phase (T3, T4 or T5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AggregationRules {
    /// `REWARD_PROVER_REUSING_Tk`.
    pub(crate) reusing: Rule,
    /// `REWARD_PROVER_REUSED_Tk`.
    pub(crate) reused: Rule,
    /// `PENALTY_PROVER_NOTREUSED_Tk`.
    pub(crate) not_reused: Rule,
    /// `REWARD_PROVER_Tk`.
    pub(crate) submitter: Rule,
    /// `REWARD_VALIDATOR_Tk`.
    pub(crate) validator: Rule,
    /// `PENALTY_PROVER_Tk`.
    pub(crate) non_participation: Rule,
}

impl AggregationRules {
    /// The rules of an aggregation phase; `None` for T1 and T2.
    pub(crate) const fn of(phase: Phase) -> Option<Self> {
        match phase {
            Phase::T1 | Phase::T2 => None,
            Phase::T3 => Some(Self {
                reusing: Rule::RewardProverReusingT3,
                reused: Rule::RewardProverReusedT3,
                not_reused: Rule::PenaltyProverNotreusedT3,
                submitter: Rule::RewardProverT3,
                validator: Rule::RewardValidatorT3,
                non_participation: Rule::PenaltyProverT3,
            }),
            Phase::T4 => Some(Self {
                reusing: Rule::RewardProverReusingT4,
                reused: Rule::RewardProverReusedT4,
                not_reused: Rule::PenaltyProverNotreusedT4,
                submitter: Rule::RewardProverT4,
                validator: Rule::RewardValidatorT4,
                non_participation: Rule::PenaltyProverT4,
            }),
            Phase::T5 => Some(Self {
                reusing: Rule::RewardProverReusingT5,
                reused: Rule::RewardProverReusedT5,
                not_reused: Rule::PenaltyProverNotreusedT5,
                submitter: Rule::RewardProverT5,
                validator: Rule::RewardValidatorT5,
                non_participation: Rule::PenaltyProverT5,
            }),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.constant_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (i, rule) in Rule::ALL.iter().enumerate() {
            assert_eq!(usize::from(rule.code()), i + 1);
            assert_eq!(Rule::from_code(rule.code()), Some(*rule));
        }
        assert_eq!(Rule::ALL.len(), 31);
        assert_eq!(Rule::from_code(0), None);
        assert_eq!(Rule::from_code(32), None);
    }

    #[test]
    fn names_match_spec_constants() {
        assert_eq!(Rule::RewardFullProofProverT1.constant_name(), "REWARD_FULL_PROOF_PROVER_T1");
        assert_eq!(Rule::PenaltyProverNotreusedT5.constant_name(), "PENALTY_PROVER_NOTREUSED_T5");
        assert_eq!(Rule::RewardT2Prover.to_string(), "REWARD_T2_PROVER");
        assert_eq!(
            serde_json::to_string(&Rule::RewardAggProofValidator).unwrap(),
            "\"REWARD_AGG_PROOF_VALIDATOR\""
        );
        for rule in Rule::ALL {
            assert_eq!(rule.is_penalty(), rule.constant_name().starts_with("PENALTY_"));
        }
    }
}
