//! The command line (SPEC §8): `serve`, `accounts`, `keys`, `settle`, `migrate`. Every command
//! takes `--database-url` like `serve`. Secrets are printed once, on standard output;
//! everything else a command says goes to standard error through the log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vinr_domain::ledger::BalanceType;
use vinr_domain::settlement::{Line, SettlementStatus, Totals};
use vinr_domain::{Mode, UnixMillis};

use crate::auth::SCOPES;
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Settings, SettlementSettings, DATABASE_URL_DEFAULT, LISTEN_DEFAULT};
use crate::flows::{self, FlowError};
use crate::keys::SecretKey;
use crate::render;
use crate::server;
use crate::store::{BalanceTransactionFilter, Scope, Store, StoreError, Tx};
use crate::workers::settlements::{run_once, Outcome, Selection};

#[derive(Parser)]
#[command(name = "vinr", version, about = "VINR payments server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Database {
    /// `sqlite://PATH` (a file; `serve` and `migrate` create it if missing) or
    /// `postgres://user[:password]@host:port/db` (an existing database). Commands other than
    /// `serve` and `migrate` never create a database: with none there they exit non-zero (`no database at …`)
    #[arg(long, env = "VINR_DATABASE_URL", default_value = DATABASE_URL_DEFAULT)]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the checkout pages and the workers
    Serve {
        /// Address to listen on
        #[arg(long, env = "VINR_LISTEN", default_value = LISTEN_DEFAULT)]
        listen: SocketAddr,
        #[command(flatten)]
        database: Database,
        /// Base of `checkoutUrl` (default `http://<listen>`)
        #[arg(long, env = "VINR_PUBLIC_URL")]
        public_url: Option<String>,
        /// Optional TOML file (every key optional): `modes`, and the tables `[http]`
        /// (connection timeouts and cap), `[rate_limit]`, `[idempotency]` (retention),
        /// `[payments]` (expiry, authorization period), `[webhooks]` (retries, timeouts, CAs,
        /// test hosts), `[pricing]` (fees, per account), `[settlements]` (schedules,
        /// `test_schedule`, payout delay, per account), `[sandbox]` (`secret_key`). The
        /// sandbox key can also come from VINR_SANDBOX_SECRET_KEY, which wins over the file
        #[arg(long, env = "VINR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage merchant accounts
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Manage API keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage platform keys (`plk_…`), which drive the accounts API (`/v1/accounts`)
    PlatformKeys {
        #[command(subcommand)]
        command: PlatformKeysCommand,
    },
    /// Settle now everything that is due (whatever the schedules) and send due payouts; or,
    /// with `--report`, print one settlement's reconciliation
    Settle {
        /// Only this account
        #[arg(long)]
        account: Option<String>,
        /// Only this mode
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Print this settlement's transactions and check that they add up, instead of running
        #[arg(long, value_name = "SETTLEMENT_ID")]
        report: Option<String>,
        /// The server's TOML file (as `serve --config`); only its `[settlements]` table
        /// (payout delay) is used here
        #[arg(long, env = "VINR_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        database: Database,
    },
    /// Apply pending database migrations and exit
    Migrate {
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account and print its id and a new `sk_test_…` key
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: Database,
    },
    /// List accounts, newest first
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Rename an account (the name the checkout page shows)
    Rename {
        /// The account id (`acct_…`)
        id: String,
        /// The new name, 1 to 200 characters
        name: String,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Subcommand)]
