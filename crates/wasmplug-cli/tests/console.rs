//! The operator's console in a real browser: the real `wasmplug serve` with
//! the example plugins and an admin token, driven through headless
//! chromium under chromedriver (`wasmplug_test_support::browser`).
//!
//! One walk through the console, as an operator would take it: the
//! plugins table (a plugin that never loaded and one whose latest version
//! failed, each marked with its error), a plugin opened from the
//! keyboard, `process` called with 21 (43) and with a bad argument (its
//! typed error), a bytes-ABI export invoked; a token given (and kept out of
//! every storage), a new version uploaded and seen active, a rollback, a
//! refused upload's typed error, the audit trail newest first, the live
//! figures and charts, a narrow window. Throughout, every request the page
//! made stayed on the service's origin. Every wait polls the page with a
//! bounded deadline.
//!
//! Screenshots of the main views are saved to
//! `target/console-screenshots/` (the README shows them).
//!
//! Without chromium and chromedriver the test says why and returns;
//! `cargo xtask ci` installs them and sets `WASMPLUG_REQUIRE_BROWSER=1`, which
//! turns a missing browser into a failure.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use support::TOKEN;
use wasmplug_test_support::browser::{self, keys, Browser};
use wasmplug_test_support::http::Request;

/// What the service serves: working plugins, and one that fails to load.
const PLUGINS: &[&str] = &["process", "upper", "numeric", "json_stats", "has_start"];

/// Installed before any page script: records every fetch and every
/// Content-Security-Policy violation, and keeps every resource timing
/// entry (the buffer holds 250 by default; the page polls every 2 s).
const OBSERVE: &str = r#"
  performance.setResourceTimingBufferSize(100000);
  window.__fetches = [];
  window.__violations = [];
  const originalFetch = window.fetch;
  window.fetch = function (input, init) {
    window.__fetches.push(new URL(input instanceof Request ? input.url : String(input), location.href).href);
    return originalFetch.apply(this, arguments);
  };
  document.addEventListener('securitypolicyviolation', (event) => {
    window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
  });
"#;

