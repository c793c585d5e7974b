//! How long to wait before trying again: the one [`Backoff`] of gust.
//!
//! Every layer that waits between attempts — the task loop ([`TaskOptions`]),
//! the MLflow REST client, the part resumption of S3 downloads — computes its
//! delays here, so there is one formula to read, test and tune. Polling (waiting
//! for a model version to be ready) uses it too.
//!
//! # Who owns patience
//!
//! Retrying at two layers multiplies: a client that tries 4 times inside a task
//! that tries 3 times sends 12 requests to a server that is already struggling.
//! gust's rule is that **a layer that retried and gave up says so**: it marks its
//! last error with [`Error::exhausted`], after which [`Error::is_retryable`] is
//! `false`, and the task loop does not retry it unless the task opts in with
//! [`TaskOptions::retry_exhausted`]. A layer that did not retry (a client built
//! with zero retries, a streamed artifact whose body cannot be replayed) leaves
//! its error retryable, and the task owns the patience.
//!
//! A layer that retries should:
//!
//! 1. retry only errors whose [`Error::is_retryable`] is `true` (an exhausted
//!    error from a layer below is therefore not retried again);
//! 2. wait [`Backoff::delay`]`(n)` before retry `n` (1 for the first retry);
//! 3. when it gives up on a retryable error after retrying, return it
//!    `.exhausted()` with the number of attempts in its context (`attempts=4`).
//!
//! Code that builds a new error around another keeps its state with
//! [`Error::with_retry_state_of`].
//!
//! ```
//! use std::time::Duration;
//! use gust::retry::Backoff;
//!
//! // The MLflow client's policy: 200 ms, 400 ms, 800 ms, each with up to as much
//! // again of jitter.
//! let backoff = Backoff::exponential(Duration::from_millis(200));
//! let first = backoff.delay(1);
//! assert!(first >= Duration::from_millis(200) && first < Duration::from_millis(400));
//!
//! // Exact delays, capped: 1 s, 2 s, 4 s, 5 s, 5 s, …
//! let capped = Backoff::exponential(Duration::from_secs(1))
//!     .jitter(false)
//!     .max_delay(Duration::from_secs(5));
//! assert_eq!(capped.delay(3), Duration::from_secs(4));
//! assert_eq!(capped.delay(10), Duration::from_secs(5));
//!
//! // A layer's policy can be a constant.
//! const PART_RESUMES: Backoff = Backoff::exponential(Duration::from_millis(200)).jitter(false);
//! assert_eq!(PART_RESUMES.delay(3), Duration::from_millis(800));
//! ```
//!
//! [`TaskOptions`]: crate::TaskOptions
//! [`TaskOptions::retry_exhausted`]: crate::TaskOptions::retry_exhausted
//! [`Error::exhausted`]: crate::Error::exhausted
//! [`Error::is_retryable`]: crate::Error::is_retryable
//! [`Error::with_retry_state_of`]: crate::Error::with_retry_state_of

use std::time::Duration;

/// Delays between attempts: `base · factorⁿ⁻¹` before retry `n`, plus optional
/// jitter, capped by an optional maximum.
///
/// With jitter, the delay of retry `n` lies in `[d, 2d)` for `d = base · factorⁿ⁻¹`
/// (for the exponential backoff, `[base·2ⁿ⁻¹, base·2ⁿ)`, as Airflow's
/// `retry_exponential_backoff`): callers that failed together spread out instead
/// of hitting a recovering server together. The cap applies after the jitter, so
/// no delay exceeds [`max_delay`](Self::max_delay).
///
/// Arithmetic saturates: a large retry number gives the cap (or the longest
/// [`Duration`]), never a panic.
///
/// The fields are public so a layer whose client computes its own delays (a
/// driver's reconnect settings) can be configured from the same `Backoff`; build
/// one with [`exponential`](Self::exponential) or [`constant`](Self::constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The delay before the first retry.
    pub base: Duration,
    /// What the delay is multiplied by after each retry: 2 exponential, 1
    /// constant (0 counts as 1).
    pub factor: u32,
    /// The cap of every delay, jitter included.
    pub max_delay: Option<Duration>,
    /// Whether a random part of up to one delay more is added.
    pub jitter: bool,
}

impl Backoff {
    /// Doubling delays from `base` (`base`, `2·base`, `4·base`, …), with jitter.
    pub const fn exponential(base: Duration) -> Self {
        Backoff {
            base,
            factor: 2,
            max_delay: None,
            jitter: true,
        }
    }

