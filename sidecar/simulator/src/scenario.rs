//! Scenario files: who proves, what the blocks look like and how every prover behaves.
//!
//! A scenario is a TOML file (`configs/scenarios/*.toml`, documented in
//! `configs/scenarios/default.toml`). Unknown keys are rejected and every validation error names
//! the offending key. [`Scenario::from_toml_str`] parses, validates and expands the file into one
//! [`ProverSpec`] per prover.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use phase_engine::ProverIndex;
use serde::{Deserialize, Serialize};

use super::dist::{GasDistribution, Latency};
use super::error::{SimError, SimResult};

/// How a simulated prover acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Commits in T1, proves its AIRs and submits the partials in T2, aggregates a full proof in
    /// T3 from its own and others' partials; with `solo_full_proof` it also proves every AIR of
    /// the sub-block itself and sends the full proof as soon as it is ready (T1 or T2).
    Honest,
    /// Never sends anything.
    Offline,
    /// Commits in T1 but never proves.
    Lazy,
    /// Commits and proves, but its partials arrive after T2 has closed.
    Slow,
    /// Commits, then resubmits other provers' partial and full proofs as its own (the proofs are
    /// bound to their authors' keys, so the engine rejects them).
    Copier,
    /// Commits and proves, but keeps its partials to itself and only submits a full proof in T3.
    Withholder,
    /// Declines every assignment in T1.
    Decliner,
    /// Never commits nor proves partials: only aggregates full proofs (T3–T5) and AggProofs.
    AggregatorOnly,
    /// Races for the full-proof reward: T1, commits (with the full proof inside if it is ready
    /// before T1 closes); proves every AIR of the sub-block itself, one after another, and sends
    /// the full proof as soon as it is ready (T1 in its commitment, else T2–T5 as a full-proof
    /// message, if before T5 closes); sends no partial proofs and does not aggregate others'
    /// parts; sends AggProofs as an honest prover does.
    Racer,
    /// One key of a sybil operator that runs `sybil_keys` keys (scenario key, consecutive sybil
    /// provers in index order form one operator). In a round the operator's first selected key
    /// (in selection order) acts as an honest prover; its other selected keys only commit in T1
    /// (the operator proves once, all its keys commit). AggProofs as honest.
    Sybil,
    /// A copier in a ring of copiers that share proofs (every `colluding_copier` of the
    /// scenario is in the one ring). T1: every member commits. T2: the round's first selected
    /// member (the ring's worker) proves its own AIRs and those of the other selected members,
    /// and sends its own partials as an honest prover; the others resubmit the worker's proofs
    /// of their AIRs as their own when the worker has them (bound to the worker's key, so the
    /// engine rejects them). T3: the worker aggregates as an honest prover; every member
    /// resubmits the first accepted full proof as its own, as a copier does.
    ColludingCopier,
    /// Honest as a prover, and also the operator of validator `index` (the prover's index): when
    /// that validator proposes a slot and includes messages in its record (scenario key
    /// `proposers_with_sidecar`), the record leaves out every message sent by other provers, so
    /// only a later record can include them. Without `proposers_with_sidecar` the simulator does
    /// not model records and this behaviour is honest.
    Censoring,
}

impl Behaviour {
    /// Number of behaviours.
    pub const COUNT: usize = 12;

    /// Every behaviour, in table order (new ones are appended: the order fixes colours and
    /// columns).
    pub const ALL: [Behaviour; Self::COUNT] = [
        Self::Honest,
        Self::Offline,
        Self::Lazy,
        Self::Slow,
        Self::Copier,
        Self::Withholder,
        Self::Decliner,
        Self::AggregatorOnly,
        Self::Racer,
        Self::Sybil,
        Self::ColludingCopier,
        Self::Censoring,
    ];

