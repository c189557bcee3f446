//! Processes for the end-to-end tests: the scenario peers (Python, Node,
//! Rust), the `clarion` binary and the `clarion-ws` examples.
//!
//! Every child is owned by a [`ChildGuard`] (killed and reaped on drop) and
//! every wait has a bound; a failure panics with the child's output.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clarion_test_support::{self_signed_cert, spawn_and_wait_for_line, ChildGuard, TestCert};

use crate::compression::DeflateMode;
use crate::scenario::CHECKS;

/// Time a server gets to say where it listens.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a scenario client gets for all its checks: the spec allows 10 s a
/// check and 60 s for `big`, 170 s for all twelve.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(200);

/// Time the browser check gets: launching Chromium, then its session.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// Time a `cargo build` of a binary gets (others may hold the build lock).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

const SETUP_HINT: &str = "run scripts/test.sh, or run scripts/install-test-deps.sh and \
     export CLARION_INTEROP_PYTHON=$PWD/target/interop-venv/bin/python \
     CLARION_INTEROP_NODE_DIR=$PWD/tests/interop/node";

// ---- where things are ----------------------------------------------------

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_owned()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace
/// root if relative), else `target/` in the workspace root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// A path from an environment variable the test scripts export; panics, with
/// how to set it up, if it is missing or names nothing.
fn required_path(var: &str) -> PathBuf {
    let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        panic!("{var} is not set: {SETUP_HINT}");
    };
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{var}={} does not exist: {SETUP_HINT}",
        path.display()
    );
    path
}

/// The interop venv's python (`CLARION_INTEROP_PYTHON`).
pub fn interop_python() -> PathBuf {
    required_path("CLARION_INTEROP_PYTHON")
}

/// The Node peers' folder, with `node_modules` (`CLARION_INTEROP_NODE_DIR`).
pub fn interop_node_dir() -> PathBuf {
    let dir = required_path("CLARION_INTEROP_NODE_DIR");
    for module in ["ws", "playwright-core"] {
        assert!(
            dir.join("node_modules").join(module).is_dir(),
            "{} has no node_modules/{module}: {SETUP_HINT}",
            dir.display()
        );
    }
    dir
}

/// Debian's Chromium, which the browser check drives.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The `clarion` binary, built once per test process.
pub fn clarion_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        cargo_build(&["-p", "clarion-cli", "--bin", "clarion"]);
        executable(target_dir().join("debug").join("clarion"))
    })
}

/// The folder of the `clarion-ws` examples, built once per test process.
pub fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        cargo_build(&["-p", "clarion-ws", "--examples"]);
        target_dir().join("debug").join("examples")
    })
}

/// An example's executable in [`examples_dir`].
pub fn example(name: &str) -> PathBuf {
    executable(examples_dir().join(name))
}