    /// The same delay `d` before every retry, without jitter.
    pub const fn constant(d: Duration) -> Self {
        Backoff {
            base: d,
            factor: 1,
            max_delay: None,
            jitter: false,
        }
    }

    /// Multiplies the delay by `factor` after each retry (2 for
    /// [`exponential`](Self::exponential), 1 for [`constant`](Self::constant)).
    /// A factor of 0 is taken as 1.
    pub const fn factor(mut self, factor: u32) -> Self {
        self.factor = if factor == 0 { 1 } else { factor };
        self
    }

    /// Caps every delay, jitter included.
    pub const fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = Some(max);
        self
    }

    /// Adds a random part, up to as much again as the delay (see the type's docs).
    pub const fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The delay before retry `retry` (1 for the first retry; 0 is taken as 1).
    pub fn delay(&self, retry: u32) -> Duration {
        let n = retry.max(1);
        let growth = self.factor.max(1).saturating_pow(n - 1);
        let mut delay = self.base.saturating_mul(growth);
        if self.jitter && !delay.is_zero() {
            let extra: f64 = rand::random_range(0.0..1.0);
            // `try_from`: `mul_f64` would panic on a delay near `Duration::MAX`.
            let extra =
                Duration::try_from_secs_f64(delay.as_secs_f64() * extra).unwrap_or(Duration::MAX);
            delay = delay.saturating_add(extra);
        }
        match self.max_delay {
            Some(max) => delay.min(max),
            None => delay,
        }
    }
}

/// The rule of the [module docs](self) as one loop, for a client that owns
/// patience for its requests (the MLflow REST client, the SageMaker hook):
/// runs `attempt` until it succeeds, fails with an error that is not
/// retryable, or has been retried `max_retries` times, waiting
/// `backoff.delay(n)` before retry `n`. An error given up on after retrying is
/// returned [exhausted](crate::Error::exhausted) with `attempts=n`; with
/// `max_retries` 0 it stays retryable and the task owns the patience.
#[cfg_attr(not(any(feature = "mlflow", feature = "sagemaker")), allow(dead_code))]
pub(crate) async fn with_retries<T, F, Fut>(
    max_retries: u32,
    backoff: &Backoff,
    operation: &str,
    mut attempt: F,
) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<T>>,
{
    let mut retry = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && retry < max_retries => {
                retry += 1;
                let delay = backoff.delay(retry);
                // "mlflow call failed; retrying": the system is the operation's prefix.
                let system = operation.split('.').next().unwrap_or(operation);
                tracing::warn!(operation, error = %e, retry, retry_in = ?delay, "{system} call failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) if e.is_retryable() && retry > 0 => {
                return Err(e.exhausted().with("attempts", retry + 1));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn exponential_without_jitter_doubles_exactly() {
        let b = Backoff::exponential(10 * S).jitter(false);
        let got: Vec<_> = (1..=4).map(|n| b.delay(n)).collect();
        assert_eq!(got, [10 * S, 20 * S, 40 * S, 80 * S]);
        assert_eq!(b.delay(0), b.delay(1));
    }

    #[test]
    fn jitter_stays_within_one_delay_more() {
        let b = Backoff::exponential(10 * S);
        for n in 1..=5 {
            let low = 10 * S * 2u32.pow(n - 1);
            for _ in 0..200 {
                let d = b.delay(n);
                assert!(d >= low && d < 2 * low, "retry {n}: {d:?}");
            }
        }
    }

    #[test]
    fn max_delay_caps_jitter_too() {
        let b = Backoff::exponential(10 * S).max_delay(30 * S);
        for _ in 0..200 {
            assert!(b.delay(2) >= 20 * S && b.delay(2) <= 30 * S);
            assert_eq!(b.delay(3), 30 * S);
        }
        assert_eq!(b.delay(u32::MAX), 30 * S);
    }

    #[test]
    fn constant_and_factor() {
        let c = Backoff::constant(7 * S);
        assert!((1..=10).all(|n| c.delay(n) == 7 * S));
        let triple = Backoff::exponential(S).factor(3).jitter(false);
        assert_eq!(triple.delay(3), 9 * S);
        assert_eq!(
            Backoff::exponential(S).factor(0),
            Backoff::constant(S).jitter(true)
        );
    }

    #[test]
    fn huge_retry_numbers_saturate_instead_of_panicking() {
        let b = Backoff::exponential(Duration::from_secs(u64::MAX / 2));
        assert!(b.delay(u32::MAX) >= Duration::from_secs(u64::MAX / 2));
        assert_eq!(
            Backoff::exponential(Duration::ZERO).delay(9),
            Duration::ZERO
        );
    }
}
