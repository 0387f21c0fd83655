//! The schema of `configs/rewards.toml`, its validation into runtime values, and overrides by
//! dotted key name (for CLI flags and parameter sweeps).

use phase_engine::{
    Amount, EngineConfig, GasPlan, InclusionParams, PhaseWindows, ReputationBounds,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::table::{RewardTable, Rule};

/// The `[selection]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSection {
    /// Every AIR is assigned to this many distinct selected provers.
    pub redundancy_factor: u32,
    /// Rounds of the swap-or-not shuffle.
    pub shuffle_round_count: u8,
}

/// The `[retries]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetriesSection {
    /// Retries with a new prover set after T5 fails.
    pub max_retries: u32,
}

/// The file schema of `configs/rewards.toml`: every spec constant under its spec name, and the
/// engine parameters in tables. Every key is required and unknown keys are rejected.
/// [`RewardsFile::default`] equals the shipped file. Turn it into runtime values with
/// [`RewardsFile::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct RewardsFile {
    /// `PROVERS_PER_PROOF` (see `configs/rewards.toml`).
    pub provers_per_proof: u32,
    /// `PROVERS_PER_AGGPROOF` (see `configs/rewards.toml`).
    pub provers_per_aggproof: u32,

    /// `REWARD_FULL_PROOF_PROVER_T1` (see `configs/rewards.toml`).
    pub reward_full_proof_prover_t1: i64,
    /// `REWARD_FULL_PROOF_SENDER_T1` (see `configs/rewards.toml`).
    pub reward_full_proof_sender_t1: i64,
    /// `REWARD_FULL_PROOF_VALIDATOR_T1` (see `configs/rewards.toml`).
    pub reward_full_proof_validator_t1: i64,
    /// `REWARD_T1_VALIDATOR` (see `configs/rewards.toml`).
    pub reward_t1_validator: i64,
    /// `PENALTY_T1_PROVER` (see `configs/rewards.toml`).
    pub penalty_t1_prover: i64,

    /// `REWARD_FULL_PROOF_PROVER_T2` (see `configs/rewards.toml`).
    pub reward_full_proof_prover_t2: i64,
    /// `REWARD_FULL_PROOF_SENDER_T2` (see `configs/rewards.toml`).
    pub reward_full_proof_sender_t2: i64,
    /// `REWARD_FULL_PROOF_VALIDATOR_T2` (see `configs/rewards.toml`).
    pub reward_full_proof_validator_t2: i64,
    /// `REWARD_T2_VALIDATOR` (see `configs/rewards.toml`).
    pub reward_t2_validator: i64,
    /// `REWARD_T2_PROVER` (see `configs/rewards.toml`).
    pub reward_t2_prover: i64,
    /// `PENALTY_T2_PROVER` (see `configs/rewards.toml`).
    pub penalty_t2_prover: i64,

    /// `REWARD_PROVER_REUSING_T3` (see `configs/rewards.toml`).
    pub reward_prover_reusing_t3: i64,
    /// `REWARD_PROVER_REUSED_T3` (see `configs/rewards.toml`).
    pub reward_prover_reused_t3: i64,
    /// `PENALTY_PROVER_NOTREUSED_T3` (see `configs/rewards.toml`).
    pub penalty_prover_notreused_t3: i64,
    /// `REWARD_PROVER_T3` (see `configs/rewards.toml`).
    pub reward_prover_t3: i64,
    /// `REWARD_VALIDATOR_T3` (see `configs/rewards.toml`).
    pub reward_validator_t3: i64,
    /// `PENALTY_PROVER_T3` (see `configs/rewards.toml`).
    pub penalty_prover_t3: i64,

    /// `REWARD_PROVER_REUSING_T4` (see `configs/rewards.toml`).
    pub reward_prover_reusing_t4: i64,
    /// `REWARD_PROVER_REUSED_T4` (see `configs/rewards.toml`).
    pub reward_prover_reused_t4: i64,
    /// `PENALTY_PROVER_NOTREUSED_T4` (see `configs/rewards.toml`).
    pub penalty_prover_notreused_t4: i64,
    /// `REWARD_PROVER_T4` (see `configs/rewards.toml`).
    pub reward_prover_t4: i64,
    /// `REWARD_VALIDATOR_T4` (see `configs/rewards.toml`).
    pub reward_validator_t4: i64,
    /// `PENALTY_PROVER_T4` (see `configs/rewards.toml`).
    pub penalty_prover_t4: i64,

    /// `REWARD_PROVER_REUSING_T5` (see `configs/rewards.toml`).
    pub reward_prover_reusing_t5: i64,
    /// `REWARD_PROVER_REUSED_T5` (see `configs/rewards.toml`).
    pub reward_prover_reused_t5: i64,
    /// `PENALTY_PROVER_NOTREUSED_T5` (see `configs/rewards.toml`).
    pub penalty_prover_notreused_t5: i64,
    /// `REWARD_PROVER_T5` (see `configs/rewards.toml`).
    pub reward_prover_t5: i64,
    /// `REWARD_VALIDATOR_T5` (see `configs/rewards.toml`).
    pub reward_validator_t5: i64,
    /// `PENALTY_PROVER_T5` (see `configs/rewards.toml`).
    pub penalty_prover_t5: i64,

    /// `REWARD_AGG_PROOF_PROVER` (see `configs/rewards.toml`).
    pub reward_agg_proof_prover: i64,
    /// `REWARD_AGG_PROOF_VALIDATOR` (see `configs/rewards.toml`).
    pub reward_agg_proof_validator: i64,

    /// `[selection]`.
    #[serde(rename = "selection")]
    pub selection: SelectionSection,
    /// `[retries]`.
    #[serde(rename = "retries")]
    pub retries: RetriesSection,
    /// `[gas]`.
    #[serde(rename = "gas")]
    pub gas: GasPlan,
    /// `[phases]`.
    #[serde(rename = "phases")]
    pub phases: PhaseWindows,
    /// `[reputation]`.
    #[serde(rename = "reputation")]
    pub reputation: ReputationBounds,
    /// `[inclusion]` (optional in a file: the defaults apply when it is absent).
    #[serde(rename = "inclusion", default)]
    pub inclusion: InclusionParams,
}

