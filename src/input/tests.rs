use super::*;

fn objects(text: &str) -> Vec<Object> {
    parse_text("m.yaml", text).unwrap()
}

fn error(text: &str) -> String {
    parse_text("m.yaml", text).unwrap_err().0
}

#[test]
fn merge_keys_apply_nested_and_in_lists_earlier_winning() {
    let o = objects(
        "base: &base {image: a, name: x}\n\
         more: &more {<<: *base, name: y}\n\
         apiVersion: v1\nkind: Pod\n\
         spec:\n  containers:\n  - <<: [*more, {image: b, extra: 1}]\n  - {<<: *base, image: c}\n",
    );
    let c = &o[0].value["spec"]["containers"];
    assert_eq!(
        c[0],
        serde_json::json!({"image": "a", "name": "y", "extra": 1})
    );
    assert_eq!(c[1], serde_json::json!({"image": "c", "name": "x"}));
}

#[test]
fn a_key_before_the_merge_key_that_is_also_merged_is_refused() {
    let e = error("m: &m {image: evil}\napiVersion: v1\nkind: Pod\nspec: {image: ok, <<: *m}\n");
    assert!(
        e.contains("spec.image is written before the merge key"),
        "{e}"
    );
    // After `<<` every reader agrees: the written key wins.
    let o = objects("m: &m {image: evil}\napiVersion: v1\nkind: Pod\nspec: {<<: *m, image: ok}\n");
    assert_eq!(o[0].value["spec"]["image"], "ok");
    assert!(error("apiVersion: v1\nkind: Pod\nspec: {<<: 5}\n").contains("must be a mapping"));
}

