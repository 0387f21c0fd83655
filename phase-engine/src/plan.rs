//! Block planning: how many sub-blocks a block is split into and how many AIRs each has.

use serde::{Deserialize, Serialize};

use crate::{
    config::EngineConfig,
    error::{Error, Result},
    messages::MAX_AIRS_PER_SUB_BLOCK,
    types::SubBlockIndex,
};

/// One planned sub-block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubBlockPlan {
    /// Its index.
    pub index: SubBlockIndex,
    /// Gas it carries.
    pub gas: u64,
    /// Number of AIRs (partial proofs).
    pub num_airs: u32,
}

/// The plan of a block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockPlan {
    /// Sub-blocks, by index (at least one).
    pub sub_blocks: Vec<SubBlockPlan>,
    /// Provers selected per sub-block round (attempt 0).
    pub provers_per_sub_block: u64,
}

/// Plans a block of `gas_used` gas when `available` provers are active and not busy.
///
/// * sub-blocks: `k = ceil(gas_used / sub_block_gas)` (at least 1), capped by `max_sub_blocks`
///   and by availability: `k <= max(1, available / (2 * redundancy_factor))`, so that every
///   sub-block's prover set can hold each AIR `redundancy_factor` times with half the
///   available provers in total;
/// * gas is split evenly, the first `gas_used mod k` sub-blocks carrying one more;
/// * AIRs of a sub-block of `g` gas: `ceil(g / gas_per_air)`, at least 1, at most
///   [`MAX_AIRS_PER_SUB_BLOCK`];
/// * provers per sub-block: `min(PROVERS_PER_PROOF, available / (2k))`, at least 1 when any
///   prover is available (for `k = 1` this is the spec's `min(PROVERS_PER_PROOF, available / 2)`).
pub fn plan_block(gas_used: u64, available: u64, config: &EngineConfig) -> Result<BlockPlan> {
    let gas = &config.gas;
    if gas.sub_block_gas == 0 {
        return Err(Error::InvalidConfig { key: "sub_block_gas", reason: "must be positive" });
    }
    if gas.gas_per_air == 0 {
        return Err(Error::InvalidConfig { key: "gas_per_air", reason: "must be positive" });
    }
    let by_gas = gas_used.div_ceil(gas.sub_block_gas).max(1);
    let redundancy = u64::from(config.redundancy_factor.max(1));
    let by_availability = available.checked_div(redundancy.saturating_mul(2)).unwrap_or(0).max(1);
    let k = by_gas.min(u64::from(gas.max_sub_blocks.max(1))).min(by_availability);
    let base = gas_used.checked_div(k).unwrap_or(0);
    let extra = gas_used.checked_rem(k).unwrap_or(0);
    let mut sub_blocks = Vec::new();
    for i in 0..k {
        let g = base.saturating_add(u64::from(i < extra));
        let airs = g.div_ceil(gas.gas_per_air).clamp(1, u64::from(MAX_AIRS_PER_SUB_BLOCK));
        sub_blocks.push(SubBlockPlan {
            index: SubBlockIndex(
                u32::try_from(i).map_err(|_| Error::Overflow { context: "sub-block index" })?,
            ),
            gas: g,
            num_airs: u32::try_from(airs).map_err(|_| Error::Overflow { context: "AIR count" })?,
        });
    }
    let per = available
        .checked_div(k.saturating_mul(2))
        .unwrap_or(0)
        .min(u64::from(config.provers_per_proof));
    let provers_per_sub_block =
        if per == 0 && available > 0 && config.provers_per_proof > 0 { 1 } else { per };
    Ok(BlockPlan { sub_blocks, provers_per_sub_block })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_block_is_one_sub_block() {
        let cfg = EngineConfig::default();
        let plan = plan_block(30_000_000, 1000, &cfg).unwrap();
        assert_eq!(plan.sub_blocks.len(), 1);
        assert_eq!(plan.sub_blocks[0].num_airs, 8); // ceil(30M / 4M)
        assert_eq!(plan.provers_per_sub_block, 200);
        let empty = plan_block(0, 3, &cfg).unwrap();
        assert_eq!(empty.sub_blocks[0].num_airs, 1);
        assert_eq!(empty.provers_per_sub_block, 1);
    }

    #[test]
    fn gigagas_block_is_split_and_capped() {
        let cfg = EngineConfig::default();
        // 1 Ggas / 50 Mgas = 20 sub-blocks of 50 Mgas = 13 AIRs each.
        let plan = plan_block(1_000_000_000, 100_000, &cfg).unwrap();
        assert_eq!(plan.sub_blocks.len(), 20);
        assert!(plan.sub_blocks.iter().all(|s| s.gas == 50_000_000 && s.num_airs == 13));
        assert_eq!(plan.provers_per_sub_block, 200);
        // Capped by max_sub_blocks (32).
        assert_eq!(plan_block(5_000_000_000, 100_000, &cfg).unwrap().sub_blocks.len(), 32);
        // Capped by availability: 20 provers, redundancy 2 -> at most 5 sub-blocks of 2 provers.
        let plan = plan_block(1_000_000_000, 20, &cfg).unwrap();
        assert_eq!(plan.sub_blocks.len(), 5);
        assert_eq!(plan.provers_per_sub_block, 2);
        assert_eq!(plan.sub_blocks.iter().map(|s| s.gas).sum::<u64>(), 1_000_000_000);
    }

    #[test]
    fn uneven_gas_split() {
        let cfg = EngineConfig::default();
        let plan = plan_block(100_000_001, 1000, &cfg).unwrap();
        assert_eq!(plan.sub_blocks.len(), 3);
        assert_eq!(plan.sub_blocks[0].gas, 33_333_334);
        assert_eq!(plan.sub_blocks[2].gas, 33_333_333);
    }
}