impl Default for RewardsFile {
    fn default() -> Self {
        let engine = EngineConfig::default();
        Self {
            provers_per_proof: 200,
            provers_per_aggproof: 5,
            reward_full_proof_prover_t1: 9000,
            reward_full_proof_sender_t1: 50,
            reward_full_proof_validator_t1: 1000,
            reward_t1_validator: 3,
            penalty_t1_prover: -1,
            reward_full_proof_prover_t2: 8000,
            reward_full_proof_sender_t2: 40,
            reward_full_proof_validator_t2: 900,
            reward_t2_validator: 3,
            reward_t2_prover: 100,
            penalty_t2_prover: -3,
            reward_prover_reusing_t3: 40,
            reward_prover_reused_t3: 40,
            penalty_prover_notreused_t3: -1,
            reward_prover_t3: 50,
            reward_validator_t3: 1,
            penalty_prover_t3: -1,
            reward_prover_reusing_t4: 30,
            reward_prover_reused_t4: 30,
            penalty_prover_notreused_t4: -1,
            reward_prover_t4: 40,
            reward_validator_t4: 1,
            penalty_prover_t4: -2,
            reward_prover_reusing_t5: 20,
            reward_prover_reused_t5: 20,
            penalty_prover_notreused_t5: -1,
            reward_prover_t5: 40,
            reward_validator_t5: 1,
            penalty_prover_t5: -4,
            reward_agg_proof_prover: 50,
            reward_agg_proof_validator: 3,
            selection: SelectionSection {
                redundancy_factor: engine.redundancy_factor,
                shuffle_round_count: engine.shuffle_round_count,
            },
            retries: RetriesSection { max_retries: engine.max_retries },
            gas: engine.gas,
            phases: engine.phases,
            reputation: engine.reputation,
            inclusion: InclusionParams::default(),
        }
    }
}

