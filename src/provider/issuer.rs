//! The server's side of `POST /credentials` (README, "Pulls without Secrets"): [`TokenIssuer`] checks the
//! service-account token with a TokenReview for `--token-audience`, takes the namespace
//! from `system:serviceaccount:<namespace>:<name>`, judges the image with the admission
//! rules (`policy::decide` over the current binding table), and returns the credential
//! of the (space, workspace) pair — from the same sources, read the same way, as the
//! leader's pull Secrets (`pullSecretRef`, or the Harbor robot of the cluster) — only
//! when that namespace may use the space.
//!
//! What it keeps: positive reviews for [`REVIEW_CACHE`], keyed by the SHA-256 of the
//! token (never the token), and the Registries and credential Secrets the watches saw
//! ([`Watched::credential_part`], told by the feed on every replica). Unlike admission,
//! exempt namespaces get nothing here: credentials go only to namespaces bound to the
//! space, exactly as pull Secrets do.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use tracing::{info, warn};

use crate::cluster::leader::credentials::{
    Chain, CredentialKey, CredentialSource, Lookup, RefCredentials,
};
use crate::cluster::leader::pull_secrets::auth_keys;
use crate::cluster::leader::robots::{self, RobotSource};
use crate::cluster::replica::state::Watched;
use crate::cluster::{CredentialsHook, Hook};
use crate::index::{Resolution, Table};
use crate::policy::{self, decide::explain, ImageRef, ImageUse, Location, Policy, Reason};
use crate::server::credentials::{
    AuthConfig, CredentialsResponse, IssueFuture, Issued, Issuer, Outcome,
};
use crate::wire::out::clip;

/// How long an accepted token is trusted without a new TokenReview: long enough to
/// absorb a node starting many containers at once, short enough that a deleted pod's or
/// service account's token stops working soon.
pub const REVIEW_CACHE: Duration = Duration::from_secs(30);
/// Tokens whose reviews are remembered at once.
const REVIEW_CACHE_ENTRIES: u64 = 100_000;
/// Longest wait for the apiserver's TokenReview.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// The user-info key under which bound tokens carry their node.
const NODE_NAME_EXTRA: &str = "authentication.kubernetes.io/node-name";
/// Bytes of the apiserver's review error echoed to the node.
const MAX_REVIEW_ERROR: usize = 256;

/// Who a token belongs to, as the TokenReview said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    pub service_account: String,
    /// The node of the pod the token is bound to, when the token says.
    pub node: Option<String>,
}

/// The `/credentials` issuer of cluster mode.
pub struct TokenIssuer {
    client: kube::Client,
    audience: String,
    table: Arc<Table>,
    /// The admission policy without exemptions (see the module doc).
    policy: Policy,
    max_cache: Duration,
    /// What the feed last told (None until the first full sync).
    inputs: Arc<ArcSwapOption<Watched>>,
    reviews: moka::future::Cache<[u8; 32], Arc<Identity>>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(
        client: kube::Client,
        audience: &str,
        table: Arc<Table>,
        policy: &Policy,
        max_cache: Duration,
    ) -> TokenIssuer {
        TokenIssuer {
            client,
            audience: audience.to_string(),
            table,
            policy: Policy {
                exempt_namespaces: Vec::new(),
                ..policy.clone()
            },
            max_cache,
            inputs: Arc::new(ArcSwapOption::empty()),
            reviews: moka::future::Cache::builder()
                .max_capacity(REVIEW_CACHE_ENTRIES)
                .time_to_live(REVIEW_CACHE)
                .build(),
        }
    }

    /// The hook the feed tells what credentials are read from.
    pub fn hook(&self) -> CredentialsHook {
        let inputs = self.inputs.clone();
        Hook(Some(Arc::new(move |watched: Watched| {
            inputs.store(Some(Arc::new(watched)));
        })))
    }

