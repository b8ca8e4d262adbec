//! A real browser for the console's tests: Debian's `chromedriver` on a
//! loopback port chosen at run time, driving headless `chromium` with a
//! profile directory of its own, through a small W3C WebDriver client
//! (JSON over HTTP with the `ureq` this crate already uses).
//!
//! A WebDriver crate would bring an async stack (fantoccini: tokio, hyper)
//! or a large blocking one (thirtyfour) for the dozen commands the tests
//! use; these few functions are all of it.
//!
//! [`Browser`] stops what it started when dropped: it ends the session
//! (chromedriver closes chromium), then kills chromedriver's process group
//! (anything left of chromium with it) and waits for it. `cargo xtask ci`
//! installs `chromium` and `chromium-driver` when they are missing; a test
//! never does: [`missing`] says what to run instead.

use std::fmt::Display;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::nats::free_port;

/// The command that installs the browser and its driver.
pub const BROWSER_INSTALL_COMMAND: &str = "apt-get update && apt-get install -y chromium chromium-driver";

/// How long a [`Browser::wait_for`] condition may take before the test
/// fails. A generous bound on a loaded two-core machine; conditions that
/// hold return as soon as they do.
pub const WAIT: Duration = Duration::from_secs(20);

/// How long chromedriver may take to answer `/status`.
const DRIVER_READY: Duration = Duration::from_secs(30);

/// Between two looks at a condition.
const POLL: Duration = Duration::from_millis(50);

/// The key W3C WebDriver names element references by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Keys for [`Browser::press`] and [`Browser::type_into`], as WebDriver
/// spells them.
pub mod keys {
    /// Tab.
    pub const TAB: &str = "\u{E004}";
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
}

/// `chromium` and `chromedriver`, on `PATH` or where Debian's packages put
/// them.
pub fn find_browser() -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| {
        wasmplug_build::toolchain::find_program(name).or_else(|| {
            let debian = Path::new("/usr/bin").join(name);
            debian.is_file().then_some(debian)
        })
    };
    Some((find("chromium")?, find("chromedriver")?))
}

/// Why the browser tests cannot run here, with the command that fixes it;
/// `None` when they can.
pub fn missing() -> Option<String> {
    match find_browser() {
        Some(_) => None,
        None => Some(format!(
            "chromium and chromedriver are not both installed; `cargo xtask ci` installs them, or run (as root, on \
             Debian):\n    {BROWSER_INSTALL_COMMAND}"
        )),
    }
}