/// Validated runtime configuration: the reward table for settlement and the engine's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Amount of every rule.
    pub table: RewardTable,
    /// Selection, redundancy, gas plan, phase windows, retries, reputation.
    pub engine: EngineConfig,
    /// How proposers include the provers' messages (record cut-off, inclusion delay).
    pub inclusion: InclusionParams,
}

impl Default for Config {
    /// The validated [`RewardsFile::default`], i.e. the shipped `configs/rewards.toml`.
    fn default() -> Self {
        let file = RewardsFile::default();
        Self { table: file.table(), engine: file.engine(), inclusion: file.inclusion }
    }
}

fn require(ok: bool, key: &'static str, requirement: &'static str) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::InvalidValue { key, requirement }) }
}

impl RewardsFile {
    /// Parses TOML text (unknown keys and missing keys are errors). Does not validate.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Renders the configuration as TOML (without the comments of the shipped file).
    pub fn to_toml_string(&self) -> String {
        // Serialising plain integers and tables cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// The reward table, unvalidated.
    pub fn table(&self) -> RewardTable {
        RewardTable {
            reward_full_proof_prover_t1: Amount(self.reward_full_proof_prover_t1),
            reward_full_proof_sender_t1: Amount(self.reward_full_proof_sender_t1),
            reward_full_proof_validator_t1: Amount(self.reward_full_proof_validator_t1),
            reward_t1_validator: Amount(self.reward_t1_validator),
            penalty_t1_prover: Amount(self.penalty_t1_prover),
            reward_full_proof_prover_t2: Amount(self.reward_full_proof_prover_t2),
            reward_full_proof_sender_t2: Amount(self.reward_full_proof_sender_t2),
            reward_full_proof_validator_t2: Amount(self.reward_full_proof_validator_t2),
            reward_t2_validator: Amount(self.reward_t2_validator),
            reward_t2_prover: Amount(self.reward_t2_prover),
            penalty_t2_prover: Amount(self.penalty_t2_prover),
            reward_prover_reusing_t3: Amount(self.reward_prover_reusing_t3),
            reward_prover_reused_t3: Amount(self.reward_prover_reused_t3),
            reward_prover_t3: Amount(self.reward_prover_t3),
            reward_validator_t3: Amount(self.reward_validator_t3),
            penalty_prover_t3: Amount(self.penalty_prover_t3),
            penalty_prover_notreused_t3: Amount(self.penalty_prover_notreused_t3),
            reward_prover_reusing_t4: Amount(self.reward_prover_reusing_t4),
            reward_prover_reused_t4: Amount(self.reward_prover_reused_t4),
            reward_prover_t4: Amount(self.reward_prover_t4),
            reward_validator_t4: Amount(self.reward_validator_t4),
            penalty_prover_t4: Amount(self.penalty_prover_t4),
            penalty_prover_notreused_t4: Amount(self.penalty_prover_notreused_t4),
            reward_prover_reusing_t5: Amount(self.reward_prover_reusing_t5),
            reward_prover_reused_t5: Amount(self.reward_prover_reused_t5),
            reward_prover_t5: Amount(self.reward_prover_t5),
            reward_validator_t5: Amount(self.reward_validator_t5),
            penalty_prover_t5: Amount(self.penalty_prover_t5),
            penalty_prover_notreused_t5: Amount(self.penalty_prover_notreused_t5),
            reward_agg_proof_prover: Amount(self.reward_agg_proof_prover),
            reward_agg_proof_validator: Amount(self.reward_agg_proof_validator),
        }
    }

    /// The engine parameters, unvalidated.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            provers_per_proof: self.provers_per_proof,
            provers_per_aggproof: self.provers_per_aggproof,
            redundancy_factor: self.selection.redundancy_factor,
            max_retries: self.retries.max_retries,
            shuffle_round_count: self.selection.shuffle_round_count,
            gas: self.gas,
            phases: self.phases,
            reputation: self.reputation,
        }
    }

    /// Checks every key and turns the file into runtime configuration. The first violation is
    /// returned as [`Error::InvalidValue`] naming the key, e.g. `phases.t1_ms must be > 0`.
    pub fn validate(&self) -> Result<Config> {
        require(self.provers_per_proof > 0, "PROVERS_PER_PROOF", "> 0")?;
        require(self.provers_per_aggproof > 0, "PROVERS_PER_AGGPROOF", "> 0")?;
        let table = self.table();
        for &rule in Rule::ALL {
            let amount = table.amount(rule).0;
            if rule.is_penalty() {
                require(amount <= 0, rule.constant_name(), "<= 0")?;
            } else {
                require(amount >= 0, rule.constant_name(), ">= 0")?;
            }
        }

        let sel = &self.selection;
        require(sel.redundancy_factor > 0, "selection.redundancy_factor", "> 0")?;
        require(
            sel.redundancy_factor <= self.provers_per_proof,
            "selection.redundancy_factor",
            "<= PROVERS_PER_PROOF",
        )?;
        require(sel.shuffle_round_count > 0, "selection.shuffle_round_count", "> 0")?;

        require(self.gas.sub_block_gas > 0, "gas.sub_block_gas", "> 0")?;
        require(self.gas.max_sub_blocks > 0, "gas.max_sub_blocks", "> 0")?;
        require(self.gas.gas_per_air > 0, "gas.gas_per_air", "> 0")?;

        let p = &self.phases;
        require(p.t1_ms > 0, "phases.t1_ms", "> 0")?;
        require(p.t2_ms > 0, "phases.t2_ms", "> 0")?;
        require(p.t3_ms > 0, "phases.t3_ms", "> 0")?;
        require(p.t4_ms > 0, "phases.t4_ms", "> 0")?;
        require(p.t5_ms > 0, "phases.t5_ms", "> 0")?;
        let shortest = p.t1_ms.min(p.t2_ms).min(p.t3_ms).min(p.t4_ms).min(p.t5_ms);
        require(
            p.max_clock_disparity_ms < shortest,
            "phases.max_clock_disparity_ms",
            "< the shortest phase window",
        )?;
        require(
            p.max_relay_delay_ms >= p.max_clock_disparity_ms,
            "phases.max_relay_delay_ms",
            ">= phases.max_clock_disparity_ms",
        )?;
        // The windows of all attempts of a round must add up without overflow.
        let attempt_ms = [p.t2_ms, p.t3_ms, p.t4_ms, p.t5_ms]
            .into_iter()
            .try_fold(p.t1_ms, u64::checked_add)
            .and_then(|ms| ms.checked_mul(u64::from(self.retries.max_retries).checked_add(1)?));
        require(attempt_ms.is_some(), "phases", "windows whose total over all attempts fits u64")?;

        let r = &self.reputation;
        require(r.base_weight > 0, "reputation.base_weight", "> 0")?;
        require(r.max_boost > 0, "reputation.max_boost", ">= 1")?;
        require(
            r.base_weight.checked_mul(r.max_boost).is_some(),
            "reputation.max_boost",
            "such that base_weight * max_boost fits u64",
        )?;

        let i = &self.inclusion;
        require(i.max_delay_slots >= 1, "inclusion.max_delay_slots", ">= 1")?;
        require(i.max_delay_slots <= 64, "inclusion.max_delay_slots", "<= 64")?;
        require(i.registration_delay_slots >= 1, "inclusion.registration_delay_slots", ">= 1")?;
        require(i.registration_delay_slots <= 64, "inclusion.registration_delay_slots", "<= 64")?;
        Ok(Config { table, engine: self.engine(), inclusion: self.inclusion })
    }

    /// Every key, dotted for keys inside a table, in file order.
    pub fn keys() -> Vec<String> {
        let mut keys = Vec::new();
        if let Ok(toml::Value::Table(table)) = toml::Value::try_from(RewardsFile::default()) {
            collect_keys(&table, "", &mut keys);
        }
        keys
    }

    /// The value of a key given by its dotted name (`REWARD_PROVER_T3`, `phases.t3_ms`).
    pub fn get(&self, key: &str) -> Result<i64> {
        let value = toml::Value::try_from(self).map_err(|_| unknown_key(key))?;
        match lookup(&value, key) {
            Some(toml::Value::Integer(v)) => Ok(*v),
            _ => Err(unknown_key(key)),
        }
    }

    /// Overrides one key given by its dotted name. Errors for an unknown key or a value that does
    /// not fit the key's type; does not validate (call [`RewardsFile::validate`] afterwards).
    pub fn set(&mut self, key: &str, value: i64) -> Result<()> {
        let mut tree = toml::Value::try_from(*self).map_err(|_| unknown_key(key))?;
        match lookup_mut(&mut tree, key) {
            Some(slot @ toml::Value::Integer(_)) => *slot = toml::Value::Integer(value),
            _ => return Err(unknown_key(key)),
        }
        *self = tree.try_into().map_err(|e: toml::de::Error| Error::ValueOutOfRange {
            key: key.to_owned(),
            value,
            reason: e.message().trim().to_owned(),
        })?;
        Ok(())
    }

    /// Applies an override written `KEY=VALUE` (as on a command line); the value is an integer
    /// (`_` separators allowed).
    pub fn apply_override(&mut self, assignment: &str) -> Result<()> {
        let (key, text) = assignment.split_once('=').ok_or_else(|| Error::NotAnInteger {
            key: assignment.trim().to_owned(),
            value: String::new(),
        })?;
        let key = key.trim();
        let text = text.trim();
        let value: i64 = text
            .replace('_', "")
            .parse()
            .map_err(|_| Error::NotAnInteger { key: key.to_owned(), value: text.to_owned() })?;
        self.set(key, value)
    }
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        RewardsFile::from_toml_str(text)?.validate()
    }

    /// The file form of this configuration.
    pub fn to_file(&self) -> RewardsFile {
        RewardsFile::from(self)
    }

    /// Overrides one key by its dotted name and re-validates; on error `self` is unchanged.
    pub fn set(&mut self, key: &str, value: i64) -> Result<()> {
        let mut file = self.to_file();
        file.set(key, value)?;
        *self = file.validate()?;
        Ok(())
    }
}

