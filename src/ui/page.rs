//! The overview page as one HTML document: the [`Overview`] of `pullgate overview`
//! drawn (health in colour, spaces and storage as bars), the latest denials and the
//! audit findings per workspace. No script; the page reloads itself with a meta
//! refresh. Every value taken from objects, registries or requests goes through [`esc`].

use std::fmt::Write as _;
use std::time::SystemTime;

use super::denials::Denial;
use super::WorkspaceFindings;
use crate::api::{Enforcement, Health, RegistryType, Visibility};
use crate::overview::{Overview, RegistryRow};
use crate::registry::human_bytes;

/// Namespaces listed per workspace; a workspace with thousands shows a count instead.
const NAMESPACES_SHOWN: usize = 40;
/// Findings listed per workspace.
const FINDINGS_SHOWN: usize = 10;

/// Everything one rendering shows.
pub struct View<'a> {
    /// Where the objects come from, e.g. `standalone: /etc/pullgate/config.yaml`.
    pub source: &'a str,
    /// `--mode`: what a workspace without `enforcement` contributes.
    pub global_mode: Enforcement,
    /// The last overview collected, if any was.
    pub overview: Option<&'a Overview>,
    /// When `overview` was collected.
    pub collected_at: Option<SystemTime>,
    /// Why the last collection failed (the page then shows the one before, if any).
    pub error: Option<&'a str>,
    /// Newest first.
    pub denials: &'a [Denial],
    /// `None`: no audit data (no provider, or none reported yet).
    pub findings: Option<&'a [WorkspaceFindings]>,
    /// Seconds between reloads of the page.
    pub refresh_seconds: u64,
}

