//! Per-request limits: the deadline taken from the apiserver's `?timeout=`, and reading a
//! body under a size cap, that deadline, a minimum transfer rate and the server's budget
//! of body memory (held as bytes arrive, with room kept for the first bytes of every
//! body in flight, so slow senders of large bodies cannot starve normal reviews).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the apiserver assumes when a webhook configuration sets no `timeoutSeconds`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The apiserver never waits longer than 30s for a webhook; a larger value is a mistake.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// The request timeout from a query string such as `timeout=10s`, as the apiserver
/// writes it (a Go duration: `10s`, `1m30s`, `1.5s`, `500ms`). Missing or unreadable
/// values give the default; values above 30s are capped.
pub(crate) fn request_timeout(query: Option<&str>) -> Duration {
    let value = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "timeout")
            .map(|(_, value)| value)
    });
    match value.and_then(parse_go_duration) {
        Some(timeout) if !timeout.is_zero() => timeout.min(MAX_TIMEOUT),
        _ => DEFAULT_TIMEOUT,
    }
}

/// Parses a Go `time.Duration` string: one or more `<decimal><unit>` parts, units `ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`. No sign (a negative timeout means nothing here).
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = after;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The span over which the minimum body rate (`ServerOptions::min_body_rate`) is measured, from the start of the body and then
/// window after window. A review of up to 128 KiB (nearly all are ~10 KiB) must arrive
/// within the first window; larger ones keep going at the floor. Two seconds tolerate a
/// few lost segments in a row (Linux retransmits after 0.2, 0.4, 0.8 s) and still end a
/// trickling sender's hold quickly, so renewing it costs a new connection every window.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(2);
/// The first bytes of every body may use the whole memory budget; a body's bytes beyond
/// this come from the part of the budget that leaves this much for each request that
/// can be in flight. So however many senders hold large bodies, a normal review (~10
/// KiB) that got an in-flight slot always finds memory.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the cap arrived (or was announced).
    TooLarge,
    /// The deadline passed before the body was complete.
    TimedOut,
    /// Fewer bytes than the floor arrived within one window.
    TooSlow,
    /// The connection broke or the framing was wrong.
    Broken(String),
    /// The bodies being read or judged already hold the whole memory budget.
    Busy,
}

