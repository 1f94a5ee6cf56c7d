//! The latest denials for the overview page: a ring of the last [`CAPACITY`] reviews
//! whose verdict was not an allow (denied, or allowed with a warning or silently in
//! `warn`/`audit` mode), newest first. Filled from the audit record, which holds image
//! names, reasons and the requester's name, never a credential; each entry keeps only a
//! few images and short strings, so the ring stays small whatever the requests.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::audit_record::AuditRecord;
use crate::wire::out::clip;

/// Enough to see what is going on right now; older ones are in the audit log.
pub const CAPACITY: usize = 50;
/// Denied images kept per entry; the count of the others is kept.
const IMAGES_PER_ENTRY: usize = 5;
/// Bytes kept of one string (an image, a name, a sentence): a few lines on the page, and
/// with the limits above at most ~300 KiB for the whole ring.
const MAX_STRING: usize = 512;

/// One review that was not allowed as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub time: String,
    /// `deny`, `warn` or `audit` (what the namespace's mode made of the denial).
    pub decision: &'static str,
    pub operation: &'static str,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub user: String,
    pub dry_run: bool,
    pub images: Vec<DeniedImage>,
    /// Denied images not listed in `images`.
    pub more: u64,
}

/// One denied image and the sentence the developer got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeniedImage {
    pub image: String,
    pub container: String,
    pub reason: &'static str,
    pub message: String,
}

/// The ring; shared by the admission handler (writer) and the page (reader).
#[derive(Debug, Default)]
pub struct RecentDenials {
    ring: Mutex<VecDeque<Denial>>,
}

impl RecentDenials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `record` if its decision is not an allow, dropping the oldest entry when full.
    pub fn record(&self, record: &AuditRecord) {
        if record.decision == "allow" {
            return;
        }
        let short = |s: &str| clip(s, MAX_STRING).into_owned();
        let denied: Vec<_> = record
            .images
            .iter()
            .filter(|i| i.verdict != "allow")
            .collect();
        let images: Vec<DeniedImage> = denied
            .iter()
            .take(IMAGES_PER_ENTRY)
            .map(|i| DeniedImage {
                image: short(&i.image),
                container: short(&i.container),
                reason: i.reason,
                message: short(i.message.as_deref().unwrap_or_default()),
            })
            .collect();
        let more = (denied.len() - images.len()) as u64 + record.omitted_denied;
        let denial = Denial {
            time: record.time.clone(),
            decision: record.decision,
            operation: record.operation,
            kind: short(&record.kind),
            namespace: short(&record.namespace),
            name: short(&record.name),
            user: short(&record.user),
            dry_run: record.dry_run,
            images,
            more,
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == CAPACITY {
            ring.pop_back();
        }
        ring.push_front(denial);
    }

    /// The kept denials, newest first.
    pub fn latest(&self) -> Vec<Denial> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit_record::AuditImage;
    use crate::policy::Location;

    fn record(name: &str, decision: &'static str, denied: usize) -> AuditRecord {
        let image = |i: usize, verdict: &'static str| AuditImage {
            image: format!("registry.example/team-b/app-{i}:1"),
            container: format!("c{i}"),
            location: Location::Container,
            registry: None,
            space: None,
            visibility: None,
            verdict,
            reason: if verdict == "allow" {
                "public"
            } else {
                "not-bound"
            },
            message: (verdict != "allow").then(|| format!("image {i} is not allowed")),
        };
        AuditRecord {
            time: "2026-01-01T00:00:00Z".into(),
            uid: "u".into(),
            operation: "CREATE",
            kind: "Pod".into(),
            namespace: "app-1".into(),
            name: name.into(),
            user: "alice".into(),
            dry_run: false,
            mode: "enforce",
            decision,
            images: std::iter::once(image(99, "allow"))
                .chain((0..denied).map(|i| image(i, "deny")))
                .collect(),
            omitted_images: 0,
            omitted_denied: 0,
            revision: 1,
            latency_us: 1,
        }
    }

    #[test]
    fn keeps_the_latest_non_allowed_reviews_newest_first_and_bounded() {
        let ring = RecentDenials::new();
        ring.record(&record("allowed", "allow", 0));
        assert!(ring.latest().is_empty(), "an allow is not a denial");
        for i in 0..CAPACITY + 3 {
            ring.record(&record(&format!("p{i}"), "deny", 1));
        }
        ring.record(&record("audited", "audit", 1));
        let latest = ring.latest();
        assert_eq!(latest.len(), CAPACITY);
        assert_eq!(latest[0].name, "audited");
        assert_eq!(latest[0].decision, "audit");
        assert_eq!(latest[1].name, format!("p{}", CAPACITY + 2));
        assert_eq!(latest[CAPACITY - 1].name, "p4", "the oldest went first");
        assert_eq!(latest[1].images.len(), 1, "allowed images are not listed");
        assert_eq!(latest[1].images[0].message, "image 0 is not allowed");
    }

    #[test]
    fn an_entry_keeps_a_few_short_images_and_counts_the_rest() {
        let ring = RecentDenials::new();
        let mut r = record(&"n".repeat(10_000), "deny", IMAGES_PER_ENTRY + 4);
        r.omitted_denied = 7;
        ring.record(&r);
        let d = &ring.latest()[0];
        assert_eq!(d.images.len(), IMAGES_PER_ENTRY);
        assert_eq!(d.more, 4 + 7);
        assert!(d.name.len() <= MAX_STRING);
    }
}
