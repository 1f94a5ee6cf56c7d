//! What the apiserver checks at `kubectl apply` time: OpenAPI patterns, bounds and enums,
//! and CEL rules (`x-kubernetes-validations`), added to the generated schemas by the
//! schemars transforms below (`#[schemars(transform = ...)]` in [`super::types`]). A typo
//! is then a refused apply rather than a status condition found later.
//!
//! The rules check form, and refuse nothing pullgate could use but a port written with a
//! leading zero (`src/api/tests.rs` compares them with the binding table value by value).
//! The binding table still checks everything (IPv4 spellings, the shortest IPv6 form,
//! Harbor's one-component project names) and reports the rest as problems: objects
//! stored before these rules existed, and the standalone `--config`, never pass them.
//!
//! Two limits of the apiserver shape them. `pattern`s are ECMA-262 regexes for clients
//! and Go (RE2) regexes for the apiserver, so they use only what both read alike: classes,
//! groups, alternation, bounded repetition, anchors. CEL rules are priced before the CRD is
//! accepted (a per-rule budget, multiplied by how many values a rule may see), and a string
//! or list without a bound is priced at the largest request: every value a rule reads has
//! a `maxLength`, `maxItems` or `maxProperties`.

use schemars::Schema;
use serde_json::{json, Value};

// Regex fragments, as macros so that `concat!` can build the CEL rules from them.

/// A host label: letters (any case: hosts compare case-insensitively), digits, inner
/// dashes, at most 63 characters.
macro_rules! label {
    () => {
        "[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
    };
}

/// `host[:port]`: a DNS name or IPv4 address, or an IPv6 address in brackets, and a port
/// from 1 to 65535 without a leading zero.
macro_rules! host_port {
    () => {
        concat!(
            "(",
            label!(),
            "([.]",
            label!(),
            ")*|\\[[0-9A-Fa-f:]+\\])",
            "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
        )
    };
}

