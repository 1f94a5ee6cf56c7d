//! Per-request limits: the deadline taken from the apiserver's `?timeout=`, and reading a
//! body under a size cap, that deadline and the server's budget of body memory.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the apiserver assumes when a webhook configuration sets no `timeoutSeconds`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The apiserver never waits longer than 30s for a webhook; a larger value is a mistake.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Reserve at most this much up front: a Content-Length is a claim, not a promise.
const MAX_PREALLOCATION: usize = 1024 * 1024;

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

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the cap arrived (or was announced).
    TooLarge,
    /// The deadline passed before the body was complete.
    TimedOut,
    /// The connection broke or the framing was wrong.
    Broken(String),
    /// The bodies being read or judged already hold the whole memory budget.
    Busy,
}

/// Bytes of the body-memory budget (a semaphore of bytes shared by all requests) that one
/// body holds; they go back when it is dropped, after the answer.
#[derive(Default)]
pub(crate) struct Held(Option<OwnedSemaphorePermit>);

impl Held {
    /// Holds at least `bytes` of `budget`, or says that the budget is spent.
    fn grow_to(&mut self, budget: &Arc<Semaphore>, bytes: usize) -> Result<(), BodyError> {
        let have = self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let Some(more) = bytes.checked_sub(have).filter(|&more| more > 0) else {
            return Ok(());
        };
        let more = u32::try_from(more).map_err(|_| BodyError::TooLarge)?;
        let permit = budget
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| BodyError::Busy)?;
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
        Ok(())
    }
}

/// Whether the Content-Length alone already exceeds `max`.
pub(crate) fn announced_too_large(body: &Incoming, max: usize) -> bool {
    body.size_hint().lower() > u64::try_from(max).unwrap_or(u64::MAX)
}

/// Reads the whole body, refusing more than `max` bytes, anything slower than `deadline`,
/// and a body for which `budget` has no room left (every byte buffered is held from it).
/// A Content-Length above `max` is refused before a byte is read. A body refused for
/// want of room is still read to its end (see [`discard`]) before `Busy` is returned.
pub(crate) async fn read_body(
    mut body: Incoming,
    max: usize,
    deadline: tokio::time::Instant,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Held), BodyError> {
    if announced_too_large(&body, max) {
        return Err(BodyError::TooLarge);
    }
    let mut total = 0usize;
    match gather(&mut body, &mut total, max, deadline, budget).await {
        Err(BodyError::Busy) => {
            discard(&mut body, total, max, deadline).await?;
            Err(BodyError::Busy)
        }
        read => read,
    }
}

/// Reads the rest of a body that will not be judged, keeping none of it, so that the
/// answer reaches the client whole and the connection stays usable: a server that
/// answers and closes with bytes unread makes the kernel reset the connection, and a
/// client still sending its body then sees a broken pipe instead of the answer. `total`
/// bytes were read before; `max` and `deadline` bound it like any body.
pub(crate) async fn discard(
    body: &mut Incoming,
    mut total: usize,
    max: usize,
    deadline: tokio::time::Instant,
) -> Result<(), BodyError> {
    while let Some(data) = next_data(body, deadline).await? {
        total = total.saturating_add(data.len());
        if total > max {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(())
}

/// The body's next data frame (trailers carry nothing for us), or `None` at its end.
async fn next_data(
    body: &mut Incoming,
    deadline: tokio::time::Instant,
) -> Result<Option<Bytes>, BodyError> {
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
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
    deadline: tokio::time::Instant,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Held), BodyError> {
    let announced = body.size_hint().lower();
    // Most bodies arrive as one frame: keep it without copying; gather only when split.
    let mut first: Option<Bytes> = None;
    let mut gathered: Option<BytesMut> = None;
    let mut held = Held::default();
    while let Some(data) = next_data(body, deadline).await? {
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
                let capacity = usize::try_from(announced)
                    .unwrap_or(usize::MAX)
                    .clamp(*total, MAX_PREALLOCATION.max(*total));
                held.grow_to(budget, capacity)?;
                let mut buf = BytesMut::with_capacity(capacity);
                buf.extend_from_slice(head);
                buf.extend_from_slice(&data);
                first = None;
                gathered = Some(buf);
            }
            (_, Some(buf)) => {
                // Growing doubles the buffer: hold what it may grow to.
                if buf.len() + data.len() > buf.capacity() {
                    held.grow_to(budget, (buf.len() + data.len()).max(2 * buf.capacity()))?;
                }
                buf.extend_from_slice(&data);
            }
        }
    }
    let body = match (first, gathered) {
        (_, Some(buf)) => buf.freeze(),
        (Some(head), None) => head,
        (None, None) => Bytes::new(),
    };
    Ok((body, held))
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
