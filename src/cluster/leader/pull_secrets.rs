//! What the pull Secrets should hold, as one pure function of the binding
//! table and the credential sources: [`desired`]. Writing them is `sync`'s business.
//!
//! A namespace gets a Secret when it may use at least one space that needs credentials
//! *and* a source has credentials for it. A Private space that no source serves gets no
//! entry: pods still get the Secret name injected (the kubelet then pulls anonymously,
//! which a private registry refuses), so the space's status says so.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;

use super::credentials::{Credential, CredentialKey, CredentialSource, Lookup};
use crate::index::{RegistryEntry, Snapshot, SpaceEntry};

/// The desired pull Secrets and what kept some entries out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Namespace → the exact `.dockerconfigjson` bytes of its Secret.
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// RegistrySpace object name → why its credentials could not be used.
    pub problems: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct AuthOut<'a> {
    username: &'a str,
    password: &'a str,
    auth: String,
}

#[derive(Serialize)]
struct ConfigOut<'a> {
    auths: BTreeMap<String, AuthOut<'a>>,
}

/// The `auths` keys of a space: `host[:port]/space` for every spelling of the registry's
/// host, or `host[:port]` alone for the `*` space.
pub fn auth_keys(registry: &RegistryEntry, space: &SpaceEntry) -> Vec<String> {
    registry
        .host_keys
        .iter()
        .map(|h| {
            if space.space == "*" {
                h.clone()
            } else {
                format!("{h}/{}", space.space)
            }
        })
        .collect()
}

/// Computes every namespace's pull Secret content from the table and the sources.
pub fn desired(snap: &Snapshot, creds: &dyn CredentialSource) -> Desired {
    let mut entries: BTreeMap<String, BTreeMap<String, Credential>> = BTreeMap::new();
    let mut problems = BTreeMap::new();
    for registry in snap.registries() {
        for space in snap.spaces_of(&registry.name) {
            if !space.needs_credentials() {
                continue;
            }
            // One lookup per workspace (Private) or per space (Public), not per namespace.
            let mut answers: BTreeMap<Option<&str>, Lookup> = BTreeMap::new();
            for ns in snap.bound_namespaces(space) {
                if !snap.namespace_known(ns) {
                    continue;
                }
                // The same rule as the credential provider's (`credential_workspace`).
                let workspace = snap.credential_workspace(ns, space);
                let answer = answers.entry(workspace).or_insert_with(|| {
                    creds.lookup(&CredentialKey {
                        registry,
                        space,
                        workspace,
                    })
                });
                match answer {
                    Lookup::Found(c) => {
                        let auths = entries.entry(ns.to_string()).or_default();
                        for key in auth_keys(registry, space) {
                            auths.insert(key, c.clone());
                        }
                    }
                    Lookup::Broken(msg) => {
                        for o in &space.objects {
                            problems.insert(o.clone(), msg.clone());
                        }
                    }
                    Lookup::NotServed => {}
                }
            }
        }
    }
    let secrets = entries
        .into_iter()
        .map(|(ns, auths)| (ns, docker_config_json(&auths)))
        .collect();
    Desired { secrets, problems }
}

/// `{"auths":{KEY:{"username","password","auth"}}}`, keys sorted, compact.
pub fn docker_config_json(auths: &BTreeMap<String, Credential>) -> Vec<u8> {
    let out = ConfigOut {
        auths: auths
            .iter()
            .map(|(k, c)| {
                (
                    k.clone(),
                    AuthOut {
                        username: &c.username,
                        password: &c.password,
                        auth: base64::engine::general_purpose::STANDARD
                            .encode(format!("{}:{}", c.username, c.password)),
                    },
                )
            })
            .collect(),
    };
    // Serialising strings and maps of strings cannot fail.
    serde_json::to_vec(&out).unwrap_or_default()
}