#[test]
fn lists_of_any_kind_expand_nested_with_their_item_path() {
    let o = objects(
        "apiVersion: v1\nkind: List\nitems:\n\
         - {apiVersion: v1, kind: PodList, items: [{apiVersion: v1, kind: Pod, metadata: {name: a}}]}\n\
         - {apiVersion: apps/v1, kind: Deployment, metadata: {name: b}}\n\
         ---\n---\n\
         {apiVersion: apps/v1, kind: DeploymentList, items: null}\n",
    );
    let got: Vec<(String, usize, String)> = o
        .iter()
        .map(|o| {
            (
                o.name().to_string(),
                o.origin.document,
                o.origin.item.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a".to_string(), 1, "items[0].items[0]".to_string()),
            ("b".to_string(), 1, "items[1]".to_string())
        ]
    );
    assert_eq!(
        o[0].origin.to_string(),
        "m.yaml, document 1, items[0].items[0]"
    );
    let mut deep = "{apiVersion: v1, kind: Pod}".to_string();
    for _ in 0..=MAX_LIST_DEPTH {
        deep = format!("{{apiVersion: v1, kind: List, items: [{deep}]}}");
    }
    assert!(error(&deep).contains("nest deeper"));
    assert!(error("apiVersion: v1\nkind: List\nitems: {a: 1}\n").contains("items is not a list"));
    assert!(error("- 1\n").contains("document 1: not an object"));
    assert!(error("kind: Pod\n").contains("no apiVersion or kind"));
}

#[test]
fn json_streams_and_yaml_conversion_follow_kubectl() {
    let o = objects("{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"<<\": 1}\n{\"apiVersion\": \"v1\", \"kind\": \"Service\"}");
    assert_eq!(o.len(), 2);
    assert_eq!(o[0].value["<<"], 1, "no merge keys in JSON");
    let o = objects("apiVersion: v1\nkind: ConfigMap\ndata: {1: a, true: b}\n");
    assert_eq!(
        o[0].value["data"],
        serde_json::json!({"1": "a", "true": "b"})
    );
    for (text, want) in [
        (
            "apiVersion: v1\nkind: Secret\nstringData: {password: .inf}\n",
            "stringData.password: a number that JSON cannot hold",
        ),
        (
            "apiVersion: v1\nkind: Secret\nstringData: {password: !vault s3cr3t}\n",
            "stringData.password: the YAML tag !vault is not supported",
        ),
        (
            "apiVersion: v1\nkind: Secret\nstringData: {[s3cr3t]: x}\n",
            "stringData: a mapping key that is not a string",
        ),
    ] {
        let e = error(text);
        assert!(e.contains(want), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}

#[test]
fn kinds_are_judged_known_custom_or_unknown() {
    use crate::object::Kind;
    for (api_version, kind, want) in [
        ("apps/v1", "Deployment", Class::Judged(Kind::Deployment)),
        ("v1", "Pod", Class::Judged(Kind::Pod)),
        ("v1", "Service", Class::BuiltIn),
        ("rbac.authorization.k8s.io/v1", "Role", Class::BuiltIn),
        ("cert-manager.io/v1", "Certificate", Class::Custom),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", Class::Custom),
        ("apps/v1", "Deploymnet", Class::Unknown),
        ("v1", "Deployment", Class::Unknown),
        ("extensions/v1beta1", "Deployment", Class::Unknown),
        ("networking.k8s.io/v1", "Ingres", Class::Unknown),
        ("a/b/c", "Pod", Class::Unknown),
    ] {
        assert_eq!(classify(api_version, kind), want, "{api_version} {kind}");
    }
}

#[test]
fn escape_leaves_plain_text_and_escapes_controls() {
    assert!(matches!(escape("web-1"), Cow::Borrowed("web-1")));
    assert_eq!(
        escape("a\u{1b}[31mb\rc\u{9b}d\u{202e}"),
        "a\\u{1b}[31mb\\rc\\u{9b}d\\u{202e}"
    );
}

#[test]
fn a_directory_is_read_sorted_without_subdirectories() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("b.yml", "{apiVersion: v1, kind: Pod, metadata: {name: b}}"),
        (
            "a.json",
            "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"}}",
        ),
        ("c.txt", "not read"),
        ("d.YAML", "not read"),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let names: Vec<String> = load(&[dir.path().to_path_buf()])
        .unwrap()
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

/// `line_of` finds the line a field is written on: in a later document, inside a list,
/// through a YAML merge and an alias, and in a JSON stream.
#[test]
fn line_of_finds_the_key_of_a_field() {
    use crate::api::{FieldPath, Segment};
    let path =
        |keys: &[&str]| FieldPath(keys.iter().map(|k| Segment::Key(k.to_string())).collect());
    let yaml = "apiVersion: v1\nkind: A\n---\n# a comment\napiVersion: v1\nkind: List\nitems:\n\
                - {apiVersion: v1, kind: X}\n\
                - apiVersion: v1\n  kind: Y\n  spec:\n    base: &b {a: 1,\n      typo: 2}\n\
                \x20   <<: *b\n    visiblity: Public\n";
    let file = File {
        name: "m.yaml".into(),
        bytes: yaml.as_bytes().to_vec(),
    };
    let objs = parse(&file).unwrap();
    let y = &objs[2];
    assert_eq!(y.origin.item, "items[1]");
    assert_eq!(
        line_of(&file, &y.origin, &path(&["spec", "visiblity"])),
        Some(15)
    );
    // Merged in from the anchor: the line where the anchor's key is written.
    assert_eq!(
        line_of(&file, &y.origin, &path(&["spec", "typo"])),
        Some(13)
    );
    assert_eq!(line_of(&file, &y.origin, &path(&["spec", "nothing"])), None);
    assert_eq!(line_of(&file, &objs[0].origin, &path(&["kind"])), Some(2));
    let json = "{\"kind\": \"A\", \"apiVersion\": \"v1\"}\n{\"kind\": \"B\", \"apiVersion\": \"v1\",\n \"spec\": {\n  \"visiblity\": 1}}\n";
    let file = File {
        name: "m.json".into(),
        bytes: json.as_bytes().to_vec(),
    };
    let objs = parse(&file).unwrap();
    assert_eq!(
        line_of(&file, &objs[1].origin, &path(&["spec", "visiblity"])),
        Some(4)
    );
}