    /// The name used in scenario files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Offline => "offline",
            Self::Lazy => "lazy",
            Self::Slow => "slow",
            Self::Copier => "copier",
            Self::Withholder => "withholder",
            Self::Decliner => "decliner",
            Self::AggregatorOnly => "aggregator_only",
            Self::Racer => "racer",
            Self::Sybil => "sybil",
            Self::ColludingCopier => "colluding_copier",
            Self::Censoring => "censoring",
        }
    }

    /// Position in [`Behaviour::ALL`].
    pub fn ordinal(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latencies of one prover. Every duration is drawn afresh for every round. A key left out
/// keeps its default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyProfile {
    /// From the start of the round (or of its retry) to the T1 commitment arriving: computing the
    /// trace commitments, signing, gossip.
    pub commit: Latency,
    /// Proving one AIR (a prover proves its AIRs one after another).
    pub per_air: Latency,
    /// Building and sending a full proof (or an AggProof) once its parts are available.
    pub aggregate: Latency,
}

impl Default for LatencyProfile {
    /// Fast provers: DESIGN.md's measured 10–180 ms to commit and ~300 ms per AIR.
    fn default() -> Self {
        Self {
            commit: Latency::Uniform { min_ms: 10, max_ms: 180 },
            per_air: Latency::Lognormal { median_ms: 300, sigma: 0.25 },
            aggregate: Latency::Fixed { ms: 100 },
        }
    }
}

/// Partial latency settings: what a group or a prover changes from the defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyOverride {
    /// Replaces [`LatencyProfile::commit`].
    pub commit: Option<Latency>,
    /// Replaces [`LatencyProfile::per_air`].
    pub per_air: Option<Latency>,
    /// Replaces [`LatencyProfile::aggregate`].
    pub aggregate: Option<Latency>,
}

impl LatencyOverride {
    fn apply(&self, to: &mut LatencyProfile) {
        if let Some(l) = self.commit {
            to.commit = l;
        }
        if let Some(l) = self.per_air {
            to.per_air = l;
        }
        if let Some(l) = self.aggregate {
            to.aggregate = l;
        }
    }

    fn validate(&self, key: &str) -> SimResult<()> {
        for (name, l) in
            [("commit", self.commit), ("per_air", self.per_air), ("aggregate", self.aggregate)]
        {
            if let Some(l) = l {
                l.validate(&format!("{key}.{name}"))?;
            }
        }
        Ok(())
    }
}

/// `[defaults]`: the profile of every prover unless a group or a `[[prover]]` entry says
/// otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Stake, in reward units.
    pub stake: u64,
    /// Starting reputation (0 = no history; raises the selection weight, bounded by the engine).
    pub reputation: u64,
    /// Honest provers only: also prove whole sub-blocks alone and send the full proof at once.
    pub solo_full_proof: bool,
    /// Latencies.
    pub latency: LatencyProfile,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            stake: 32_000_000_000,
            reputation: 0,
            solo_full_proof: false,
            latency: LatencyProfile::default(),
        }
    }
}

/// Fields that a group, a `[[prover]]` entry or a `[[join]]` entry may override.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ProfileOverride {
    stake: Option<u64>,
    reputation: Option<u64>,
    solo_full_proof: Option<bool>,
    latency: Option<LatencyOverride>,
}

impl ProfileOverride {
    fn validate(&self, key: &str) -> SimResult<()> {
        if let Some(l) = &self.latency {
            l.validate(&format!("{key}.latency"))?;
        }
        Ok(())
    }

    fn apply(&self, spec: &mut ProverSpec) {
        if let Some(s) = self.stake {
            spec.stake = s;
        }
        if let Some(r) = self.reputation {
            spec.reputation = r;
        }
        if let Some(s) = self.solo_full_proof {
            spec.solo_full_proof = s;
        }
        if let Some(l) = &self.latency {
            l.apply(&mut spec.latency);
        }
    }
}

/// `[[group]]`: a share of the initial provers with one behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Behaviour of the group's provers.
    pub behaviour: Behaviour,
    /// Relative weight: the initial provers are shared among groups in proportion to it.
    pub weight: u32,
    /// Overrides `defaults.stake`.
    pub stake: Option<u64>,
    /// Overrides `defaults.reputation`.
    pub reputation: Option<u64>,
    /// Overrides `defaults.solo_full_proof`.
    pub solo_full_proof: Option<bool>,
    /// Overrides some of `defaults.latency`.
    pub latency: Option<LatencyOverride>,
}

