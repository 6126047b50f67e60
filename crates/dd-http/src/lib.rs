//! What every outbound HTTP client of DeepDecipher shares (the explainer's Chat Completions client,
//! the importers' fetcher): a bound on requests in flight ([`Slots`]), a client-side rate limit
//! ([`Pacer`]), retry waits with exponential backoff and jitter that honour the server's
//! `Retry-After` ([`Backoff`], [`retry_after`]), which transport errors are worth a retry
//! ([`is_transient`]), and URLs without credentials for messages ([`display_url`]).
//!
//! Blocking and `Send + Sync`: clients are shared by worker threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ureq::http::Response;

/// The longest wait before a retry, whatever the backoff or the server's `Retry-After` says: a
/// server that asks for an hour is better answered with an error than with a silent hang.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// A counting semaphore bounding requests in flight (std has none).
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A slot, given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    /// `n_slots` requests may be in flight at once (at least one).
    pub fn new(n_slots: usize) -> Self {
        Self { free: Mutex::new(n_slots.max(1)), freed: Condvar::new() }
    }

    /// Waits for a free slot.
    pub fn acquire(&self) -> Slot<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

/// Spaces requests evenly across threads: a token bucket holding one token, so a rate limit is
/// never exceeded by a burst after an idle spell.
pub struct Pacer {
    interval: Duration,
    /// The earliest moment the next request may go.
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    /// At most `per_minute` requests a minute (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        Self { interval: Duration::from_secs(60) / per_minute.max(1), next_free: Mutex::new(None) }
    }

    /// Reserves the next free moment and sleeps until it.
    pub fn wait_turn(&self) {
        let now = Instant::now();
        let turn = {
            let mut next_free = lock(&self.next_free);
            let turn = next_free.map_or(now, |next_free| next_free.max(now));
            *next_free = Some(turn + self.interval);
            turn
        };
        thread::sleep(turn.saturating_duration_since(now));
    }
}

/// Waits between attempts: the first retry after about `first_delay`, each further one after
/// twice as long, with jitter, capped at [`MAX_RETRY_DELAY`].
pub struct Backoff {
    first_delay: Duration,
    /// SplitMix64 state for the jitter: no statistical quality needed, so no `rand`.
    jitter_state: AtomicU64,
}

impl Backoff {
    /// A backoff starting at `first_delay`, its jitter seeded from the clock.
    pub fn new(first_delay: Duration) -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64);
        Self { first_delay, jitter_state: AtomicU64::new(seed) }
    }

    /// The wait before retry `attempt + 1`: the server's wish (capped), else exponential backoff
    /// with jitter (half to all of the doubled delay, so that threads that failed together spread
    /// out).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(retry_after) = retry_after {
            return retry_after.min(MAX_RETRY_DELAY);
        }
        let doubled = self.first_delay.saturating_mul(1u32 << attempt.min(20)).min(MAX_RETRY_DELAY);
        let fraction = 0.5 + 0.5 * self.next_unit_random();
        doubled.mul_f64(fraction)
    }

    /// A number in [0, 1) from SplitMix64.
    fn next_unit_random(&self) -> f64 {
        let state = self.jitter_state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether a status is worth another attempt: 408, 429 and every 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Whether a transport error may go away on another attempt (time-outs, broken or refused
/// connections, garbled answers), as opposed to our own settings or an oversized answer.
pub fn is_transient(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// The server's `Retry-After` in seconds (or OpenAI's `retry-after-ms`); HTTP dates are ignored
/// and the backoff applies.
pub fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(millis) = header("retry-after-ms").and_then(|value| value.parse::<f64>().ok()) {
        return duration_from_secs(millis / 1000.0);
    }
    header("retry-after").and_then(|value| value.parse::<f64>().ok()).and_then(duration_from_secs)
}

/// A non-negative, finite number of seconds, capped at the longest retry delay.
fn duration_from_secs(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(MAX_RETRY_DELAY.as_secs_f64())))
}

/// `url` without user info, query or fragment: what may appear in names, logs and errors.
pub fn display_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let Some((scheme, rest)) = without_query.split_once("://") else {
        return without_query.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// Locks a mutex whose value stays consistent after any panic (counters and instants).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_urls_lose_credentials_and_queries() {
        assert_eq!(display_url("https://user:secret@api.example/v1?key=abc"), "https://api.example/v1");
        assert_eq!(display_url("http://127.0.0.1:8000/v1"), "http://127.0.0.1:8000/v1");
        assert_eq!(display_url("http://host"), "http://host");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let backoff = Backoff::new(Duration::from_millis(100));
        for attempt in 0..4 {
            let full = Duration::from_millis(100 << attempt);
            let delay = backoff.delay(attempt, None);
            assert!(delay >= full / 2 && delay <= full, "{delay:?} for attempt {attempt}");
        }
        assert!(backoff.delay(30, None) <= MAX_RETRY_DELAY);
        assert_eq!(backoff.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(backoff.delay(0, Some(Duration::from_secs(3600))), MAX_RETRY_DELAY);
    }

    #[test]
    fn slots_bound_the_threads_inside() {
        let slots = Slots::new(2);
        let inside = AtomicU64::new(0);
        let most = AtomicU64::new(0);
        thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    let _slot = slots.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_pacer_spaces_requests() {
        let pacer = Pacer::per_minute(1200);
        let started = Instant::now();
        for _ in 0..4 {
            pacer.wait_turn();
        }
        // Four turns at 50 ms spacing: the first at once, the last 150 ms later.
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let response = |name: &str, value: &str| Response::builder().header(name, value).body(()).expect("response");
        assert_eq!(retry_after(&response("retry-after", "2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&response("retry-after-ms", "250")), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&response("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&response("retry-after", "-1")), None);
    }
}