impl From<&Config> for RewardsFile {
    fn from(config: &Config) -> Self {
        let t = &config.table;
        let e = &config.engine;
        Self {
            provers_per_proof: e.provers_per_proof,
            provers_per_aggproof: e.provers_per_aggproof,
            reward_full_proof_prover_t1: t.reward_full_proof_prover_t1.0,
            reward_full_proof_sender_t1: t.reward_full_proof_sender_t1.0,
            reward_full_proof_validator_t1: t.reward_full_proof_validator_t1.0,
            reward_t1_validator: t.reward_t1_validator.0,
            penalty_t1_prover: t.penalty_t1_prover.0,
            reward_full_proof_prover_t2: t.reward_full_proof_prover_t2.0,
            reward_full_proof_sender_t2: t.reward_full_proof_sender_t2.0,
            reward_full_proof_validator_t2: t.reward_full_proof_validator_t2.0,
            reward_t2_validator: t.reward_t2_validator.0,
            reward_t2_prover: t.reward_t2_prover.0,
            penalty_t2_prover: t.penalty_t2_prover.0,
            reward_prover_reusing_t3: t.reward_prover_reusing_t3.0,
            reward_prover_reused_t3: t.reward_prover_reused_t3.0,
            penalty_prover_notreused_t3: t.penalty_prover_notreused_t3.0,
            reward_prover_t3: t.reward_prover_t3.0,
            reward_validator_t3: t.reward_validator_t3.0,
            penalty_prover_t3: t.penalty_prover_t3.0,
            reward_prover_reusing_t4: t.reward_prover_reusing_t4.0,
            reward_prover_reused_t4: t.reward_prover_reused_t4.0,
            penalty_prover_notreused_t4: t.penalty_prover_notreused_t4.0,
            reward_prover_t4: t.reward_prover_t4.0,
            reward_validator_t4: t.reward_validator_t4.0,
            penalty_prover_t4: t.penalty_prover_t4.0,
            reward_prover_reusing_t5: t.reward_prover_reusing_t5.0,
            reward_prover_reused_t5: t.reward_prover_reused_t5.0,
            penalty_prover_notreused_t5: t.penalty_prover_notreused_t5.0,
            reward_prover_t5: t.reward_prover_t5.0,
            reward_validator_t5: t.reward_validator_t5.0,
            penalty_prover_t5: t.penalty_prover_t5.0,
            reward_agg_proof_prover: t.reward_agg_proof_prover.0,
            reward_agg_proof_validator: t.reward_agg_proof_validator.0,
            selection: SelectionSection {
                redundancy_factor: e.redundancy_factor,
                shuffle_round_count: e.shuffle_round_count,
            },
            retries: RetriesSection { max_retries: e.max_retries },
            gas: e.gas,
            phases: e.phases,
            reputation: e.reputation,
            inclusion: config.inclusion,
        }
    }
}