/// `[[prover]]`: settings of one initial prover, applied after the groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProverEntry {
    /// Index of the prover (`0..provers`).
    pub index: u64,
    /// Replaces the behaviour its group gave it.
    pub behaviour: Option<Behaviour>,
    /// Block from which it has exited (it serves no round of this or later blocks).
    pub exit_at_block: Option<u64>,
    /// Overrides the stake.
    pub stake: Option<u64>,
    /// Overrides the reputation.
    pub reputation: Option<u64>,
    /// Overrides `solo_full_proof`.
    pub solo_full_proof: Option<bool>,
    /// Overrides some latencies.
    pub latency: Option<LatencyOverride>,
}

/// `[[join]]`: new provers that register at a block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinEntry {
    /// Block at which they register.
    pub at_block: u64,
    /// How many.
    pub count: u64,
    /// Their behaviour.
    pub behaviour: Behaviour,
    /// Overrides the stake.
    pub stake: Option<u64>,
    /// Overrides the reputation.
    pub reputation: Option<u64>,
    /// Overrides `solo_full_proof`.
    pub solo_full_proof: Option<bool>,
    /// Overrides some latencies.
    pub latency: Option<LatencyOverride>,
}

/// `[[exit]]`: provers that exit at a block: either listed, or the `count` lowest-indexed
/// provers (of `behaviour`, if given) still registered then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitEntry {
    /// Block from which they have exited.
    pub at_block: u64,
    /// Exactly these provers.
    pub provers: Option<Vec<u64>>,
    /// Or this many provers...
    pub count: Option<u64>,
    /// ...of this behaviour (any behaviour if absent).
    pub behaviour: Option<Behaviour>,
}

/// The scenario file as written (see `configs/scenarios/default.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// A name for reports (defaults to the file name).
    pub name: Option<String>,
    /// Seed of every random choice: RANDAO mixes, block roots, proposers, gas, latencies.
    #[serde(default)]
    pub seed: u64,
    /// Number of blocks to simulate.
    pub blocks: u64,
    /// Number of provers registered at genesis.
    pub provers: u64,
    /// Number of validators (proposers are drawn among them).
    #[serde(default = "default_validators")]
    pub validators: u64,
    /// Slot duration in milliseconds.
    #[serde(default = "default_slot_ms")]
    pub slot_ms: u64,
    /// Gas of the blocks.
    #[serde(default)]
    pub gas: GasDistribution,
    /// Canonical inclusion: the share (0..=1) of slots whose proposer runs a sidecar and so
    /// includes the provers' messages in its record. Absent: inclusion is not modelled (a
    /// message is credited to the proposer of the first block after it arrived).
    #[serde(default)]
    pub proposers_with_sidecar: Option<f64>,
    /// Keys per sybil operator (behaviour `sybil`): consecutive sybil provers, in index order,
    /// form one operator of this many keys (the last may have fewer). At least 1.
    #[serde(default = "default_sybil_keys")]
    pub sybil_keys: u64,
    /// Profile of every prover unless overridden.
    #[serde(default)]
    pub defaults: Defaults,
    /// Shares of the initial provers by behaviour (all honest if empty).
    #[serde(default, rename = "group")]
    pub groups: Vec<Group>,
    /// Per-prover settings.
    #[serde(default, rename = "prover")]
    pub prover_entries: Vec<ProverEntry>,
    /// Provers joining later.
    #[serde(default, rename = "join")]
    pub joins: Vec<JoinEntry>,
    /// Provers exiting.
    #[serde(default, rename = "exit")]
    pub exits: Vec<ExitEntry>,
}

fn default_validators() -> u64 {
    10_000
}

fn default_slot_ms() -> u64 {
    12_000
}

fn default_sybil_keys() -> u64 {
    4
}

/// One simulated prover, fully resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProverSpec {
    /// Its index in the registry.
    pub index: ProverIndex,
    /// How it acts.
    pub behaviour: Behaviour,
    /// Stake.
    pub stake: u64,
    /// Starting reputation.
    pub reputation: u64,
    /// See [`Defaults::solo_full_proof`].
    pub solo_full_proof: bool,
    /// Latencies.
    pub latency: LatencyProfile,
    /// First block at which it is registered.
    pub join_at_block: u64,
    /// Block from which it has exited, if it does.
    pub exit_at_block: Option<u64>,
}