fn executable(path: PathBuf) -> PathBuf {
    let path = path.with_extension(std::env::consts::EXE_EXTENSION);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Runs `cargo build ARGS` (debug profile) in the workspace; panics on failure.
fn cargo_build(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.arg("build").args(args).current_dir(workspace_root());
    let run = run(&mut cmd, BUILD_TIMEOUT);
    assert!(
        run.status.success(),
        "cargo build {} failed ({})\n{}",
        args.join(" "),
        run.status,
        run.stderr
    );
}

// ---- processes -------------------------------------------------------------

/// A process that ran to its end.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossily decoded).
    pub stdout: String,
    /// Everything it wrote to stderr (lossily decoded).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// The exit status, stdout and stderr, for assertion messages.
    pub fn report(&self) -> String {
        format!(
            "status: {} (after {:.1?})\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with no input to its end, within `timeout`.
///
/// # Panics
/// If it cannot start or does not end in time (it is then killed), with its output.
pub fn run(cmd: &mut Command, timeout: Duration) -> Finished {
    run_with_input(cmd, None, timeout)
}

/// Runs `cmd` to its end within `timeout`. With `Some(input)`, writes it to
/// the child's stdin and then closes stdin; with `None`, stdin stays open
/// (and empty) until the child exits.
///
/// # Panics
/// If it cannot start or does not end in time (it is then killed), with its output.
pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Finished {
    let started = Instant::now();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let mut stdin = child.stdin.take();
    let mut guard = ChildGuard::new(child);
    if let Some(input) = input {
        if let Some(mut pipe) = stdin.take() {
            // A child that exits before reading all of it is judged by its output.
            let _ = pipe.write_all(input);
        }
    }
    let status = wait_bounded(&mut guard, timeout);
    drop(stdin);
    let output = |pipe: Receiver<String>| {
        pipe.recv_timeout(Duration::from_secs(10))
            .unwrap_or_default()
    };
    let finished = Finished {
        status: status.unwrap_or_else(|| kill(&mut guard)),
        stdout: output(stdout),
        stderr: output(stderr),
        elapsed: started.elapsed(),
    };
    assert!(
        status.is_some(),
        "{cmd:?} did not finish within {timeout:?}; killed\n{}",
        finished.report()
    );
    finished
}

/// Waits for the child to exit; `None` if it is still running after `timeout`.
pub fn wait_bounded(guard: &mut ChildGuard, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match guard.child().try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => panic!("waiting for child {}: {err}", guard.id()),
        }
    }
}

fn kill(guard: &mut ChildGuard) -> ExitStatus {
    let child = guard.child();
    let _ = child.kill();
    child.wait().expect("reaping a killed child")
}

/// Reads a pipe to its end on a thread; the text arrives on the receiver.
fn collect(pipe: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

// ---- scenario peers ------------------------------------------------------

/// `ws://` or `wss://` (with a fresh self-signed certificate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain `ws://`.
    Ws,
    /// `wss://`, the server with a self-signed certificate that clients trust.
    Wss,
}

/// A scenario peer program: how to start it, before its own arguments.
#[derive(Clone, Debug)]
pub struct Peer {
    program: PathBuf,
    leading_args: Vec<OsString>,
}

impl Peer {
    /// A Rust peer: one of this crate's binaries.
    pub fn rust(executable: impl Into<PathBuf>) -> Peer {
        Peer {
            program: executable.into(),
            leading_args: Vec::new(),
        }
    }

    /// `tests/interop/python/<script>` on the interop venv's python.
    pub fn python(script: &str) -> Peer {
        let script = workspace_root().join("tests/interop/python").join(script);
        Peer {
            program: interop_python(),
            leading_args: vec![script.into()],
        }
    }

    /// `<CLARION_INTEROP_NODE_DIR>/<script>` on `node`.
    pub fn node(script: &str) -> Peer {
        Peer {
            program: PathBuf::from("node"),
            leading_args: vec![interop_node_dir().join(script).into()],
        }
    }

    /// A command that runs the peer, to which its own arguments are added.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.leading_args);
        cmd
    }
}

/// A running server, killed on drop.
#[derive(Debug)]
pub struct Server {
    guard: ChildGuard,
    /// `ws://127.0.0.1:PORT` or `wss://127.0.0.1:PORT`.
    pub base_url: String,
    /// The certificate it serves, for `wss://`.
    pub cert: Option<TestCert>,
}

impl Server {
    /// Starts a scenario server (`--port 0`) and reads its `LISTENING` line.
    pub fn scenario(peer: &Peer, transport: Transport) -> Server {
        Server::scenario_with(peer, transport, DeflateMode::Off)
    }

    /// [`Server::scenario`] with `--deflate MODE`.
    pub fn scenario_with(peer: &Peer, transport: Transport, deflate: DeflateMode) -> Server {
        let cert = (transport == Transport::Wss).then(self_signed_cert);
        let mut cmd = peer.command();
        cmd.args(["--port", "0", "--deflate", deflate.name()]);
        add_tls_args(&mut cmd, cert.as_ref());
        let (guard, port) = spawn_and_wait_for_line(&mut cmd, "LISTENING ", SERVER_START_TIMEOUT);
        let port: u16 = port
            .parse()
            .unwrap_or_else(|_| panic!("{cmd:?} printed `LISTENING {port}`"));
        let scheme = match transport {
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        };
        Server {
            guard,
            base_url: format!("{scheme}://127.0.0.1:{port}"),
            cert,
        }
    }

