//! The collector: the beacon heads and every sidecar's proving events, forwarded into one
//! channel and folded into per-block tracks until each block is settled everywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use beacon_api::{BeaconClient, BeaconEvent, BlockId, DevnetNode, ProvingEvent};
use phase_engine::{Phase, Root, RoundKey};
use rewards::{Account, Ledger};
use tokio::sync::mpsc;
use tracing::warn;

use sidecar_node::NodeHandle;

use crate::error::{DevnetResult, out_err};
use crate::options::DevnetOptions;
use crate::report::BlockReport;
use crate::table::{Table, short_account};

/// What the collector receives.
pub(crate) enum Observed {
    Head { at: Instant, slot: u64, root: Root },
    Gas { root: Root, gas: u64 },
    Event { sidecar: usize, at: Instant, event: ProvingEvent },
    Settled { sidecar: usize, at: Instant, ledger: Ledger },
}

#[derive(Default)]
pub(crate) struct RoundTrack {
    selected: Vec<u64>,
    airs: u32,
    finalized_at: Option<Instant>,
    finalized_in: Option<Phase>,
}

pub(crate) struct BlockTrack {
    slot: u64,
    head_at: Option<Instant>,
    gas: Option<u64>,
    rounds: BTreeMap<RoundKey, RoundTrack>,
    settled: Vec<Option<(Instant, Ledger)>>,
    /// `block_settled` seen per sidecar (it follows `block_proven` on the same stream).
    settled_event: Vec<bool>,
    proven: Vec<bool>,
}

impl BlockTrack {
    fn new(slot: u64, sidecars: usize) -> Self {
        Self {
            slot,
            head_at: None,
            gas: None,
            rounds: BTreeMap::new(),
            settled: vec![None; sidecars],
            settled_event: vec![false; sidecars],
            proven: vec![false; sidecars],
        }
    }

    /// Every sidecar settled it: its ledger arrived and its `block_settled` event (after which
    /// no `block_proven` can come).
    fn complete(&self) -> bool {
        self.settled.iter().all(Option::is_some) && self.settled_event.iter().all(|s| *s)
    }

    fn report(&self, root: Root) -> BlockReport {
        let head = self.head_at.unwrap_or_else(Instant::now);
        // Per sub-block: the phase and time of the attempt that finalised (the last one).
        let mut by_sub: BTreeMap<u32, &RoundTrack> = BTreeMap::new();
        let mut retries = 0;
        let mut airs = 0;
        let mut provers = BTreeSet::new();
        for (key, round) in &self.rounds {
            by_sub.insert(key.sub_block.0, round);
            retries = retries.max(key.attempt.0);
            if key.attempt.0 == 0 {
                airs += round.airs;
            }
            provers.extend(round.selected.iter().copied());
        }
        let finalized_in = if by_sub.is_empty() {
            None
        } else {
            by_sub.values().map(|r| r.finalized_in).try_fold(Phase::T1, |acc, p| Some(acc.max(p?)))
        };
        let full_proof_after = if by_sub.is_empty() {
            None
        } else {
            by_sub
                .values()
                .map(|r| r.finalized_at)
                .try_fold(head, |acc, t| Some(acc.max(t?)))
                .map(|t| t.saturating_duration_since(head))
        };
        let settled_after = self
            .settled
            .iter()
            .map(|s| s.as_ref().map(|(t, _)| *t))
            .try_fold(head, |acc, t| Some(acc.max(t?)))
            .map(|t| t.saturating_duration_since(head));
        let (mut paid, mut penalties, mut top) = (0i64, 0i64, None);
        if let Some((_, ledger)) = self.settled.iter().flatten().next() {
            let mut net: BTreeMap<Account, i64> = BTreeMap::new();
            for e in ledger.entries() {
                if e.amount.0 > 0 {
                    paid = paid.saturating_add(e.amount.0);
                } else {
                    penalties = penalties.saturating_add(e.amount.0);
                }
                let n = net.entry(e.account).or_default();
                *n = n.saturating_add(e.amount.0);
            }
            top = net.into_iter().max_by_key(|(a, n)| (*n, std::cmp::Reverse(*a)));
        }
        BlockReport {
            slot: self.slot,
            block_root: root,
            gas_used: self.gas,
            airs,
            provers: provers.len(),
            finalized_in,
            retries,
            full_proof_after,
            settled_after,
            paid,
            penalties,
            top,
            roots: self
                .settled
                .iter()
                .map(|s| s.as_ref().map(|(_, l)| l.settlement_root()))
                .collect(),
            proven: self.proven.clone(),
            divergence: self.divergence(),
        }
    }