impl ProverSpec {
    /// Whether the prover is registered while `block` is being proven.
    pub fn active_at(&self, block: u64) -> bool {
        block >= self.join_at_block && self.exit_at_block.is_none_or(|exit| block < exit)
    }
}

/// A validated, expanded scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Name for reports.
    pub name: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Number of validators.
    pub validators: u64,
    /// Slot duration in milliseconds.
    pub slot_ms: u64,
    /// Gas of the blocks.
    pub gas: GasDistribution,
    /// Share of proposers running a sidecar (`None`: inclusion not modelled).
    pub proposers_with_sidecar: Option<f64>,
    /// Keys per sybil operator (see [`ScenarioFile::sybil_keys`]).
    pub sybil_keys: u64,
    /// Every prover that is ever registered, by index (initial provers first, then joiners).
    pub provers: Vec<ProverSpec>,
}

/// Upper bound on the number of provers of a scenario.
pub const MAX_PROVERS: u64 = 10_000_000;

impl Scenario {
    /// Reads, parses, validates and expands a scenario file.
    ///
    /// # Errors
    /// [`SimError::Io`], [`SimError::ScenarioParse`] or [`SimError::ScenarioInvalid`].
    pub fn load(path: &Path) -> SimResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            action: "reading scenario",
            path: path.to_owned(),
            source,
        })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        Self::parse(&text, &path.display().to_string(), name)
    }

    /// Parses, validates and expands a scenario given as TOML text.
    ///
    /// # Errors
    /// [`SimError::ScenarioParse`] or [`SimError::ScenarioInvalid`].
    pub fn from_toml_str(text: &str) -> SimResult<Self> {
        Self::parse(text, "<string>", None)
    }

    fn parse(text: &str, origin: &str, default_name: Option<String>) -> SimResult<Self> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| SimError::ScenarioParse {
            origin: origin.to_owned(),
            source: Box::new(e),
        })?;
        Self::from_file(file, default_name)
    }

    /// Validates and expands a parsed [`ScenarioFile`].
    ///
    /// # Errors
    /// [`SimError::ScenarioInvalid`] naming the first offending key.
    pub fn from_file(file: ScenarioFile, default_name: Option<String>) -> SimResult<Self> {
        if file.blocks == 0 {
            return Err(SimError::invalid("blocks", "must be at least 1"));
        }
        if file.provers == 0 || file.provers > MAX_PROVERS {
            return Err(SimError::invalid("provers", format!("must be in 1..={MAX_PROVERS}")));
        }
        if file.validators == 0 {
            return Err(SimError::invalid("validators", "must be at least 1"));
        }
        if file.proposers_with_sidecar.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(SimError::invalid("proposers_with_sidecar", "must be in 0..=1"));
        }
        if file.slot_ms == 0 {
            return Err(SimError::invalid("slot_ms", "must be at least 1"));
        }
        if file.sybil_keys == 0 {
            return Err(SimError::invalid("sybil_keys", "must be at least 1"));
        }
        file.gas.validate()?;
        for (name, l) in [
            ("commit", file.defaults.latency.commit),
            ("per_air", file.defaults.latency.per_air),
            ("aggregate", file.defaults.latency.aggregate),
        ] {
            l.validate(&format!("defaults.latency.{name}"))?;
        }

        let base = |index: u64, behaviour: Behaviour| ProverSpec {
            index: ProverIndex(index),
            behaviour,
            stake: file.defaults.stake,
            reputation: file.defaults.reputation,
            solo_full_proof: file.defaults.solo_full_proof,
            latency: file.defaults.latency,
            join_at_block: 0,
            exit_at_block: None,
        };

        // Groups: share the initial provers by weight (largest remainder), in file order.
        let mut provers: Vec<ProverSpec> = Vec::new();
        if file.groups.is_empty() {
            provers.extend((0..file.provers).map(|i| base(i, Behaviour::Honest)));
        } else {
            let mut total_weight = 0u64;
            for (i, g) in file.groups.iter().enumerate() {
                if g.weight == 0 {
                    return Err(SimError::invalid(format!("group[{i}].weight"), "must be > 0"));
                }
                group_override(g).validate(&format!("group[{i}]"))?;
                total_weight += u64::from(g.weight);
            }
            let counts =
                share(file.provers, file.groups.iter().map(|g| u64::from(g.weight)), total_weight);
            let mut next = 0u64;
            for (g, count) in file.groups.iter().zip(counts) {
                let over = group_override(g);
                for _ in 0..count {
                    let mut spec = base(next, g.behaviour);
                    over.apply(&mut spec);
                    provers.push(spec);
                    next += 1;
                }
            }
        }

        // Per-prover entries.
        let mut seen = BTreeMap::new();
        for (i, e) in file.prover_entries.iter().enumerate() {
            let key = format!("prover[{i}]");
            if e.index >= file.provers {
                return Err(SimError::invalid(
                    format!("{key}.index"),
                    format!("{} is not an initial prover (provers = {})", e.index, file.provers),
                ));
            }
            if let Some(prev) = seen.insert(e.index, i) {
                return Err(SimError::invalid(
                    format!("{key}.index"),
                    format!("prover {} is already configured by prover[{prev}]", e.index),
                ));
            }
            let over = ProfileOverride {
                stake: e.stake,
                reputation: e.reputation,
                solo_full_proof: e.solo_full_proof,
                latency: e.latency,
            };
            over.validate(&key)?;
            check_join_exit(&key, 0, e.exit_at_block)?;
            let Some(spec) = usize::try_from(e.index).ok().and_then(|i| provers.get_mut(i)) else {
                return Err(SimError::invalid(format!("{key}.index"), "out of range"));
            };
            over.apply(spec);
            if let Some(b) = e.behaviour {
                spec.behaviour = b;
            }
            if e.exit_at_block.is_some() {
                spec.exit_at_block = e.exit_at_block;
            }
        }

        // Joiners get the next indices, in the order they register (by block, then file order),
        // which is the order in which the registry numbers them.
        let mut joins: Vec<(usize, &JoinEntry)> = file.joins.iter().enumerate().collect();
        joins.sort_by_key(|(i, j)| (j.at_block, *i));
        for (i, j) in joins {
            let key = format!("join[{i}]");
            if j.count == 0 {
                return Err(SimError::invalid(format!("{key}.count"), "must be at least 1"));
            }
            if provers.len() as u64 + j.count > MAX_PROVERS {
                return Err(SimError::invalid(
                    format!("{key}.count"),
                    format!("more than {MAX_PROVERS} provers in all"),
                ));
            }
            let over = ProfileOverride {
                stake: j.stake,
                reputation: j.reputation,
                solo_full_proof: j.solo_full_proof,
                latency: j.latency,
            };
            over.validate(&key)?;
            for _ in 0..j.count {
                let mut spec = base(provers.len() as u64, j.behaviour);
                over.apply(&mut spec);
                spec.join_at_block = j.at_block;
                provers.push(spec);
            }
        }

        // Exits.
        for (i, x) in file.exits.iter().enumerate() {
            let key = format!("exit[{i}]");
            match (&x.provers, x.count) {
                (Some(list), None) => {
                    if x.behaviour.is_some() {
                        return Err(SimError::invalid(
                            format!("{key}.behaviour"),
                            "only allowed together with `count`",
                        ));
                    }
                    for (k, &p) in list.iter().enumerate() {
                        let Some(spec) = usize::try_from(p).ok().and_then(|p| provers.get_mut(p))
                        else {
                            return Err(SimError::invalid(
                                format!("{key}.provers[{k}]"),
                                format!("no prover {p} in this scenario"),
                            ));
                        };
                        set_exit(spec, x.at_block, &format!("{key}.provers[{k}]"))?;
                    }
                }
                (None, Some(count)) => {
                    let mut left = count;
                    for spec in provers.iter_mut() {
                        if left == 0 {
                            break;
                        }
                        if spec.active_at(x.at_block)
                            && x.behaviour.is_none_or(|b| b == spec.behaviour)
                        {
                            spec.exit_at_block = Some(x.at_block);
                            left -= 1;
                        }
                    }
                    if left > 0 {
                        return Err(SimError::invalid(
                            format!("{key}.count"),
                            format!(
                                "only {} matching provers are registered at block {}",
                                count - left,
                                x.at_block
                            ),
                        ));
                    }
                }
                _ => {
                    return Err(SimError::invalid(key, "give either `provers` or `count`"));
                }
            }
        }

        let name = file.name.or(default_name).unwrap_or_else(|| "scenario".to_owned());
        Ok(Self {
            name,
            seed: file.seed,
            blocks: file.blocks,
            validators: file.validators,
            slot_ms: file.slot_ms,
            gas: file.gas,
            proposers_with_sidecar: file.proposers_with_sidecar,
            sybil_keys: file.sybil_keys,
            provers,
        })
    }

    /// Number of provers of each behaviour (ever registered), in [`Behaviour::ALL`] order.
    pub fn behaviour_counts(&self) -> [u64; Behaviour::COUNT] {
        let mut counts = [0u64; Behaviour::COUNT];
        for p in &self.provers {
            counts[p.behaviour.ordinal()] += 1;
        }
        counts
    }
}