/// `s` safe inside HTML text and quoted attribute values: markup characters as entities,
/// control characters and bidirectional overrides as visible escapes.
pub fn esc(s: &str) -> String {
    let s = crate::input::escape(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole document.
pub fn render(view: &View<'_>) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{}\">\
         <title>pullgate overview</title><style>{CSS}</style></head><body>",
        view.refresh_seconds
    );
    header(&mut out, view);
    out.push_str("<main>");
    if let Some(error) = view.error {
        let _ = write!(
            out,
            "<div class=\"banner bad\" role=\"alert\"><strong>The overview could not be refreshed.</strong> {}{}</div>",
            esc(error),
            if view.overview.is_some() {
                " Showing the last overview collected."
            } else {
                ""
            }
        );
    }
    match view.overview {
        Some(o) => {
            summary(&mut out, o, view.denials);
            registries(&mut out, o);
            denials(&mut out, view.denials);
            spaces(&mut out, o);
            out.push_str("<div class=\"columns\">");
            workspaces(&mut out, o, view.global_mode);
            findings(&mut out, view.findings);
            out.push_str("</div>");
        }
        None if view.error.is_none() => {
            out.push_str("<div class=\"banner\">Collecting the overview…</div>");
            denials(&mut out, view.denials);
        }
        None => denials(&mut out, view.denials),
    }
    out.push_str("</main></body></html>\n");
    out
}

fn header(out: &mut String, view: &View<'_>) {
    let updated = view.collected_at.map_or_else(
        || "not yet".to_string(),
        |t| {
            humantime::format_rfc3339_seconds(t)
                .to_string()
                .replace('T', " ")
                .replace('Z', " UTC")
        },
    );
    let _ = write!(
        out,
        "<header><div class=\"brand\"><span class=\"logo\" aria-hidden=\"true\">◆</span>pullgate \
         <span class=\"muted\">overview</span></div><div class=\"meta\">\
         <span class=\"chip\">{}</span><span>global mode <span class=\"tag {}\">{}</span></span>\
         <span>updated {}</span><span class=\"muted\">reloads every {}s · read-only</span></div></header>",
        esc(view.source),
        enforcement(view.global_mode).0,
        enforcement(view.global_mode).1,
        esc(&updated),
        view.refresh_seconds
    );
}

fn summary(out: &mut String, o: &Overview, denials: &[Denial]) {
    let count = |h: Health| o.registries.iter().filter(|r| r.health == h).count();
    let spaces = o.registries.iter().map(|r| r.spaces.len()).sum::<usize>();
    let private = o
        .registries
        .iter()
        .flat_map(|r| &r.spaces)
        .filter(|s| s.visibility == Visibility::Private)
        .count();
    let namespaces = {
        let mut all: Vec<&str> = o
            .workspaces
            .iter()
            .flat_map(|w| w.namespaces.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    };
    let denied = denials.iter().filter(|d| d.decision == "deny").count();
    let (healthy, unhealthy, unknown) = (
        count(Health::Healthy),
        count(Health::Unhealthy),
        count(Health::Unknown),
    );
    let accent = if unhealthy > 0 {
        "bad"
    } else if unknown > 0 || o.registries.iter().any(|r| !r.problems.is_empty()) {
        "warn"
    } else {
        "ok"
    };
    let mut states = format!("<span class=\"dot ok\"></span>{healthy} healthy");
    for (n, class, what) in [
        (unhealthy, "bad", "unhealthy"),
        (unknown, "warn", "unknown"),
    ] {
        if n > 0 {
            let _ = write!(
                states,
                " &nbsp;<span class=\"dot {class}\"></span>{n} {what}"
            );
        }
    }
    out.push_str("<section class=\"cards\">");
    let _ = write!(
        out,
        "<div class=\"card {accent}\"><div class=\"label\">Registries</div><div class=\"big\">{}</div>\
         <div class=\"sub\">{states}</div></div>",
        o.registries.len()
    );
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"label\">Spaces</div><div class=\"big\">{spaces}</div>\
         <div class=\"sub\">{private} private · {} public</div></div>",
        spaces - private
    );
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"label\">Workspaces</div><div class=\"big\">{}</div>\
         <div class=\"sub\">{namespaces} {}</div></div>",
        o.workspaces.len(),
        plural(namespaces, "namespace", "namespaces")
    );
    let _ = write!(
        out,
        "<div class=\"card {}\"><div class=\"label\">Latest denials</div><div class=\"big\">{}</div>\
         <div class=\"sub\">{denied} denied · {} warned or audited</div></div>",
        if denied > 0 { "bad" } else { "" },
        denials.len(),
        denials.len() - denied
    );
    out.push_str("</section>");
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn health_class(r: &RegistryRow) -> &'static str {
    match r.health {
        Health::Healthy if r.problems.is_empty() => "ok",
        Health::Healthy | Health::Unknown => "warn",
        Health::Unhealthy => "bad",
    }
}

fn type_name(t: RegistryType) -> &'static str {
    match t {
        RegistryType::Harbor => "Harbor",
        RegistryType::DockerRegistry => "Docker Registry",
    }
}

/// A horizontal bar for `value` out of `max`; an unknown value is an empty, hatched bar.
fn bar(out: &mut String, value: Option<u64>, max: u64, label: &str, unknown: &str) {
    match value {
        Some(v) => {
            // At least a sliver for anything above zero, so small values stay visible.
            let pct = if max == 0 {
                0.0
            } else {
                (v as f64 / max as f64 * 100.0).clamp(if v > 0 { 2.0 } else { 0.0 }, 100.0)
            };
            let _ = write!(
                out,
                "<div class=\"barline\"><div class=\"bar\"><svg viewBox=\"0 0 100 10\" \
                 preserveAspectRatio=\"none\"><rect width=\"{pct:.1}\" height=\"10\"/></svg></div>\
                 <span class=\"num\">{}</span></div>",
                esc(label)
            );
        }
        None => {
            let _ = write!(
                out,
                "<div class=\"barline\"><div class=\"bar none\"></div><span class=\"num muted\">{}</span></div>",
                esc(unknown)
            );
        }
    }
}

