//! The real `vinr` binary as a child process: `vinr serve` (read its key and address from
//! standard output) and the one-shot commands (`accounts`, `keys`, `migrate`). Database URLs
//! come from [`super::database`], so the binary runs on the backend the suite runs on.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use vinr_server::config::SANDBOX_SECRET_KEY_VAR;

/// How long a process may take to start or to stop before the test fails.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

pub fn vinr_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vinr")
}

/// Writes `<dir>/vinr.toml` with rate limits off; answers its path.
pub fn config_without_rate_limits(dir: &Path) -> PathBuf {
    let path = dir.join("vinr.toml");
    std::fs::write(&path, "[rate_limit]\nenabled = false\n").expect("config written");
    path
}

/// A running `vinr serve`. Dropping it kills the process, so a failed test leaves none behind.
pub struct Served {
    child: Option<Child>,
    lines: Receiver<String>,
    pub base: String,
    /// The key printed on first start (`None` on a database that already had an account).
    pub printed_key: Option<String>,
    /// What it printed on standard output before it said where it listens.
    pub printed: Vec<String>,
    stderr_log: PathBuf,
}

impl Served {
    /// Starts `vinr serve --listen 127.0.0.1:0` on `database_url` and waits (by reading its
    /// standard output, not by sleeping) until it says where it listens.
    pub fn start(dir: &Path, database_url: &str, config: &Path) -> Served {
        Served::start_wrapped(&[], dir, database_url, config)
    }

    /// [`Served::start`] with these environment variables set for the process.
    pub fn start_with_env(
        dir: &Path,
        database_url: &str,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Served {
        Served::launch(&[], dir, database_url, config, env)
    }

    /// [`Served::start`] under a wrapper command such as `prlimit --nofile=256:256`, which
    /// runs the binary (given as its last argument) as the child itself.
    pub fn start_wrapped(
        wrapper: &[&str],
        dir: &Path,
        database_url: &str,
        config: &Path,
    ) -> Served {
        Served::launch(wrapper, dir, database_url, config, &[])
    }

    fn launch(
        wrapper: &[&str],
        dir: &Path,
        database_url: &str,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Served {
        let stderr_log = dir.join(format!("serve-{}.log", unique()));
        let stderr = std::fs::File::create(&stderr_log).expect("stderr log file");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(vinr_bin());
                command
            }
            None => Command::new(vinr_bin()),
        };
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(database_url)
            .arg("--config")
            .arg(config)
            .env_remove("VINR_PUBLIC_URL")
            .env_remove(SANDBOX_SECRET_KEY_VAR)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("vinr serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child: Some(child),
            lines,
            base: String::new(),
            printed_key: None,
            printed: Vec::new(),
            stderr_log,
        };
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = served.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "vinr serve did not say where it listens; its log:\n{}",
                    served.log()
                )
            });
            if let Some(key) = super::word_with_prefix(&line, "sk_test_") {
                served.printed_key = Some(key);
            }
            if let Some(addr) = line.strip_prefix("vinr listening on ") {
                served.base = addr.trim().to_owned();
                return served;
            }
            served.printed.push(line);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running child").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill_9(mut self) {
        let mut child = self.child.take().expect("a running child");
        child.kill().expect("SIGKILL sent");
        child.wait().expect("the killed child is reaped");
    }

    /// `kill -TERM`, then waits (polling the exit status) until the process exits.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("a running child");
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().expect("the child's status") {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > PROCESS_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "vinr serve did not exit after SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default()
}

/// What a one-shot command said.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `vinr <args…>` to completion.
pub async fn vinr(args: &[&str]) -> Output {
    vinr_with(None, &[], args).await
}

/// Runs `vinr <args…>` to completion in directory `dir` (when given) with these environment
/// variables set.
pub async fn vinr_with(dir: Option<&Path>, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(vinr_bin());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command
        .args(args)
        .env_remove("VINR_DATABASE_URL")
        .env_remove("VINR_CONFIG")
        .env_remove(SANDBOX_SECRET_KEY_VAR)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("vinr runs");
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Output {
    #[track_caller]
    pub fn expect_success(&self) -> &str {
        assert!(
            self.success,
            "vinr failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    #[track_caller]
    pub fn expect_failure(&self) -> &str {
        assert!(
            !self.success,
            "vinr should have failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
}
