//! A minimal W3C WebDriver client that drives Debian's headless Chromium through `chromedriver`.
//!
//! Synchronous and dependency-light (`ureq` + `serde_json`): one `Browser` owns one chromedriver
//! process and one session; dropping it ends both.

// Test support: each test binary uses only part of the API, and that must not fail `-D warnings`.
#![allow(dead_code)]

use std::fmt;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which W3C WebDriver wraps element references (the spec's "web element identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver may take to answer `/status` with `ready: true`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Chromium flags besides `--user-data-dir`: `--no-sandbox` because tests may run as root in containers.
const CHROMIUM_ARGS: &str = "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --disable-dev-shm-usage --window-size=1280,1000";
/// How often the polling loops retry.
const POLL: Duration = Duration::from_millis(50);

/// Results of WebDriver commands.
pub(crate) type Result<T> = std::result::Result<T, WebDriverError>;

/// Why a WebDriver command failed.
#[derive(Debug)]
pub(crate) enum WebDriverError {
    /// chromedriver or Chromium could not be started.
    Launch(String),
    /// The HTTP exchange with chromedriver failed, or its reply was not WebDriver JSON.
    Transport(String),
    /// chromedriver answered with a WebDriver error (`error` is e.g. "no such element").
    Command { command: String, status: u16, error: String, message: String },
    /// A polling wait ran out of time.
    Timeout(String),
    /// A local file operation or decoding failed.
    Io(String),
}

impl WebDriverError {
    /// Whether this is WebDriver's "no such element" error.
    pub(crate) fn is_no_such_element(&self) -> bool {
        matches!(self, WebDriverError::Command { error, .. } if error == "no such element")
    }
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebDriverError::Launch(m) => write!(f, "browser launch failed: {m}"),
            WebDriverError::Transport(m) => write!(f, "webdriver transport error: {m}"),
            // chromedriver's messages usually repeat the error code already.
            WebDriverError::Command { command, status, error, message } if message.starts_with(error.as_str()) => {
                write!(f, "webdriver {command} failed (HTTP {status}): {message}")
            }
            WebDriverError::Command { command, status, error, message } => {
                write!(f, "webdriver {command} failed (HTTP {status}): {error}: {message}")
            }
            WebDriverError::Timeout(m) => write!(f, "timed out: {m}"),
            WebDriverError::Io(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for WebDriverError {}

/// Sends one WebDriver command and returns the reply's `value`, or its error as `Command`.
fn send(agent: &ureq::Agent, method: &str, url: &str, body: Option<&Value>) -> Result<Value> {
    let command = format!("{method} {url}");
    let transport = |e: ureq::Error| WebDriverError::Transport(format!("{command}: {e}"));
    let mut response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => {
            agent.post(url).content_type("application/json; charset=utf-8").send(body.unwrap_or(&json!({})).to_string())
        }
    }
    .map_err(transport)?;
    let status = response.status().as_u16();
    // Page sources and screenshots can exceed ureq's 10 MB default body limit.
    let text = response.body_mut().with_config().limit(1 << 30).read_to_string().map_err(transport)?;
    let mut reply: Value = serde_json::from_str(&text)
        .map_err(|e| WebDriverError::Transport(format!("{command}: reply is not JSON ({e}): {text:.500}")))?;
    let value = reply.get_mut("value").map(Value::take).unwrap_or(Value::Null);
    if status < 400 {
        return Ok(value);
    }
    match value.get("error").and_then(Value::as_str) {
        Some(error) => Err(WebDriverError::Command {
            command,
            status,
            error: error.to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        }),
        None => Err(WebDriverError::Transport(format!("{command}: HTTP {status}: {text:.500}"))),
    }
}

/// Converts a WebDriver reply into a string, failing if it is not one.
fn string(value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(WebDriverError::Transport(format!("expected a string, got {other}"))),
    }
}

/// The W3C key code for a key name ("Enter", "ArrowRight", ...) or the single character itself.
fn key_code(key: &str) -> Result<String> {
    let code = match key {
        "Backspace" => '\u{E003}',
        "Tab" => '\u{E004}',
        "Enter" => '\u{E007}',
        "Shift" => '\u{E008}',
        "Control" => '\u{E009}',
        "Alt" => '\u{E00A}',
        "Escape" => '\u{E00C}',
        "PageUp" => '\u{E00E}',
        "PageDown" => '\u{E00F}',
        "End" => '\u{E010}',
        "Home" => '\u{E011}',
        "ArrowLeft" => '\u{E012}',
        "ArrowUp" => '\u{E013}',
        "ArrowRight" => '\u{E014}',
        "ArrowDown" => '\u{E015}',
        "Delete" => '\u{E017}',
        "Meta" => '\u{E03D}',
        _ if key.chars().count() == 1 => return Ok(key.to_owned()),
        _ => return Err(WebDriverError::Io(format!("unknown key name {key:?}"))),
    };
    Ok(code.to_string())
}

/// The standard base64 alphabet, in order of value.
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decodes standard (padded or unpadded) base64, as WebDriver returns screenshots.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=') {
        let sextet = BASE64.iter().position(|&c| c == byte);
        let sextet = sextet.ok_or_else(|| WebDriverError::Io(format!("invalid base64 byte {byte:#04x}")))?;
        acc = (acc << 6) | sextet as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// A headless Chromium session behind its own chromedriver process.
#[derive(Debug)]
pub(crate) struct Browser {
    /// HTTP client with lenient status handling so WebDriver error bodies can be read.
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT` of chromedriver.
    base: String,
    /// The session id; empty until the session exists, so `Drop` knows whether to delete it.
    session: String,
    /// The chromedriver process.
    driver: Child,
    /// Holds the Chromium profile and the chromedriver log; deleted on drop.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    ///
    /// Chromium's binary is `/usr/bin/chromium` unless the environment variable `DD_CHROMIUM` names another.
    pub(crate) fn start() -> Result<Browser> {
        let launch = |what: &str, e: &dyn fmt::Display| WebDriverError::Launch(format!("{what}: {e}"));
        let dir = tempfile::tempdir().map_err(|e| launch("temp dir", &e))?;
        // Racy in theory (the port is free only until chromedriver binds it), fine for tests.
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| launch("free port", &e))?.port();
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).map_err(|e| launch("chromedriver log", &e))?;
        let log_err = log.try_clone().map_err(|e| launch("chromedriver log", &e))?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => WebDriverError::Launch(
                    "chromedriver not found: install chromium-driver (apt-get install chromium chromium-driver)".into(),
                ),
                _ => launch("spawning chromedriver", &e),
            })?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            // A proxy from the environment must never intercept loopback traffic to chromedriver.
            .proxy(None)
            .build();
        // From here on `Drop` cleans up chromedriver whatever fails.
        let mut browser = Browser {
            agent: config.new_agent(),
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            driver,
            dir,
        };
        browser.wait_ready().map_err(|e| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            WebDriverError::Launch(format!("{e}; chromedriver log:\n{log}"))
        })?;
        let binary = std::env::var("DD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = browser.dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.split_whitespace().map(str::to_owned).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            // Implicit waits stay 0 so a missing element fails at once; `wait_for` polls instead.
            "timeouts": {"implicit": 0, "pageLoad": 30_000, "script": 30_000},
        }}});
        let session = send(&browser.agent, "POST", &format!("{}/session", browser.base), Some(&capabilities))?;
        browser.session = string(session["sessionId"].clone())
            .map_err(|_| WebDriverError::Launch(format!("no sessionId in new session reply: {session}")))?;
        Ok(browser)
    }

    /// Polls `/status` until chromedriver reports ready, or it exits, or the startup timeout passes.
    fn wait_ready(&mut self) -> std::result::Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = format!("{}/status", self.base);
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited early ({status})"));
            }
            match send(&self.agent, "GET", &url, None) {
                Ok(value) if value["ready"] == json!(true) => return Ok(()),
                result if Instant::now() >= deadline => {
                    let last = result.map_or_else(|e| e.to_string(), |v| v.to_string());
                    return Err(format!("chromedriver not ready after 20 s (last: {last})"));
                }
                _ => sleep(POLL),
            }
        }
    }

    /// Sends a command under this session, e.g. `("POST", "/url", ...)`.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        send(&self.agent, method, &format!("{}/session/{}{path}", self.base, self.session), body.as_ref())
    }

    /// Wraps an element reference from a reply.
    fn element(&self, value: &Value) -> Result<Element<'_>> {
        match value.get(ELEMENT_KEY).and_then(Value::as_str) {
            Some(id) => Ok(Element { browser: self, id: id.to_owned() }),
            None => Err(WebDriverError::Transport(format!("expected an element reference, got {value}"))),
        }
    }

    /// Navigates to `url` and waits for the page load (up to the 30 s page-load timeout).
    pub(crate) fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).map(drop)
    }

    /// The current page's URL.
    pub(crate) fn current_url(&self) -> Result<String> {
        string(self.cmd("GET", "/url", None)?)
    }

    /// The current page's title.
    pub(crate) fn title(&self) -> Result<String> {
        string(self.cmd("GET", "/title", None)?)
    }

    /// Goes back one step in history.
    pub(crate) fn back(&self) -> Result<()> {
        self.cmd("POST", "/back", None).map(drop)
    }

    /// The current DOM serialised as HTML.
    pub(crate) fn page_source(&self) -> Result<String> {
        string(self.cmd("GET", "/source", None)?)
    }

    /// The first element matching the CSS selector; a "no such element" error if there is none.
    pub(crate) fn find(&self, css: &str) -> Result<Element<'_>> {
        self.find_under("", css)
    }

    /// `find` below `scope`: "" for the document or "/element/{id}" for an element's descendants.
    fn find_under(&self, scope: &str, css: &str) -> Result<Element<'_>> {
        let found =
            self.cmd("POST", &format!("{scope}/element"), Some(json!({"using": "css selector", "value": css})))?;
        self.element(&found)
    }

    /// All elements matching the CSS selector, possibly none.
    pub(crate) fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let found = self.cmd("POST", "/elements", Some(json!({"using": "css selector", "value": css})))?;
        found
            .as_array()
            .map(|a| a.iter().map(|v| self.element(v)).collect())
            .unwrap_or_else(|| Err(WebDriverError::Transport(format!("expected an element list, got {found}"))))
    }

    /// Polls until an element matches the CSS selector (present in the DOM, not necessarily displayed).
    pub(crate) fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(css) {
                Err(e) if e.is_no_such_element() && Instant::now() < deadline => sleep(POLL),
                Err(e) if e.is_no_such_element() => {
                    return Err(WebDriverError::Timeout(format!("no element matched {css:?} within {timeout:?}")));
                }
                result => return result,
            }
        }
    }

    /// Runs a synchronous script (`return ...;` gives the result); `args` are its `arguments`.
    ///
    /// Pass elements with `Element::to_json`; elements in the result come back as references.
    pub(crate) fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// Presses and releases one key through the Actions API.
    ///
    /// Keys go to the focused element, or to the page body when nothing has focus (blur inputs first
    /// to test page shortcuts). `key` is one character ("j") or a name ("ArrowRight", "Enter", "Escape").
    pub(crate) fn press_key(&self, key: &str) -> Result<()> {
        self.press_chord(&[key])
    }

    /// Presses the keys in order and releases them in reverse, e.g. `["Control", "k"]`.
    pub(crate) fn press_chord(&self, keys: &[&str]) -> Result<()> {
        let codes = keys.iter().map(|k| key_code(k)).collect::<Result<Vec<_>>>()?;
        let downs = codes.iter().map(|c| json!({"type": "keyDown", "value": c}));
        let ups = codes.iter().rev().map(|c| json!({"type": "keyUp", "value": c}));
        let actions: Vec<Value> = downs.chain(ups).collect();
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.cmd("POST", "/actions", Some(body)).map(drop)
    }

    /// Saves a PNG screenshot of the viewport to `path`, creating parent directories.
    pub(crate) fn screenshot(&self, path: &Path) -> Result<()> {
        let png = decode_base64(&string(self.cmd("GET", "/screenshot", None)?)?)?;
        let io = |e: std::io::Error| WebDriverError::Io(format!("writing screenshot {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(path, png).map_err(io)
    }

    /// Browser console messages at level SEVERE (JS errors, failed loads) since the last call.
    ///
    /// Uses chromedriver's legacy log endpoint, which drains the log on each read.
    pub(crate) fn console_errors(&self) -> Result<Vec<String>> {
        let entries = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})))?;
        let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
        let severe = entries.iter().filter(|e| e["level"] == "SEVERE");
        Ok(severe.map(|e| e["message"].as_str().unwrap_or_default().to_owned()).collect())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Deleting the session makes chromedriver close Chromium; killing chromedriver alone would orphan it.
        if !self.session.is_empty() {
            let _ = self.cmd("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A reference to a DOM element in a `Browser`'s current page.
#[derive(Clone, Debug)]
pub(crate) struct Element<'b> {
    /// The browser the element lives in.
    browser: &'b Browser,
    /// WebDriver's element id.
    id: String,
}

impl<'b> Element<'b> {
    /// Sends a command about this element, e.g. `("GET", "/text", ...)`.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.browser.cmd(method, &format!("/element/{}{path}", self.id), body)
    }

    /// The element as a script argument for `Browser::execute`.
    pub(crate) fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// The rendered (visible) text.
    pub(crate) fn text(&self) -> Result<String> {
        string(self.cmd("GET", "/text", None)?)
    }

    /// The HTML attribute `name`, or `None` if absent.
    pub(crate) fn attribute(&self, name: &str) -> Result<Option<String>> {
        self.cmd("GET", &format!("/attribute/{name}"), None).map(|v| v.as_str().map(str::to_owned))
    }

    /// The DOM property `name` (`value`, `checked`, ...); non-strings come back as JSON text.
    pub(crate) fn property(&self, name: &str) -> Result<Option<String>> {
        Ok(match self.cmd("GET", &format!("/property/{name}"), None)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// Clicks the element's centre (scrolling it into view); fails if another element covers it.
    pub(crate) fn click(&self) -> Result<()> {
        self.cmd("POST", "/click", None).map(drop)
    }

    /// Focuses the element and types `text` into it.
    pub(crate) fn send_keys(&self, text: &str) -> Result<()> {
        self.cmd("POST", "/value", Some(json!({ "text": text }))).map(drop)
    }

    /// Empties an input or textarea.
    pub(crate) fn clear(&self) -> Result<()> {
        self.cmd("POST", "/clear", None).map(drop)
    }

    /// Whether the element is displayed (WebDriver's visibility heuristic).
    pub(crate) fn is_displayed(&self) -> Result<bool> {
        let shown = self.cmd("GET", "/displayed", None)?;
        shown.as_bool().ok_or_else(|| WebDriverError::Transport(format!("expected a boolean, got {shown}")))
    }

    /// The first descendant matching the CSS selector; a "no such element" error if there is none.
    pub(crate) fn find(&self, css: &str) -> Result<Element<'b>> {
        self.browser.find_under(&format!("/element/{}", self.id), css)
    }
}
