//! The audit record: one JSON line per decision, on tracing target
//! `pullgate::audit`. It holds image names and verdicts, never credentials. Admission
//! builds it, `check` prints its image entries, the overview page keeps the latest
//! denials; the bounds on what it echoes ([`MAX_LISTED`], [`MAX_ECHOED`]) hold for
//! admission's answers too.

use std::borrow::Cow;

use serde::Serialize;

use crate::api::Visibility;
use crate::policy::{decide::explain, ImageVerdict, Location};
use crate::wire::out::{self as json, clip};

/// Denied images named one by one in a denial message, the `denied-images` annotation
/// and an audit record; past it they are counted ("and N more"). Far above what real
/// pods have (a pod of a hundred containers is already rare), so for them every denied
/// image is named (README, "Decision rules"). With [`MAX_ECHOED`] it bounds an answer to about 2 MiB
/// and an audit line to about 3 MiB whatever the request; an answer of that size needs
/// a request of at least half of it (the images it names).
pub const MAX_LISTED: usize = 1000;

/// The most bytes of one string taken from a request (an image, a name, a user) or of one
/// sentence about it that an answer or audit line echoes; longer ones are cut at a
/// character boundary and end in `…`. A valid image reference is far shorter (a name of
/// at most 255 characters, a tag of 128, a digest).
pub const MAX_ECHOED: usize = 1024;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: String,
    pub uid: String,
    pub operation: &'static str,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub user: String,
    pub dry_run: bool,
    pub mode: &'static str,
    pub decision: &'static str,
    pub images: Vec<AuditImage>,
    /// Judged images left out of `images` (see [`bounded_images_of`]), and how many of
    /// them were denied; written only when not zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_images: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_denied: u64,
    pub revision: u64,
    pub latency_us: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditImage {
    pub image: String,
    pub container: String,
    pub location: Location,
    pub registry: Option<String>,
    pub space: Option<String>,
    pub visibility: Option<Visibility>,
    pub verdict: &'static str,
    pub reason: &'static str,
    /// The sentence the developer sees, for an image that is not allowed (building it
    /// for every allowed image was a tenth of a review's cost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AuditImage {
    /// `explain_allowed`: the sentence also for an allowed image (`check` prints one per
    /// image; the audit log keeps them for images not allowed).
    pub fn from_verdict(v: ImageVerdict, namespace: &str, explain_allowed: bool) -> AuditImage {
        let message = (explain_allowed || !v.allowed).then(|| explain(&v, namespace));
        AuditImage {
            image: v.image,
            container: v.container,
            location: v.location,
            registry: v.registry,
            space: v.space,
            visibility: v.visibility,
            verdict: if v.allowed { "allow" } else { "deny" },
            reason: v.reason.code(),
            message,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The images of an audit record, bounded, and the counts of those left out.
#[derive(Debug, Default)]
pub struct Listed {
    pub images: Vec<AuditImage>,
    pub omitted: u64,
    pub omitted_denied: u64,
}

/// The audit form of a review's verdicts, bounded: at most [`MAX_LISTED`]
/// images, the denied ones first in choice (in their order, the allowed ones filling the
/// rest), strings cut at [`MAX_ECHOED`] bytes. `denied` is the count of denied
/// verdicts.
pub fn bounded_images_of(images: Vec<ImageVerdict>, namespace: &str, denied: usize) -> Listed {
    let total = images.len();
    let mut denied_room = MAX_LISTED.min(denied);
    let mut allowed_room = MAX_LISTED - denied_room;
    let mut listed = Listed::default();
    for v in images {
        let room = if v.allowed {
            &mut allowed_room
        } else {
            &mut denied_room
        };
        if *room == 0 {
            continue;
        }
        *room -= 1;
        let mut image = AuditImage::from_verdict(v, namespace, false);
        for s in [&mut image.image, &mut image.container] {
            if let Cow::Owned(c) = clip(s, MAX_ECHOED) {
                *s = c;
            }
        }
        if let Some(m) = &mut image.message {
            if let Cow::Owned(c) = clip(m, MAX_ECHOED) {
                *m = c;
            }
        }
        listed.images.push(image);
    }
    let denied_listed = listed.images.iter().filter(|i| i.verdict == "deny").count();
    listed.omitted = (total - listed.images.len()) as u64;
    listed.omitted_denied = (denied - denied_listed) as u64;
    listed
}

/// The audit form of a decision's verdicts, which it takes over (no copies).
pub fn images_of(
    images: Vec<ImageVerdict>,
    namespace: &str,
    explain_allowed: bool,
) -> Vec<AuditImage> {
    images
        .into_iter()
        .map(|v| AuditImage::from_verdict(v, namespace, explain_allowed))
        .collect()
}

impl AuditRecord {
    /// Writes the record as one JSON line: straight to the audit writer when logging
    /// is set up (`logging::init`), otherwise as an event on the audit target.
    pub fn emit(&self) {
        thread_local! {
            // Reused: a fresh buffer of a kilobyte or more per review costs glibc a
            // consolidation of its small free chunks each time.
            static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.write(line);
            line.push(b'\n');
            if crate::logging::write_audit_line(line) {
                return;
            }
            if let Ok(text) = std::str::from_utf8(&line[..line.len() - 1]) {
                tracing::info!(target: crate::logging::AUDIT_TARGET, "{text}");
            }
        });
    }

    /// Appends the record as JSON, as its `Serialize` form writes it (checked by a test).
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut o = json::Object::new(out);
        o.str("time", &self.time)
            .str("uid", &self.uid)
            .str("operation", self.operation)
            .str("kind", &self.kind)
            .str("namespace", &self.namespace)
            .str("name", &self.name)
            .str("user", &self.user)
            .bool("dryRun", self.dry_run)
            .str("mode", self.mode)
            .str("decision", self.decision)
            .array("images", &self.images, |out, image| image.write(out));
        if self.omitted_images != 0 {
            o.u64("omittedImages", self.omitted_images);
        }
        if self.omitted_denied != 0 {
            o.u64("omittedDenied", self.omitted_denied);
        }
        o.u64("revision", self.revision)
            .u64("latencyUs", self.latency_us);
        o.end();
    }
}

impl AuditImage {
    fn write(&self, out: &mut Vec<u8>) {
        let mut o = json::Object::new(out);
        o.str("image", &self.image)
            .str("container", &self.container)
            .str("location", self.location.as_str())
            .opt_str("registry", self.registry.as_deref())
            .opt_str("space", self.space.as_deref())
            .opt_str("visibility", self.visibility.map(Visibility::as_str))
            .str("verdict", self.verdict)
            .str("reason", self.reason);
        if let Some(message) = &self.message {
            o.str("message", message);
        }
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(message: Option<&str>, registry: Option<&str>) -> AuditImage {
        AuditImage {
            image: "harbor.example.com/team-a/app:1".into(),
            container: "c\"0".into(),
            location: Location::InitContainer,
            registry: registry.map(String::from),
            space: registry.map(|_| "team-a".into()),
            visibility: registry.map(|_| Visibility::Private),
            verdict: "deny",
            reason: "NotBound",
            message: message.map(String::from),
        }
    }

    fn record(images: Vec<AuditImage>, omitted_images: u64, omitted_denied: u64) -> AuditRecord {
        AuditRecord {
            time: "2026-11-27T20:00:00.000001Z".into(),
            uid: "u-1".into(),
            operation: "CREATE",
            kind: "Pod".into(),
            namespace: "app-1".into(),
            name: "web-\u{1}x".into(),
            user: "alice".into(),
            dry_run: true,
            mode: "enforce",
            decision: "deny",
            images,
            omitted_images,
            omitted_denied,
            revision: 7,
            latency_us: 12,
        }
    }

    #[test]
    fn the_line_is_the_serialize_form() {
        for images in [
            vec![],
            vec![image(None, Some("harbor")), image(Some("denied\n"), None)],
        ] {
            let record = record(images, 3, 2);
            let mut line = Vec::new();
            record.write(&mut line);
            let ours: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(ours, serde_json::to_value(&record).unwrap());
        }
        for location in [
            Location::Container,
            Location::InitContainer,
            Location::EphemeralContainer,
            Location::ImageVolume,
        ] {
            assert_eq!(serde_json::to_value(location).unwrap(), location.as_str());
        }
        for visibility in [Visibility::Public, Visibility::Private] {
            assert_eq!(
                serde_json::to_value(visibility).unwrap(),
                visibility.as_str()
            );
        }
    }

    /// Every member an audit line can have, byte for byte, and one without the optional
    /// ones.
    #[test]
    fn a_full_audit_line_is_these_bytes() {
        let images = vec![
            image(None, Some("harbor")),
            image(Some("denied \"x\"\n"), None),
        ];
        let mut line = Vec::new();
        record(images, 3, 2).write(&mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            concat!(
                r#"{"time":"2026-11-27T20:00:00.000001Z","uid":"u-1","operation":"CREATE","#,
                r#""kind":"Pod","namespace":"app-1","name":"web-\u0001x","user":"alice","#,
                r#""dryRun":true,"mode":"enforce","decision":"deny","images":["#,
                r#"{"image":"harbor.example.com/team-a/app:1","container":"c\"0","#,
                r#""location":"initContainer","registry":"harbor","space":"team-a","#,
                r#""visibility":"Private","verdict":"deny","reason":"NotBound"},"#,
                r#"{"image":"harbor.example.com/team-a/app:1","container":"c\"0","#,
                r#""location":"initContainer","registry":null,"space":null,"visibility":null,"#,
                r#""verdict":"deny","reason":"NotBound","message":"denied \"x\"\n"}],"#,
                r#""omittedImages":3,"omittedDenied":2,"revision":7,"latencyUs":12}"#,
            )
        );
        let mut line = Vec::new();
        record(vec![], 0, 0).write(&mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            concat!(
                r#"{"time":"2026-11-27T20:00:00.000001Z","uid":"u-1","operation":"CREATE","#,
                r#""kind":"Pod","namespace":"app-1","name":"web-\u0001x","user":"alice","#,
                r#""dryRun":true,"mode":"enforce","decision":"deny","images":[],"#,
                r#""revision":7,"latencyUs":12}"#,
            )
        );
    }
}
