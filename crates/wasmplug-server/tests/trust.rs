//! Running plugins you did not write: signed modules only, named and
//! scoped tokens, grants that only an admin may give, and the audit trail.
//! Every refusal is checked to have written nothing.

use std::path::Path;

use axum::http::{Method, StatusCode};
use wasmplug_server::{AllowedDir, AppState, ServerConfig};
use wasmplug_trust::signing;
use wasmplug_trust::tokens::{hash_token, token_line, Role};

mod support;

use support::{plugin_bytes, request, Answer};

const ADMIN: &str = "admin-secret";
const PUBLISHER: &str = "publisher-secret";
const READER: &str = "reader-secret";

/// Writes a token file: an admin, a publisher for `image-*`, a reader.
fn write_tokens(path: &Path, with_publisher: bool) {
    let mut lines = vec![
        token_line("ops", Role::Admin, &hash_token(ADMIN), &[]),
        token_line("viewer", Role::Reader, &hash_token(READER), &[]),
    ];
    if with_publisher {
        lines.push(token_line(
            "ci-images",
            Role::Publisher,
            &hash_token(PUBLISHER),
            &["image-*".to_owned()],
        ));
    }
    // Replaced in one rename, as an operator's editor would.
    let next = path.with_extension("next");
    std::fs::write(&next, lines.join("\n") + "\n").unwrap();
    std::fs::rename(next, path).unwrap();
}

struct Service {
    state: AppState,
    dir: tempfile::TempDir,
}

impl Service {
    fn new(configure: impl FnOnce(&mut ServerConfig, &Path)) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        let tokens = dir.path().join("tokens");
        write_tokens(&tokens, true);
        let mut config = ServerConfig::new(plugins, ([127, 0, 0, 1], 0).into());
        config.token_file = Some(tokens);
        config.pool_instances = 32;
        configure(&mut config, dir.path());
        let state = AppState::new(config).unwrap();
        state.load_all();
        Service { state, dir }
    }

    fn plugins(&self) -> std::path::PathBuf {
        self.dir.path().join("plugins")
    }

    async fn put(&self, name: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
        request(&self.state, Method::PUT, &format!("/v1/plugins/{name}"), token, body).await
    }

    async fn call(&self, name: &str) -> Answer {
        request(
            &self.state,
            Method::POST,
            &format!("/v1/plugins/{name}/call/process"),
            None,
            r#"{"args":[21]}"#,
        )
        .await
    }

    /// The audit trail as the admin reads it.
    async fn audit(&self, query: &str) -> Vec<serde_json::Value> {
        let answer = request(&self.state, Method::GET, &format!("/v1/audit{query}"), Some(ADMIN), "").await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()["entries"].as_array().unwrap().clone()
    }

    /// Nothing of `name` is stored or loaded.
    fn assert_nothing_of(&self, name: &str) {
        assert!(
            !self.plugins().join(format!("{name}.wasm")).exists(),
            "{name}.wasm written"
        );
        assert!(
            !self.plugins().join(format!("{name}.toml")).exists(),
            "{name}.toml written"
        );
        assert!(
            !self.plugins().join(".versions").join(name).exists(),
            "a version of {name} kept"
        );
        assert!(self.state.registry.slot(name).is_none(), "{name} has a slot");
    }
}

/// A key pair in a directory of trusted keys (`<dir>/keys/<name>.pub`), and its secret.
fn trusted_key(dir: &Path, name: &str) -> Vec<u8> {
    let pair = signing::generate_key_pair();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys").join(format!("{name}.pub")), &pair.public).unwrap();
    pair.secret
}

fn signed(module: &[u8], secret: &[u8]) -> Vec<u8> {
    signing::sign(module, secret, false).unwrap().module
}

