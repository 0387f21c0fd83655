//! Time for the devnet node: the system clock, or a manual clock that tests move by hand.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::watch;

/// A source of wall-clock time (duration since the Unix epoch) that can also wait for a moment.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time, as a duration since the Unix epoch.
    fn now(&self) -> Duration;

    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The operating system's clock, slept on with Tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A system clock before 1970 is a broken machine; treat it as the epoch.
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }

    fn sleep_until(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = deadline.saturating_sub(self.now());
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to ([`ManualClock::set`], [`ManualClock::advance`]):
/// tests drive the devnet slot by slot without sleeping. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Duration>>,
}

impl ManualClock {
    /// A clock standing at `now` (duration since the Unix epoch).
    pub fn new(now: Duration) -> Self {
        Self { now: Arc::new(watch::Sender::new(now)) }
    }

    /// Moves the clock to `now` (it may go backwards; sleepers wake when their deadline is met).
    pub fn set(&self, now: Duration) {
        self.now.send_replace(now);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // `wait_for` only fails when the sender is dropped, which `self` prevents.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved() {
        let clock = ManualClock::new(Duration::from_secs(100));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(Duration::from_secs(105)).await })
        };
        clock.advance(Duration::from_secs(2));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(3));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), Duration::from_secs(105));
    }
}