fn registries(out: &mut String, o: &Overview) {
    out.push_str("<section><h2>Registries</h2>");
    if o.registries.is_empty() {
        out.push_str("<p class=\"empty\">No registries are declared.</p></section>");
        return;
    }
    let max_spaces = o
        .registries
        .iter()
        .filter_map(|r| r.space_count)
        .max()
        .unwrap_or(0);
    let max_storage = o
        .registries
        .iter()
        .filter_map(|r| r.storage_used_bytes)
        .max()
        .unwrap_or(0);
    out.push_str(
        "<div class=\"scroll\"><table class=\"registries\"><thead><tr><th>Health</th><th>Registry</th>\
         <th>Type</th><th class=\"w-bar\">Spaces on the registry</th><th class=\"w-bar\">Storage used</th>\
         </tr></thead><tbody>",
    );
    for r in &o.registries {
        let class = health_class(r);
        let health = match r.health {
            Health::Healthy => "Healthy",
            Health::Unhealthy => "Unhealthy",
            Health::Unknown => "Unknown",
        };
        let _ = write!(
            out,
            "<tr class=\"registry\" id=\"registry-{}\"><td><span class=\"pill {class}\"><span class=\"dot {class}\"></span>{health}</span></td>\
             <td><div class=\"name\">{}</div><div class=\"url\">{}</div></td><td>{}{}</td><td>",
            esc(&r.name),
            esc(&r.name),
            esc(&r.url),
            type_name(r.registry_type),
            r.credential_kind
                .as_deref()
                .map(|k| format!("<div class=\"url\">API credential: {}</div>", esc(k)))
                .unwrap_or_default()
        );
        let declared = r.spaces.len();
        let spaces_label = r
            .space_count
            .map(|n| format!("{n} found · {declared} declared"));
        bar(
            out,
            r.space_count,
            max_spaces,
            spaces_label.as_deref().unwrap_or_default(),
            &format!("unknown · {declared} declared"),
        );
        out.push_str("</td><td>");
        let storage_unknown = match (r.health, r.registry_type) {
            // The Docker Registry API has no storage statistics.
            (Health::Healthy, RegistryType::DockerRegistry) => "not reported",
            _ => "unknown",
        };
        bar(
            out,
            r.storage_used_bytes,
            max_storage,
            r.storage_used.as_deref().unwrap_or_default(),
            storage_unknown,
        );
        out.push_str("</td></tr>");
        if !r.message.is_empty() || !r.problems.is_empty() {
            let _ = write!(
                out,
                "<tr class=\"note {class}\"><td></td><td colspan=\"4\">"
            );
            for m in std::iter::once(&r.message)
                .filter(|m| !m.is_empty())
                .chain(&r.problems)
            {
                let _ = write!(out, "<div>{}</div>", esc(m));
            }
            out.push_str("</td></tr>");
        }
    }
    out.push_str("</tbody></table></div></section>");
}

fn chips(out: &mut String, items: &[String], class: &str, none: &str) {
    if items.is_empty() {
        let _ = write!(out, "<span class=\"muted\">{}</span>", esc(none));
        return;
    }
    for i in items {
        let _ = write!(out, "<span class=\"tag {class}\">{}</span>", esc(i));
    }
}