/// The regex of `spec.url`: scheme http or https, `host[:port]`, an optional `/`.
pub const URL_RE: &str = concat!("^https?://", host_port!(), "/?$");
/// The regex of an alias.
pub const HOST_PORT_RE: &str = concat!("^", host_port!(), "$");
/// The regex of `spec.space`: `*`, or path components separated by `/`, each
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` as in Docker's `distribution/reference`.
pub const SPACE_RE: &str =
    "^([*]|[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*)$";
/// A namespace name (RFC 1123 label).
pub const DNS_LABEL_RE: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// An object name (RFC 1123 subdomain).
pub const DNS_SUBDOMAIN_RE: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A label key: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters.
pub const LABEL_KEY_RE: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// A label value: empty, or at most 63 characters.
pub const LABEL_VALUE_RE: &str = "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";

/// Bounds. URLs and hosts: a DNS name is at most 253 characters, and a port, brackets
/// and a scheme add a few; aliases and selectors: far more than any real object has.
const URL_MAX: u64 = 300;
const HOST_PORT_MAX: u64 = 270;
const ALIASES_MAX: u64 = 64;
/// Docker's limit for a whole repository name; a space is a prefix of one.
const SPACE_MAX: u64 = 255;
const DNS_LABEL_MAX: u64 = 63;
const DNS_SUBDOMAIN_MAX: u64 = 253;
/// A label key: a 253-character prefix, `/`, a 63-character name.
const LABEL_KEY_MAX: u64 = 317;
const SELECTOR_TERMS_MAX: u64 = 32;
const SELECTOR_VALUES_MAX: u64 = 64;

fn set(schema: &mut Schema, key: &str, value: Value) {
    schema.insert(key.to_string(), value);
}

fn rule(rule: &str, message: &str) -> Value {
    json!({"rule": rule, "message": message})
}

/// Sets keys on a sub-schema (`items`, a property), if it is there.
fn sub(schema: &mut Schema, pointer: &str, entries: &[(&str, Value)]) {
    if let Some(Value::Object(node)) = schema.pointer_mut(pointer) {
        for (k, v) in entries {
            node.insert(k.to_string(), v.clone());
        }
    }
}

/// `spec.url` of a Registry.
pub fn url(schema: &mut Schema) {
    set(schema, "maxLength", json!(URL_MAX));
    set(
        schema,
        "x-kubernetes-validations",
        json!([
            rule(
                "self.startsWith('https://') || self.startsWith('http://')",
                "url must start with https:// or http://"
            ),
            rule(
                &format!("self.matches(r'{URL_RE}')"),
                "url must be scheme://host[:port] with no path, query or user (e.g. https://harbor.example.com)"
            ),
        ]),
    );
}

/// `spec.aliases` of a Registry.
pub fn aliases(schema: &mut Schema) {
    set(schema, "maxItems", json!(ALIASES_MAX));
    sub(
        schema,
        "/items",
        &[
            ("maxLength", json!(HOST_PORT_MAX)),
            (
                "x-kubernetes-validations",
                json!([rule(
                    &format!("self.matches(r'{HOST_PORT_RE}')"),
                    "an alias is host[:port]: a DNS name or IPv4 address, or an IPv6 address in brackets, and an optional port from 1 to 65535 (no scheme, no path)"
                )]),
            ),
        ],
    );
}

/// `spec.space` of a RegistrySpace.
pub fn space(schema: &mut Schema) {
    set(schema, "maxLength", json!(SPACE_MAX));
    set(
        schema,
        "x-kubernetes-validations",
        json!([rule(
            &format!("self.matches(r'{SPACE_RE}')"),
            "space must be \"*\" or lower-case path components separated by \"/\" (e.g. team-a, or teams/a in a Docker Registry)"
        )]),
    );
}

/// A field naming a cluster-scoped object (a Registry, a Secret).
pub fn object_name(schema: &mut Schema) {
    set(schema, "maxLength", json!(DNS_SUBDOMAIN_MAX));
    set(schema, "pattern", json!(DNS_SUBDOMAIN_RE));
}

/// A field naming a namespace.
pub fn namespace_name(schema: &mut Schema) {
    set(schema, "maxLength", json!(DNS_LABEL_MAX));
    set(schema, "pattern", json!(DNS_LABEL_RE));
}

/// A list of object names (the workspaces of a space).
pub fn object_names(schema: &mut Schema) {
    sub(
        schema,
        "/items",
        &[
            ("maxLength", json!(DNS_SUBDOMAIN_MAX)),
            ("pattern", json!(DNS_SUBDOMAIN_RE)),
        ],
    );
}

/// A list of namespace names (the members of a workspace).
pub fn namespace_names(schema: &mut Schema) {
    sub(
        schema,
        "/items",
        &[
            ("maxLength", json!(DNS_LABEL_MAX)),
            ("pattern", json!(DNS_LABEL_RE)),
        ],
    );
}

/// `spec.namespaceSelector` of a Workspace: a standard LabelSelector, whose operators,
/// values and label syntax the apiserver does not check for a custom resource.
pub fn label_selector(schema: &mut Schema) {
    let terms = "/properties/matchExpressions";
    sub(schema, terms, &[("maxItems", json!(SELECTOR_TERMS_MAX))]);
    let term = "/properties/matchExpressions/items";
    sub(
        schema,
        term,
        &[(
            "x-kubernetes-validations",
            json!([
                rule(
                    "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
                    "operators In and NotIn need values"
                ),
                rule(
                    "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
                    "operators Exists and DoesNotExist take no values"
                ),
            ]),
        )],
    );
    sub(
        schema,
        &format!("{term}/properties/operator"),
        &[("enum", json!(["In", "NotIn", "Exists", "DoesNotExist"]))],
    );
    sub(
        schema,
        &format!("{term}/properties/key"),
        &[
            ("maxLength", json!(LABEL_KEY_MAX)),
            ("pattern", json!(LABEL_KEY_RE)),
        ],
    );
    sub(
        schema,
        &format!("{term}/properties/values"),
        &[("maxItems", json!(SELECTOR_VALUES_MAX))],
    );
    let label_value = [
        ("maxLength", json!(DNS_LABEL_MAX)),
        ("pattern", json!(LABEL_VALUE_RE)),
    ];
    sub(
        schema,
        &format!("{term}/properties/values/items"),
        &label_value,
    );
    let labels = "/properties/matchLabels";
    // Keys are not checked: a CEL rule over map keys is priced at the largest request,
    // since a key has no maxLength, and a key of bad syntax only ever matches nothing.
    sub(
        schema,
        labels,
        &[("maxProperties", json!(SELECTOR_TERMS_MAX))],
    );
    sub(
        schema,
        &format!("{labels}/additionalProperties"),
        &label_value,
    );
}