impl Scenario {
    /// The sybil operators: consecutive `sybil` provers in index order, [`Scenario::sybil_keys`]
    /// keys each (the last operator may have fewer).
    pub fn sybil_operators(&self) -> Vec<Vec<ProverIndex>> {
        let keys: Vec<ProverIndex> = self
            .provers
            .iter()
            .filter(|p| p.behaviour == Behaviour::Sybil)
            .map(|p| p.index)
            .collect();
        let k = usize::try_from(self.sybil_keys).unwrap_or(usize::MAX).max(1);
        keys.chunks(k).map(<[ProverIndex]>::to_vec).collect()
    }
}

fn group_override(g: &Group) -> ProfileOverride {
    ProfileOverride {
        stake: g.stake,
        reputation: g.reputation,
        solo_full_proof: g.solo_full_proof,
        latency: g.latency,
    }
}

fn check_join_exit(key: &str, join: u64, exit: Option<u64>) -> SimResult<()> {
    if let Some(exit) = exit
        && exit <= join
    {
        return Err(SimError::invalid(
            format!("{key}.exit_at_block"),
            format!("{exit} is not after the join block {join}"),
        ));
    }
    Ok(())
}

fn set_exit(spec: &mut ProverSpec, at: u64, key: &str) -> SimResult<()> {
    check_join_exit(key, spec.join_at_block, Some(at))?;
    spec.exit_at_block = Some(spec.exit_at_block.map_or(at, |e| e.min(at)));
    Ok(())
}

