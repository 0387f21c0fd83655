//! Application peer scores: penalties the caller reports
//! ([`NetworkHandle::penalise`](crate::NetworkHandle::penalise)) and the bans they lead to.
//!
//! Every peer starts at 0. Each penalty costs [`PEER_PENALTY`] points; a score heals by one point
//! every [`PEER_SCORE_RECOVERY_INTERVAL`] (so a penalty is forgotten after 5 minutes). At
//! [`PEER_BAN_THRESHOLD`] or below the peer is disconnected and refused, in both directions, for
//! [`PEER_BAN_DURATION`]; it then starts again from 0. Five penalties in quick succession ban.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// Points one penalty costs.
pub const PEER_PENALTY: i32 = 10;

/// Score at or below which a peer is banned.
pub const PEER_BAN_THRESHOLD: i32 = -50;

/// How long a ban lasts.
pub const PEER_BAN_DURATION: Duration = Duration::from_secs(5 * 60);

/// Time for a score to heal by one point.
pub const PEER_SCORE_RECOVERY_INTERVAL: Duration = Duration::from_secs(30);

/// Beyond this many scored peers, healed scores are forgotten on the next penalty.
const PRUNE_ABOVE: usize = 1024;

/// What a penalty did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Penalty {
    /// The peer's score is now this (above the threshold).
    Scored(i32),
    /// The peer's score reached the threshold (this score): it is banned for
    /// [`PEER_BAN_DURATION`].
    Banned(i32),
    /// The peer is banned already; nothing changed.
    AlreadyBanned,
}

#[derive(Clone, Copy, Debug)]
struct Score {
    value: i32,
    at: Instant,
}

impl Score {
    /// The score healed up to `now`.
    fn at(self, now: Instant) -> i32 {
        let steps = now.saturating_duration_since(self.at).as_secs()
            / PEER_SCORE_RECOVERY_INTERVAL.as_secs().max(1);
        let healed = i64::from(self.value).saturating_add(i64::try_from(steps).unwrap_or(i64::MAX));
        i32::try_from(healed.min(0)).unwrap_or(0)
    }
}

/// Scores and bans.
#[derive(Debug, Default)]
pub(crate) struct PeerScores {
    scores: HashMap<PeerId, Score>,
    bans: HashMap<PeerId, Instant>,
}

impl PeerScores {
    /// Applies one penalty to `peer`.
    pub(crate) fn penalise(&mut self, peer: PeerId, now: Instant) -> Penalty {
        if self.bans.contains_key(&peer) {
            return Penalty::AlreadyBanned;
        }
        if self.scores.len() > PRUNE_ABOVE {
            self.scores.retain(|_, score| score.at(now) < 0);
        }
        let value = self.scores.get(&peer).map_or(0, |s| s.at(now)).saturating_sub(PEER_PENALTY);
        if value <= PEER_BAN_THRESHOLD {
            self.scores.remove(&peer);
            self.bans.insert(peer, now + PEER_BAN_DURATION);
            return Penalty::Banned(value);
        }
        self.scores.insert(peer, Score { value, at: now });
        Penalty::Scored(value)
    }

    /// Bans `peer` for [`PEER_BAN_DURATION`] whatever its score (its gossipsub score fell below
    /// the graylist threshold); it then starts again from 0. False if it is banned already.
    pub(crate) fn ban(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.bans.contains_key(&peer) {
            return false;
        }
        self.scores.remove(&peer);
        self.bans.insert(peer, now + PEER_BAN_DURATION);
        true
    }

    /// The scores of the peers with one, healed up to `now`.
    pub(crate) fn current(&self, now: Instant) -> impl Iterator<Item = (PeerId, i32)> + '_ {
        self.scores.iter().map(move |(peer, score)| (*peer, score.at(now)))
    }

    /// Whether `peer` is banned.
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer)
    }

    /// When the earliest ban ends.
    pub(crate) fn next_unban(&self) -> Option<Instant> {
        self.bans.values().min().copied()
    }

    /// Ends the bans due by `now`; returns their peers.
    pub(crate) fn lift_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let lifted: Vec<_> =
            self.bans.iter().filter(|(_, until)| **until <= now).map(|(peer, _)| *peer).collect();
        for peer in &lifted {
            self.bans.remove(peer);
        }
        lifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_quick_penalties_ban_for_five_minutes() {
        let t0 = Instant::now();
        let mut scores = PeerScores::default();
        let peer = PeerId::random();
        for expected in [-10, -20, -30, -40] {
            assert_eq!(scores.penalise(peer, t0), Penalty::Scored(expected));
        }
        assert_eq!(scores.penalise(peer, t0), Penalty::Banned(-50));
        assert!(scores.is_banned(&peer));
        assert_eq!(scores.penalise(peer, t0), Penalty::AlreadyBanned);
        assert_eq!(scores.next_unban(), Some(t0 + PEER_BAN_DURATION));

        assert!(scores.lift_bans(t0 + PEER_BAN_DURATION - Duration::from_secs(1)).is_empty());
        assert_eq!(scores.lift_bans(t0 + PEER_BAN_DURATION), vec![peer]);
        assert!(!scores.is_banned(&peer));
        assert_eq!(scores.next_unban(), None);
        // A fresh start after the ban.
        assert_eq!(scores.penalise(peer, t0 + PEER_BAN_DURATION), Penalty::Scored(-10));
    }

    #[test]
    fn a_direct_ban_clears_the_score_and_lasts_as_long() {
        let t0 = Instant::now();
        let mut scores = PeerScores::default();
        let peer = PeerId::random();
        scores.penalise(peer, t0);
        assert_eq!(scores.current(t0).collect::<Vec<_>>(), vec![(peer, -10)]);
        assert!(scores.ban(peer, t0));
        assert!(!scores.ban(peer, t0));
        assert!(scores.is_banned(&peer));
        assert_eq!(scores.current(t0).count(), 0);
        assert_eq!(scores.lift_bans(t0 + PEER_BAN_DURATION), vec![peer]);
        assert_eq!(scores.penalise(peer, t0 + PEER_BAN_DURATION), Penalty::Scored(-10));
        // Healing shows in `current`.
        let later = t0 + PEER_BAN_DURATION + PEER_SCORE_RECOVERY_INTERVAL * 4;
        assert_eq!(scores.current(later).collect::<Vec<_>>(), vec![(peer, -6)]);
    }

    #[test]
    fn scores_heal_one_point_per_interval() {
        let t0 = Instant::now();
        let mut scores = PeerScores::default();
        let peer = PeerId::random();
        scores.penalise(peer, t0);
        scores.penalise(peer, t0);
        // Ten intervals heal ten points: -20 + 10 - 10.
        assert_eq!(
            scores.penalise(peer, t0 + PEER_SCORE_RECOVERY_INTERVAL * 10),
            Penalty::Scored(-20)
        );
        // Fully healed (never above 0), then one penalty.
        assert_eq!(scores.penalise(peer, t0 + Duration::from_secs(3600)), Penalty::Scored(-10));
        // Penalties spread out enough never ban.
        let other = PeerId::random();
        for i in 0..100 {
            let now = t0 + PEER_SCORE_RECOVERY_INTERVAL * (10 * i);
            assert_eq!(scores.penalise(other, now), Penalty::Scored(-10));
        }
    }
}