enum PlatformKeysCommand {
    /// Create a platform key and print it (shown once)
    Create {
        #[command(flatten)]
        database: Database,
    },
    /// List platform keys (never the secrets)
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Revoke a platform key by its id (`plkey_…`); it stops working on the next request
    Revoke {
        key_id: String,
        #[command(flatten)]
        database: Database,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Test,
    Live,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Test => Mode::Test,
            ModeArg::Live => Mode::Live,
        }
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a secret key, or a restricted one with `--scopes`
    Create {
        #[arg(long)]
        account: String,
        #[arg(long, value_enum, default_value = "test")]
        mode: ModeArg,
        /// Comma-separated scopes for a restricted `rk_…` key, e.g. `payments:read,events:read`
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        #[command(flatten)]
        database: Database,
    },
    /// List an account's keys (never the secrets)
    List {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: Database,
    },
    /// Revoke a key by its id (`key_…`); it stops working on the next request
    Revoke {
        key_id: String,
        #[command(flatten)]
        database: Database,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vinr: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vinr: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VINR_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("VINR_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Opens the database of a command that works on an existing one: a missing database is
/// an error, never created (only `serve` and `migrate` create one).
async fn open(database: &Database) -> Result<Store, String> {
    let url = &database.database_url;
    let exists = Store::exists(url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", shown_url(url)))?;
    if !exists {
        return Err(no_database(url));
    }
    open_or_create(database).await
}

/// Opens the database, creating an SQLite file that is not there, and applies migrations.
async fn open_or_create(database: &Database) -> Result<Store, String> {
    Store::open(&database.database_url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", shown_url(&database.database_url)))
}

fn no_database(url: &str) -> String {
    let at = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let absolute = std::path::absolute(path)
                .map(|absolute| absolute.display().to_string())
                .unwrap_or_else(|_| path.to_owned());
            if absolute == path {
                format!("{path} (no such file)")
            } else {
                format!("{path} (no such file: {absolute})")
            }
        }
        None => format!("{} (the server has no such database)", shown_url(url)),
    };
    format!(
        "no database at {at}; `vinr serve` or `vinr migrate` creates one, and --database-url \
         (VINR_DATABASE_URL) names another"
    )
}

/// `url` with any password replaced, for messages.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// How `serve` (the sandbox account) and `accounts create` print an account they made and
/// its key: the same two lines on standard output, the key shown once.
fn print_created(what: &str, account_id: &str, key: &SecretKey) {
    println!("Created {what} {account_id}");
    println!(
        "Its test secret key (shown once, keep it): {}",
        key.expose()
    );
}

/// The last four characters of a key: enough to tell which it is, without showing it.
fn last4(key: &SecretKey) -> &str {
    let key = key.expose();
    &key[key.len().saturating_sub(4)..]
}

/// Opens the database, runs one flow in a write transaction, and closes the store again.
async fn write_once<T, F>(database: &Database, flow: F) -> Result<T, String>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, FlowError> + Send + 'static,
    T: Send + 'static,
{
    let store = open(database).await?;
    let written = store.write(flow).await;
    store.shutdown();
    written.map_err(flow_error)
}

/// `vinr settle`: everything due now. One account's test mode is settled at its test clock's
/// time (SPEC §10), its live mode and every other account at real time; without `--account`
/// the accounts whose test clock was advanced are left to their clock (the server settles
/// them as it moves).
async fn settle_on_demand(
    store: &Store,
    settings: &SettlementSettings,
    real: UnixMillis,
    account: Option<String>,
    mode: Option<ModeArg>,
) -> Result<Outcome, FlowError> {
    let Some(account_id) = account else {
        let everyone = Selection {
            account_id: None,
            mode: mode.map(Mode::from),
            on_demand: true,
        };
        return run_once(store, settings, real, &everyone).await;
    };
    let wanted = account_id.clone();
    let offset = store
        .read(move |reader| reader.clock_offset(&wanted))
        .await?;
    let mut outcome = Outcome::default();
    for each in [Mode::Test, Mode::Live] {
        if mode.is_some_and(|only| Mode::from(only) != each) {
            continue;
        }
        let now = match each {
            Mode::Test => real.plus_ms(offset),
            Mode::Live => real,
        };
        let selection = Selection {
            account_id: Some(account_id.clone()),
            mode: Some(each),
            on_demand: true,
        };
        let ran = run_once(store, settings, now, &selection).await?;
        outcome.created.extend(ran.created);
        outcome.paid.extend(ran.paid);
    }
    Ok(outcome)
}

fn flow_error(error: FlowError) -> String {
    match error {
        FlowError::NotFound { object, id } => format!("no such {object}: {id}"),
        FlowError::Invalid { param, message } => format!("{param}: {message}"),
        FlowError::State(error) => error.to_string(),
        FlowError::Refund(error) => error.to_string(),
        FlowError::Dispute(error) => error.to_string(),
        FlowError::AccountHasLiveData {
            account_id,
            objects,
        } => format!("the account {account_id} has {objects} live-mode object(s)"),
        FlowError::Store(error) => error.to_string(),
    }
}

async fn run(command: Command) -> Result<(), String> {
    let clock = SystemClock;
    match command {
        Command::Serve {
            listen,
            database,
            public_url,
            config,
        } => {
            let mut file = config::load_file(config.as_deref())?;
            config::sandbox_key_from_env(&mut file)?;
            let mut settings = Settings::new(listen, database.database_url, public_url, file)?;
            settings.platform_key = std::env::var("VINR_PLATFORM_KEY")
                .ok()
                .filter(|key| !key.is_empty())
                .map(crate::redacted::Redacted::new);
            serve(settings).await
        }
        Command::Migrate { database } => {
            // Opening applies pending migrations.
            let store = open_or_create(&database).await?;
            store.shutdown();
            eprintln!(
                "vinr: {} is at the newest schema",
                shown_url(&database.database_url)
            );
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::Create { name, database },
        } => {
            let now = clock.now();
            let created = write_once(&database, move |tx| {
                flows::accounts::create_account(tx, &name, now)
            })
            .await;
            let (account, key) = created?;
            print_created("the account", &account.id, &key.secret);
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::List { database },
        } => {
            let store = open(&database).await?;
            let listed = all_accounts(&store).await;
            store.shutdown();
            println!("{:<31} {:<20} name", "id", "created");
            for account in listed? {
                println!(
                    "{:<31} {:<20} {}",
                    account.id,
                    render::timestamp(account.created_at),
                    account.name
                );
            }
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::Rename { id, name, database },
        } => {
            let renamed = write_once(&database, move |tx| {
                flows::accounts::rename_account(tx, &id, &name)
            })
            .await;
            let account = renamed?;
            println!("account {} is now named {}", account.id, account.name);
            Ok(())
        }
        Command::PlatformKeys {
            command: PlatformKeysCommand::Create { database },
        } => {
            let now = clock.now();
            let created = write_once(&database, move |tx| {
                flows::accounts::create_platform_key(tx, now)
            })
            .await;
            let key = created?;
            println!("platform key id: {}", key.record.id);
            println!("platform key (shown once): {}", key.secret.expose());
            Ok(())
        }
        Command::PlatformKeys {
            command: PlatformKeysCommand::List { database },
        } => {
            let store = open(&database).await?;
            let listed = store
                .read(|reader| reader.list_platform_keys())
                .await
                .map_err(|error: StoreError| error.to_string());
            store.shutdown();
            println!(
                "{:<34} {:<10} {:<6} {:<20} status",
                "id", "key", "source", "created"
            );
            for key in listed? {
                println!(
                    "{:<34} {:<10} {:<6} {:<20} {}",
                    key.id,
                    key.display,
                    key.source,
                    render::timestamp(key.created_at),
                    if key.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
            Ok(())
        }
        Command::PlatformKeys {
            command: PlatformKeysCommand::Revoke { key_id, database },
        } => {
            let now = clock.now();
            let revoked = write_once(&database, move |tx| {
                flows::accounts::revoke_platform_key(tx, &key_id, now)
            })
            .await;
            if revoked? {
                println!("revoked");
                Ok(())
            } else {
                Err("no such active platform key".into())
            }
        }
        Command::Keys { command } => keys(command, &clock).await,
        Command::Settle {
            report: Some(id),
            database,
            ..
        } => {
            let store = open(&database).await?;
            let printed = settlement_report(&store, &id).await;
            store.shutdown();
            printed
        }
        Command::Settle {
            account,
            mode,
            report: None,
            config,
            database,
        } => {
            let file = config::load_file(config.as_deref())?;
            let settings = SettlementSettings::new(&file.settlements)?;
            let store = open(&database).await?;
            if let Some(account) = account.clone() {
                let wanted = account.clone();
                let found = store
                    .read(move |reader| reader.get_account(&wanted))
                    .await
                    .map_err(|error: StoreError| error.to_string());
                if !matches!(found, Ok(Some(_))) {
                    store.shutdown();
                    return Err(found.err().unwrap_or(format!("no such account: {account}")));
                }
            }
            let outcome = settle_on_demand(&store, &settings, clock.now(), account, mode).await;
            store.shutdown();
            let outcome = outcome.map_err(flow_error)?;
            println!(
                "{:<30} {:<5} {:<8} {:<8} {:>12} {:>12} {:>12} {:>10} {:>12} {:>6}",
                "settlement",
                "mode",
                "currency",
                "status",
                "gross",
                "refunds",
                "disputes",
                "fees",
                "net",
                "count"
            );
            for made in &outcome.created {
                let shown = outcome
                    .paid
                    .iter()
                    .find(|paid| paid.id == made.id)
                    .unwrap_or(made);
                println!(
                    "{:<30} {:<5} {:<8} {:<8} {:>12} {:>12} {:>12} {:>10} {:>12} {:>6}",
                    shown.id,
                    shown.mode.as_str(),
                    shown.currency.code(),
                    shown.status.as_str(),
                    shown.totals.gross,
                    shown.totals.refunds,
                    shown.totals.disputes,
                    shown.totals.fees,
                    shown.totals.net,
                    shown.totals.transaction_count
                );
            }
            let earlier = outcome
                .paid
                .iter()
                .filter(|paid| !outcome.created.iter().any(|made| made.id == paid.id))
                .count();
            eprintln!(
                "vinr: {} settlement(s) made, {} payout(s) sent ({earlier} of earlier settlements)",
                outcome.created.len(),
                outcome.paid.len()
            );
            Ok(())
        }
    }
}

/// Every account, newest first, read a page at a time.
async fn all_accounts(store: &Store) -> Result<Vec<crate::store::AccountRecord>, String> {
    use crate::store::{Cursor, ListError, ListQuery};
    let mut all = Vec::new();
    let mut cursor = Cursor::None;
    loop {
        let query = ListQuery {
            limit: vinr_domain::limits::LIST_LIMIT_MAX,
            cursor,
            created_gte: None,
            created_lt: None,
        };
        let page = store
            .read(move |reader| reader.list_accounts(&query))
            .await
            .map_err(|error: ListError| match error {
                ListError::Store(error) => error.to_string(),
                ListError::UnknownCursor { id, .. } => format!("the account {id} went away"),
            })?;
        let last = page.items.last().map(|account| account.id.clone());
        all.extend(page.items);
        match (page.has_more, last) {
            (true, Some(id)) => cursor = Cursor::StartingAfter(id),
            _ => return Ok(all),
        }
    }
}

/// Prints settlement `id`'s transactions and checks them against its totals; an error when
/// they do not add up.
async fn settlement_report(store: &Store, id: &str) -> Result<(), String> {
    let wanted = id.to_owned();
    let settlement = store
        .read(move |reader| reader.get_settlement(&wanted))
        .await
        .map_err(|error: StoreError| error.to_string())?
        .ok_or_else(|| format!("no such settlement: {id}"))?;
    let scope = Scope {
        account_id: settlement.account_id.clone(),
        mode: settlement.mode,
    };
    let filter = BalanceTransactionFilter {
        settlement: Some(settlement.id.clone()),
        ..BalanceTransactionFilter::default()
    };
    let lines = store
        .all_balance_transactions(&scope, &filter)
        .await
        .map_err(|error| error.to_string())?;
    let totals = &settlement.totals;
    println!(
        "settlement {}  account {}  {} mode  {}  {}",
        settlement.id,
        settlement.account_id,
        settlement.mode.as_str(),
        settlement.currency.code(),
        settlement.status.as_str()
    );
    println!(
        "period {} → {}   created {}   paid {}",
        render::timestamp(settlement.period_start),
        render::timestamp(settlement.period_end),
        render::timestamp(settlement.created_at),
        settlement
            .paid_at
            .map_or_else(|| "-".to_owned(), render::timestamp)
    );
    println!();
    println!(
        "{:<30} {:<16} {:<30} {:>12} {:>10} {:>12}  created",
        "transaction", "type", "source", "amount", "fee", "net"
    );
    for b in &lines {
        println!(
            "{:<30} {:<16} {:<30} {:>12} {:>10} {:>12}  {}",
            b.id,
            b.kind.as_str(),
            b.source,
            b.amount,
            b.fee,
            b.net,
            render::timestamp(b.created_at)
        );
    }
    let listed = Totals::of(
        &lines
            .iter()
            .map(|b| Line {
                kind: b.kind,
                amount: b.amount,
                fee: b.fee,
                net: b.net,
                created_at: b.created_at,
            })
            .collect::<Vec<_>>(),
    );
    println!();
    println!(
        "gross {}  refunds {}  disputes {}  fees {}  net {}  (minor units of {})",
        totals.gross,
        totals.refunds,
        totals.disputes,
        totals.fees,
        totals.net,
        settlement.currency.code()
    );
    let checks = [
        (
            "transactions",
            listed.transaction_count as i64,
            totals.transaction_count as i64,
        ),
        ("gross", listed.gross, totals.gross),
        ("refunds", listed.refunds, totals.refunds),
        ("disputes", listed.disputes, totals.disputes),
        ("fees", listed.fees, totals.fees),
        ("net", listed.net, totals.net),
        (
            "gross − refunds − disputes − fees",
            totals.gross - totals.refunds - totals.disputes - totals.fees,
            totals.net,
        ),
    ];
    let mut all_good = true;
    for (what, from_lines, stated) in checks {
        let good = from_lines == stated;
        all_good &= good;
        println!(
            "{} {what}: {from_lines} from the transactions, {stated} on the settlement",
            if good { "ok  " } else { "FAIL" }
        );
    }
    // The payout, a `payout` balance transaction of its own (not one of the lines above):
    // −net once paid, nothing before.
    let payout_filter = BalanceTransactionFilter {
        source: Some(settlement.id.clone()),
        kind: Some(BalanceType::Payout),
        ..BalanceTransactionFilter::default()
    };
    let payouts = store
        .all_balance_transactions(&scope, &payout_filter)
        .await
        .map_err(|error| error.to_string())?;
    let paid_out: i64 = payouts.iter().map(|b| b.net).sum();
    let owed = match settlement.status {
        SettlementStatus::Paid => -totals.net,
        SettlementStatus::Pending => 0,
    };
    let good = paid_out == owed;
    all_good &= good;
    let named: Vec<&str> = payouts.iter().map(|b| b.id.as_str()).collect();
    println!(
        "{} payout: {paid_out} booked ({}), {owed} owed by a {} settlement",
        if good { "ok  " } else { "FAIL" },
        if named.is_empty() {
            "no payout transaction".to_owned()
        } else {
            named.join(", ")
        },
        settlement.status.as_str()
    );
    if all_good {
        Ok(())
    } else {
        Err(format!("settlement {} does not add up", settlement.id))
    }
}

async fn keys(command: KeysCommand, clock: &dyn Clock) -> Result<(), String> {
    let now = clock.now();
    match command {
        KeysCommand::Create {
            account,
            mode,
            scopes,
            database,
        } => {
            if let Some(unknown) = scopes
                .iter()
                .find(|scope| !SCOPES.contains(&scope.as_str()))
            {
                return Err(format!(
                    "unknown scope `{unknown}`; scopes are {}",
                    SCOPES.join(", ")
                ));
            }
            let created = write_once(&database, move |tx| {
                flows::accounts::create_key(tx, &account, mode.into(), scopes, now)
            })
            .await;
            let key = created?;
            println!("key id: {}", key.record.id);
            println!(
                "{} key ({} mode, shown once): {}",
                key.record.kind.as_str(),
                key.record.mode.as_str(),
                key.secret.expose()
            );
            Ok(())
        }
        KeysCommand::List { account, database } => {
            let store = open(&database).await?;
            let wanted = account.clone();
            let listed = store
                .read(move |reader| {
                    if reader.get_account(&wanted)?.is_none() {
                        return Ok(None);
                    }
                    reader.list_api_keys(&wanted).map(Some)
                })
                .await;
            store.shutdown();
            let keys = listed
                .map_err(|error: crate::store::StoreError| error.to_string())?
                .ok_or_else(|| format!("no such account: {account}"))?;
            println!(
                "{:<28} {:<5} {:<10} {:<18} {:<20} {:<9} scopes",
                "id", "mode", "kind", "key", "created", "status"
            );
            for key in keys {
                println!(
                    "{:<28} {:<5} {:<10} {:<18} {:<20} {:<9} {}",
                    key.id,
                    key.mode.as_str(),
                    key.kind.as_str(),
                    key.display,
                    render::timestamp(key.created_at),
                    if key.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    key.scopes.join(",")
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { key_id, database } => {
            let revoked = write_once(&database, move |tx| {
                flows::accounts::revoke_key(tx, &key_id, now)
            })
            .await;
            if revoked? {
                println!("revoked");
                Ok(())
            } else {
                Err("no such active key".into())
            }
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let source = settings.sandbox_key.as_ref().map_or("", |key| key.source);
    let running = server::start(settings, Arc::new(SystemClock)).await?;
    match (&running.bootstrapped, &running.sandbox_key_added) {
        // The operator's own key is not printed: they have it, and logs keep standard output.
        (Some(made), _) if made.fixed => {
            println!("Created the sandbox account {}", made.account_id);
            println!(
                "Its test secret key is the one {source} gives (…{})",
                last4(&made.secret_key)
            );
        }
        (Some(made), _) => print_created("the sandbox account", &made.account_id, &made.secret_key),
        (None, Some(account_id)) => {
            println!("Added the test secret key {source} gives to the sandbox account {account_id}")
        }
        (None, None) => {}
    }
    println!("vinr listening on http://{}", running.addr);
    tracing::info!(addr = %running.addr, "listening");
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the server");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
