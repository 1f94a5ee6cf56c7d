//! Pure parts of the registry module: header parsing, error bodies, status computation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::docker::parse_challenge;
use super::error::{from_status, parse_error_body};
use super::harbor::valid_project_name;
use super::probe::{first_components, owner_of};
use super::*;
use crate::api::{Health, RegistrySpaceStatus};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn next_link_of_docker_and_harbor_headers() {
    assert_eq!(
        next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
        Some("/v2/_catalog?last=b&n=2")
    );
    // Harbor joins entries with " , " and puts prev first.
    let harbor = r#"</api/v2.0/projects?page=1&page_size=100>; rel="prev" , </api/v2.0/projects?page=3&page_size=100>; rel="next""#;
    assert_eq!(
        next_link(harbor).as_deref(),
        Some("/api/v2.0/projects?page=3&page_size=100")
    );
    // Commas inside the URL do not split entries.
    assert_eq!(
        next_link(r#"</robots?q=Level=project,ProjectID=1&page=2>; rel=next"#).as_deref(),
        Some("/robots?q=Level=project,ProjectID=1&page=2")
    );
    assert_eq!(next_link(r#"</p?page=1>; rel="prev""#), None);
    assert_eq!(next_link(""), None);
    assert_eq!(next_link("garbage <unterminated"), None);
}

#[test]
fn bearer_and_basic_challenges() {
    let c = parse_challenge(
        r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
    );
    assert_eq!(c.scheme, "Bearer");
    assert_eq!(c.realm.as_deref(), Some("https://auth.example.com/token"));
    assert_eq!(c.service.as_deref(), Some("registry.example.com"));
    assert_eq!(c.scope.as_deref(), Some("repository:a/b:pull,push"));
    let b = parse_challenge(r#"Basic realm="Registry Realm""#);
    assert_eq!(b.scheme, "Basic");
    assert_eq!(b.realm.as_deref(), Some("Registry Realm"));
    assert_eq!(b.scope, None);
}

#[test]
fn harbor_error_bodies_become_typed_errors() {
    let body =
        br#"{"errors":[{"code":"CONFLICT","message":"The project named team-a already exists"}]}"#;
    assert_eq!(
        parse_error_body(body),
        (
            Some("CONFLICT".to_string()),
            "The project named team-a already exists".to_string()
        )
    );
    let e = from_status("POST", "https://h/api/v2.0/projects", 409, body);
    assert!(matches!(e, RegistryError::Conflict { .. }));
    assert!(e.to_string().contains("already exists"), "{e}");
    let e = from_status("GET", "https://h/x", 401, b"");
    assert!(
        e.to_string().contains("credentialsSecretRef"),
        "401 says what to fix: {e}"
    );
    let e = from_status("GET", "https://h/x", 500, b"<html>oops</html>");
    assert_eq!(e.status(), Some(500));
    assert!(e.to_string().contains("oops"), "{e}");
}

#[test]
fn credentials_are_redacted_in_debug() {
    let c = Credentials::new("admin", "Harbor12345");
    let shown = format!("{c:?}");
    assert!(
        shown.contains("admin") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert!(!shown.contains("Harbor12345"), "{shown}");
    let r = RobotCredentials {
        id: 1,
        username: "robot$team-a+pullgate-ws-a".into(),
        secret: "S3cretSecret".into(),
        expires_at: -1,
    };
    assert!(!format!("{r:?}").contains("S3cretSecret"));
}

#[test]
fn project_names() {
    for ok in ["team-a", "a", "a.b_c-d", "0abc"] {
        assert!(valid_project_name(ok), "{ok}");
    }
    for bad in ["", "Team", "a/b", "-a", "a-", "a..b", "*"] {
        assert!(!valid_project_name(bad), "{bad}");
    }
}

#[test]
fn human_readable_storage() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1024), "1.0 KiB");
    assert_eq!(human_bytes(50 * 1024 * 1024), "50.0 MiB");
    assert_eq!(human_bytes(1536 * 1024 * 1024), "1.5 GiB");
}

#[test]
fn spaces_of_repositories() {
    let repos: Vec<String> = ["team-a/app", "team-a/sub/api", "team-b/web", "lone"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let spaces = first_components(&repos);
    assert_eq!(spaces.get("team-a"), Some(&2));
    assert_eq!(spaces.len(), 3);
    let declared = ["team-a", "team-a/sub", "*"];
    assert_eq!(owner_of("team-a/app", &declared), Some("team-a"));
    assert_eq!(owner_of("team-a/sub/api", &declared), Some("team-a/sub"));
    assert_eq!(owner_of("team-ab/x", &declared), Some("*"));
    assert_eq!(owner_of("team-ab/x", &["team-a"]), None);
}

fn healthy_report() -> RegistryReport {
    RegistryReport {
        health: Health::Healthy,
        space_count: Some(3),
        storage_used_bytes: Some(50 * 1024 * 1024),
        spaces: vec![SpaceReport {
            space: "team-a".into(),
            exists: Some(true),
            repo_count: Some(2),
            storage_used_bytes: Some(1024),
        }],
        ..RegistryReport::default()
    }
}

#[test]
fn registry_status_of_a_healthy_report() {
    let s = registry_status(&healthy_report(), None, at(1_800_000_000));
    assert_eq!(s.health, Health::Healthy);
    assert_eq!(s.message, "");
    assert_eq!(s.space_count, Some(3));
    assert_eq!(s.storage_used.as_deref(), Some("50.0 MiB"));
    assert_eq!(s.last_probe_time.as_deref(), Some("2027-01-15T08:00:00Z"));
    assert_eq!(s.conditions.len(), 1);
    assert_eq!(s.conditions[0].type_, READY_CONDITION);
    assert_eq!(s.conditions[0].status, "True");
}

#[test]
fn ready_transition_time_moves_only_when_status_changes() {
    let first = registry_status(&healthy_report(), None, at(1_000));
    let again = registry_status(&healthy_report(), Some(&first), at(2_000));
    assert_eq!(
        first.conditions[0].last_transition_time,
        again.conditions[0].last_transition_time
    );
    let down = RegistryReport {
        health: Health::Unhealthy,
        message: "cannot reach http://127.0.0.1:1/v2/: connection refused".into(),
        ..RegistryReport::default()
    };
    let changed = registry_status(&down, Some(&again), at(3_000));
    assert_eq!(changed.health, Health::Unhealthy);
    assert!(changed.message.contains("connection refused"));
    assert_eq!(changed.storage_used_bytes, None);
    assert_eq!(changed.conditions[0].status, "False");
    assert_eq!(changed.conditions[0].reason, "Unhealthy");
    assert_ne!(
        changed.conditions[0].last_transition_time,
        again.conditions[0].last_transition_time
    );
}

#[test]
fn problems_on_a_healthy_registry_make_ready_false() {
    let mut report = healthy_report();
    report
        .problems
        .push("user \"dev\" is not a Harbor system admin".into());
    let s = registry_status(&report, None, at(1_000));
    assert_eq!(s.health, Health::Healthy);
    assert_eq!(s.conditions[0].status, "False");
    assert_eq!(s.conditions[0].reason, "ProbeIncomplete");
    assert!(s.conditions[0].message.contains("system admin"));
}

#[test]
fn space_status_keeps_other_conditions() {
    let report = healthy_report();
    let conflict = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: "Conflict".into(),
        status: "True".into(),
        reason: "Duplicate".into(),
        message: String::new(),
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ),
        observed_generation: None,
    };
    let previous = RegistrySpaceStatus {
        conditions: vec![conflict.clone()],
        ..RegistrySpaceStatus::default()
    };
    let s = space_status(report.space("team-a"), Some(5), Some(&previous), at(10));
    assert_eq!(s.exists_on_registry, Some(true));
    assert_eq!(s.repo_count, Some(2));
    assert_eq!(s.storage_used_bytes, Some(1024));
    assert_eq!(s.bound_namespaces, Some(5));
    assert_eq!(s.conditions[0].status, "True");
    assert_eq!(s.conditions[1], conflict);

    let missing = space_status(None, Some(0), None, at(10));
    assert_eq!(missing.exists_on_registry, None);
    assert_eq!(missing.conditions[0].status, "Unknown");
}

#[test]
fn credentials_from_a_secret() {
    use k8s_openapi::api::core::v1::Secret;
    let from_data: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "pullgate-system", "name": "api"},
        "data": {"username": "YWRtaW4=", "password": "SGFyYm9yMTIzNDU="},
    }))
    .unwrap();
    assert_eq!(
        credentials_from_secret(&from_data).unwrap(),
        Credentials::new("admin", "Harbor12345")
    );
    let from_string_data: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "pullgate-system", "name": "api"},
        "data": {"username": "YWRtaW4=", "password": "b2xk"},
        "stringData": {"password": "new"},
    }))
    .unwrap();
    assert_eq!(
        credentials_from_secret(&from_string_data).unwrap().password,
        "new"
    );
    let incomplete: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"namespace": "ns", "name": "api"},
        "stringData": {"username": "admin"},
    }))
    .unwrap();
    let err = credentials_from_secret(&incomplete).unwrap_err();
    assert!(err.to_string().contains("ns/api"), "{err}");
    assert!(err.to_string().contains("password"), "{err}");
}
