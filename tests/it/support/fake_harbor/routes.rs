//! The routes of the fake Harbor: one match over method and path, as the swagger lists them.

use super::*;

pub(super) async fn handle(state: &Arc<Mutex<State>>, req: Request<Incoming>) -> Reply {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let is_resource_name = req
        .headers()
        .get("x-is-resource-name")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let who = {
        let s = state.lock().unwrap();
        authenticate(&s, &req)
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        is_resource_name: is_resource_name.clone(),
        user: who.as_ref().map(Who::name).filter(|n| !n.is_empty()),
        body: body_text.clone(),
    });
    let Some(who) = who else {
        return unauthorized();
    };
    let Some(rest) = path.strip_prefix("/api/v2.0") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such path");
    };
    let body: Value = if body_text.trim().is_empty() {
        Value::Null
    } else {
        match serde_json::from_str(&body_text) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
        }
    };
    let q = query_map(&query);
    let admin = matches!(who, Who::User { admin: true, .. });
    let system = matches!(who, Who::System { .. });
    let signed_in = !matches!(who, Who::Anonymous);
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["health"]) => {
            let components: Vec<Value> = ["core", "database", "jobservice", "portal", "redis", "registry", "registryctl"]
                .iter()
                .map(|c| {
                    if s.unhealthy.as_deref() == Some(*c) {
                        json!({"name": c, "status": "unhealthy", "error": format!("failed to check {c}: connection refused")})
                    } else {
                        json!({"name": c, "status": "healthy"})
                    }
                })
                .collect();
            let status = if s.unhealthy.is_some() {
                "unhealthy"
            } else {
                "healthy"
            };
            // Harbor answers 200 even when a component is down.
            reply(
                StatusCode::OK,
                json!({"status": status, "components": components}),
            )
        }
        ("GET", ["statistics"]) => {
            if !signed_in {
                return unauthorized();
            }
            let public: Vec<&FakeProject> =
                s.projects.values().filter(|p| p.public == "true").collect();
            let mut stats = json!({
                "private_project_count": 0, "private_repo_count": 0,
                "public_project_count": public.len(),
                "public_repo_count": public.iter().map(|p| p.repo_count).sum::<u64>(),
                "total_project_count": 0, "total_repo_count": 0, "total_storage_consumption": 0,
            });
            if admin {
                let private: Vec<&FakeProject> =
                    s.projects.values().filter(|p| p.public != "true").collect();
                stats["private_project_count"] = json!(private.len());
                stats["private_repo_count"] =
                    json!(private.iter().map(|p| p.repo_count).sum::<u64>());
                stats["total_project_count"] = json!(s.projects.len());
                stats["total_repo_count"] =
                    json!(s.projects.values().map(|p| p.repo_count).sum::<u64>());
                stats["total_storage_consumption"] =
                    json!(s.projects.values().map(|p| p.storage).sum::<i64>());
            }
            reply(StatusCode::OK, stats)
        }
        ("GET", ["users", "current"]) => match &who {
            Who::Anonymous => unauthorized(),
            Who::Robot { .. } | Who::System { .. } => error(
                StatusCode::PRECONDITION_FAILED,
                "PRECONDITION",
                "robot accounts have no user profile",
            ),
            Who::User { name, admin } => reply(
                StatusCode::OK,
                json!({"user_id": if *admin { 1 } else { 2 }, "username": name, "sysadmin_flag": admin, "admin_role_in_auth": false}),
            ),
        },
        ("GET", ["projects"]) => {
            let visible: Vec<Value> = s
                .projects
                .values()
                .filter(|p| {
                    admin
                        || who.may("project", "list")
                        || p.public == "true"
                        || matches!(&who, Who::Robot { project_id, .. } if *project_id == p.id)
                })
                .map(project_json)
                .collect();
            paginate(&path, &q, visible)
        }
        ("POST", ["projects"]) => {
            if !signed_in {
                return unauthorized();
            }
            if !who.may("project", "create") {
                // This Harbor restricts project creation to admins (and robots allowed to).
                return forbidden();
            }
            let name = body["project_name"].as_str().unwrap_or("").to_string();
            if !valid_name(&name) {
                return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &format!("project name is not in lower case or contains illegal characters: {name:?}"));
            }
            let public = match public_of(&body) {
                Ok(p) => p.unwrap_or_else(|| "false".into()),
                Err(r) => return *r,
            };
            if s.projects.contains_key(&name) {
                return error(
                    StatusCode::CONFLICT,
                    "CONFLICT",
                    &format!("The project named {name} already exists"),
                );
            }
            let id = s.next_project_id;
            s.next_project_id += 1;
            s.projects.insert(
                name.clone(),
                FakeProject {
                    id,
                    name,
                    public,
                    repo_count: 0,
                    storage: 0,
                },
            );
            let mut r = reply(StatusCode::CREATED, Value::Null);
            *r.body_mut() = Full::new(Bytes::new());
            r.headers_mut().insert(
                "location",
                format!("/api/v2.0/projects/{id}").parse().unwrap(),
            );
            r
        }
        (m, ["projects", name_or_id, tail @ ..]) if tail.is_empty() || tail == ["summary"] => {
            let by_name =
                is_resource_name.as_deref() == Some("true") || name_or_id.parse::<i64>().is_err();
            let found = s
                .projects
                .values()
                .find(|p| {
                    if by_name {
                        p.name == *name_or_id
                    } else {
                        p.id.to_string() == *name_or_id
                    }
                })
                .cloned();
            let Some(p) = found else {
                return error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("project {name_or_id} not found"),
                );
            };
            let may_read = admin
                || who.may("project", "read")
                || p.public == "true"
                || matches!(&who, Who::Robot { project_id, .. } if *project_id == p.id);
            match (m, tail) {
                ("GET", []) if may_read => reply(StatusCode::OK, project_json(&p)),
                ("GET", ["summary"]) if may_read => reply(
                    StatusCode::OK,
                    json!({"repo_count": p.repo_count, "project_admin_count": 1,
                           "quota": {"hard": {"storage": -1}, "used": {"storage": p.storage}}}),
                ),
                ("PUT", []) if who.may("project", "update") => {
                    let public = match public_of(&body) {
                        Ok(p) => p,
                        Err(r) => return *r,
                    };
                    if let Some(public) = public {
                        if let Some(stored) = s.projects.get_mut(&p.name) {
                            stored.public = public;
                        }
                    }
                    reply(StatusCode::OK, Value::Null)
                }
                ("GET" | "PUT", _) if !signed_in => unauthorized(),
                ("GET" | "PUT", _) => forbidden(),
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    "method not allowed",
                ),
            }
        }
        (_, ["robots", ..]) if !signed_in => unauthorized(),
        (_, ["robots", ..]) if !admin && !system => forbidden(),
        ("GET", ["robots"]) if !who.may("robot", "list") => forbidden(),
        ("POST", ["robots"]) if !who.may("robot", "create") => forbidden(),
        ("DELETE", ["robots", _]) if !who.may("robot", "delete") => forbidden(),
        ("PATCH", ["robots", _]) if !who.may("robot", "update") => forbidden(),
        ("GET", ["robots"]) => {
            // q=Level=project,ProjectID=<id>
            let filters: BTreeMap<&str, &str> = q
                .get("q")
                .map(|q| q.split(',').filter_map(|kv| kv.split_once('=')).collect())
                .unwrap_or_default();
            let project_id: Option<i64> = filters.get("ProjectID").and_then(|v| v.parse().ok());
            let items: Vec<Value> = s
                .robots
                .iter()
                .filter(|r| project_id.is_none_or(|id| r.project_id == id))
                .filter(|_| filters.get("Level").is_none_or(|l| *l == "project"))
                .map(robot_json)
                .collect();
            paginate(&path, &q, items)
        }
        ("POST", ["robots"]) => {
            let name = body["name"].as_str().unwrap_or("").to_string();
            if body["level"] != "project" || !valid_name(&name) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "bad robot: level must be project and the name valid",
                );
            }
            let Some(project) = body["permissions"][0]["namespace"].as_str() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "a project robot needs one permission with a namespace",
                );
            };
            let Some(p) = s.projects.get(project).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("project {project} not found"),
                );
            };
            let full = format!("robot${}+{name}", p.name);
            if s.conflicts_on_create > 0 && !s.robots.iter().any(|r| r.name == full) {
                // Someone else made a robot of that name a moment ago.
                s.conflicts_on_create -= 1;
                let id = s.next_robot_id;
                s.next_robot_id += 1;
                let secret = new_secret(&mut s);
                s.robots.push(FakeRobot {
                    id,
                    project_id: p.id,
                    name: full.clone(),
                    secret,
                    disable: false,
                    expires_at: -1,
                    permissions: body["permissions"].clone(),
                    description: "made by someone else".into(),
                    creator: "someone-else".into(),
                });
            }
            if s.robots.iter().any(|r| r.name == full) {
                return error(
                    StatusCode::CONFLICT,
                    "CONFLICT",
                    &format!("robot account {full} already exists"),
                );
            }
            let duration = body["duration"].as_i64().unwrap_or(-1);
            if duration == 0 || duration < -1 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "duration must be either -1(Never) or a positive integer",
                );
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let expires_at = if duration < 0 {
                -1
            } else {
                now + duration * 86_400
            };
            let secret = match body["secret"].as_str() {
                Some(given) if !given.is_empty() => given.to_string(),
                _ => new_secret(&mut s),
            };
            let id = s.next_robot_id;
            s.next_robot_id += 1;
            s.robots.push(FakeRobot {
                id,
                project_id: p.id,
                name: full.clone(),
                secret: secret.clone(),
                disable: body["disable"].as_bool().unwrap_or(false),
                expires_at,
                permissions: body["permissions"].clone(),
                description: body["description"].as_str().unwrap_or("").to_string(),
                creator: who.name(),
            });
            let mut r = reply(
                StatusCode::CREATED,
                json!({"id": id, "name": full, "secret": secret, "creation_time": "2026-01-01T00:00:00.000Z", "expires_at": expires_at}),
            );
            r.headers_mut().insert(
                "location",
                format!("/api/v2.0/robots/{id}").parse().unwrap(),
            );
            r
        }
        (m, ["robots", id]) => {
            let Some(i) = id
                .parse::<i64>()
                .ok()
                .and_then(|id| s.robots.iter().position(|r| r.id == id))
            else {
                return error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    &format!("robot {id} not found"),
                );
            };
            match m {
                "GET" => reply(StatusCode::OK, robot_json(&s.robots[i])),
                "DELETE" => {
                    let robot = s.robots.remove(i);
                    if s.vanish_on_delete > 0 {
                        // It went (expired, or deleted by someone else) just before.
                        s.vanish_on_delete -= 1;
                        return error(
                            StatusCode::NOT_FOUND,
                            "NOT_FOUND",
                            &format!("robot {id} not found"),
                        );
                    }
                    s.deleted.push((who.name(), robot));
                    reply(StatusCode::OK, Value::Null)
                }
                "PATCH" => {
                    let secret = match body["secret"].as_str() {
                        Some(given) if !given.is_empty() => {
                            if !secret_ok(given) {
                                return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the secret must be 8-128 characters with upper and lower case letters and digits");
                            }
                            given.to_string()
                        }
                        _ => new_secret(&mut s),
                    };
                    s.robots[i].secret = secret.clone();
                    reply(StatusCode::OK, json!({"secret": secret}))
                }
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    "method not allowed",
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no route for {method} {path}"),
        ),
    }
}