/// The server's budget of memory for request bodies: a semaphore of bytes shared by all
/// requests, and a smaller one that every byte a body holds beyond [`SMALL_BODY`] must
/// also come from. What the smaller one leaves out is room for the first bytes of every
/// body that can be in flight at once.
pub(crate) struct BodyBudget {
    all: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes`, with room kept for the first [`SMALL_BODY`] bytes of
    /// `in_flight` bodies, as far as one body of `max_body` bytes still fits.
    pub(crate) fn new(bytes: usize, in_flight: usize, max_body: usize) -> Self {
        let kept = in_flight
            .saturating_mul(SMALL_BODY)
            .min(bytes.saturating_sub(max_body));
        BodyBudget {
            all: Arc::new(Semaphore::new(bytes)),
            large: Arc::new(Semaphore::new(bytes - kept)),
        }
    }
}

/// The bytes of a [`BodyBudget`] that one body holds; they go back when it is dropped,
/// after the answer.
#[derive(Default)]
pub(crate) struct Held {
    all: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
}

impl Held {
    fn bytes(&self) -> usize {
        self.all
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Holds at least `bytes` of `budget`, or says that the budget is spent (and then
    /// holds what it held before).
    fn grow_to(&mut self, budget: &BodyBudget, bytes: usize) -> Result<(), BodyError> {
        let Some(more) = bytes.checked_sub(self.bytes()).filter(|&more| more > 0) else {
            return Ok(());
        };
        let have_large = self
            .large
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits);
        let more_large = bytes.saturating_sub(SMALL_BODY).saturating_sub(have_large);
        let large = take(&budget.large, more_large)?;
        let all = take(&budget.all, more)?;
        merge(&mut self.large, large);
        merge(&mut self.all, all);
        Ok(())
    }
}

fn take(budget: &Arc<Semaphore>, bytes: usize) -> Result<Option<OwnedSemaphorePermit>, BodyError> {
    if bytes == 0 {
        return Ok(None);
    }
    let bytes = u32::try_from(bytes).map_err(|_| BodyError::TooLarge)?;
    match budget.clone().try_acquire_many_owned(bytes) {
        Ok(permit) => Ok(Some(permit)),
        Err(_) => Err(BodyError::Busy),
    }
}

fn merge(held: &mut Option<OwnedSemaphorePermit>, more: Option<OwnedSemaphorePermit>) {
    match (held.as_mut(), more) {
        (Some(held), Some(more)) => held.merge(more),
        (None, more) => *held = more,
        (Some(_), None) => {}
    }
}

/// When a body must be complete, and how fast it must come meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// From `?timeout=`: the apiserver has given up by then.
    pub(crate) deadline: tokio::time::Instant,
    /// Bytes per second a body must keep up, measured per window; 0 turns the floor off.
    pub(crate) min_rate: u64,
    pub(crate) window: Duration,
}

/// A [`Pace`] applied to one body: the current window and what arrived in it.
struct Clock {
    pace: Pace,
    window_end: tokio::time::Instant,
    in_window: u64,
}

impl Clock {
    fn start(pace: Pace) -> Self {
        Clock {
            pace,
            window_end: tokio::time::Instant::now() + pace.window,
            in_window: 0,
        }
    }

    fn floor(&self) -> u64 {
        let window_ms = u64::try_from(self.pace.window.as_millis()).unwrap_or(u64::MAX);
        self.pace.min_rate.saturating_mul(window_ms) / 1000
    }
}

/// Whether the Content-Length alone already exceeds `max`.
pub(crate) fn announced_too_large(body: &Incoming, max: usize) -> bool {
    body.size_hint().lower() > u64::try_from(max).unwrap_or(u64::MAX)
}

/// Reads the whole body, refusing more than `max` bytes, a body that is late or slower
/// than `pace` allows, and one for which `budget` has no room left. Memory is held from
/// `budget` as bytes arrive (a Content-Length is a claim, not a promise), never ahead of
/// them by more than the buffer's growth. A Content-Length above `max` is refused before
/// a byte is read. A body refused for want of room is still read to its end (see
/// [`discard`]) before `Busy` is returned.
pub(crate) async fn read_body(
    mut body: Incoming,
    max: usize,
    pace: Pace,
    budget: &BodyBudget,
) -> Result<(Bytes, Held), BodyError> {
    if announced_too_large(&body, max) {
        return Err(BodyError::TooLarge);
    }
    let mut clock = Clock::start(pace);
    let mut total = 0usize;
    match gather(&mut body, &mut total, max, &mut clock, budget).await {
        Err(BodyError::Busy) => {
            discard_from(&mut body, total, max, &mut clock).await?;
            Err(BodyError::Busy)
        }
        read => read,
    }
}

/// Reads the rest of a body that will not be judged, keeping none of it, so that the
/// answer reaches the client whole and the connection stays usable: a server that
/// answers and closes with bytes unread makes the kernel reset the connection, and a
/// client still sending its body then sees a broken pipe instead of the answer. `max`
/// and `pace` bound it like any body.
pub(crate) async fn discard(body: &mut Incoming, max: usize, pace: Pace) -> Result<(), BodyError> {
    discard_from(body, 0, max, &mut Clock::start(pace)).await
}

/// [`discard`] of a body of which `total` bytes were read before, on its own clock.
async fn discard_from(
    body: &mut Incoming,
    mut total: usize,
    max: usize,
    clock: &mut Clock,
) -> Result<(), BodyError> {
    while let Some(data) = next_data(body, clock).await? {
        total = total.saturating_add(data.len());
        if total > max {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(())
}

/// The body's next data frame (trailers carry nothing for us), or `None` at its end.
async fn next_data(body: &mut Incoming, clock: &mut Clock) -> Result<Option<Bytes>, BodyError> {
    loop {
        let floor = clock.floor();
        let deadline = clock.pace.deadline;
        let until = if floor > 0 {
            deadline.min(clock.window_end)
        } else {
            deadline
        };
        match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) if until == deadline => return Err(BodyError::TimedOut),
            Err(_) => {
                if clock.in_window < floor {
                    return Err(BodyError::TooSlow);
                }
                // From now, not from the old end: a server that was too busy to look
                // does not shorten the sender's next window.
                clock.in_window = 0;
                clock.window_end = tokio::time::Instant::now() + clock.pace.window;
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    clock.in_window = clock.in_window.saturating_add(data.len() as u64);
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The buffering part of [`read_body`]; `total` counts the bytes read.
async fn gather(
    body: &mut Incoming,
    total: &mut usize,
    max: usize,
    clock: &mut Clock,
    budget: &BodyBudget,
) -> Result<(Bytes, Held), BodyError> {
    // The buffer never grows past the announced length (a body longer than it is a
    // framing error hyper reports) or the cap.
    let limit = usize::try_from(body.size_hint().upper().unwrap_or(u64::MAX))
        .unwrap_or(usize::MAX)
        .min(max);
    // Most bodies arrive as one frame: keep it without copying; gather only when split.
    let mut first: Option<Bytes> = None;
    let mut gathered: Option<Vec<u8>> = None;
    let mut held = Held::default();
    while let Some(data) = next_data(body, clock).await? {
        *total = total.saturating_add(data.len());
        if *total > max {
            return Err(BodyError::TooLarge);
        }
        match (&mut first, &mut gathered) {
            (None, None) => {
                held.grow_to(budget, *total)?;
                first = Some(data);
            }
            (Some(head), None) => {
                let capacity = grown(0, *total, limit);
                held.grow_to(budget, capacity)?;
                let mut buf = Vec::with_capacity(capacity);
                buf.extend_from_slice(head);
                buf.extend_from_slice(&data);
                first = None;
                gathered = Some(buf);
            }
            (_, Some(buf)) => {
                if *total > buf.capacity() {
                    let capacity = grown(buf.capacity(), *total, limit);
                    held.grow_to(budget, capacity)?;
                    buf.reserve_exact(capacity - buf.len());
                }
                buf.extend_from_slice(&data);
            }
        }
    }
    let body = match (first, gathered) {
        (_, Some(buf)) => Bytes::from(buf),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    };
    Ok((body, held))
}

/// The capacity for `needed` bytes when `capacity` is too small: doubled (so a large
/// body is copied a few times, not once per frame), but never past `limit`. What is held
/// is thus at most twice what arrived.
fn grown(capacity: usize, needed: usize, limit: usize) -> usize {
    capacity
        .saturating_mul(2)
        .max(needed.checked_next_power_of_two().unwrap_or(needed))
        .min(limit)
        .max(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("10s", Some(Duration::from_secs(10))),
            ("5s", Some(Duration::from_secs(5))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("2m0s", Some(Duration::from_secs(120))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1h", Some(Duration::from_secs(3600))),
            ("250us", Some(Duration::from_micros(250))),
            ("250µs", Some(Duration::from_micros(250))),
            ("0", Some(Duration::ZERO)),
            ("", None),
            ("10", None),
            ("s", None),
            ("-5s", None),
            ("10x", None),
            ("1..5s", None),
            ("ten seconds", None),
        ];
        for (text, want) in cases {
            let got = parse_go_duration(text);
            match (got, want) {
                (Some(g), Some(w)) => assert!(
                    g.abs_diff(*w) < Duration::from_micros(1),
                    "{text}: got {g:?}, want {w:?}"
                ),
                (None, None) => {}
                _ => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn timeout_parameter() {
        let cases: &[(Option<&str>, Duration)] = &[
            (None, DEFAULT_TIMEOUT),
            (Some(""), DEFAULT_TIMEOUT),
            (Some("timeout=5s"), Duration::from_secs(5)),
            (Some("dryRun=true&timeout=1m30s"), MAX_TIMEOUT),
            (Some("timeout=1m"), MAX_TIMEOUT),
            (Some("timeout=29s&x=1"), Duration::from_secs(29)),
            (Some("timeout=0s"), DEFAULT_TIMEOUT),
            (Some("timeout=garbage"), DEFAULT_TIMEOUT),
            (Some("timeouts=5s"), DEFAULT_TIMEOUT),
        ];
        for (query, want) in cases {
            assert_eq!(request_timeout(*query), *want, "{query:?}");
        }
    }

    #[test]
    fn buffers_double_up_to_the_announced_length() {
        assert_eq!(grown(0, 10_000, 7 * 1024 * 1024), 16_384);
        assert_eq!(grown(0, 10_000, 12_000), 12_000);
        assert_eq!(grown(16_384, 16_385, usize::MAX), 32_768);
        assert_eq!(grown(16_384, 100_000, usize::MAX), 131_072);
        assert_eq!(grown(65_536, 70_000, 70_000), 70_000);
        // Never less than what is needed, even past a wrong limit.
        assert_eq!(grown(0, 5_000, 4_000), 5_000);
    }

    #[test]
    fn large_bodies_leave_room_for_the_first_bytes_of_every_request() {
        const KIB: usize = 1024;
        // 1 MiB in all; 4 requests in flight keep 4 × 64 KiB: 768 KiB for the rest.
        let budget = BodyBudget::new(1024 * KIB, 4, 512 * KIB);
        let mut large = Held::default();
        assert_eq!(large.grow_to(&budget, 900 * KIB), Err(BodyError::Busy));
        assert_eq!(large.bytes(), 0, "a refused step holds nothing more");
        large.grow_to(&budget, 832 * KIB).unwrap();
        // Another large body finds no room past its first 64 KiB...
        let mut other = Held::default();
        assert_eq!(other.grow_to(&budget, 65 * KIB), Err(BodyError::Busy));
        // ...but the first 64 KiB of each other request always fit.
        let mut small: Vec<Held> = (0..3).map(|_| Held::default()).collect();
        for held in &mut small {
            held.grow_to(&budget, 64 * KIB).unwrap();
        }
        assert_eq!(budget.all.available_permits(), 0);
        drop((large, other, small));
        assert_eq!(budget.all.available_permits(), 1024 * KIB);
        assert_eq!(budget.large.available_permits(), 768 * KIB);
    }

    #[test]
    fn a_budget_of_one_body_keeps_no_room() {
        let budget = BodyBudget::new(1024, 256, 1024);
        let mut held = Held::default();
        held.grow_to(&budget, 1024).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn timeout_is_always_within_bounds(query in ".{0,40}") {
            let t = request_timeout(Some(&query));
            proptest::prop_assert!(!t.is_zero() && t <= MAX_TIMEOUT);
        }

        #[test]
        fn whole_seconds_round_trip(secs in 1u64..100_000) {
            let text = format!("{}h{}m{}s", secs / 3600, secs % 3600 / 60, secs % 60);
            proptest::prop_assert_eq!(parse_go_duration(&text), Some(Duration::from_secs(secs)));
        }
    }
}
