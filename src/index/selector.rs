//! Standard Kubernetes label selectors (`matchLabels`, `matchExpressions`) over namespace
//! labels.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Checks a selector once so that matching cannot fail; an invalid selector is reported
/// and matches nothing (fail closed).
pub fn validate(sel: &LabelSelector) -> Result<(), String> {
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "operator {} on key {:?} needs values",
                    e.operator, e.key
                ))
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "operator {} on key {:?} takes no values",
                    e.operator, e.key
                ))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => return Err(format!("unknown selector operator {op:?}")),
        }
    }
    Ok(())
}

/// Whether `labels` satisfy a selector already checked by [`validate`]. An empty
/// selector matches everything, as in Kubernetes.
pub fn matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && sel.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}
