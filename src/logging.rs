//! Process logging: ordinary logs (text or JSON) on stderr, and audit records as raw
//! JSON lines on stdout, written off the request path by a lossless background writer.

use std::io::{BufWriter, IsTerminal, Write};
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::admission::audit::TARGET as AUDIT_TARGET;
use crate::cli::LogFormat;

/// The audit writer installed by [`init`]: [`write_audit_line`] sends lines to it
/// directly, without a round trip through tracing's event formatting.
static AUDIT_WRITER: OnceLock<NonBlocking> = OnceLock::new();

/// Bytes of audit lines gathered before a write to stdout. The background writer flushes
/// whenever its queue is empty, so lines wait only while more are queued behind them.
const AUDIT_BUFFER_BYTES: usize = 64 * 1024;

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the
/// audit writer.
pub fn init(format: LogFormat) -> WorkerGuard {
    // Lossless: when the buffer is full, admission waits rather than dropping a record.
    let (writer, guard) =
        NonBlockingBuilder::default()
            .lossy(false)
            .finish(BufWriter::with_capacity(
                AUDIT_BUFFER_BYTES,
                std::io::stdout(),
            ));
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

/// Sends one complete audit line (JSON text ending in a newline) to the audit writer,
/// if [`init`] installed one; returns false when there is none, so the caller can fall
/// back to an event on the audit target.
pub fn write_audit_line(line: &[u8]) -> bool {
    match AUDIT_WRITER.get() {
        // One `write` is one queued message, so lines never interleave.
        Some(writer) => {
            let _ = writer.clone().write(line);
            true
        }
        None => false,
    }
}

/// Writes the message of each audit event, which is already a JSON record, as one line.
struct AuditLayer {
    writer: NonBlocking,
}

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = MessageText(String::new());
        event.record(&mut line);
        line.0.push('\n');
        let _ = self.writer.clone().write_all(line.0.as_bytes());
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