    /// The identity of a token: from the cache, or a TokenReview.
    async fn review(&self, token: &str) -> Result<Arc<Identity>, (Outcome, String)> {
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        if let Some(identity) = self.reviews.get(&key).await {
            return Ok(identity);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answered =
            tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review)).await;
        let status = match answered {
            Err(_) => {
                return Err((
                    Outcome::ReviewFailed,
                    format!(
                        "the apiserver did not answer the TokenReview within {REVIEW_TIMEOUT:?}"
                    ),
                ))
            }
            Ok(Err(e)) => {
                return Err((
                    Outcome::ReviewFailed,
                    format!("the TokenReview failed: {e}"),
                ))
            }
            Ok(Ok(reviewed)) => reviewed.status.unwrap_or_default(),
        };
        let audience = &self.audience;
        if status.authenticated != Some(true) {
            let why = status.error.as_deref().unwrap_or("no reason given");
            return Err((
                Outcome::Unauthenticated,
                format!(
                    "the service-account token was not accepted for audience {audience:?}: {}",
                    clip(why, MAX_REVIEW_ERROR)
                ),
            ));
        }
        // The apiserver names the audiences it checked; ours must be among them.
        if !status.audiences.unwrap_or_default().contains(audience) {
            return Err((
                Outcome::Unauthenticated,
                format!("the service-account token is not for audience {audience:?}"),
            ));
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let Some((namespace, service_account)) = service_account_of(&username) else {
            return Err((
                Outcome::NotServiceAccount,
                format!(
                    "the token belongs to {:?}, not to a service account",
                    clip(&username, MAX_REVIEW_ERROR)
                ),
            ));
        };
        let node = user
            .extra
            .unwrap_or_default()
            .remove(NODE_NAME_EXTRA)
            .and_then(|v| v.into_iter().next());
        let identity = Arc::new(Identity {
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
            node,
        });
        self.reviews.insert(key, identity.clone()).await;
        Ok(identity)
    }

    /// The decision for one image in the identity's namespace.
    fn decide(&self, who: &Identity, image: &str) -> Issued {
        let Some(inputs) = self.inputs.load_full() else {
            return Issued::Refused(
                Outcome::Unavailable,
                "pullgate has not read the cluster yet; retry in a few seconds".into(),
            );
        };
        let ns = who.namespace.as_str();
        let snap = self.table.load();
        let uses = [ImageUse {
            image,
            location: Location::Container,
            name: "",
        }];
        let decision = policy::decide(
            &policy::Request {
                namespace: ns,
                images: &uses,
                mirror_pod_by_node: false,
                stale: self.table.is_stale(),
            },
            &snap,
            &self.policy,
        );
        let Some(verdict) = decision.images.first() else {
            return Issued::Refused(Outcome::Invalid, "no image to judge".into());
        };
        let sentence = explain(verdict, ns).replacen(" (container \"\")", "", 1);
        if let Reason::Invalid { .. } = verdict.reason {
            return Issued::Refused(Outcome::Invalid, sentence);
        }
        if !verdict.allowed {
            // A stale table or a namespace not seen yet: a retry may succeed.
            let outcome = match verdict.reason {
                Reason::Stale | Reason::NamespaceUnknown => Outcome::Unavailable,
                _ => Outcome::Denied,
            };
            return Issued::Refused(outcome, sentence);
        }
        if !verdict.needs_credentials {
            return Issued::Refused(
                Outcome::NotNeeded,
                format!("{sentence}; it needs no credentials"),
            );
        }
        // The same resolution decide made, for the entries themselves.
        let Ok(parsed) = ImageRef::parse(image) else {
            return Issued::Refused(Outcome::Invalid, sentence);
        };
        let Resolution::Space(registry, space) = snap.resolve(&parsed) else {
            return Issued::Refused(Outcome::Unavailable, sentence);
        };
        // The same workspace as for the namespace's pull Secret.
        let workspace = snap.credential_workspace(ns, space);
        let refs = RefCredentials {
            secrets: &inputs.ref_secrets,
        };
        let robots = robots::stored(inputs.robot_secrets.values().map(Arc::as_ref));
        let registries = robots::registries(&inputs);
        let robot_source = RobotSource {
            robots: &robots,
            registries: &registries,
        };
        let key = CredentialKey {
            registry,
            space,
            workspace,
        };
        let unavailable = format!(
            "pullgate has no working credentials for registry space {:?} of registry {:?} yet; the RegistrySpace's status says why",
            space.space, registry.name
        );
        let credential = match Chain(vec![&refs, &robot_source]).lookup(&key) {
            Lookup::Found(c) => c,
            Lookup::Broken(why) => {
                warn!(registry = %registry.name, space = %space.space, "no credentials to give: {why}");
                return Issued::Refused(Outcome::Unavailable, unavailable);
            }
            Lookup::NotServed => return Issued::Refused(Outcome::Unavailable, unavailable),
        };
        let remaining = robots
            .values()
            .map(|r| &r.current)
            .find(|r| r.username == credential.username && r.secret == credential.password)
            // Harbor's expiry: robots are made with a duration of their whole lifetime.
            .and_then(|r| remaining_life(r.expires_at, SystemTime::now()));
        let auth = auth_keys(registry, space)
            .into_iter()
            .map(|k| {
                (
                    k,
                    AuthConfig {
                        username: credential.username.clone(),
                        password: credential.password.clone(),
                    },
                )
            })
            .collect();
        info!(
            namespace = ns,
            service_account = %who.service_account,
            node = who.node.as_deref().unwrap_or("-"),
            registry = %registry.name,
            space = %space.space,
            "pull credentials issued"
        );
        Issued::Granted(CredentialsResponse {
            auth,
            cache_seconds: super::cache_seconds(self.max_cache, remaining),
        })
    }
}