fn reason(answer: &Answer) -> String {
    answer.json()["details"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn only_modules_signed_by_a_trusted_key_are_stored_or_run() {
    let mut alice = Vec::new();
    let service = Service::new(|config, dir| {
        alice = trusted_key(dir, "alice");
        config.trusted_keys = Some(dir.join("keys"));
    });
    let process = plugin_bytes("process");
    let mallory = signing::generate_key_pair().secret;
    let mut tampered = signed(&process, &alice);
    tampered.extend_from_slice(&[0, 4, 3, b'x', b'y', b'z']);
    for (body, expected) in [
        (process.clone(), "unsigned"),
        (signed(&process, &mallory), "unknown_key"),
        (tampered, "bad_signature"),
    ] {
        let answer = service.put("untrusted", Some(ADMIN), body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{expected}");
        assert_eq!(
            (answer.code(), reason(&answer)),
            ("untrusted_module".into(), expected.into())
        );
        service.assert_nothing_of("untrusted");
    }
    let answer = service.put("process", Some(ADMIN), signed(&process, &alice)).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(service.call("process").await.json()["results"][0], 43);
    let described = request(&service.state, Method::GET, "/v1/plugins/process", None, "")
        .await
        .json();
    assert_eq!(described["signature"]["trusted_key"], "alice");
    assert_eq!(described["signature"]["signed"], true);

    // A file dropped into the directory is held to the same rule: the
    // unsigned one never serves, and the refusal is on record.
    let directory = service.state.directory().unwrap();
    std::fs::write(service.plugins().join("dropped.wasm"), &process).unwrap();
    assert!(!directory.reload_seen_change("dropped"));
    let slot = service
        .state
        .registry
        .slot("dropped")
        .expect("the refusal is recorded on its slot");
    assert!(slot.active.load().is_none());
    assert!(slot.last_error().is_some());
    assert!(
        !service.plugins().join(".versions").join("dropped").exists(),
        "no version of a refused file is kept"
    );
    // Touched, not changed: the same refusal is not recorded twice.
    assert!(!directory.reload_seen_change("dropped"));
    std::fs::write(service.plugins().join("dropped.wasm"), signed(&process, &alice)).unwrap();
    assert!(directory.reload_seen_change("dropped"));
    assert_eq!(service.call("dropped").await.json()["results"][0], 43);
    // The watcher seeing the service's own write (the upload of `process`
    // above) records nothing: that change is on record once, by its token.
    assert!(!directory.reload_seen_change("process"));
    let process_trail = service.audit("?plugin=process").await;
    assert_eq!(process_trail.len(), 1, "{process_trail:?}");
    assert_eq!(process_trail[0]["actor"], "ops");
    let dropped = service.audit("?plugin=dropped").await;
    let outcomes: Vec<(&str, &str)> = dropped
        .iter()
        .map(|entry| (entry["actor"].as_str().unwrap(), entry["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("watcher", "untrusted_module"), ("watcher", "ok")]);
    assert_eq!(dropped[1]["signed_by"], "alice");

    // So is a restart: an unsigned file on disk does not load.
    std::fs::write(service.plugins().join("dropped.wasm"), &process).unwrap();
    let mut config = (*service.state.config).clone();
    config.watch = false;
    let restarted = AppState::new(config).unwrap();
    restarted.load_all();
    assert!(restarted.registry.slot("dropped").unwrap().active.load().is_none());
    assert!(restarted.registry.slot("process").unwrap().active.load().is_some());
}

#[tokio::test]
async fn without_trusted_keys_the_signature_is_reported_not_required() {
    let service = Service::new(|_, _| {});
    let secret = signing::generate_key_pair().secret;
    let process = plugin_bytes("process");
    assert_eq!(
        service.put("plain", Some(ADMIN), process.clone()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        service
            .put("signed", Some(ADMIN), signed(&process, &secret))
            .await
            .status,
        StatusCode::CREATED
    );
    let plain = request(&service.state, Method::GET, "/v1/plugins/plain", None, "")
        .await
        .json();
    assert_eq!(plain["signature"]["signed"], false);
    let signed = request(&service.state, Method::GET, "/v1/plugins/signed", None, "")
        .await
        .json();
    assert_eq!(signed["signature"]["signed"], true);
    assert_eq!(signed["signature"]["trusted_key"], serde_json::Value::Null);
    assert_eq!(signed["signature"]["key_ids"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_manifest_pin_refuses_other_bytes() {
    let service = Service::new(|_, _| {});
    let process = plugin_bytes("process");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&process));
    let pinned = |pin: &str| format!("/v1/plugins/pinned?manifest=sha256%20%3D%20%22{pin}%22");
    let answer = request(
        &service.state,
        Method::PUT,
        &pinned(&"0".repeat(64)),
        Some(ADMIN),
        process.clone(),
    )
    .await;
    assert_eq!(
        (answer.code(), reason(&answer)),
        ("untrusted_module".into(), "pin_mismatch".into())
    );
    service.assert_nothing_of("pinned");
    let answer = request(&service.state, Method::PUT, &pinned(&digest), Some(ADMIN), process).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // Other bytes under the pinned manifest: refused, the pinned version serves.
    let answer = service.put("pinned", Some(ADMIN), plugin_bytes("numeric")).await;
    assert_eq!(
        (answer.code(), reason(&answer)),
        ("untrusted_module".into(), "pin_mismatch".into())
    );
    assert_eq!(service.call("pinned").await.json()["results"][0], 43);
}

#[tokio::test]
async fn tokens_are_named_scoped_and_revocable() {
    let service = Service::new(|config, _| config.guard_reads = true);
    let process = plugin_bytes("process");

    // No token, a wrong token: 401. Nothing written.
    for token in [None, Some("wrong")] {
        let answer = service.put("image-a", token, process.clone()).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNAUTHORIZED, "unauthorized".into())
        );
    }
    service.assert_nothing_of("image-a");

    // A publisher publishes and rolls back within its patterns only.
    let answer = service.put("image-a", Some(PUBLISHER), process.clone()).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let answer = service.put("image-a", Some(PUBLISHER), plugin_bytes("numeric")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let rollback = request(
        &service.state,
        Method::POST,
        "/v1/plugins/image-a/rollback",
        Some(PUBLISHER),
        "",
    )
    .await;
    assert_eq!(rollback.status, StatusCode::OK);
    assert_eq!(service.call("image-a").await.json()["results"][0], 43);
    let answer = service.put("billing", Some(PUBLISHER), process.clone()).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    service.assert_nothing_of("billing");
    // Deleting takes an admin.
    let delete = |token| request(&service.state, Method::DELETE, "/v1/plugins/image-a", Some(token), "");
    assert_eq!(delete(PUBLISHER).await.status, StatusCode::FORBIDDEN);
    assert!(service.state.registry.slot("image-a").is_some());
    // A reader reads, and changes nothing.
    let answer = service.put("image-b", Some(READER), process.clone()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    service.assert_nothing_of("image-b");

    // Reads are guarded: a reader lists, no token does not, and a scoped
    // token sees only its plugins.
    assert_eq!(
        service.put("billing", Some(ADMIN), process.clone()).await.status,
        StatusCode::CREATED
    );
    let list = |token| request(&service.state, Method::GET, "/v1/plugins", token, "");
    assert_eq!(list(None).await.status, StatusCode::UNAUTHORIZED);
    let names = |answer: Answer| -> Vec<String> {
        answer.json()["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|plugin| plugin["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(list(Some(READER)).await), ["billing", "image-a"]);
    assert_eq!(names(list(Some(PUBLISHER)).await), ["image-a"]);
    let describe = request(&service.state, Method::GET, "/v1/plugins/billing", Some(PUBLISHER), "").await;
    assert_eq!(describe.status, StatusCode::FORBIDDEN);

    // Revoked by editing the file, without a restart.
    write_tokens(&service.dir.path().join("tokens"), false);
    let answer = service.put("image-a", Some(PUBLISHER), process.clone()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(delete(ADMIN).await.status, StatusCode::NO_CONTENT);

    // Calls need no token.
    assert_eq!(service.call("billing").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_single_admin_token_is_an_admin_named_admin() {
    let service = Service::new(|config, _| {
        config.token_file = None;
        config.admin_token = Some("only-one".into());
    });
    let answer = service.put("process", Some("only-one"), plugin_bytes("process")).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let trail = request(&service.state, Method::GET, "/v1/audit", Some("only-one"), "")
        .await
        .json();
    assert_eq!(trail["entries"][0]["actor"], "admin");
    assert_eq!(
        request(
            &service.state,
            Method::DELETE,
            "/v1/plugins/process",
            Some("only-one"),
            ""
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn grants_are_an_admins_to_give_and_the_operators_to_bound() {
    let mut allowed = std::path::PathBuf::new();
    let service = Service::new(|config, dir| {
        allowed = dir.join("shared");
        std::fs::create_dir_all(&allowed).unwrap();
        config.allowed_dirs = vec![AllowedDir {
            host: allowed.clone(),
            read_only: true,
        }];
    });
    let process = plugin_bytes("process");
    let upload = async |manifest: String, token: &str| {
        let uri = format!("/v1/plugins/image-granted?manifest={}", encode(&manifest));
        request(&service.state, Method::PUT, &uri, Some(token), process.clone()).await
    };
    let grant = |host: &Path| {
        format!(
            "[wasi]\ndirs = [{{ host = {:?}, guest = \"/data\" }}]",
            host.display().to_string()
        )
    };
    // A publisher may not grant a directory, an environment variable, or
    // raise a limit, even one the operator allows.
    for manifest in [
        grant(&allowed),
        "[wasi]\nenv = [[\"MODE\", \"x\"]]".to_owned(),
        "[limits]\ncall_timeout_ms = 60000".to_owned(),
    ] {
        let answer = upload(manifest.clone(), PUBLISHER).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::FORBIDDEN, "forbidden".into()),
            "{manifest}"
        );
        service.assert_nothing_of("image-granted");
    }
    // Lower limits are anyone's to set.
    let answer = upload("[limits]\ncall_timeout_ms = 200".to_owned(), PUBLISHER).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        request(
            &service.state,
            Method::DELETE,
            "/v1/plugins/image-granted",
            Some(ADMIN),
            ""
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    // An admin may grant, within --allow-dir only.
    for host in [Path::new("/etc"), service.dir.path()] {
        let answer = upload(grant(host), ADMIN).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "grant_not_allowed".into()),
            "{}",
            host.display()
        );
    }
    let answer = upload(grant(&allowed), ADMIN).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );

    // An admin takes the grant away; a publisher cannot bring it back by
    // rolling back to the version that had it. An admin can.
    let answer = upload("[limits]\ncall_timeout_ms = 200".to_owned(), ADMIN).await;
    assert_eq!(answer.status, StatusCode::OK);
    let rollback = |token| {
        request(
            &service.state,
            Method::POST,
            "/v1/plugins/image-granted/rollback",
            Some(token),
            "",
        )
    };
    let answer = rollback(PUBLISHER).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    let active = request(&service.state, Method::GET, "/v1/plugins/image-granted", None, "")
        .await
        .json();
    assert_eq!(active["manifest"], "[limits]\ncall_timeout_ms = 200");
    assert_eq!(rollback(ADMIN).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_audit_trail_holds_one_line_per_change() {
    let mut alice = Vec::new();
    let service = Service::new(|config, dir| {
        alice = trusted_key(dir, "alice");
        config.trusted_keys = Some(dir.join("keys"));
    });
    let first = signed(&plugin_bytes("process"), &alice);
    let second = signed(&plugin_bytes("numeric"), &alice);
    let digest = |bytes: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    assert_eq!(
        service.put("image-a", Some(PUBLISHER), first.clone()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        service.put("image-a", Some(PUBLISHER), second.clone()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        service
            .put("image-a", Some(PUBLISHER), plugin_bytes("process"))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        service.put("billing", Some(PUBLISHER), first.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let rollback = request(
        &service.state,
        Method::POST,
        "/v1/plugins/image-a/rollback",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(rollback.status, StatusCode::OK);
    let delete = request(&service.state, Method::DELETE, "/v1/plugins/image-a", Some(ADMIN), "").await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
    // Not changes: a call, a read, an unauthenticated attempt.
    service.call("image-a").await;
    request(&service.state, Method::GET, "/v1/plugins", None, "").await;
    service.put("image-a", None, first.clone()).await;

    let trail = service.audit("").await;
    let lines: Vec<(&str, &str, &str, &str, &str, &str)> = trail
        .iter()
        .map(|entry| {
            let text = |field: &str| entry[field].as_str().unwrap_or("-");
            (
                text("actor"),
                text("action"),
                text("plugin"),
                text("digest_before"),
                text("digest_after"),
                text("outcome"),
            )
        })
        .collect();
    let (one, two) = (digest(&first), digest(&second));
    assert_eq!(
        lines,
        [
            ("ci-images", "upload", "image-a", "-", one.as_str(), "ok"),
            ("ci-images", "replace", "image-a", one.as_str(), two.as_str(), "ok"),
            (
                "ci-images",
                "replace",
                "image-a",
                two.as_str(),
                two.as_str(),
                "untrusted_module"
            ),
            ("ci-images", "upload", "billing", "-", "-", "forbidden"),
            ("ops", "rollback", "image-a", two.as_str(), one.as_str(), "ok"),
            ("ops", "delete", "image-a", one.as_str(), "-", "ok"),
        ]
    );
    assert!(trail[..2].iter().all(|entry| entry["signed_by"] == "alice"));
    assert!(trail[2]["reason"].as_str().is_some_and(|reason| !reason.is_empty()));

    // Filters, and the trail is an admin's to read.
    assert_eq!(service.audit("?plugin=billing").await.len(), 1);
    assert_eq!(service.audit("?limit=2").await, trail[4..]);
    let since = |index: usize| format!("?since={}", encode(trail[index]["time"].as_str().unwrap()));
    assert_eq!(service.audit(&since(0)).await.len(), 6);
    assert!(!service.audit(&since(5)).await.is_empty());
    assert!(service.audit("?since=2999-01-01T00:00:00Z").await.is_empty());
    let bad = request(
        &service.state,
        Method::GET,
        "/v1/audit?since=yesterday",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_query".into())
    );
    for token in [PUBLISHER, READER] {
        let answer = request(&service.state, Method::GET, "/v1/audit", Some(token), "").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{token}");
    }
    // The file under the plugin directory holds the same lines.
    let file = std::fs::read_to_string(service.plugins().join(".audit/audit.jsonl")).unwrap();
    assert_eq!(file.lines().count(), 6);
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
