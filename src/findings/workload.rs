//! A running object's JSON reduced to the [`Workload`] that findings judge: its images
//! read by the admission reader ([`Object`]), so a running pod is judged on exactly
//! what its admission was judged on, plus the uid and controller owner that fold a pod
//! under its controller. Used by `pullgate audit` (files) and by every replica's
//! workload watches (`cluster::replica::workloads`). An object that cannot be read is a workload whose content is
//! `Unreadable`, never dropped.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{Content, Owner, Uid, Use, Workload};
use crate::audit_record::MAX_ECHOED;
use crate::object::{Kind, Object};
use crate::wire::out::clip;

/// The namespace of an object that names none (kubectl's default).
pub const DEFAULT_NAMESPACE: &str = "default";

/// What is read besides the images: who the object is and who controls it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Head {
    metadata: Meta,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Meta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OwnerReference {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    controller: Option<bool>,
}

/// A workload from an object value (a watched object, or one of an input file).
pub fn from_value(kind: Kind, value: &Value) -> Workload {
    from_json(kind, &value.to_string())
}

/// A workload from an object's JSON text. `namespace` is the object's own, else
/// [`DEFAULT_NAMESPACE`]; the name is `metadata.name`, else `generateName`.
pub fn from_json(kind: Kind, text: &str) -> Workload {
    let head = serde_json::from_str::<Head>(text);
    let meta = head.as_ref().map(|h| &h.metadata).ok();
    let namespace: Arc<str> = meta
        .and_then(|m| m.namespace.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
        .into();
    let name = meta
        .and_then(|m| m.name.as_deref().or(m.generate_name.as_deref()))
        .unwrap_or_default();
    let unreadable =
        |why: String| Workload::unreadable(kind, namespace.clone(), name, clip(&why, MAX_ECHOED));
    let meta = match &head {
        Ok(h) => &h.metadata,
        Err(e) => return unreadable(format!("metadata: {e}")),
    };
    let object = match Object::parse(text) {
        Ok(o) => o,
        Err(e) => return unreadable(e.to_string()),
    };
    let images = object
        .images(kind)
        .into_iter()
        .map(|u| Use {
            location: u.location,
            container: u.name.into(),
            image: u.image.into(),
        })
        .collect();
    Workload {
        kind,
        namespace,
        name: name.into(),
        uid: meta.uid.as_deref().and_then(Uid::parse),
        owner: controller(meta),
        mirror: kind == Kind::Pod && object.has_mirror_annotation(),
        content: Content::Images(images),
    }
}

/// The owner reference marked `controller: true`, when it is a judged kind.
fn controller(meta: &Meta) -> Option<Owner> {
    let r = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))?;
    Some(Owner {
        kind: Kind::from_api_version(&r.api_version, &r.kind)?,
        name: r.name.as_str().into(),
        uid: Uid::parse(&r.uid),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::Location;

    #[test]
    fn a_pod_with_its_controller() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "app-1",
                "uid": "0b8e9c1a-5f7d-4c3e-9a2b-1d2e3f405162",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                     "uid": "1b8e9c1a-5f7d-4c3e-9a2b-1d2e3f405162", "controller": true}
                ]
            },
            "spec": {
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "app", "image": "nginx:1"}],
                "volumes": [{"name": "v", "image": {"reference": "quay.io/a/b:1"}}, {"name": "e", "emptyDir": {}}]
            }
        });
        let w = from_value(Kind::Pod, &pod);
        assert_eq!(&*w.namespace, "app-1");
        assert_eq!(&*w.name, "web-1");
        assert_eq!(
            w.uid.map(|u| u.to_string()).as_deref(),
            Some("0b8e9c1a-5f7d-4c3e-9a2b-1d2e3f405162")
        );
        let owner = w.owner.expect("controller");
        assert_eq!((owner.kind, &*owner.name), (Kind::ReplicaSet, "web"));
        let Content::Images(uses) = &w.content else {
            panic!("unreadable")
        };
        let got: Vec<(Location, &str, &str)> = uses
            .iter()
            .map(|u| (u.location, &*u.container, &*u.image))
            .collect();
        assert_eq!(
            got,
            [
                (Location::Container, "app", "nginx:1"),
                (Location::InitContainer, "init", "busybox"),
                (Location::ImageVolume, "v", "quay.io/a/b:1"),
            ]
        );
        assert!(!w.mirror);
    }

    #[test]
    fn a_cronjob_template_and_defaults() {
        let cj = json!({
            "metadata": {"name": "nightly", "annotations": {"kubernetes.io/config.mirror": "x"}},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a/b"}]}}}}}
        });
        let w = from_value(Kind::CronJob, &cj);
        assert_eq!(&*w.namespace, DEFAULT_NAMESPACE);
        assert!(w.owner.is_none() && w.uid.is_none());
        // Only a pod is a mirror pod.
        assert!(!w.mirror);
        assert!(matches!(&w.content, Content::Images(u) if u.len() == 1 && &*u[0].image == "a/b"));
    }

    #[test]
    fn an_object_that_cannot_be_read_is_kept_as_unreadable() {
        let bad = json!({
            "metadata": {"name": "broken", "namespace": "app-1"},
            "spec": {"containers": "not a list"}
        });
        let w = from_value(Kind::Pod, &bad);
        assert_eq!((&*w.namespace, &*w.name), ("app-1", "broken"));
        assert!(matches!(&w.content, Content::Unreadable(why) if !why.is_empty()));
        let w = from_json(Kind::Deployment, "{\"metadata\": 5}");
        assert!(matches!(&w.content, Content::Unreadable(_)));
    }
}
