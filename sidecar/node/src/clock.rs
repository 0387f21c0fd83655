//! Slot clocks: the node's only source of time.
//!
//! Modelled on Lighthouse's `SlotClock`: a trait with a [`SystemSlotClock`] that reads the
//! operating system's clock and a [`ManualSlotClock`] whose time is set by hand, so that tests
//! and the simulator run on virtual time with no sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phase_engine::Slot;

/// Slot timing with a zero slot duration, which no chain has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the slot duration must be greater than zero")]
pub struct ZeroSlotDuration;

/// When slot 0 starts and how long a slot lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotTiming {
    genesis: Duration,
    slot_duration: Duration,
}

impl SlotTiming {
    /// Timing from the genesis time (since the Unix epoch) and the slot duration.
    ///
    /// # Errors
    /// [`ZeroSlotDuration`] if `slot_duration` is zero.
    pub fn new(genesis: Duration, slot_duration: Duration) -> Result<Self, ZeroSlotDuration> {
        if slot_duration.is_zero() {
            return Err(ZeroSlotDuration);
        }
        Ok(Self { genesis, slot_duration })
    }

    /// Timing from the Beacon API's `genesis_time` and `SECONDS_PER_SLOT` (both in seconds).
    ///
    /// # Errors
    /// [`ZeroSlotDuration`] if `seconds_per_slot` is zero.
    pub fn from_secs(genesis_time: u64, seconds_per_slot: u64) -> Result<Self, ZeroSlotDuration> {
        Self::new(Duration::from_secs(genesis_time), Duration::from_secs(seconds_per_slot))
    }

    /// Genesis (the start of slot 0), since the Unix epoch.
    pub fn genesis(&self) -> Duration {
        self.genesis
    }

    /// The duration of one slot.
    pub fn slot_duration(&self) -> Duration {
        self.slot_duration
    }

    /// The slot at time `now` (since the Unix epoch); `None` before genesis.
    pub fn slot_at(&self, now: Duration) -> Option<Slot> {
        let since = now.checked_sub(self.genesis)?;
        let slot = since.as_nanos() / self.slot_duration.as_nanos();
        u64::try_from(slot).ok().map(Slot)
    }

    /// The start of `slot` since the Unix epoch; `None` if it overflows.
    pub fn start_of(&self, slot: Slot) -> Option<Duration> {
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        let nanos = self.slot_duration.as_nanos().checked_mul(u128::from(slot.0))?;
        let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
        let subsec = u32::try_from(nanos % NANOS_PER_SEC).ok()?;
        self.genesis.checked_add(Duration::new(secs, subsec))
    }
}

/// A clock that tells the current slot.
///
/// Implementors provide [`SlotClock::timing`] and [`SlotClock::now_duration`]; everything else
/// is derived from them.
pub trait SlotClock: Send + Sync {
    /// The slot timing of the chain.
    fn timing(&self) -> SlotTiming;

    /// The current time since the Unix epoch.
    fn now_duration(&self) -> Duration;

    /// The current slot; `None` before genesis.
    fn now(&self) -> Option<Slot> {
        self.timing().slot_at(self.now_duration())
    }

    /// The current time in milliseconds since the Unix epoch (saturating).
    fn now_unix_millis(&self) -> u64 {
        u64::try_from(self.now_duration().as_millis()).unwrap_or(u64::MAX)
    }

    /// The start of `slot` since the Unix epoch; `None` on overflow.
    fn start_of(&self, slot: Slot) -> Option<Duration> {
        self.timing().start_of(slot)
    }

    /// How far into the current slot we are; `None` before genesis.
    fn time_into_slot(&self) -> Option<Duration> {
        let now = self.now_duration();
        let timing = self.timing();
        let slot = timing.slot_at(now)?;
        now.checked_sub(timing.start_of(slot)?)
    }

    /// Time until the next slot starts (until genesis, before genesis).
    fn duration_to_next_slot(&self) -> Option<Duration> {
        let now = self.now_duration();
        let timing = self.timing();
        match timing.slot_at(now) {
            None => timing.genesis().checked_sub(now),
            Some(slot) => timing.start_of(Slot(slot.0.checked_add(1)?))?.checked_sub(now),
        }
    }

    /// Time until `slot` starts; `Some(ZERO)` if it has started already, `None` on overflow.
    fn duration_to_slot(&self, slot: Slot) -> Option<Duration> {
        let start = self.start_of(slot)?;
        Some(start.saturating_sub(self.now_duration()))
    }
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug)]
pub struct SystemSlotClock {
    timing: SlotTiming,
}

impl SystemSlotClock {
    /// A system clock for the given timing.
    pub fn new(timing: SlotTiming) -> Self {
        Self { timing }
    }
}

impl SlotClock for SystemSlotClock {
    fn timing(&self) -> SlotTiming {
        self.timing
    }