impl Issuer for TokenIssuer {
    fn issue<'a>(&'a self, token: &'a str, image: &'a str) -> IssueFuture<'a> {
        Box::pin(async move {
            match self.review(token).await {
                Ok(who) => self.decide(&who, image),
                Err((outcome, why)) => Issued::Refused(outcome, why),
            }
        })
    }
}

/// `system:serviceaccount:<namespace>:<name>` → (namespace, name).
pub fn service_account_of(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// Time left until `expires_at` (Unix seconds; negative: never), zero once past.
fn remaining_life(expires_at: i64, now: SystemTime) -> Option<Duration> {
    let expires = u64::try_from(expires_at).ok()?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Some(Duration::from_secs(expires.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Visibility;

    #[test]
    fn namespaces_come_only_from_service_account_names() {
        assert_eq!(
            service_account_of("system:serviceaccount:app-1:default"),
            Some(("app-1", "default"))
        );
        for other in [
            "alice",
            "system:node:n1",
            "system:serviceaccount:app-1",
            "system:serviceaccount::default",
            "system:serviceaccount:app-1:",
            "system:serviceaccount:a:b:c",
            "system:serviceaccounts:app-1:default",
        ] {
            assert_eq!(service_account_of(other), None, "{other}");
        }
    }

    use crate::api::{RegistryType, SecretRef};
    use crate::cluster::leader::robots::{robot_secret, RobotKey, RobotState};
    use crate::cluster::replica::state::Stored;
    use crate::index::testing::{mk_ns, mk_registry, mk_space, mk_workspace};
    use crate::index::{Objects, Snapshot};
    use crate::registry::RobotCredentials;

    const IMAGE: &str = "harbor.example.com/team-a/app:1";

    fn who(ns: &str) -> Identity {
        Identity {
            namespace: ns.into(),
            service_account: "default".into(),
            node: None,
        }
    }

    /// A Harbor with API credentials, its private space team-a bound to ws-a = [app-1],
    /// and (when `robot_expires_at` is given) the robot Secret of (team-a, ws-a).
    fn issuer(robot_expires_at: Option<i64>) -> TokenIssuer {
        let mut harbor = mk_registry(
            "harbor",
            RegistryType::Harbor,
            "https://harbor.example.com",
            &[],
        );
        harbor.spec.credentials_secret_ref = Some(SecretRef {
            namespace: "pullgate-system".into(),
            name: "harbor-admin".into(),
        });
        let objects = Objects {
            registries: vec![harbor.clone()],
            spaces: vec![mk_space(
                "harbor.team-a",
                "harbor",
                "team-a",
                Visibility::Private,
                &["ws-a"],
            )],
            workspaces: vec![mk_workspace("ws-a", &["app-1"], None, None)],
            namespaces: vec![
                mk_ns("app-1", &[]),
                mk_ns("app-2", &[]),
                mk_ns("pullgate-system", &[]),
            ],
            namespaces_complete: true,
        };
        let table = Arc::new(Table::new(Snapshot::build(&objects, 1)));
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .expect("a client that is never called");
        let issuer = TokenIssuer::new(
            client,
            "pullgate",
            table,
            &Policy::default(),
            Duration::from_secs(300),
        );
        let mut watched = Watched::default();
        watched.registries.insert(
            "harbor".into(),
            Stored {
                object: Some(harbor),
                invalid: None,
                generation: None,
                resource_version: None,
                status: serde_json::Value::Null,
            },
        );
        if let Some(expires_at) = robot_expires_at {
            let key = RobotKey {
                registry: "harbor".into(),
                space: "team-a".into(),
                workspace: "ws-a".into(),
            };
            let creds = RobotCredentials {
                id: 7,
                username: "robot$team-a+pullgate-ws-a".into(),
                secret: "Robot-S3cret".into(),
                expires_at,
            };
            let state = RobotState {
                current: creds,
                created_at: None,
                rotation: None,
            };
            let secret = robot_secret("pullgate-system", "test-cluster", &key, &state);
            watched.robot_secrets.insert(
                secret.metadata.name.clone().unwrap_or_default(),
                Arc::new(secret),
            );
        }
        if let Some(tell) = issuer.hook().0 {
            tell(watched);
        }
        issuer
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    /// The robot of the cluster for (space, workspace), keyed host/space, kept no longer
    /// than the robot lives; nothing for an unbound or exempt namespace.
    #[tokio::test]
    async fn the_robot_of_the_pair_goes_only_to_bound_namespaces() {
        let issuer = issuer(Some(now() + 120));
        let Issued::Granted(granted) = issuer.decide(&who("app-1"), IMAGE) else {
            panic!("app-1 is bound")
        };
        let keys: Vec<&String> = granted.auth.keys().collect();
        // Every spelling of the host, as in a pull Secret.
        assert_eq!(
            keys,
            ["harbor.example.com/team-a", "harbor.example.com:443/team-a"]
        );
        assert_eq!(
            granted.auth["harbor.example.com/team-a"].username,
            "robot$team-a+pullgate-ws-a"
        );
        assert!(
            (100..=120).contains(&granted.cache_seconds),
            "within the robot's life: {}",
            granted.cache_seconds
        );
        for ns in ["app-2", "pullgate-system"] {
            let answer = issuer.decide(&who(ns), IMAGE);
            assert!(
                matches!(answer, Issued::Refused(Outcome::Denied, _)),
                "{ns}: {answer:?}"
            );
        }
        let answer = issuer.decide(&who("created-a-moment-ago"), IMAGE);
        assert!(
            matches!(answer, Issued::Refused(Outcome::Unavailable, _)),
            "{answer:?}"
        );
        let answer = issuer.decide(&who("app-1"), "harbor.example.com/Team-A/app");
        assert!(
            matches!(answer, Issued::Refused(Outcome::Invalid, _)),
            "{answer:?}"
        );
        // Watches broken past --max-staleness: no grant, as in admission.
        issuer.table.set_stale(true);
        let answer = issuer.decide(&who("app-1"), IMAGE);
        assert!(
            matches!(answer, Issued::Refused(Outcome::Unavailable, _)),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_robot_never_expiring_is_kept_for_the_cache_duration() {
        let Issued::Granted(granted) = issuer(Some(-1)).decide(&who("app-1"), IMAGE) else {
            panic!("app-1 is bound")
        };
        assert_eq!(granted.cache_seconds, 300);
    }

    #[tokio::test]
    async fn no_robot_yet_or_nothing_read_yet_is_unavailable() {
        let answer = issuer(None).decide(&who("app-1"), IMAGE);
        let Issued::Refused(Outcome::Unavailable, why) = answer else {
            panic!("{answer:?}")
        };
        assert!(why.contains("no working credentials"), "{why}");
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .expect("a client that is never called");
        let fresh = TokenIssuer::new(
            client,
            "pullgate",
            Arc::new(Table::new(Snapshot::default())),
            &Policy::default(),
            Duration::from_secs(300),
        );
        assert!(matches!(
            fresh.decide(&who("app-1"), IMAGE),
            Issued::Refused(Outcome::Unavailable, _)
        ));
    }

    #[test]
    fn remaining_life_of_robots() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(remaining_life(-1, now), None);
        assert_eq!(remaining_life(1_600, now), Some(Duration::from_secs(600)));
        assert_eq!(remaining_life(900, now), Some(Duration::ZERO));
    }
}