fn spaces(out: &mut String, o: &Overview) {
    out.push_str("<section><h2>Spaces</h2>");
    let all: Vec<_> = o
        .registries
        .iter()
        .flat_map(|r| r.spaces.iter().map(move |s| (r, s)))
        .collect();
    if all.is_empty() {
        out.push_str("<p class=\"empty\">No spaces are declared.</p></section>");
        return;
    }
    let max_repos = all
        .iter()
        .filter_map(|(_, s)| s.repo_count)
        .max()
        .unwrap_or(0);
    out.push_str(
        "<div class=\"scroll\"><table class=\"spaces\"><thead><tr><th>Space</th><th>Registry</th>\
         <th>Visibility</th><th>Bound workspaces</th><th class=\"n\">Namespaces</th>\
         <th>On the registry</th><th class=\"w-bar\">Repositories</th><th>Storage</th></tr></thead><tbody>",
    );
    for (r, s) in all {
        let (vis_class, vis) = match s.visibility {
            Visibility::Private => ("private", "Private"),
            Visibility::Public => ("public", "Public"),
        };
        let _ = write!(
            out,
            "<tr class=\"space\"><td class=\"name\">{}</td><td>{}</td><td><span class=\"tag {vis_class}\">{vis}</span></td><td>",
            esc(&s.space),
            esc(&r.name)
        );
        let none = match s.visibility {
            Visibility::Public => "every namespace",
            Visibility::Private => "none: no namespace may pull",
        };
        chips(out, &s.workspaces, "ws", none);
        let exists = match s.exists_on_registry {
            Some(true) => "<span class=\"dot ok\"></span>exists",
            Some(false) => "<span class=\"dot bad\"></span>missing",
            None => "<span class=\"muted\">unknown</span>",
        };
        let _ = write!(
            out,
            "</td><td class=\"n\">{}</td><td>{exists}</td><td>",
            s.bound_namespaces
        );
        bar(
            out,
            s.repo_count,
            max_repos,
            &s.repo_count.map(|n| n.to_string()).unwrap_or_default(),
            "unknown",
        );
        let _ = write!(
            out,
            "</td><td>{}</td></tr>",
            s.storage_used_bytes.map_or_else(
                || "<span class=\"muted\">—</span>".into(),
                |b| esc(&human_bytes(b))
            )
        );
    }
    out.push_str("</tbody></table></div></section>");
}

/// The CSS class and the name of a mode.
fn enforcement(e: Enforcement) -> (&'static str, &'static str) {
    let class = match e {
        Enforcement::Enforce => "enforce",
        Enforcement::Warn => "warnmode",
        Enforcement::Audit => "auditmode",
    };
    (class, e.as_str())
}