    fn now_duration(&self) -> Duration {
        // A system clock set before 1970 reads as the epoch.
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// A virtual clock whose time only moves when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualSlotClock {
    timing: SlotTiming,
    /// Nanoseconds since the Unix epoch.
    now_nanos: Arc<AtomicU64>,
}

impl ManualSlotClock {
    /// A manual clock reading `now` (since the Unix epoch).
    pub fn new(timing: SlotTiming, now: Duration) -> Self {
        Self { timing, now_nanos: Arc::new(AtomicU64::new(saturating_nanos(now))) }
    }

    /// A manual clock standing at the start of `slot`.
    pub fn at_slot(timing: SlotTiming, slot: Slot) -> Self {
        let now = timing.start_of(slot).unwrap_or(Duration::MAX);
        Self::new(timing, now)
    }

    /// Sets the time (since the Unix epoch).
    pub fn set_time(&self, now: Duration) {
        self.now_nanos.store(saturating_nanos(now), Ordering::SeqCst);
    }

    /// Moves the time to the start of `slot`.
    pub fn set_slot(&self, slot: Slot) {
        self.set_time(self.timing.start_of(slot).unwrap_or(Duration::MAX));
    }

    /// Moves the time forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .now_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
    }

    /// Moves the time to the start of the next slot.
    pub fn advance_to_next_slot(&self) {
        if let Some(d) = self.duration_to_next_slot() {
            self.advance(d);
        }
    }
}

impl SlotClock for ManualSlotClock {
    fn timing(&self) -> SlotTiming {
        self.timing
    }

    fn now_duration(&self) -> Duration {
        Duration::from_nanos(self.now_nanos.load(Ordering::SeqCst))
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timing() -> SlotTiming {
        SlotTiming::from_secs(1_000, 12).unwrap()
    }

    #[test]
    fn zero_slot_duration_is_rejected() {
        assert!(matches!(SlotTiming::from_secs(0, 0), Err(ZeroSlotDuration)));
    }

    #[test]
    fn before_genesis_there_is_no_slot() {
        let clock = ManualSlotClock::new(timing(), Duration::from_secs(990));
        assert_eq!(clock.now(), None);
        assert_eq!(clock.time_into_slot(), None);
        assert_eq!(clock.duration_to_next_slot(), Some(Duration::from_secs(10)));
        assert_eq!(clock.duration_to_slot(Slot(1)), Some(Duration::from_secs(22)));
    }

    #[test]
    fn slots_advance_with_virtual_time() {
        let clock = ManualSlotClock::new(timing(), Duration::from_secs(1_000));
        assert_eq!(clock.now(), Some(Slot(0)));
        clock.advance(Duration::from_millis(11_999));
        assert_eq!(clock.now(), Some(Slot(0)));
        assert_eq!(clock.duration_to_next_slot(), Some(Duration::from_millis(1)));
        clock.advance(Duration::from_millis(1));
        assert_eq!(clock.now(), Some(Slot(1)));
        assert_eq!(clock.time_into_slot(), Some(Duration::ZERO));
        clock.advance_to_next_slot();
        assert_eq!(clock.now(), Some(Slot(2)));
        clock.set_slot(Slot(100));
        assert_eq!(clock.now(), Some(Slot(100)));
        assert_eq!(clock.now_unix_millis(), 1_000_000 + 100 * 12_000);
        assert_eq!(clock.duration_to_slot(Slot(99)), Some(Duration::ZERO));
    }

    #[test]
    fn far_slots_do_not_overflow() {
        let t = SlotTiming::from_secs(0, 12).unwrap();
        let start = t.start_of(Slot(u64::MAX / 12)).unwrap();
        assert_eq!(t.slot_at(start), Some(Slot(u64::MAX / 12)));
        assert_eq!(t.start_of(Slot(u64::MAX)), None);
    }

    #[test]
    fn clones_share_time() {
        let a = ManualSlotClock::at_slot(timing(), Slot(5));
        let b = a.clone();
        a.advance(Duration::from_secs(12));
        assert_eq!(b.now(), Some(Slot(6)));
    }

    #[test]
    fn system_clock_is_past_a_2020_genesis() {
        let clock = SystemSlotClock::new(SlotTiming::from_secs(1_577_836_800, 12).unwrap());
        assert!(clock.now().is_some_and(|s| s.0 > 0));
        let to_next = clock.duration_to_next_slot().unwrap();
        assert!(to_next <= Duration::from_secs(12));
    }

    proptest! {
        #[test]
        fn slot_start_round_trips(slot in 0u64..1 << 30, offset_ms in 0u64..12_000) {
            let t = timing();
            let start = t.start_of(Slot(slot)).unwrap();
            prop_assert_eq!(t.slot_at(start + Duration::from_millis(offset_ms)), Some(Slot(slot)));
            let clock = ManualSlotClock::new(t, start + Duration::from_millis(offset_ms));
            let into = clock.time_into_slot().unwrap();
            let next = clock.duration_to_next_slot().unwrap();
            prop_assert_eq!(into + next, t.slot_duration());
        }
    }
}
