//! Child processes that announce readiness on stdout and are always cleaned up.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Owns a child process: kills it and waits for it (reaping exactly that process)
/// when dropped, so a failing test never leaks a server.
///
/// Piped stdout and stderr are read by background threads for the child's whole
/// life, so the child never blocks on a full pipe; what they read is available
/// from [`output`](Self::output) and [`stderr`](Self::stderr). If the guard is
/// dropped while the thread panics, both are printed to help explain the failure.
///
/// Only the child itself is killed: a grandchild it started keeps running (and may
/// keep its pipes open) until it exits on its own.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl ChildGuard {
    /// Takes ownership of `child`, draining its stdout and stderr if they are piped.
    pub fn new(child: Child) -> Self {
        Self::with_lines(child, None)
    }

    fn with_lines(mut child: Child, stdout_lines: Option<Sender<String>>) -> Self {
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(drain(pipe, Arc::clone(&stdout), stdout_lines));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(drain(pipe, Arc::clone(&stderr), None));
        }
        Self {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, e.g. to send it input or check whether it has exited.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Everything the child has written to stdout so far (lossily decoded as UTF-8).
    pub fn output(&self) -> String {
        lock(&self.stdout).clone()
    }

    /// Everything the child has written to stderr so far (lossily decoded as UTF-8).
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Waits until the child's stdout contains `needle`, and returns all of it.
    ///
    /// # Panics
    ///
    /// If `needle` does not appear within `timeout`, with the child's output.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{needle:?} did not appear within {timeout:?}\n{}",
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child's output so far, for failure messages.
    fn report(&self) -> String {
        // A child that just exited may have output still in flight: give readers a moment.
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.readers.iter().all(JoinHandle::is_finished) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.output(),
            self.stderr()
        )
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Either may fail only because the child is already gone, which is the goal.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "child process {} output:\n{}",
                self.child.id(),
                self.report()
            );
        }
    }
}

/// Spawns `cmd` with stdout and stderr piped and waits for a stdout line starting
/// with `prefix` (e.g. `"LISTENING "`); returns the guard and the rest of that line.
///
/// # Panics
///
/// If the child cannot be spawned, or exits or closes stdout before printing the
/// line, or does not print it within `timeout`: with the output seen so far.
pub fn spawn_and_wait_for_line(
    cmd: &mut Command,
    prefix: &str,
    timeout: Duration,
) -> (ChildGuard, String) {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let child = child.unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let (lines_tx, lines) = mpsc::channel();
    let mut guard = ChildGuard::with_lines(child, Some(lines_tx));
    match wait_for_line(&lines, prefix, timeout) {
        Ok(rest) => (guard, rest),
        Err(why) => {
            let why = match guard.child.try_wait() {
                Ok(Some(status)) => format!("exited ({status})"),
                _ => why.to_owned(),
            };
            let report = guard.report();
            drop(guard); // Killed before panicking, so its drop does not print the output twice.
            panic!("{cmd:?} {why} before printing a line starting with {prefix:?}\n{report}");
        }
    }
}

fn wait_for_line(
    lines: &Receiver<String>,
    prefix: &str,
    timeout: Duration,
) -> Result<String, &'static str> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => match line.strip_prefix(prefix) {
                Some(rest) => return Ok(rest.to_owned()),
                None => continue,
            },
            Err(RecvTimeoutError::Timeout) => return Err("timed out"),
            Err(RecvTimeoutError::Disconnected) => return Err("closed stdout"),
        }
    }
}

/// Reads `pipe` to its end on a thread of its own, appending to `sink` and
/// sending each line (without its line ending) to `lines` while someone listens.
fn drain(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    lines: Option<Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut reader, mut lines, mut line) = (BufReader::new(pipe), lines, Vec::new());
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            lock(&sink).push_str(&text);
            let bare = text.trim_end_matches(['\n', '\r']).to_owned();
            if lines.as_ref().is_some_and(|tx| tx.send(bare).is_err()) {
                lines = None; // The waiter has its line; stop sending.
            }
            line.clear();
        }
    })
}

/// Locks `mutex`, ignoring poisoning: the strings behind it are valid at every point.
fn lock(mutex: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    /// Runs `f`, expecting it to panic, and returns the panic message.
    fn panic_message(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
        payload.downcast::<String>().map(|s| *s).unwrap_or_default()
    }

    #[test]
    fn returns_the_rest_of_the_ready_line_and_kills_the_child_on_drop() {
        let mut cmd = sh("echo starting; echo LISTENING 42; echo after; exec sleep 30");
        let (guard, rest) =
            spawn_and_wait_for_line(&mut cmd, "LISTENING ", Duration::from_secs(10));
        assert_eq!(rest, "42");
        let output = guard.wait_for_output("after\n", Duration::from_secs(10));
        assert_eq!(output, "starting\nLISTENING 42\nafter\n");
        let pid = guard.id();
        let started = Instant::now();
        drop(guard);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "drop waited for the child to finish"
        );
        if cfg!(target_os = "linux") {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "child {pid} still exists"
            );
        }
    }

    #[test]
    fn keeps_draining_stdout_after_the_ready_line() {
        // Far more than a pipe buffer holds: the child would block if nobody read it.
        let mut cmd = sh("echo LISTENING now; seq 1 200000; echo DONE");
        let (guard, rest) =
            spawn_and_wait_for_line(&mut cmd, "LISTENING ", Duration::from_secs(10));
        assert_eq!(rest, "now");
        let output = guard.wait_for_output("DONE\n", Duration::from_secs(30));
        assert!(output.contains("\n200000\nDONE\n"));
    }

    #[test]
    fn panics_with_stderr_when_the_child_exits_early() {
        let message = panic_message(|| {
            let mut cmd = sh("echo some output; echo bad config >&2; exit 3");
            spawn_and_wait_for_line(&mut cmd, "LISTENING ", Duration::from_secs(10));
        });
        assert!(
            message.contains("before printing a line starting with \"LISTENING \""),
            "{message}"
        );
        assert!(
            message.contains("some output") && message.contains("bad config"),
            "{message}"
        );
    }

    #[test]
    fn panics_on_timeout() {
        let message = panic_message(|| {
            let mut cmd = sh("echo not yet; exec sleep 30");
            spawn_and_wait_for_line(&mut cmd, "LISTENING ", Duration::from_millis(300));
        });
        assert!(
            message.contains("timed out") && message.contains("not yet"),
            "{message}"
        );
    }

    #[test]
    fn guard_drains_a_child_it_did_not_spawn() {
        let child = sh("echo hello; echo world >&2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let guard = ChildGuard::new(child.unwrap());
        guard.wait_for_output("hello\n", Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_secs(10);
        while guard.stderr().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(guard.stderr(), "world\n");
    }
}