fn workspaces(out: &mut String, o: &Overview, global: Enforcement) {
    out.push_str("<section><h2>Workspaces</h2>");
    if o.workspaces.is_empty() {
        out.push_str("<p class=\"empty\">No workspaces are declared.</p></section>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table class=\"workspaces\"><thead><tr><th>Workspace</th><th>Mode</th>\
         <th>Namespaces</th><th>Private spaces bound</th></tr></thead><tbody>",
    );
    for w in &o.workspaces {
        let (class, mode) = enforcement(w.enforcement.unwrap_or(global));
        let _ = write!(
            out,
            "<tr class=\"workspace\"><td class=\"name\">{}</td><td><span class=\"tag {class}\">{mode}</span>{}</td><td>",
            esc(&w.name),
            if w.enforcement.is_none() {
                "<div class=\"muted small\">global mode</div>"
            } else {
                ""
            }
        );
        let shown = w.namespaces.len().min(NAMESPACES_SHOWN);
        chips(out, &w.namespaces[..shown], "ns", "none yet");
        if w.namespaces.len() > shown {
            let _ = write!(
                out,
                "<span class=\"muted\"> and {} more</span>",
                w.namespaces.len() - shown
            );
        }
        out.push_str("</td><td>");
        chips(out, &w.spaces, "sp", "none");
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div></section>");
}

fn findings(out: &mut String, findings: Option<&[WorkspaceFindings]>) {
    out.push_str("<section><h2>Audit findings</h2>");
    let Some(findings) = findings else {
        out.push_str(
            "<p class=\"empty\">No audit data: running workloads have not been audited \
             against the current bindings.</p></section>",
        );
        return;
    };
    if findings.iter().all(|w| w.total == 0) {
        out.push_str(
            "<p class=\"empty\"><span class=\"dot ok\"></span>No running workload would be denied.</p></section>",
        );
        return;
    }
    out.push_str("<div class=\"scroll\"><table class=\"findings\"><thead><tr><th>Workspace</th><th class=\"n\">Findings</th><th>Workloads</th></tr></thead><tbody>");
    for w in findings.iter().filter(|w| w.total > 0) {
        let _ = write!(
            out,
            "<tr><td class=\"name\">{}</td><td class=\"n\"><span class=\"pill warn\">{}</span></td><td>",
            esc(&w.workspace),
            w.total
        );
        for f in w.findings.iter().take(FINDINGS_SHOWN) {
            let _ = write!(
                out,
                "<div class=\"finding\"><span class=\"obj\">{} {}/{}</span> <span class=\"img\">{}</span> \
                 <span class=\"muted\">{}</span></div>",
                esc(&f.kind),
                esc(&f.namespace),
                esc(&f.name),
                esc(&f.image),
                esc(&f.reason)
            );
        }
        let listed = w.findings.len().min(FINDINGS_SHOWN) as u64;
        if w.total > listed {
            let _ = write!(
                out,
                "<div class=\"muted\">and {} more</div>",
                w.total - listed
            );
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div></section>");
}

fn denials(out: &mut String, denials: &[Denial]) {
    let _ = write!(
        out,
        "<section><h2>Latest denials <span class=\"muted small\">(last {} kept in memory on this replica, newest first; \
         warn and audit are would-be denials)</span></h2>",
        super::denials::CAPACITY
    );
    if denials.is_empty() {
        out.push_str("<p class=\"empty\">No denials since this replica started.</p></section>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table class=\"denials\"><thead><tr><th>Time</th><th>Decision</th>\
         <th>Object</th><th>Requested by</th><th>Denied images</th></tr></thead><tbody>",
    );
    for d in denials {
        let class = match d.decision {
            "deny" => "bad",
            "warn" => "warn",
            _ => "muted-pill",
        };
        let time = d.time.get(..19).unwrap_or(&d.time).replace('T', " ");
        let _ = write!(
            out,
            "<tr class=\"denial\"><td class=\"time\" title=\"{}\">{}</td><td><span class=\"pill {class}\">{}</span>{}</td>\
             <td class=\"object\"><span class=\"kind\">{}</span> <span class=\"name\">{}/{}</span><div class=\"muted small\">{}</div></td><td>{}</td><td>",
            esc(&d.time),
            esc(&time),
            esc(d.decision),
            if d.dry_run { " <span class=\"muted small\">dry run</span>" } else { "" },
            esc(&d.kind),
            esc(&d.namespace),
            esc(&d.name),
            esc(d.operation),
            esc(&d.user)
        );
        for i in &d.images {
            let _ = write!(
                out,
                "<div class=\"deniedimg\"><span class=\"img\">{}</span> <span class=\"muted small\">container {} · {}</span>\
                 <div class=\"why\">{}</div></div>",
                esc(&i.image),
                esc(&i.container),
                esc(i.reason),
                esc(&i.message)
            );
        }
        if d.more > 0 {
            let _ = write!(out, "<div class=\"muted\">and {} more</div>", d.more);
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></div></section>");
}

pub(super) const CSS: &str = r#"
:root{--bg:#f5f7fa;--card:#fff;--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--head:#f0f3f6;
--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#9a6700;--warn-bg:#fff8c5;--bad:#cf222e;--bad-bg:#ffebe9;
--accent:#0969da;--priv:#8250df;--priv-bg:#fbefff;--pub:#0969da;--pub-bg:#ddf4ff;--bar:#4c8dde}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--ink:#e6edf3;--muted:#8d96a0;
--line:#30363d;--head:#1c2128;--ok:#3fb950;--ok-bg:#12261e;--warn:#d29922;--warn-bg:#272115;--bad:#f85149;
--bad-bg:#2d1516;--priv:#bc8cff;--priv-bg:#231a33;--pub:#58a6ff;--pub-bg:#121d2f;--bar:#388bfd}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",sans-serif}
header{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:center;justify-content:space-between;padding:12px 28px;background:var(--card);border-bottom:1px solid var(--line)}
.brand{font-size:20px;font-weight:650;letter-spacing:-.01em}.logo{color:var(--accent);margin-right:8px}
.meta{display:flex;flex-wrap:wrap;gap:6px 16px;align-items:center;font-size:13px}
main{max-width:1480px;margin:0 auto;padding:20px 28px 40px}
h2{font-size:15px;font-weight:650;margin:0 0 10px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:0 0 18px}
section.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:14px;background:none;border:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card .big{font-size:30px;font-weight:650;line-height:1.2}
.card .sub{font-size:13px;color:var(--muted)}
.card.ok{border-left:4px solid var(--ok)}.card.warn{border-left:4px solid var(--warn)}.card.bad{border-left:4px solid var(--bad)}
.columns{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:18px}
.columns section{margin:0 0 18px}
@media (max-width:1100px){.columns{grid-template-columns:1fr}}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:12px;font-weight:600;color:var(--muted);background:var(--head);padding:7px 10px;white-space:nowrap;border-bottom:1px solid var(--line)}
td{padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:last-child td{border-bottom:0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.w-bar{width:24%}
.name{font-weight:600;overflow-wrap:anywhere}
.url,.img,.time,.obj{font-family:ui-monospace,SFMono-Regular,"DejaVu Sans Mono","Liberation Mono",Menlo,monospace;font-size:12.5px}
.url{color:var(--muted);overflow-wrap:anywhere}.img{overflow-wrap:anywhere}
.time{white-space:nowrap}
.muted{color:var(--muted)}.small{font-size:12px;font-weight:400;text-transform:none;letter-spacing:0}
.empty{color:var(--muted);margin:4px 0}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin:0 6px 1px 0;background:var(--muted)}
.dot.ok{background:var(--ok)}.dot.warn{background:var(--warn)}.dot.bad{background:var(--bad)}
.pill{display:inline-flex;align-items:center;padding:2px 10px;border-radius:999px;font-size:12.5px;font-weight:600;white-space:nowrap}
.pill.ok{color:var(--ok);background:var(--ok-bg)}.pill.warn{color:var(--warn);background:var(--warn-bg)}.pill.bad{color:var(--bad);background:var(--bad-bg)}
.pill.muted-pill{color:var(--muted);background:var(--head)}
tr.note td{padding-top:0;font-size:13px}tr.note.bad td{color:var(--bad)}tr.note.warn td{color:var(--warn)}
tr.registry td{border-bottom:0}tr.note td{border-bottom:1px solid var(--line)}
tr.registry:has(+ tr.registry) td,tr.registry:last-child td{border-bottom:1px solid var(--line)}
.barline{display:flex;align-items:center;gap:10px}
.bar{flex:1 1 auto;min-width:60px;height:10px;border-radius:5px;background:var(--head);overflow:hidden;border:1px solid var(--line)}
.bar svg{display:block;width:100%;height:100%}.bar rect{fill:var(--bar)}
.bar.none{background:repeating-linear-gradient(135deg,var(--head) 0 6px,var(--card) 6px 12px)}
.num{flex:0 1 auto;min-width:6.5em;font-variant-numeric:tabular-nums;font-size:13px}
.tag{display:inline-block;margin:1px 4px 2px 0;padding:0 8px;border-radius:4px;font-size:12.5px;border:1px solid var(--line);background:var(--head);overflow-wrap:anywhere}
.tag.private{color:var(--priv);background:var(--priv-bg);border-color:transparent;font-weight:600}
.tag.public{color:var(--pub);background:var(--pub-bg);border-color:transparent;font-weight:600}
.tag.enforce{color:var(--ok);background:var(--ok-bg);border-color:transparent;font-weight:600}
.tag.warnmode{color:var(--warn);background:var(--warn-bg);border-color:transparent;font-weight:600}
.tag.auditmode{color:var(--muted);font-weight:600}
.tag.ns{font-family:ui-monospace,SFMono-Regular,"DejaVu Sans Mono","Liberation Mono",Menlo,monospace;font-size:12px}
.banner{border:1px solid var(--line);background:var(--card);border-radius:8px;padding:10px 14px;margin:0 0 18px}
.banner.bad{border-color:var(--bad);background:var(--bad-bg);color:var(--bad)}
td.object{min-width:14em}.kind{color:var(--muted);font-weight:600}
.deniedimg+.deniedimg{margin-top:6px}.why{font-size:13px}
.finding+.finding{margin-top:4px}
"#;
