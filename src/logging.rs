//! Process logging: ordinary logs (text or JSON) on stderr, and audit records as raw
//! JSON lines on stdout, written off the request path by a lossless background writer.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::cli::LogFormat;

/// The tracing target of audit records: they go to stdout, everything else to stderr.
pub const AUDIT_TARGET: &str = "pullgate::audit";

/// The audit writer installed by [`init`]: [`write_audit_line`] appends lines to it
/// directly, without a round trip through tracing's event formatting.
static AUDIT_WRITER: OnceLock<Arc<Batch>> = OnceLock::new();

/// How long an audit line may wait before it is written. Writing in batches rather than
/// a line at a time keeps the write system calls (and waking a writer thread per line)
/// off the admission path: under load they cost as much as a review.
const AUDIT_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes gathered that make the writer write at once rather than at the next interval
/// (small writes: a large one holds a core long enough to show in admission latency).
const AUDIT_HIGH_WATER: usize = 64 << 10;

/// Bytes gathered at which admission waits for the writer (stdout blocked): lossless
/// back-pressure rather than dropped records or unbounded memory.
const AUDIT_LIMIT: usize = 16 << 20;

/// Audit lines not written yet, and the writer thread's signals.
#[derive(Default)]
struct Batch {
    state: Mutex<Pending>,
    /// Wakes the writer (high water, shutdown).
    work: Condvar,
    /// Wakes producers waiting at the limit.
    room: Condvar,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closing: bool,
}

impl Batch {
    fn push(&self, line: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.lines.len() >= AUDIT_LIMIT && !state.closing {
            state = self.room.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(line);
        let crossed = before < AUDIT_HIGH_WATER && state.lines.len() >= AUDIT_HIGH_WATER;
        drop(state);
        // Once, on crossing (a notification is a system call), and after unlocking: a
        // writer woken while the lock is held would only block on it again.
        if crossed {
            self.work.notify_one();
        }
    }

    /// The writer: every interval (or at high water) takes what is pending and writes it
    /// to `out` in one go; after shutdown, writes the rest and ends.
    fn run(&self, mut out: impl Write) {
        let mut spare = Vec::new();
        loop {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.lines.len() < AUDIT_HIGH_WATER && !state.closing {
                state = self
                    .work
                    .wait_timeout(state, AUDIT_INTERVAL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let (closing, full) = (state.closing, state.lines.len() >= AUDIT_LIMIT);
            std::mem::swap(&mut state.lines, &mut spare);
            drop(state);
            if full {
                self.room.notify_all();
            }
            if !spare.is_empty() {
                // stdout gone (closed pipe): nothing else can be done with the lines.
                let _ = out.write_all(&spare).and_then(|_| out.flush());
                spare.clear();
            }
            if closing {
                return;
            }
        }
    }
}

/// Keeps the audit writer running; dropping it writes what is pending and stops it.
pub struct AuditGuard {
    batch: Arc<Batch>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        self.batch
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closing = true;
        self.batch.work.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Starts the audit writer on `out`.
fn audit_writer(out: impl Write + Send + 'static) -> (Arc<Batch>, AuditGuard) {
    let batch = Arc::new(Batch::default());
    let worker = batch.clone();
    let writer = std::thread::Builder::new()
        .name("pullgate-audit".into())
        .spawn(move || worker.run(out))
        .expect("cannot start the audit writer thread");
    let guard = AuditGuard {
        batch: batch.clone(),
        writer: Some(writer),
    };
    (batch, guard)
}

/// Installs the global subscriber. Keep the guard alive: dropping it writes the audit
/// lines still pending.
pub fn init(format: LogFormat) -> AuditGuard {
    let (writer, guard) = audit_writer(std::io::stdout());
    let _ = AUDIT_WRITER.set(writer.clone());
    let env = EnvFilter::try_from_env("PULLGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let not_audit = filter_fn(|m| m.target() != AUDIT_TARGET);
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let audit = AuditLayer { writer }.with_filter(filter_fn(|m| m.target() == AUDIT_TARGET));
    let _ = Registry::default()
        .with(logs.with_filter(env).with_filter(not_audit))
        .with(audit)
        .try_init();
    guard
}

/// Appends one complete audit line (JSON text ending in a newline) to the audit writer,
/// if [`init`] installed one; returns false when there is none, so the caller can fall
/// back to an event on the audit target.
pub fn write_audit_line(line: &[u8]) -> bool {
    match AUDIT_WRITER.get() {
        Some(writer) => {
            writer.push(line);
            true
        }
        None => false,
    }
}

/// Writes the message of each audit event, which is already a JSON record, as one line.
struct AuditLayer {
    writer: Arc<Batch>,
}

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = MessageText(String::new());
        event.record(&mut line);
        line.0.push('\n');
        self.writer.push(line.0.as_bytes());
    }
}

struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` that records what it is given, write by write.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_in_batches_in_order_and_all_on_shutdown() {
        let sink = Sink::default();
        let (batch, guard) = audit_writer(sink.clone());
        let lines: Vec<String> = (0..10_000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        for line in &lines {
            batch.push(line.as_bytes());
        }
        drop(guard);
        let writes = sink.0.lock().unwrap();
        assert!(
            writes.len() < 100,
            "{} writes for 10,000 lines",
            writes.len()
        );
        assert_eq!(writes.concat(), lines.concat().into_bytes());
    }

    #[test]
    fn a_line_is_written_within_the_interval_without_shutdown() {
        let sink = Sink::default();
        let (batch, _guard) = audit_writer(sink.clone());
        batch.push(b"{}\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.0.lock().unwrap().concat(), b"{}\n");
    }
}