/// An element of the page, as WebDriver refers to it.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One headless chromium under chromedriver, with one session.
pub struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
    // Chromium's profile: new for every browser, removed after it.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless chromium `width` × `height`
    /// pixels.
    pub fn start(width: u32, height: u32) -> anyhow::Result<Browser> {
        let (chromium, chromedriver) = find_browser().with_context(|| missing().unwrap_or_default())?;
        let profile = tempfile::Builder::new().prefix("wasmplug-chromium-").tempdir()?;
        let port = free_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so whatever it starts can be stopped
            // with it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", chromedriver.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            agent,
            _profile: profile,
        };
        browser.wait_for_driver()?;
        // As root, chromium runs only without its sandbox; the page it
        // loads is the test's own. Nothing else reaches the network:
        // no background requests, no component updates, no sync, no QUIC.
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": chromium, "args": args },
            } },
        });
        let session = browser.command("POST", "/session", Some(capabilities))?;
        let id = session["sessionId"]
            .as_str()
            .with_context(|| format!("no session id in {session}"))?;
        browser.base = format!("{}/session/{id}", browser.base);
        Ok(browser)
    }

    fn wait_for_driver(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(status) = self.command("GET", "/status", None) {
                if status["ready"] == json!(true) {
                    return Ok(());
                }
            }
            if let Some(exit) = self.driver.try_wait()? {
                bail!("chromedriver exited before it was ready ({exit})");
            }
            if started.elapsed() > DRIVER_READY {
                bail!("chromedriver was not ready within {DRIVER_READY:?}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// One WebDriver command: `path` under the session (or the driver,
    /// before there is one). Returns the answer's `value`; a WebDriver
    /// error is an error naming it.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let answer = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut answer = answer.with_context(|| format!("{method} {url}"))?;
        let status = answer.status();
        let text = answer
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .with_context(|| format!("{method} {url}: cannot read the answer"))?;
        let json: Value = serde_json::from_str(&text).with_context(|| format!("{method} {url}: not JSON: {text}"))?;
        let value = json.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{method} {path}: {} ({}): {}",
                value["error"].as_str().unwrap_or("error"),
                status.as_u16(),
                value["message"].as_str().unwrap_or_default()
            );
        }
        Ok(value)
    }

    /// Runs `script` in every document this browser loads from now on,
    /// before the page's own scripts (chromium's DevTools command, which
    /// chromedriver passes on; the page's Content-Security-Policy does not
    /// apply to it).
    pub fn on_new_document(&self, script: &str) -> anyhow::Result<()> {
        self.devtools("Page.addScriptToEvaluateOnNewDocument", json!({ "source": script }))?;
        Ok(())
    }

    /// Loads `url` and waits until the document has loaded.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the
    /// page and returns what it returns.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.command("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> anyhow::Result<Element> {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        element(&found).with_context(|| format!("no element reference for {css}: {found}"))
    }

    /// The first element matching `css`, once there is one.
    pub fn wait_for_element(&self, css: &str) -> anyhow::Result<Element> {
        self.wait_for(format!("an element matching `{css}`"), || Ok(self.find(css).ok()))
    }

    /// Clicks `element`, as a person would (scrolled into view first).
    pub fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.command("POST", &format!("/element/{}/click", element.0), None)?;
        Ok(())
    }

    /// Focuses `element` and types `text` (for a file input: a path).
    pub fn type_into(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.command(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )?;
        Ok(())
    }

    /// Empties a text field.
    pub fn clear(&self, element: &Element) -> anyhow::Result<()> {
        self.command("POST", &format!("/element/{}/clear", element.0), None)?;
        Ok(())
    }

    /// The rendered text of `element`.
    pub fn text(&self, element: &Element) -> anyhow::Result<String> {
        let text = self.command("GET", &format!("/element/{}/text", element.0), None)?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Presses and releases `key` (see [`keys`]) wherever the focus is.
    pub fn press(&self, key: &str) -> anyhow::Result<()> {
        let actions = json!({ "actions": [{
            "type": "key",
            "id": "keyboard",
            "actions": [{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }],
        }] });
        self.command("POST", "/actions", Some(actions))?;
        Ok(())
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.command(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )?;
        Ok(())
    }

    /// Saves a PNG of the whole page, beyond the window's height too, to
    /// `path` (chromium's DevTools screenshot: WebDriver's shows only the
    /// window).
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let metrics = self.devtools("Page.getLayoutMetrics", json!({}))?;
        let height = metrics["cssContentSize"]["height"].as_f64().context("no page height")?;
        // The window's whole width: captured beyond the window, the page
        // has no scrollbar, and is laid out over the width it took.
        let width = self
            .execute("return window.innerWidth;", vec![])?
            .as_f64()
            .context("no window width")?;
        let shot = self.devtools(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
            }),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().context("no screenshot data")?)
            .context("the screenshot is not base64")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
    }

    /// One DevTools command, through chromedriver.
    fn devtools(&self, command: &str, params: Value) -> anyhow::Result<Value> {
        self.command(
            "POST",
            "/goog/cdp/execute",
            Some(json!({ "cmd": command, "params": params })),
        )
    }

    /// Checks `condition` until it gives a value or [`WAIT`] has passed;
    /// the error names `what` and the last error the condition returned.
    pub fn wait_for<T>(
        &self,
        what: impl Display,
        mut condition: impl FnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let mut last_error = None;
        loop {
            match condition() {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(error) => last_error = Some(error),
            }
            if started.elapsed() > WAIT {
                match last_error {
                    Some(error) => bail!("waited {WAIT:?} for {what}; last error: {error:#}"),
                    None => bail!("waited {WAIT:?} for {what}"),
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes chromium; then chromedriver's group
        // goes, with anything the session left behind.
        if self.base.contains("/session/") {
            let _ = self.command("DELETE", "", None);
        }
        let group = self.driver.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group
        // chromedriver leads; it was created for it at spawn.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn element(value: &Value) -> Option<Element> {
    value[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned()))
}