/// The service, killed and waited for when dropped (a failing test too).
struct Service {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Service {
    fn start() -> Service {
        let dir = tempfile::tempdir().unwrap();
        for name in PLUGINS {
            std::fs::write(dir.path().join(format!("{name}.wasm")), support::plugin(name)).unwrap();
        }
        let (child, address) = support::start(dir.path());
        Service { child, address, dir }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser and where its screenshots go; a failed step saves one of
/// its own before the test fails.
struct Session {
    browser: Browser,
    shots: PathBuf,
}

impl Session {
    /// `result`'s value, or a failure naming `step`, with a screenshot and
    /// the page's text.
    fn check<T>(&self, step: &str, result: anyhow::Result<T>) -> T {
        match result {
            Ok(value) => value,
            Err(error) => {
                let shot = self.shots.join(format!("failed-{}.png", step.replace(' ', "-")));
                let _ = self.browser.screenshot(&shot);
                let page = self
                    .browser
                    .execute("return document.body.innerText;", vec![])
                    .unwrap_or_default();
                panic!(
                    "{step}: {error:#}\n(screenshot: {})\npage text:\n{}",
                    shot.display(),
                    page.as_str().unwrap_or_default()
                );
            }
        }
    }

    /// Runs `script` in the page.
    fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.check("running a script", self.browser.execute(script, args))
    }

    /// Waits until `script` returns something other than `null`/`false`.
    fn wait(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let result = self.browser.wait_for(what, || {
            let value = self.browser.execute(script, args.clone())?;
            Ok((!value.is_null() && value != json!(false)).then_some(value))
        });
        self.check(what, result)
    }

    fn click(&self, css: &str) {
        let result = self
            .browser
            .wait_for_element(css)
            .and_then(|element| self.browser.click(&element));
        self.check(&format!("clicking {css}"), result);
    }

    fn type_into(&self, css: &str, text: &str) {
        let result = self.browser.wait_for_element(css).and_then(|element| {
            self.browser.clear(&element).ok();
            self.browser.type_into(&element, text)
        });
        self.check(&format!("typing into {css}"), result);
    }

    /// Saves a screenshot of the page, once it fits its window's width
    /// (nothing sticks out sideways; tables scroll in their own region).
    fn screenshot(&self, name: &str) {
        let fits = self.wait(
            &format!("the page to fit its window before {name}"),
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        );
        assert_eq!(fits, json!(true), "{name}");
        let path = self.shots.join(name);
        self.check(&format!("saving {name}"), self.browser.screenshot(&path));
        eprintln!("console: screenshot {}", path.display());
    }

    /// The full digest the plugin page shows as active, once it is `digest`.
    fn wait_active(&self, digest: &str) {
        self.wait(
            &format!("the plugin page to show {digest} active"),
            "const node = document.querySelector('#active-digest');
             return node && node.dataset.digest === arguments[0];",
            vec![json!(digest)],
        );
    }

    /// Calls the plugin page's chosen export with `args` and waits for
    /// the answer: `(outcome, text)`, the text being the result or the
    /// error's code.
    fn try_call(&self, args: &str) -> (String, String) {
        self.eval(
            "document.querySelector('#try-result').removeAttribute('data-outcome');",
            vec![],
        );
        self.type_into("#try-args", args);
        self.click("#try-run");
        let answer = self.wait(
            &format!("the answer to the call with {args}"),
            "const result = document.querySelector('#try-result');
             if (!result || !result.dataset.outcome) return null;
             if (result.dataset.outcome === 'ok') return ['ok', result.querySelector('#try-output').textContent];
             return ['error', result.querySelector('.problem').dataset.code];",
            vec![],
        );
        (
            answer[0].as_str().unwrap().to_owned(),
            answer[1].as_str().unwrap().to_owned(),
        )
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `module` with a custom section appended: another module (another
/// digest) that behaves the same.
fn with_custom_section(module: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = vec![u8::try_from(name.len()).unwrap()];
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    assert!(content.len() < 128, "one LEB128 byte of length");
    let mut bytes = module.to_vec();
    bytes.push(0);
    bytes.push(content.len() as u8);
    bytes.extend(content);
    bytes
}

fn screenshots_dir() -> PathBuf {
    wasmplug_test_support::project_root()
        .join("target")
        .join("console-screenshots")
}

#[test]
fn an_operator_walks_the_console_in_a_real_browser() {
    if let Some(reason) = browser::missing() {
        if std::env::var_os("WASMPLUG_REQUIRE_BROWSER").is_some_and(|value| value == "1") {
            panic!("WASMPLUG_REQUIRE_BROWSER=1, but {reason}");
        }
        eprintln!("skipped the console's browser test: {reason}");
        return;
    }
    let started = std::time::Instant::now();
    let service = Service::start();
    let origin = format!("http://{}", service.address);
    the_console_is_served_with_a_same_origin_policy(service.address);

    let shots = screenshots_dir();
    let browser = Browser::start(1280, 900).unwrap_or_else(|error| panic!("cannot start the browser: {error:#}"));
    let session = Session { browser, shots };
    session.check("observing the page", session.browser.on_new_document(OBSERVE));
    session.check("loading the console", session.browser.goto(&format!("{origin}/")));

    // A new version of numeric that breaks the contract, dropped into the
    // plugin directory: the old one keeps serving, with the error beside it.
    let staged = service.dir.path().join(".tmp").join("numeric-next");
    std::fs::write(&staged, support::plugin("has_start")).unwrap();
    std::fs::rename(&staged, service.dir.path().join("numeric.wasm")).unwrap();

    // The plugins table: every example plugin; the one that never loaded,
    // and the one whose latest version failed, marked as such, with their
    // errors shown.
    let process = support::plugin("process");
    let process_digest = sha256(&process);
    let states = session.wait(
        "a row for every plugin, numeric's latest version refused",
        "const rows = [...document.querySelectorAll('#plugins-table tbody tr[data-plugin]')];
         const states = Object.fromEntries(rows.map((row) => [row.dataset.plugin, row.dataset.state]));
         return rows.length >= arguments[0] && states.numeric === 'stale' && states;",
        vec![json!(PLUGINS.len())],
    );
    for name in PLUGINS {
        let expected = match *name {
            "has_start" => "failed",
            "numeric" => "stale",
            _ => "ok",
        };
        assert_eq!(states[*name], json!(expected), "{name}: {states}");
    }
    let errors = session.eval(
        "return [...document.querySelectorAll('tr[data-plugin-error]')]
           .filter((row) => !row.hidden && row.textContent.trim().length > 20)
           .map((row) => row.dataset.pluginError);",
        vec![],
    );
    assert_eq!(errors, json!(["has_start", "numeric"]), "the load errors shown");
    let numeric_digest = session.eval(
        "return document.querySelector('tr[data-plugin=\"numeric\"] td[data-column=\"Active digest\"]').dataset.digest;",
        vec![],
    );
    assert_eq!(
        numeric_digest,
        json!(sha256(&support::plugin("numeric"))),
        "the old numeric still serves"
    );
    let row = session.eval(
        "const cells = document.querySelector('tr[data-plugin=\"process\"]').cells;
         return Object.fromEntries([...cells].slice(1).map((cell) => [cell.dataset.column, cell.textContent]));",
        vec![],
    );
    assert_eq!(row["Active digest"], json!(process_digest[..12]), "{row}");
    assert_eq!(row["Engine"], json!("wasmtime (cranelift)"), "{row}");
    assert_eq!(row["State"], json!("stateless"), "{row}");
    assert_eq!(row["Signed by"], json!("unsigned"), "{row}");
    let size = match process.len() {
        small @ 0..1024 => format!("{small} B"),
        larger => format!("{:.1} KiB", larger as f64 / 1024.0),
    };
    assert_eq!(row["Size"], json!(size), "{row}");

    // The keyboard: the first Tab reaches the skip link; a plugin opens
    // with Enter on its link, and the new view's heading takes the focus.
    session.check("pressing Tab", session.browser.press(keys::TAB));
    let focused = session.eval("return document.activeElement.id;", vec![]);
    assert_eq!(focused, json!("skip"), "the first Tab stop is the skip link");
    let link = session.check(
        "finding process's link",
        session.browser.find("#plugins-table a[href=\"#/plugins/process\"]"),
    );
    session.check(
        "opening process with Enter",
        session.browser.type_into(&link, keys::ENTER),
    );
    session.wait(
        "process's page, its heading focused",
        "const heading = document.querySelector('main h1');
         return heading && heading.textContent === 'process' && document.activeElement === heading;",
        vec![],
    );
    session.wait_active(&process_digest);
    let export = session.wait(
        "process's exports",
        "const row = document.querySelector('#exports-table tr[data-export=\"process\"]');
         return row && row.cells[1].textContent;",
        vec![],
    );
    assert_eq!(export, json!("(i32) -> i32"));
    let manifest = session.eval("return document.querySelector('#manifest-text').tagName;", vec![]);
    assert_eq!(manifest, json!("P"), "no manifest: a sentence, not a listing");

    // Nothing changes without a token: the buttons that would are off.
    let disabled = session.eval("return document.querySelector('#delete-start').disabled;", vec![]);
    assert_eq!(disabled, json!(true), "delete is disabled without a token");

    // Try it: 21 gives 43; a bad argument gives its typed error.
    assert_eq!(session.try_call("x"), ("error".to_owned(), "argument_type".to_owned()));
    assert_eq!(session.try_call("21"), ("ok".to_owned(), "43".to_owned()));
    session.screenshot("plugin.png");

    // A bytes-ABI export, invoked with text.
    session.click("a[data-nav=\"plugins\"]");
    session.click("#plugins-table a[href=\"#/plugins/upper\"]");
    session.wait(
        "upper's try-it form",
        "return document.querySelector('#try-export')?.value === 'upper';",
        vec![],
    );
    session.type_into("#try-input", "hello, console");
    session.click("#try-run");
    let output = session.wait(
        "upper's output",
        "return document.querySelector('#try-result[data-outcome=\"ok\"] #try-output')?.textContent ?? null;",
        vec![],
    );
    assert_eq!(output, json!("HELLO, CONSOLE"));

    // The token: taken, kept in memory only.
    session.type_into("#token", TOKEN);
    session.check("submitting the token", session.browser.press(keys::ENTER));
    session.wait(
        "the token to be in use",
        "return !document.querySelector('#token-state').hidden;",
        vec![],
    );
    let stored = session.eval(
        "return [localStorage.length, sessionStorage.length, document.cookie,
                 document.querySelector('#token').value,
                 document.documentElement.outerHTML.includes(arguments[0]),
                 location.href.includes(arguments[0])];",
        vec![json!(TOKEN)],
    );
    assert_eq!(
        stored,
        json!([0, 0, "", "", false, false]),
        "the token is in no storage and not in the page"
    );

    // A new version of process: uploaded, then active.
    let newer = with_custom_section(&process, "console-test", b"a second version");
    let newer_digest = sha256(&newer);
    let files = tempfile::tempdir().unwrap();
    let newer_path = files.path().join("process-v2.wasm");
    std::fs::write(&newer_path, &newer).unwrap();
    session.click("a[data-nav=\"plugins\"]");
    session.click("#plugins-table a[href=\"#/plugins/process\"]");
    session.wait_active(&process_digest);
    session.click("a[href=\"#/changes?plugin=process\"]");
    let preset = session.wait(
        "the upload form, for process",
        "return document.querySelector('#upload-name')?.value || null;",
        vec![],
    );
    assert_eq!(preset, json!("process"));
    session.type_into("#upload-file", &newer_path.display().to_string());
    session.click("#upload-submit");
    let uploaded = session.wait(
        "the upload's answer",
        "const done = document.querySelector('#upload-result [data-outcome=\"ok\"]');
         const problem = document.querySelector('#upload-result .problem');
         return done ? done.dataset.digest : problem ? 'refused: ' + problem.dataset.code : null;",
        vec![],
    );
    assert_eq!(uploaded, json!(newer_digest));
    session.click("#upload-open");
    session.wait_active(&newer_digest);
    assert_eq!(session.try_call("21"), ("ok".to_owned(), "43".to_owned()));

    // Roll back to the first version.
    let rows = session.wait(
        "two versions",
        "const rows = [...document.querySelectorAll('#versions-table tbody tr')];
         return rows.length === 2 && rows.map((row) => [row.dataset.version, row.dataset.active]);",
        vec![],
    );
    assert_eq!(
        rows,
        json!([[newer_digest, "true"], [process_digest, "false"]]),
        "newest first"
    );
    session.click(&format!(
        "#versions-table button.rollback[data-digest=\"{process_digest}\"]"
    ));
    session.wait_active(&process_digest);
    session.wait(
        "the rollback's confirmation",
        "return Boolean(document.querySelector('#change-status [data-outcome=\"ok\"]'));",
        vec![],
    );

    // A module that breaks the plugin contract: refused, with its code,
    // and nothing changed.
    let refused_path = files.path().join("has_start.wasm");
    std::fs::write(&refused_path, support::plugin("has_start")).unwrap();
    session.click("a[data-nav=\"changes\"]");
    session.type_into("#upload-name", "process");
    session.type_into("#upload-file", &refused_path.display().to_string());
    session.click("#upload-submit");
    let code = session.wait(
        "the refused upload's error",
        "const problem = document.querySelector('#upload-result .problem');
         return problem && [problem.dataset.code, problem.dataset.status];",
        vec![],
    );
    assert_eq!(code, json!(["contract_violation", "422"]));
    assert_eq!(
        active_digest(service.address),
        process_digest,
        "a refused upload changes nothing"
    );
    session.screenshot("changes.png");

    // The audit trail, newest first.
    session.click("a[data-nav=\"audit\"]");
    let entries = session.wait(
        "the audit trail",
        "const rows = [...document.querySelectorAll('#audit-table tbody tr')];
         return rows.length >= 3 && rows.map((row) => [row.dataset.action, row.dataset.outcome, row.dataset.time]);",
        vec![],
    );
    let entries = entries.as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .take(3)
        .map(|entry| (entry[0].as_str().unwrap(), entry[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("replace", "contract_violation"), ("rollback", "ok"), ("replace", "ok")],
        "newest first"
    );
    let times: Vec<&str> = entries.iter().map(|entry| entry[2].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {times:?}"
    );
    session.screenshot("audit.png");

    // Live figures: process's calls show in its row and in its chart.
    session.click("a[data-nav=\"plugins\"]");
    let rate = session.wait(
        "process's calls per second",
        "const cell = document.querySelector('tr[data-plugin=\"process\"] td[data-column=\"Calls/s\"]');
         const value = Number(cell?.textContent);
         return value > 0 ? value : null;",
        vec![],
    );
    assert!(rate.as_f64().unwrap() > 0.0);
    let points = session.wait(
        "process's charts",
        "const charts = document.querySelectorAll('figure[data-chart=\"process\"] svg');
         const points = [...charts].map((chart) => Number(chart.dataset.points));
         return points.length === 2 && points[0] >= 2 && points[1] >= 1 && points;",
        vec![],
    );
    assert_eq!(points.as_array().unwrap().len(), 2);
    session.screenshot("plugins.png");

    // A narrow window: nothing wider than the screen (tables become one
    // card per row).
    session.check("narrowing the window", session.browser.resize(390, 844));
    for (view, ready, shot) in [
        ("#/plugins", "#plugins-table tbody tr", "narrow-plugins.png"),
        ("#/plugins/process", "#versions-table", "narrow-plugin.png"),
        ("#/changes", "#upload-form", "narrow-changes.png"),
        ("#/audit", "#audit-table", "narrow-audit.png"),
    ] {
        session.eval("location.hash = arguments[0];", vec![json!(view)]);
        session.wait(
            &format!("{view} in a narrow window"),
            "return Boolean(document.querySelector(arguments[0]));",
            vec![json!(ready)],
        );
        session.screenshot(shot);
    }

    // No request left the origin: every resource the page loaded, every
    // fetch it made, and no request blocked by its policy.
    let traffic = session.eval(
        "return {
           resources: performance.getEntriesByType('resource').map((entry) => entry.name),
           fetches: window.__fetches,
           violations: window.__violations,
         };",
        vec![],
    );
    let urls = |key: &str| -> Vec<String> {
        traffic[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|url| url.as_str().unwrap().to_owned())
            .collect()
    };
    let (resources, fetches) = (urls("resources"), urls("fetches"));
    let own = format!("{origin}/");
    for url in resources.iter().chain(&fetches) {
        assert!(url.starts_with(&own), "{url} is not on {origin}");
    }
    assert!(resources.contains(&format!("{origin}/ui/app.js")), "{resources:?}");
    assert!(fetches.contains(&format!("{origin}/metrics")), "{fetches:?}");
    assert!(
        fetches.contains(&format!("{origin}/v1/plugins/process/rollback")),
        "{fetches:?}"
    );
    assert_eq!(traffic["violations"], json!([]), "Content-Security-Policy violations");
    eprintln!(
        "console: {} resources and {} fetches, all on {origin}; the walk took {:.1?}",
        resources.len(),
        fetches.len(),
        started.elapsed()
    );
}

/// The page and its files carry the policy; an unknown file is a typed 404.
fn the_console_is_served_with_a_same_origin_policy(address: SocketAddr) {
    for (path, media_type) in [
        ("/", "text/html"),
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/console.css", "text/css"),
    ] {
        let answer = Request::new("GET", path).send(address).expect("an answer");
        assert_eq!(answer.status, 200, "{path}");
        assert!(
            answer
                .header("content-type")
                .unwrap_or_default()
                .starts_with(media_type),
            "{path}: {:?}",
            answer.header("content-type")
        );
        let policy = answer.header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            // Forms are handled by the page's script; a form submitted
            // natively (before the script runs, or without it) would carry
            // its fields, the token among them, into a URL.
            "form-action 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {directive} missing from {policy}");
        }
        assert!(!policy.contains("unsafe") && !policy.contains('*'), "{path}: {policy}");
    }
    let missing = Request::new("GET", "/ui/nothing.js").send(address).expect("an answer");
    assert_eq!(missing.status, 404);
    assert_eq!(support::code(&missing.body), "not_found");
}

/// The active digest of `process`, from the API.
fn active_digest(address: SocketAddr) -> String {
    let answer = Request::new("GET", "/v1/plugins/process")
        .send(address)
        .expect("an answer");
    let json: Value = serde_json::from_slice(&answer.body).unwrap();
    json["active_digest"].as_str().unwrap_or_default().to_owned()
}