    /// Starts `clarion echo --listen 127.0.0.1:0` and reads its `listening on` line.
    pub fn clarion_echo(transport: Transport) -> Server {
        Server::clarion_echo_with(transport, &[])
    }

    /// [`Server::clarion_echo`] with more arguments (`--no-deflate`, say).
    pub fn clarion_echo_with(transport: Transport, args: &[&str]) -> Server {
        let cert = (transport == Transport::Wss).then(self_signed_cert);
        let mut cmd = Command::new(clarion_bin());
        cmd.args(["echo", "--listen", "127.0.0.1:0"]).args(args);
        cmd.args(lifted_admission_limits(args));
        add_tls_args(&mut cmd, cert.as_ref());
        let (guard, url) = spawn_and_wait_for_line(&mut cmd, "listening on ", SERVER_START_TIMEOUT);
        let scheme = if cert.is_some() { "wss://" } else { "ws://" };
        assert!(url.starts_with(scheme), "{cmd:?} listens on {url}");
        Server {
            guard,
            base_url: url,
            cert,
        }
    }

    /// The CA file a client must trust (the self-signed certificate), for `wss://`.
    pub fn ca_file(&self) -> Option<&Path> {
        self.cert.as_ref().map(|cert| cert.cert_pem.as_path())
    }

    /// Sends SIGTERM to the server (by its process id, with `kill`).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends `SIG<name>` (`TERM`, `HUP`, ...) to the server by its process id.
    pub fn signal(&self, name: &str) {
        let pid = self.guard.id().to_string();
        let mut cmd = Command::new("kill");
        let finished = run(
            cmd.args([&format!("-{name}"), &pid]),
            Duration::from_secs(10),
        );
        assert!(
            finished.status.success(),
            "kill -{name} {pid}\n{}",
            finished.report()
        );
    }

    /// The server's process id (for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// Waits for the server to exit; `None` if it still runs after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_bounded(&mut self.guard, timeout)
    }

    /// The server's stderr so far, for failure messages.
    pub fn stderr(&self) -> String {
        self.guard.stderr()
    }
}

fn add_tls_args(cmd: &mut Command, cert: Option<&TestCert>) {
    if let Some(cert) = cert {
        cmd.arg("--tls-cert").arg(&cert.cert_pem);
        cmd.arg("--tls-key").arg(&cert.key_pem);
    }
}

/// What a scenario client is asked to run: `--only`, `--skip`, `--deflate`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checks<'a> {
    /// Only these checks; all if empty.
    pub only: &'a [&'a str],
    /// Not these.
    pub skip: &'a [&'a str],
    /// The client's permessage-deflate mode.
    pub deflate: DeflateMode,
}

impl<'a> Checks<'a> {
    /// Every check, no compression.
    pub fn all() -> Checks<'static> {
        Checks::default()
    }

    /// Only `only` (all if empty), no compression.
    pub fn only(only: &'a [&'a str]) -> Checks<'a> {
        Checks {
            only,
            ..Checks::default()
        }
    }

    /// The same checks with `--deflate MODE`.
    pub fn deflate(self, deflate: DeflateMode) -> Checks<'a> {
        Checks { deflate, ..self }
    }

    /// The same checks but not `skip`.
    pub fn skip(self, skip: &'a [&'a str]) -> Checks<'a> {
        Checks { skip, ..self }
    }

    /// The checks that run, in order.
    pub fn selected(&self) -> Vec<&'static str> {
        CHECKS
            .into_iter()
            .filter(|name| self.only.is_empty() || self.only.contains(name))
            .filter(|name| !self.skip.contains(name))
            .collect()
    }

    fn add_args(&self, cmd: &mut Command) {
        if !self.only.is_empty() {
            cmd.arg("--only").arg(self.only.join(","));
        }
        if !self.skip.is_empty() {
            cmd.arg("--skip").arg(self.skip.join(","));
        }
        cmd.args(["--deflate", self.deflate.name()]);
    }
}