/// Shares `n` among weights by the largest-remainder method (ties to the earlier entry).
fn share(n: u64, weights: impl Iterator<Item = u64>, total: u64) -> Vec<u64> {
    let weights: Vec<u64> = weights.collect();
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let num = u128::from(n) * u128::from(w);
            ((num / u128::from(total)) as u64, num % u128::from(total))
        })
        .collect();
    let mut counts: Vec<u64> = exact.iter().map(|&(q, _)| q).collect();
    let mut left = n - counts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        seed = 3
        blocks = 10
        provers = 10

        [[group]]
        behaviour = "honest"
        weight = 2

        [[group]]
        behaviour = "lazy"
        weight = 1
        latency.per_air = { kind = "fixed", ms = 5 }

        [[prover]]
        index = 9
        behaviour = "copier"
        exit_at_block = 5

        [[join]]
        at_block = 4
        count = 2
        behaviour = "withholder"

        [[join]]
        at_block = 2
        count = 1
        behaviour = "slow"

        [[exit]]
        at_block = 7
        count = 1
        behaviour = "honest"
    "#;

    #[test]
    fn groups_joins_and_exits_expand() {
        let s = Scenario::from_toml_str(SMALL).unwrap();
        assert_eq!(s.provers.len(), 13);
        // 10 * 2/3 = 6.67 and 10 * 1/3 = 3.33: the larger remainder gets the extra prover.
        let behaviours: Vec<_> = s.provers.iter().map(|p| p.behaviour).collect();
        assert_eq!(&behaviours[..7], &[Behaviour::Honest; 7]);
        assert_eq!(&behaviours[7..9], &[Behaviour::Lazy; 2]);
        assert_eq!(behaviours[9], Behaviour::Copier);
        // Joiners are numbered in the order they register.
        assert_eq!(behaviours[10], Behaviour::Slow);
        assert_eq!(s.provers[10].join_at_block, 2);
        assert_eq!(&behaviours[11..], &[Behaviour::Withholder; 2]);
        assert_eq!(s.provers[7].latency.per_air, Latency::Fixed { ms: 5 });
        assert_eq!(s.provers[0].latency.per_air, LatencyProfile::default().per_air);
        assert_eq!(s.provers[9].exit_at_block, Some(5));
        assert!(!s.provers[11].active_at(3) && s.provers[11].active_at(4));
        // The exit takes the lowest-indexed honest prover.
        assert_eq!(s.provers[0].exit_at_block, Some(7));
        assert!(s.provers[0].active_at(6) && !s.provers[0].active_at(7));
        assert_eq!(s.behaviour_counts()[Behaviour::Honest.ordinal()], 7);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("blocks = 1\nprovers = 1\nbogus = 3", "bogus"),
            ("blocks = 0\nprovers = 1", "`blocks`"),
            ("blocks = 1\nprovers = 0", "`provers`"),
            ("blocks = 1\nprovers = 1\n[gas]\nkind = \"uniform\"\nmin = 3\nmax = 1", "`gas.min`"),
            ("blocks = 1\nprovers = 1\n[gas]\nkind = \"fixed\"\ngas = 1\nmin = 3", "min"),
            (
                "blocks = 1\nprovers = 1\n[[group]]\nbehaviour = \"honest\"\nweight = 0",
                "`group[0].weight`",
            ),
            ("blocks = 1\nprovers = 1\n[[group]]\nbehaviour = \"saint\"\nweight = 1", "saint"),
            (
                "blocks = 1\nprovers = 1\n[[group]]\nbehaviour = \"honest\"\nweight = 1\nlatency.per_air = { kind = \"uniform\", min_ms = 9, max_ms = 1 }",
                "`group[0].latency.per_air.min_ms`",
            ),
            ("blocks = 1\nprovers = 2\n[[prover]]\nindex = 2", "`prover[0].index`"),
            (
                "blocks = 1\nprovers = 2\n[[prover]]\nindex = 1\n[[prover]]\nindex = 1",
                "`prover[1].index`",
            ),
            (
                "blocks = 1\nprovers = 2\n[[prover]]\nindex = 1\nexit_at_block = 0",
                "`prover[0].exit_at_block`",
            ),
            ("blocks = 1\nprovers = 2\n[[prover]]\nindex = 1\njoin_at_block = 3", "join_at_block"),
            (
                "blocks = 1\nprovers = 2\n[[join]]\nat_block = 1\ncount = 0\nbehaviour = \"lazy\"",
                "`join[0].count`",
            ),
            ("blocks = 1\nprovers = 2\n[[exit]]\nat_block = 1\ncount = 3", "`exit[0].count`"),
            ("blocks = 1\nprovers = 2\n[[exit]]\nat_block = 1", "`exit[0]`"),
            (
                "blocks = 1\nprovers = 2\n[[exit]]\nat_block = 1\nprovers = [5]",
                "`exit[0].provers[0]`",
            ),
            (
                "blocks = 1\nprovers = 2\n[defaults]\nlatency.commit = { kind = \"lognormal\", median_ms = 1, sigma = 9.0 }",
                "`defaults.latency.commit.sigma`",
            ),
        ];
        for (text, key) in cases {
            let err = Scenario::from_toml_str(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text:?}: error {err:?} does not name {key}");
        }
    }

    #[test]
    fn share_is_exact_and_stable() {
        assert_eq!(share(10, [1, 1, 1].into_iter(), 3), vec![4, 3, 3]);
        assert_eq!(share(1000, [90, 5, 5].into_iter(), 100), vec![900, 50, 50]);
        assert_eq!(share(1, [1, 1].into_iter(), 2), vec![1, 0]);
    }

    #[test]
    fn shipped_scenarios_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 3, "expected the example scenarios in {}", dir.display());
    }
}
