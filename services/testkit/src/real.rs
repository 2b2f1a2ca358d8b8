//! The real tools a workshop's cluster runs (Jaeger v2, the OpenTelemetry Collector, Helm 3 and
//! 4, kubernetes-validate), as `cargo xtask tools install` puts them into `.state/tools/bin/`.
//!
//! A user's plain clone has none of them: tests that need them are skipped there, and say so on
//! the terminal. CI sets `WORKSHOP_REQUIRE_REAL_TOOLS=1`, which turns a missing tool into a
//! failure, so that nothing is skipped there.

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::process::free_address;

/// Set (to anything but `0`) where a missing tool must fail the tests instead of skipping them.
pub const REQUIRE_VAR: &str = "WORKSHOP_REQUIRE_REAL_TOOLS";

/// The checkout's root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("testkit lives in services/").to_owned()
}

/// The installed tool (a program, or a chart's folder), or `None` after saying on the terminal
/// that `test` is skipped.
pub fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let path = workspace_root().join(".state/tools/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    skip(name, test, &path)
}

/// Whether all of `names` are installed; for each that is not, `test` is said to be skipped.
pub fn tools(names: &[&str], test: &str) -> bool {
    names.iter().map(|name| tool(name, test)).fold(true, |all, found| all & found.is_some())
}

/// `what` (at `missing`) is not here: a failure where CI requires it, else `test` is skipped,
/// and said so once.
fn skip<T>(what: &str, test: &str, missing: &Path) -> Option<T> {
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|value| !value.is_empty() && value != "0");
    assert!(!required, "{what} is not here ({} is missing) and {REQUIRE_VAR} is set", missing.display());
    say_skipped(what, test);
    None
}

fn say_skipped(what: &str, test: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap();
    let line = format!("{what}: {test}");
    if !said.contains(&line) {
        // Straight to the terminal: `cargo test` hides what passing tests print with `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: {what} is not here{}.\n",
            if what.contains('/') {
                " (a plain clone has no ../shared/; CI has)"
            } else {
                ": `cargo xtask tools install` builds it (needs Go)"
            }
        );
        said.push(line);
    }
}

/// The real Jaeger v2, with `config/local/jaeger.yaml` (in-memory storage) on free ports; it is
/// killed when dropped.
pub struct Jaeger {
    child: Child,
    /// OTLP/gRPC in.
    pub otlp: SocketAddr,
    /// OTLP/HTTP in (`POST /v1/traces`, protobuf or JSON).
    pub otlp_http: SocketAddr,
    /// The query API v3.
    pub query: SocketAddr,
}

impl Jaeger {
    /// Starts it and waits until its query API answers.
    pub fn start(binary: &Path) -> Self {
        let (otlp, otlp_http, query) = (free_address(), free_address(), free_address());
        let child = Command::new(binary)
            .arg(format!("--config={}", workspace_root().join("config/local/jaeger.yaml").display()))
            .env("JAEGER_OTLP_GRPC", otlp.to_string())
            .env("JAEGER_OTLP_HTTP", otlp_http.to_string())
            .env("JAEGER_QUERY_HTTP", query.to_string())
            .env("JAEGER_QUERY_GRPC", free_address().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut jaeger = Self { child, otlp, otlp_http, query };
        let http = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http.get(jaeger.url("/api/v3/services")).send().is_ok_and(|r| r.status().is_success()) {
            if let Some(status) = jaeger.child.try_wait().unwrap() {
                panic!("jaeger exited ({status}) before it was ready");
            }
            assert!(Instant::now() < deadline, "jaeger was not ready within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        jaeger
    }

    /// A URL of the query service.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.query)
    }
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `../shared/fixtures/` next to the checkout (real upstream data: Jaeger's and OTLP's own
/// fixtures), or `None` after saying on the terminal that `test` is skipped: a user's plain
/// clone has no `../shared/`. CI has it, and with `WORKSHOP_REQUIRE_REAL_TOOLS` set it must.
pub fn shared_fixtures(test: &str) -> Option<PathBuf> {
    shared("fixtures", test)
}

/// `../shared/FOLDER` next to the checkout (`charts`: the upstream charts, packaged), or `None`
/// after saying that `test` is skipped, as [`shared_fixtures`].
pub fn shared(folder: &str, test: &str) -> Option<PathBuf> {
    let dir = workspace_root().join("../shared").join(folder);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!("../shared/{folder}"), test, &dir)
}

/// Whether this process runs as root; if not, `test` is said to be skipped (a failure where CI
/// requires the real tools: CI runs as root).
pub fn root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip::<()>("root", test, Path::new("(euid 0)"));
    false
}

/// Whether each of `programs` is on PATH; for each that is not, `test` is said to be skipped.
pub fn host_programs(programs: &[&str], test: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    programs.iter().fold(true, |all, program| {
        let found = std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
        if !found {
            skip::<()>(&format!("{program} (a Debian package; .ci/run installs it)"), test, Path::new(program));
        }
        all & found
    })
}