/// Runs a scenario client against `server`, trusting the server's
/// certificate for `wss://`.
pub fn run_scenario_client(client: &Peer, server: &Server, checks: &Checks<'_>) -> Finished {
    let mut cmd = client.command();
    cmd.arg(&server.base_url);
    if let Some(ca) = server.ca_file() {
        cmd.arg("--ca").arg(ca);
    }
    checks.add_args(&mut cmd);
    run(&mut cmd, CLIENT_TIMEOUT)
}

/// Asserts that a scenario client (or the browser check) printed exactly
/// these `PASS` and `FAIL` lines, in order (`Err(prefix)`: a `FAIL` line
/// starting `FAIL <prefix>`), then the matching `N passed, M failed`, and
/// exited 0 exactly when nothing failed; on failure shows its output and
/// the server's stderr.
pub fn assert_outcome(finished: &Finished, want: &[Result<&str, &str>], server: &Server) {
    let mut lines: Vec<String> = want
        .iter()
        .map(|outcome| match outcome {
            Ok(name) => format!("PASS {name}"),
            Err(prefix) => format!("FAIL {prefix}"),
        })
        .collect();
    let failed = want.iter().filter(|outcome| outcome.is_err()).count();
    lines.push(format!("{} passed, {failed} failed", want.len() - failed));
    let got: Vec<&str> = finished.stdout.lines().collect();
    let matches = got.len() == lines.len()
        && got
            .iter()
            .zip(&lines)
            .all(|(got, want)| match want.strip_prefix("FAIL ") {
                Some(_) => got.starts_with(want.as_str()),
                None => got == want,
            });
    let status_ok = finished.status.success() == (failed == 0);
    assert!(
        matches && status_ok,
        "against {}: want the lines\n  {}\nand {}, got\n{}\n--- server stderr ---\n{}",
        server.base_url,
        lines.join("\n  "),
        if failed == 0 { "exit 0" } else { "exit 1" },
        finished.report(),
        server.stderr()
    );
}

/// Asserts that every selected check passed (the client exited 0).
pub fn assert_all_passed(finished: &Finished, checks: &Checks<'_>, server: &Server) {
    let want: Vec<Result<&str, &str>> = checks.selected().into_iter().map(Ok).collect();
    assert_outcome(finished, &want, server);
}

/// Runs `client` against `server` and asserts that the `only` checks (all
/// twelve if empty) passed.
pub fn check_scenario(client: &Peer, server: &Server, only: &[&str]) {
    check_scenario_with(client, server, &Checks::only(only));
}

/// Runs `client` against `server` and asserts that all `checks` passed.
pub fn check_scenario_with(client: &Peer, server: &Server, checks: &Checks<'_>) {
    let finished = run_scenario_client(client, server, checks);
    assert_all_passed(&finished, checks, server);
    eprintln!(
        "scenario client (--deflate {}) against {}: {} checks passed in {:.1?}",
        checks.deflate,
        server.base_url,
        checks.selected().len(),
        finished.elapsed
    );
}

// ---- the browser ---------------------------------------------------------

/// Runs `browser_check.js URL`: headless Chromium against `url`.
///
/// # Panics
/// If Chromium is not installed, saying how to install it.
pub fn run_browser_check(url: &str) -> Finished {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the browser tests need Debian's chromium package \
         (scripts/install-test-deps.sh installs it with apt-get)"
    );
    let script = interop_node_dir().join("browser_check.js");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(url);
    run(&mut cmd, BROWSER_TIMEOUT)
}

/// Every test client connects from 127.0.0.1, often many times a second:
/// the per-IP admission limits meant for the Internet are lifted unless a
/// test sets them itself (`tests/adversarial/` does, to test them).
fn lifted_admission_limits(args: &[&str]) -> Vec<&'static str> {
    let mut lifted = Vec::new();
    if !args.contains(&"--max-connections-per-ip") {
        lifted.extend(["--max-connections-per-ip", "100000"]);
    }
    let rate_flags = ["--max-new-connections-per-second", "--new-connection-burst"];
    if !rate_flags.iter().any(|flag| args.contains(flag)) {
        lifted.extend([rate_flags[0], "1000000", rate_flags[1], "1000000"]);
    }
    lifted
}
