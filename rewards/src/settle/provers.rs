//! The selected provers of a round: sorted once, each with a [`Selected`] record of everything
//! settlement needs to know about it, found through a position table (or by binary search when
//! prover indices are too sparse for one), and [`read_provers`], which builds them from the
//! round's selection, assignments, declines and equivocations.

use phase_engine::{AirIndex, ProverIndex, RoundOutcome, UnixMillis, ValidatorIndex};

use crate::error::{Error, Result};

/// Everything settlement needs to know about one selected prover of a round.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Selected {
    /// Its AIRs (ascending, without repeats): `airs[airs_from..airs_to]` of the round.
    pub(super) airs_from: usize,
    pub(super) airs_to: usize,
    /// It has an assignment (an empty one counts).
    pub(super) assigned: bool,
    pub(super) declined: bool,
    pub(super) equivocator: bool,
    /// It submitted one of the round's valid full proofs.
    pub(super) submitted: bool,
    /// One of its partial proofs counts.
    pub(super) participant: bool,
    /// Its earliest valid T1 commitment: arrival and including validator.
    pub(super) commitment: Option<(UnixMillis, ValidatorIndex)>,
    /// Its assigned AIRs (not declined) without a valid partial by the end of T2.
    pub(super) missing: u64,
}

/// The selected provers of a round, sorted, with their [`Selected`] records.
pub(super) struct Provers {
    pub(super) ids: Vec<ProverIndex>,
    /// `table[p]` is the position of prover `p` in `ids` (`u32::MAX`: not selected), when the
    /// largest selected index is small enough for a table (registry indices usually are);
    /// empty otherwise, and positions are found by binary search.
    table: Vec<u32>,
    pub(super) state: Vec<Selected>,
    /// The AIRs of every assignment, one ascending segment per prover.
    pub(super) airs: Vec<AirIndex>,
}

impl Provers {
    fn position(&self, p: ProverIndex) -> Option<usize> {
        if self.table.is_empty() {
            return self.ids.binary_search(&p).ok();
        }
        let at = *usize::try_from(p.0).ok().and_then(|i| self.table.get(i))?;
        if at == u32::MAX { None } else { usize::try_from(at).ok() }
    }

    /// The position table of `ids` (sorted, without repeats), if it is small: at most 16 entries
    /// per selected prover, or 4096.
    fn table(ids: &[ProverIndex]) -> Vec<u32> {
        let Some(len) = ids.last().and_then(|max| usize::try_from(max.0).ok()?.checked_add(1))
        else {
            return Vec::new();
        };
        if len > ids.len().saturating_mul(16).max(4096) || u32::try_from(ids.len()).is_err() {
            return Vec::new();
        }
        let mut table = vec![u32::MAX; len];
        for (at, p) in (0u32..).zip(ids) {
            if let Some(slot) = usize::try_from(p.0).ok().and_then(|i| table.get_mut(i)) {
                *slot = at;
            }
        }
        table
    }

    fn get(&self, p: ProverIndex) -> Option<&Selected> {
        self.position(p).and_then(|i| self.state.get(i))
    }

    pub(super) fn get_mut(&mut self, p: ProverIndex) -> Option<&mut Selected> {
        self.position(p).and_then(|i| self.state.get_mut(i))
    }

    fn airs_of(&self, s: &Selected) -> &[AirIndex] {
        self.airs.get(s.airs_from..s.airs_to).unwrap_or_default()
    }

    /// `p` is selected and `air` is in its assignment (declined or not).
    pub(super) fn holds(&self, p: ProverIndex, air: AirIndex) -> bool {
        self.get(p).is_some_and(|s| self.airs_of(s).binary_search(&air).is_ok())
    }

    pub(super) fn declined(&self, p: ProverIndex) -> bool {
        self.get(p).is_some_and(|s| s.declined)
    }

    /// Selected provers, ascending, with their records.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ProverIndex, &Selected)> {
        self.ids.iter().copied().zip(&self.state)
    }
}

/// Sorts the selected provers and reads the assignments, declines and equivocations into their
/// records. Errors, in the order of the lists, on a repeated selected prover, an assignment of an
/// unselected prover or a second assignment, and a decline of an unselected prover.
pub(super) fn read_provers(round: &RoundOutcome) -> Result<Provers> {
    let (sub_block, attempt) = (round.key.sub_block, round.key.attempt);
    let mismatch = |prover| Error::AssignmentMismatch { sub_block, attempt, prover };

    let mut ids = round.selected.clone();
    ids.sort_unstable();
    if ids.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
        // Report the first repetition in list order.
        let mut seen = std::collections::BTreeSet::new();
        for &p in &round.selected {
            if !seen.insert(p) {
                return Err(mismatch(p));
            }
        }
    }
    let mut provers = Provers {
        state: vec![Selected::default(); ids.len()],
        table: Provers::table(&ids),
        ids,
        airs: Vec::with_capacity(round.assignments.iter().map(|a| a.airs.len()).sum()),
    };
    for a in &round.assignments {
        let Some(i) = provers.position(a.prover) else { return Err(mismatch(a.prover)) };
        let from = provers.airs.len();
        provers.airs.extend_from_slice(&a.airs);
        let ascending = provers.airs.get(from..).unwrap_or_default().windows(2).all(|w| match w {
            [x, y] => x < y,
            _ => true,
        });
        if !ascending {
            let mut own = provers.airs.split_off(from);
            own.sort_unstable();
            own.dedup();
            provers.airs.append(&mut own);
        }
        let to = provers.airs.len();
        let Some(s) = provers.state.get_mut(i) else { return Err(mismatch(a.prover)) };
        if s.assigned {
            return Err(mismatch(a.prover));
        }
        *s = Selected { airs_from: from, airs_to: to, assigned: true, ..*s };
    }
    for &p in &round.declined {
        let Some(s) = provers.get_mut(p) else { return Err(mismatch(p)) };
        s.declined = true;
    }
    for e in &round.equivocations {
        // Only a selected equivocator changes anything.
        if let Some(s) = provers.get_mut(e.prover) {
            s.equivocator = true;
        }
    }
    Ok(provers)
}