fn unknown_key(key: &str) -> Error {
    Error::UnknownKey { key: key.to_owned(), known: RewardsFile::keys().join(", ") }
}

fn collect_keys(table: &toml::map::Map<String, toml::Value>, prefix: &str, out: &mut Vec<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            toml::Value::Table(inner) => collect_keys(inner, &key, out),
            _ => out.push(key),
        }
    }
}

fn lookup<'a>(value: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    key.split('.').try_fold(value, |v, part| v.as_table()?.get(part))
}

fn lookup_mut<'a>(value: &'a mut toml::Value, key: &str) -> Option<&'a mut toml::Value> {
    key.split('.').try_fold(value, |v, part| v.as_table_mut()?.get_mut(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../configs/rewards.toml");

    fn invalid(file: RewardsFile) -> String {
        file.validate().unwrap_err().to_string()
    }

    #[test]
    fn shipped_file_parses_and_equals_default() {
        let file = RewardsFile::from_toml_str(SHIPPED).unwrap();
        assert_eq!(file, RewardsFile::default());
        assert_eq!(file.validate().unwrap(), Config::default());
        assert_eq!(Config::default().engine, EngineConfig::default());
    }

    #[test]
    fn shipped_file_names_every_spec_constant() {
        for rule in Rule::ALL {
            let line = format!("\n{} = ", rule.constant_name());
            assert!(SHIPPED.contains(&line), "{} missing", rule.constant_name());
        }
        assert!(SHIPPED.contains("\nPROVERS_PER_PROOF = 200"));
        assert!(SHIPPED.contains("\nPROVERS_PER_AGGPROOF = 5"));
        assert!(SHIPPED.contains("\nREWARD_T2_PROVER = 100"));
    }

    #[test]
    fn round_trips_through_toml() {
        let file = RewardsFile::default();
        assert_eq!(RewardsFile::from_toml_str(&file.to_toml_string()).unwrap(), file);
        let config = Config::default();
        assert_eq!(config.to_file().validate().unwrap(), config);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let text = format!("{SHIPPED}\nREWARD_SOMETHING_ELSE = 1\n");
        let err = RewardsFile::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `REWARD_SOMETHING_ELSE`"), "{err}");

        let text = SHIPPED.replace("t1_ms = 4000", "t1_ms = 4000\nt6_ms = 1");
        let err = RewardsFile::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `t6_ms`"), "{err}");
    }

    #[test]
    fn missing_key_is_rejected() {
        let text = SHIPPED.replace("REWARD_PROVER_T4 = 40\n", "");
        let err = RewardsFile::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("missing field `REWARD_PROVER_T4`"), "{err}");
    }

    #[test]
    fn wrong_type_is_rejected() {
        let text = SHIPPED.replace("PROVERS_PER_PROOF = 200", "PROVERS_PER_PROOF = -1");
        assert!(RewardsFile::from_toml_str(&text).is_err());
        let text = SHIPPED.replace("t1_ms = 4000", "t1_ms = \"4s\"");
        assert!(RewardsFile::from_toml_str(&text).is_err());
    }

    #[test]
    fn every_reward_must_be_non_negative_and_every_penalty_non_positive() {
        for &rule in Rule::ALL {
            let mut file = RewardsFile::default();
            let (value, expected) = if rule.is_penalty() {
                (1, format!("{} must be <= 0", rule.constant_name()))
            } else {
                (-1, format!("{} must be >= 0", rule.constant_name()))
            };
            file.set(rule.constant_name(), value).unwrap();
            assert_eq!(invalid(file), expected);
        }
    }

    #[test]
    fn zero_amounts_are_valid() {
        let mut file = RewardsFile::default();
        for &rule in Rule::ALL {
            file.set(rule.constant_name(), 0).unwrap();
        }
        let config = file.validate().unwrap();
        assert!(Rule::ALL.iter().all(|&r| config.table.amount(r) == Amount(0)));
    }

    #[test]
    fn each_engine_key_is_checked() {
        let cases: &[(&str, i64, &str)] = &[
            ("PROVERS_PER_PROOF", 0, "PROVERS_PER_PROOF must be > 0"),
            ("PROVERS_PER_AGGPROOF", 0, "PROVERS_PER_AGGPROOF must be > 0"),
            ("selection.redundancy_factor", 0, "selection.redundancy_factor must be > 0"),
            (
                "selection.redundancy_factor",
                201,
                "selection.redundancy_factor must be <= PROVERS_PER_PROOF",
            ),
            ("selection.shuffle_round_count", 0, "selection.shuffle_round_count must be > 0"),
            ("gas.sub_block_gas", 0, "gas.sub_block_gas must be > 0"),
            ("gas.max_sub_blocks", 0, "gas.max_sub_blocks must be > 0"),
            ("gas.gas_per_air", 0, "gas.gas_per_air must be > 0"),
            ("phases.t1_ms", 0, "phases.t1_ms must be > 0"),
            ("phases.t2_ms", 0, "phases.t2_ms must be > 0"),
            ("phases.t3_ms", 0, "phases.t3_ms must be > 0"),
            ("phases.t4_ms", 0, "phases.t4_ms must be > 0"),
            ("phases.t5_ms", 0, "phases.t5_ms must be > 0"),
            (
                "phases.max_clock_disparity_ms",
                4000,
                "phases.max_clock_disparity_ms must be < the shortest phase window",
            ),
            (
                "phases.max_relay_delay_ms",
                100,
                "phases.max_relay_delay_ms must be >= phases.max_clock_disparity_ms",
            ),
            (
                "phases.t1_ms",
                i64::MAX,
                "phases must be windows whose total over all attempts fits u64",
            ),
            ("reputation.base_weight", 0, "reputation.base_weight must be > 0"),
            ("reputation.max_boost", 0, "reputation.max_boost must be >= 1"),
            (
                "reputation.max_boost",
                i64::MAX,
                "reputation.max_boost must be such that base_weight * max_boost fits u64",
            ),
        ];
        for &(key, value, expected) in cases {
            let mut file = RewardsFile::default();
            file.set(key, value).unwrap();
            assert_eq!(invalid(file), expected, "{key} = {value}");
        }
    }

    #[test]
    fn set_and_get_by_dotted_key() {
        let mut file = RewardsFile::default();
        file.set("REWARD_PROVER_T3", 60).unwrap();
        file.set("phases.t3_ms", 6000).unwrap();
        file.set("retries.max_retries", 0).unwrap();
        assert_eq!(file.reward_prover_t3, 60);
        assert_eq!(file.phases.t3_ms, 6000);
        assert_eq!(file.retries.max_retries, 0);
        assert_eq!(file.get("phases.t3_ms").unwrap(), 6000);
        assert_eq!(file.get("REWARD_PROVER_T3").unwrap(), 60);

        file.apply_override("gas.gas_per_air = 2_000_000").unwrap();
        assert_eq!(file.gas.gas_per_air, 2_000_000);

        let mut config = Config::default();
        config.set("REWARD_T2_PROVER", 120).unwrap();
        assert_eq!(config.table.reward_t2_prover, Amount(120));
        config.set("phases.t1_ms", 3000).unwrap();
        assert_eq!(config.engine.phases.t1_ms, 3000);
    }

    #[test]
    fn set_rejects_unknown_keys_and_out_of_range_values() {
        let mut file = RewardsFile::default();
        let err = file.set("REWARD_PROVER_T6", 1).unwrap_err();
        assert!(matches!(&err, Error::UnknownKey { key, .. } if key == "REWARD_PROVER_T6"));
        assert!(err.to_string().contains("phases.t1_ms"), "lists known keys: {err}");
        assert!(matches!(file.set("phases", 1), Err(Error::UnknownKey { .. })));
        assert!(matches!(file.set("phases.t1_ms.x", 1), Err(Error::UnknownKey { .. })));
        assert!(matches!(file.get("nope"), Err(Error::UnknownKey { .. })));

        let err = file.set("phases.t1_ms", -5).unwrap_err();
        assert!(
            matches!(&err, Error::ValueOutOfRange { key, value: -5, .. } if key == "phases.t1_ms")
        );
        let err = file.set("selection.shuffle_round_count", 300).unwrap_err();
        assert!(matches!(err, Error::ValueOutOfRange { .. }));
        assert_eq!(file, RewardsFile::default(), "failed overrides leave the file unchanged");

        assert!(matches!(
            file.apply_override("phases.t1_ms=fast"),
            Err(Error::NotAnInteger { .. })
        ));
        assert!(matches!(file.apply_override("phases.t1_ms"), Err(Error::NotAnInteger { .. })));

        let mut config = Config::default();
        assert!(matches!(config.set("phases.t1_ms", 0), Err(Error::InvalidValue { .. })));
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_inclusion_section_is_optional_and_validated() {
        let shipped = RewardsFile::default().to_toml_string();
        let without: String = {
            let i = shipped.find("[inclusion]").expect("rendered");
            let rest = &shipped[i + 1..];
            let end = rest.find("\n[").map_or(shipped.len(), |e| i + 1 + e + 1);
            format!("{}{}", &shipped[..i], &shipped[end..])
        };
        assert!(!without.contains("inclusion"));
        let parsed = Config::from_toml_str(&without).unwrap();
        assert_eq!(parsed.inclusion, InclusionParams::default());
        let mut config = Config::default();
        config.set("inclusion.max_delay_slots", 8).unwrap();
        assert_eq!(config.inclusion.max_delay_slots, 8);
        let err = config.set("inclusion.max_delay_slots", 0).unwrap_err();
        assert!(err.to_string().contains("inclusion.max_delay_slots"), "{err}");
    }

    #[test]
    fn keys_are_dotted_and_complete() {
        let keys = RewardsFile::keys();
        assert_eq!(keys.len(), 2 + Rule::ALL.len() + 2 + 1 + 3 + 7 + 2 + 3);
        assert!(keys.iter().any(|k| k == "phases.max_clock_disparity_ms"));
        assert!(keys.iter().any(|k| k == "inclusion.max_delay_slots"));
        assert!(keys.iter().any(|k| k == "PENALTY_PROVER_NOTREUSED_T5"));
        let file = RewardsFile::default();
        for key in &keys {
            file.get(key).unwrap();
        }
    }
}
