//! Time is injected: domain and engine code ask a [`Clock`], never the system directly, so
//! tests can drive time and drills can run it faster.

use jiff::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current instant.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Milliseconds since the Unix epoch, UTC: the unit instants are stored in.
    fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    /// About how many real milliseconds pass while this clock advances `clock_ms` (rounded
    /// up), so that a waiter for an instant of this clock sleeps the right real time.
    fn real_ms(&self, clock_ms: u64) -> u64 {
        clock_ms
    }

    /// About how many milliseconds this clock advances while `real_ms` real milliseconds
    /// pass (rounded down): the inverse of [`Clock::real_ms`].
    fn clock_ms(&self, real_ms: u64) -> u64 {
        real_ms
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The wall clock run `scale` times faster from the moment it is made (`--time-scale`,
/// for drills and black-box tests: a plan of minutes runs in seconds). It starts at the
/// real time and is monotonic.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    origin: Timestamp,
    started: std::time::Instant,
    scale: f64,
}

impl ScaledClock {
    /// `scale` must be positive and finite (the configuration checks it).
    pub fn new(scale: f64) -> Self {
        ScaledClock::from_origin(scale, Timestamp::now())
    }

    /// A clock that reads `origin + (real now - origin) * scale`: processes given the same
    /// origin agree on the time (several `serve`s of one drill, or one restarted), whenever
    /// each started. Monotonic from its creation.
    pub fn from_origin(scale: f64, origin: Timestamp) -> Self {
        let real = Timestamp::now();
        let ahead = real.duration_since(origin).as_secs_f64() * scale;
        let at_start = jiff::SignedDuration::try_from_secs_f64(ahead)
            .ok()
            .and_then(|d| origin.checked_add(d).ok())
            .unwrap_or(real);
        ScaledClock {
            origin: at_start,
            started: std::time::Instant::now(),
            scale,
        }
    }
}

impl Clock for ScaledClock {
    fn real_ms(&self, clock_ms: u64) -> u64 {
        (clock_ms as f64 / self.scale).ceil() as u64
    }

    fn clock_ms(&self, real_ms: u64) -> u64 {
        (real_ms as f64 * self.scale).floor() as u64
    }

    fn now(&self) -> Timestamp {
        let scaled = self.started.elapsed().as_secs_f64() * self.scale;
        let add =
            jiff::SignedDuration::try_from_secs_f64(scaled).unwrap_or(jiff::SignedDuration::MAX);
        self.origin.checked_add(add).unwrap_or(Timestamp::MAX)
    }
}

/// A clock that only moves when told to. Cloning shares the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at `start_ms` milliseconds since the epoch.
    pub fn new(start_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.0.load(Ordering::SeqCst)).unwrap_or(Timestamp::MAX)
    }
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster() {
        let real = SystemClock;
        let scaled = ScaledClock::new(1000.0);
        let (r0, s0) = (real.now_ms(), scaled.now_ms());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (r1, s1) = (real.now_ms(), scaled.now_ms());
        // At least 20 real ms passed, so at least 20 scaled seconds.
        assert!(s1 - s0 >= 20_000, "{}", s1 - s0);
        assert!(r1 - r0 >= 20);
        // It starts at (about) the real time.
        assert!((s0 - r0).abs() < 1_000, "{}", s0 - r0);
        // Waiting 60 s of its time takes 60 real ms (rounded up); other clocks are 1:1.
        assert_eq!(scaled.real_ms(60_000), 60);
        assert_eq!(scaled.real_ms(1), 1);
        assert_eq!(ScaledClock::new(60.0).real_ms(1_000), 17);
        assert_eq!(real.real_ms(1_000), 1_000);
        // And the other way: 50 real ms are 50 s of a clock 1,000 times faster.
        assert_eq!(scaled.clock_ms(50), 50_000);
        assert_eq!(ScaledClock::new(0.5).clock_ms(3), 1);
        assert_eq!(real.clock_ms(50), 50);
    }

    #[test]
    fn scaled_clocks_with_one_origin_agree() {
        // Two processes of one drill, started 2 s apart (the second made later), agree.
        let origin = Timestamp::now() - jiff::SignedDuration::from_secs(2);
        let a = ScaledClock::from_origin(60.0, origin);
        let b = ScaledClock::from_origin(60.0, origin);
        assert!(
            (a.now_ms() - b.now_ms()).abs() < 1_000,
            "{} {}",
            a.now_ms(),
            b.now_ms()
        );
        // 2 real seconds after the origin is 120 s of drill time.
        let ahead = a.now_ms() - origin.as_millisecond();
        assert!((120_000..125_000).contains(&ahead), "{ahead}");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let shared = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        shared.advance_ms(500);
        assert_eq!(c.now_ms(), 1_500);
        c.set_ms(42);
        assert_eq!(shared.now().as_millisecond(), 42);
    }
}
