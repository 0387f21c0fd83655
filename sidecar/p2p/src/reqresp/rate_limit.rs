//! The inbound rate limiter: a token bucket per (peer, protocol), kept as the generic cell rate
//! algorithm (one "theoretical arrival time" per bucket instead of a token count and a refill
//! clock, as Lighthouse does), in integer time.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use super::{RateLimit, SyncProtocol};

/// How often buckets that are full again are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Token buckets of inbound requests.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Time to regain one request.
    interval: Duration,
    /// How far a bucket's arrival time may run ahead of now: `(capacity - 1)` intervals.
    tolerance: Duration,
    /// Per bucket, the time at which it is full again; absent buckets are full.
    buckets: HashMap<(PeerId, SyncProtocol), Instant>,
    last_prune: Instant,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        let capacity = limit.capacity.max(1);
        Self {
            interval: limit.refill_interval,
            tolerance: limit.refill_interval.saturating_mul(capacity - 1),
            buckets: HashMap::new(),
            last_prune: now,
        }
    }

    /// Takes a token from the bucket of (`peer`, `protocol`); false if it is empty.
    pub(crate) fn allow(&mut self, peer: PeerId, protocol: SyncProtocol, now: Instant) -> bool {
        if now.saturating_duration_since(self.last_prune) >= PRUNE_INTERVAL {
            self.buckets.retain(|_, full_at| *full_at > now);
            self.last_prune = now;
        }
        if self.interval.is_zero() {
            return true;
        }
        let key = (peer, protocol);
        let full_at = self.buckets.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
        if full_at.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        match full_at.checked_add(self.interval) {
            Some(next) => {
                self.buckets.insert(key, next);
                true
            }
            None => false,
        }
    }

    /// Number of buckets held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: SyncProtocol = SyncProtocol::RecordsByRange;

    fn limiter(capacity: u32, millis: u64, now: Instant) -> RateLimiter {
        RateLimiter::new(
            RateLimit { capacity, refill_interval: Duration::from_millis(millis) },
            now,
        )
    }

    #[test]
    fn a_burst_up_to_the_capacity_then_one_per_interval() {
        let t0 = Instant::now();
        let mut rl = limiter(32, 125, t0);
        let peer = PeerId::random();
        assert!((0..32).all(|_| rl.allow(peer, P, t0)));
        assert!(!rl.allow(peer, P, t0));
        // 124 ms: still empty; 125 ms: one more, and only one.
        assert!(!rl.allow(peer, P, t0 + Duration::from_millis(124)));
        assert!(rl.allow(peer, P, t0 + Duration::from_millis(125)));
        assert!(!rl.allow(peer, P, t0 + Duration::from_millis(125)));
        // One second later: eight more (8 per second).
        let t1 = t0 + Duration::from_millis(1125);
        assert_eq!((0..20).filter(|_| rl.allow(peer, P, t1)).count(), 8);
        // Long idle: full again, not more.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..40).filter(|_| rl.allow(peer, P, t2)).count(), 32);
    }

    #[test]
    fn buckets_are_per_peer_and_protocol() {
        let t0 = Instant::now();
        let mut rl = limiter(2, 1000, t0);
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(rl.allow(a, P, t0) && rl.allow(a, P, t0));
        assert!(!rl.allow(a, P, t0));
        assert!(rl.allow(b, P, t0));
        assert!(rl.allow(a, SyncProtocol::MessagesById, t0));
    }

    #[test]
    fn full_buckets_are_pruned_and_zero_interval_disables() {
        let t0 = Instant::now();
        let mut rl = limiter(4, 10, t0);
        for _ in 0..10 {
            rl.allow(PeerId::random(), P, t0);
        }
        assert_eq!(rl.len(), 10);
        rl.allow(PeerId::random(), P, t0 + PRUNE_INTERVAL);
        assert_eq!(rl.len(), 1);

        let mut off = limiter(1, 0, t0);
        let peer = PeerId::random();
        assert!((0..1000).all(|_| off.allow(peer, P, t0)));
        // Capacity 0 behaves as 1.
        let mut one = limiter(0, 1000, t0);
        assert!(one.allow(peer, P, t0));
        assert!(!one.allow(peer, P, t0));
    }
}
