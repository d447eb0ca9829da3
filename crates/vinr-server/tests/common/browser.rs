//! Headless Chromium driven through chromedriver (WebDriver, via `fantoccini`), shared by the
//! checkout's and the dashboard's browser tests. Without `chromium` and `chromedriver` on the
//! machine a test says why on standard error and passes; with `VINR_REQUIRE_BROWSER=1` (set by
//! `.ci/run`) their absence fails it.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

pub const REQUIRE_BROWSER_VAR: &str = "VINR_REQUIRE_BROWSER";
pub const CHROMIUM_CANDIDATES: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
pub const CHROMEDRIVER_CANDIDATES: &[&str] =
    &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
pub const WAIT: Duration = Duration::from_secs(15);

fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// One headless Chromium session with its own chromedriver; both end when dropped.
pub struct Browser {
    pub client: Client,
    _driver: Child,
    /// The artifacts subdirectory its screenshots go to (`checkout`, `dashboard`).
    artifacts: &'static str,
}

impl Browser {
    /// A browser, or `None` after saying on standard error why the test is skipped.
    pub async fn start() -> Option<Browser> {
        Browser::start_for("checkout").await
    }

    /// [`Browser::start`], saving screenshots under `target/artifacts/<artifacts>/`.
    pub async fn start_for(artifacts: &'static str) -> Option<Browser> {
        let required = std::env::var(REQUIRE_BROWSER_VAR).is_ok_and(|value| value == "1");
        let (chromium, driver) = match (
            first_existing(CHROMIUM_CANDIDATES),
            first_existing(CHROMEDRIVER_CANDIDATES),
        ) {
            (Some(chromium), Some(driver)) => (chromium, driver),
            _ => {
                assert!(
                    !required,
                    "{REQUIRE_BROWSER_VAR}=1 but chromium or chromedriver is missing; \
                     install them with `apt-get install -y chromium chromium-driver`"
                );
                // Written to the process's standard error, not with `eprintln!`, which libtest
                // captures: a skipped test must not look like a passing one.
                let thread = std::thread::current();
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping {}: it needs chromium and chromedriver \
                     (apt-get install -y chromium chromium-driver)",
                    thread.name().unwrap_or("a browser test")
                );
                return None;
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--no-first-run",
                         "--disable-dev-shm-usage", "--window-size=1000,1200"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) if started.elapsed() > WAIT => {
                    panic!("cannot start a chromium session: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Some(Browser {
            client,
            _driver: driver,
            artifacts,
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    pub async fn fill(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|error| panic!("#{id}: {error}"));
        field.clear().await.expect("cleared");
        field.send_keys(text).await.expect("typed");
    }

    pub async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|error| panic!("#{id}: {error}"))
            .click()
            .await
            .expect("clicked");
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css}: {error}"))
            .text()
            .await
            .expect("text")
    }

    pub async fn value(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|error| panic!("#{id}: {error}"))
            .prop("value")
            .await
            .expect("a value")
            .unwrap_or_default()
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("a URL").to_string()
    }

    /// Waits until the page's URL satisfies `done`; answers it.
    pub async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if done(&url) {
                return url;
            }
            assert!(
                started.elapsed() < WAIT,
                "waited for {what}; still at {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fills the card form and submits it.
    pub async fn pay_with(&self, card: &str) {
        self.fill("card-number", card).await;
        self.fill("card-expiry", "12/30").await;
        self.fill("card-cvc", "123").await;
        self.fill("card-name", "Ada Lovelace").await;
        self.click("pay").await;
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = artifacts_dir(self.artifacts);
        std::fs::create_dir_all(&dir).expect("the artifacts directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is saved");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// `$VINR_ARTIFACTS_DIR/<kind>`, or `target/artifacts/<kind>/`.
pub fn artifacts_dir(kind: &str) -> PathBuf {
    std::env::var_os("VINR_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts"))
        .join(kind)
}