    /// Up to a few entries by which each sidecar's ledger differs from sidecar 0's.
    fn divergence(&self) -> Vec<String> {
        let Some(Some((_, reference))) = self.settled.first() else { return Vec::new() };
        let describe = |e: &rewards::LedgerEntry| {
            format!(
                "sub-block {} attempt {} {} {} {} {:+}",
                e.sub_block.0,
                e.attempt.0,
                e.phase,
                e.rule,
                short_account(e.account),
                e.amount.0
            )
        };
        let mut out = Vec::new();
        for (i, other) in self.settled.iter().enumerate().skip(1) {
            let Some((_, other)) = other else { continue };
            if other.settlement_root() == reference.settlement_root() {
                continue;
            }
            let mine: BTreeSet<&rewards::LedgerEntry> = reference.entries().iter().collect();
            let theirs: BTreeSet<&rewards::LedgerEntry> = other.entries().iter().collect();
            for e in mine.difference(&theirs).take(3) {
                out.push(format!("on sidecar 0, not {i}: {}", describe(e)));
            }
            for e in theirs.difference(&mine).take(3) {
                out.push(format!("on sidecar {i}, not 0: {}", describe(e)));
            }
        }
        out
    }
}

/// Forwards the devnet's head events (with the block's gas, read back over HTTP).
pub(crate) fn forward_heads(
    devnet: &DevnetNode,
    beacon_url: String,
    tx: mpsc::UnboundedSender<Observed>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut events = devnet.subscribe();
    async move {
        let client = BeaconClient::new([beacon_url]).ok();
        loop {
            match events.recv().await {
                Ok(BeaconEvent::Head(head)) => {
                    let root = head.block;
                    if tx
                        .send(Observed::Head { at: Instant::now(), slot: head.slot.0, root })
                        .is_err()
                    {
                        return;
                    }
                    if let Some(client) = client.clone() {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            if let Ok(block) = client.block(BlockId::Root(root)).await {
                                let gas = block
                                    .data
                                    .message
                                    .body
                                    .execution_payload
                                    .as_ref()
                                    .map_or(0, |p| p.gas_used);
                                let _ = tx.send(Observed::Gas { root, gas });
                            }
                        });
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "devnet events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Forwards one sidecar's proving events and settled ledgers.
pub(crate) fn forward_node(
    sidecar: usize,
    node: &NodeHandle,
    tx: mpsc::UnboundedSender<Observed>,
) -> impl Future<Output = ()> + Send + 'static {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = node.subscribe();
    let mut settled = node.subscribe_settled();
    async move {
        loop {
            let observed = tokio::select! {
                biased;
                e = events.recv() => match e {
                    Ok(event) => Observed::Event { sidecar, at: Instant::now(), event },
                    Err(RecvError::Lagged(n)) => {
                        warn!(sidecar, missed = n, "sidecar events lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                l = settled.recv() => match l {
                    Ok(ledger) => Observed::Settled { sidecar, at: Instant::now(), ledger },
                    Err(RecvError::Lagged(n)) => {
                        warn!(sidecar, missed = n, "settled ledgers lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if tx.send(observed).is_err() {
                return;
            }
        }
    }
}

/// Collects observations into per-block reports, writing a row per completed block, until
/// enough blocks are reported or `shutdown` resolves. Returns the reports with sidecar 0's
/// ledger, and whether it was interrupted.
pub(crate) async fn collect(
    opts: &DevnetOptions,
    table: &Table,
    out: &mut (dyn Write + Send),
    mut rx: mpsc::UnboundedReceiver<Observed>,
    shutdown: impl Future<Output = ()>,
) -> DevnetResult<(Vec<(BlockReport, Option<Ledger>)>, bool)> {
    tokio::pin!(shutdown);
    table.header(out).map_err(out_err)?;
    let mut tracked: HashMap<Root, BlockTrack> = HashMap::new();
    let mut reported: Vec<(BlockReport, Option<Ledger>)> = Vec::new();
    let mut done: BTreeSet<Root> = BTreeSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let enough = |n: usize| opts.blocks.is_some_and(|b| n as u64 >= b);
    loop {
        let observed = tokio::select! {
            () = &mut shutdown => return Ok((reported, true)),
            o = rx.recv() => match o {
                Some(o) => Some(o),
                None => return Ok((reported, false)),
            },
            _ = tick.tick() => None,
        };
        let mut complete: Vec<Root> = Vec::new();
        match observed {
            Some(Observed::Head { at, slot, root }) => {
                if !done.contains(&root) {
                    let t =
                        tracked.entry(root).or_insert_with(|| BlockTrack::new(slot, opts.sidecars));
                    t.head_at.get_or_insert(at);
                }
            }
            Some(Observed::Gas { root, gas }) => {
                if let Some(t) = tracked.get_mut(&root) {
                    t.gas = Some(gas);
                }
            }
            Some(Observed::Event { sidecar, at, event }) => {
                if let Some(root) = event_root(&event)
                    && let Some(t) = tracked.get_mut(&root)
                {
                    match event {
                        ProvingEvent::RoundStarted(e) if sidecar == 0 => {
                            let r = t.rounds.entry(e.round).or_default();
                            r.selected = e.selected.iter().map(|p| p.0).collect();
                            r.airs = e.num_airs;
                        }
                        ProvingEvent::RoundFinalized(e) if sidecar == 0 => {
                            let r = t.rounds.entry(e.round).or_default();
                            r.finalized_at.get_or_insert(at);
                            r.finalized_in.get_or_insert(e.phase);
                        }
                        ProvingEvent::RoundClosed(e) if sidecar == 0 => {
                            let r = t.rounds.entry(e.round).or_default();
                            if r.finalized_in.is_none() {
                                r.finalized_in = e.finalized_in;
                            }
                        }
                        ProvingEvent::BlockProven(_) => {
                            if let Some(p) = t.proven.get_mut(sidecar) {
                                *p = true;
                            }
                        }
                        ProvingEvent::BlockSettled(_) => {
                            if let Some(s) = t.settled_event.get_mut(sidecar) {
                                *s = true;
                            }
                            if t.complete() {
                                complete.push(root);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(Observed::Settled { sidecar, at, ledger }) => {
                let root = ledger.block_root;
                if let Some(t) = tracked.get_mut(&root) {
                    if let Some(s) = t.settled.get_mut(sidecar) {
                        // A ledger settled again (replaced after a reorg) is the one that
                        // counts; the first time is when it settled.
                        let first = s.as_ref().map_or(at, |(t, _)| *t);
                        *s = Some((first, ledger));
                    }
                    if t.complete() {
                        complete.push(root);
                    }
                }
            }
            None => {
                let now = Instant::now();
                for (root, t) in &tracked {
                    if t.head_at.is_some_and(|h| now.duration_since(h) > opts.block_timeout) {
                        complete.push(*root);
                    }
                }
                complete.sort_by_key(|r| tracked.get(r).map(|t| t.slot));
            }
        }
        for root in complete {
            let Some(t) = tracked.remove(&root) else { continue };
            done.insert(root);
            if t.head_at.is_none() {
                continue;
            }
            let report = t.report(root);
            table.row(out, &report).map_err(out_err)?;
            out.flush().map_err(out_err)?;
            let ledger = t.settled.into_iter().flatten().next().map(|(_, l)| l);
            reported.push((report, ledger));
            if enough(reported.len()) {
                return Ok((reported, false));
            }
        }
    }
}

pub(crate) fn event_root(event: &ProvingEvent) -> Option<Root> {
    Some(match event {
        ProvingEvent::RoundStarted(e) => e.round.block_root,
        ProvingEvent::PhaseChanged(e) => e.round.block_root,
        ProvingEvent::RoundFinalized(e) => e.round.block_root,
        ProvingEvent::RoundClosed(e) => e.round.block_root,
        ProvingEvent::BlockProven(e) | ProvingEvent::BlockSettled(e) => e.block_root,
        _ => return None,
    })
}
