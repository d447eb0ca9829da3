//! The `vinr` processes under test: `vinr serve` started on one database (its address read
//! from its standard output, readiness from `/readyz`), killed with SIGKILL or stopped with
//! SIGTERM, and `vinr accounts create` for a fresh account (and key) per round.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use hyper::Method;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::http::{Conn, Target};

/// Longest a process may take to start listening, to become ready or to stop.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two `/readyz` polls.
const READY_POLL: Duration = Duration::from_millis(5);

/// The configuration every node runs with: rate limits off (the workload is many times the
/// sandbox limit) and settlements on demand only, so no settlement run moves money while the
/// ledger is compared with the balance.
pub const CONFIG_TOML: &str =
    "[rate_limit]\nenabled = false\n\n[settlements]\nschedule = \"manual\"\n";

/// How to start `vinr` on the database under test.
pub struct Launcher {
    pub vinr: PathBuf,
    pub database_url: String,
    config: PathBuf,
    dir: PathBuf,
}

/// A running `vinr serve`. Dropping it kills the process, so no server outlives the tool.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Launcher {
    /// Writes the configuration into `dir`, where the servers' logs go too.
    pub fn new(vinr: &Path, database_url: &str, dir: &Path) -> Result<Launcher, String> {
        let config = dir.join("vinr.toml");
        std::fs::write(&config, CONFIG_TOML)
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        Ok(Launcher {
            vinr: vinr.to_owned(),
            database_url: database_url.to_owned(),
            config,
            dir: dir.to_owned(),
        })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.vinr);
        for name in [
            "VINR_DATABASE_URL",
            "VINR_CONFIG",
            "VINR_LISTEN",
            "VINR_PUBLIC_URL",
        ] {
            command.env_remove(name);
        }
        // Request logs of a whole run would fill the disk; warnings and errors are kept.
        command.env("VINR_LOG", "warn").stdin(Stdio::null());
        command
    }

    /// `vinr migrate`: makes the database (a fresh SQLite file) and its schema, which the
    /// other one-shot commands need to exist.
    pub async fn migrate(&self) -> Result<(), String> {
        self.one_shot(&["migrate"]).await.map(drop)
    }

    /// `vinr accounts create`: a new account (on a database [`Launcher::migrate`] made);
    /// answers its test secret key. Each round works in its own account, so its lists, events
    /// and balance hold that round's objects only, whatever else the database holds.
    pub async fn create_account(&self, name: &str) -> Result<String, String> {
        let stdout = self
            .one_shot(&["accounts", "create", "--name", name])
            .await?;
        stdout
            .split_whitespace()
            .find(|word| word.starts_with("sk_test_"))
            .map(str::to_owned)
            .ok_or_else(|| format!("vinr accounts create printed no sk_test_ key: {stdout}"))
    }

    /// Runs `vinr <args…> --database-url <the database>`; answers its standard output.
    async fn one_shot(&self, args: &[&str]) -> Result<String, String> {
        let what = format!("vinr {}", args[..args.len().min(2)].join(" "));
        let output = tokio::time::timeout(
            PROCESS_DEADLINE,
            self.command()
                .args(args)
                .arg("--database-url")
                .arg(&self.database_url)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| format!("{what} did not finish within 30 s"))?
        .map_err(|e| format!("cannot run {}: {e}", self.vinr.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "{what} failed ({}): {}{}",
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(stdout)
    }

    /// Starts `vinr serve --listen 127.0.0.1:0` and waits until it says where it listens and
    /// `/readyz` answers 200; answers the node and how long that took.
    pub async fn start(&self, name: &str) -> Result<(Node, Duration), String> {
        let log = self.dir.join(format!("{name}.log"));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let started = Instant::now();
        let mut child = self
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(&self.database_url)
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.vinr.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| "vinr serve: no standard output".to_owned())?;
        let mut lines = BufReader::new(stdout).lines();
        let deadline = started + PROCESS_DEADLINE;
        let addr = loop {
            let line = tokio::time::timeout_at(deadline, lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) => {
                    if let Some(addr) = line.trim().strip_prefix("vinr listening on http://") {
                        break addr.parse::<SocketAddr>().map_err(|e| {
                            format!("vinr serve printed an odd address {addr:?}: {e}")
                        })?;
                    }
                }
                Ok(_) => {
                    return Err(format!(
                        "vinr serve exited before listening; its log {}:\n{}",
                        log.display(),
                        tail(&log)
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "vinr serve did not listen within 30 s; its log {}:\n{}",
                        log.display(),
                        tail(&log)
                    ))
                }
            }
        };
        // The rest of its output (nothing is expected) must not fill the pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let node = Node { child, addr, log };
        node.wait_ready(deadline).await?;
        Ok((node, started.elapsed()))
    }
}

impl Node {
    async fn wait_ready(&self, deadline: Instant) -> Result<(), String> {
        let target = Target::resolve(&format!("http://{}", self.addr), None).await?;
        let uri = target.uri("/readyz").map_err(|f| f.to_string())?;
        let mut conn = Conn::new(self.addr);
        loop {
            let req = target.request(Method::GET, uri.clone(), None, None);
            let last = match conn.send(req, false, deadline).await {
                Ok(_) => return Ok(()),
                Err(failure) => failure,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} not ready within 30 s ({last}); its log {}:\n{}",
                    self.addr,
                    self.log.display(),
                    tail(&self.log)
                ));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// `kill -9`: no chance to flush, answer or clean up.
    pub async fn kill(mut self) -> Result<(), String> {
        self.child
            .start_kill()
            .map_err(|e| format!("cannot SIGKILL {}: {e}", self.addr))?;
        self.child
            .wait()
            .await
            .map(drop)
            .map_err(|e| format!("cannot reap the killed server: {e}"))
    }

    /// `kill -TERM`, then waits for the exit; answers its status (killed after 30 s).
    pub async fn terminate(mut self) -> Result<ExitStatus, String> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| "the server already exited".to_owned())?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        match tokio::time::timeout(PROCESS_DEADLINE, self.child.wait()).await {
            Ok(status) => status.map_err(|e| format!("cannot reap the server: {e}")),
            Err(_) => Err(format!(
                "the server did not exit within 30 s of SIGTERM; its log {}:\n{}",
                self.log.display(),
                tail(&self.log)
            )),
        }
    }
}

/// The last lines of a log, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
