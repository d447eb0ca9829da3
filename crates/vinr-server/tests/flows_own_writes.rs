//! Flows own every write (issue 12): every state change goes through a function in
//! `src/flows/` that takes a `Tx`, so nothing else in the server calls a method of `Tx`.
//!
//! A source scan, not a type check: each `.rs` file under `src/` outside the places that own
//! the transaction is read, and a line that calls a `Tx` method (the names are read from the
//! trait in `src/store/mod.rs`, so a new method is covered at once), names the `Tx` type in a
//! signature (a helper taking a transaction is a flow in the wrong place), or records an event
//! through the outbox, is reported as `file:line`. Handlers, checkout, the CLI and workers may
//! still call `store.write(…)`: with a closure that hands its `tx` to one flow.
//!
//! Allowed: `src/flows/` (the flows), `src/store/` (the implementations),
//! `src/idempotency/` (claims the key and stores the answer in the flow's transaction) and
//! `src/outbox.rs` (the event writer the flows call; the scan checks it has no other caller).

use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Paths (relative to `src/`, `/`-separated) allowed to hold a transaction.
const OWNERS: &[&str] = &["flows/", "store/", "idempotency/", "outbox.rs"];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{dir:?}: {error}"));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The method names of `pub trait Tx { … }` in `src/store/mod.rs`.
fn tx_methods() -> Vec<String> {
    let path = format!("{SRC}/store/mod.rs");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let start = source
        .find("pub trait Tx {")
        .expect("src/store/mod.rs defines `pub trait Tx`");
    let body = &source[start..];
    let end = body.find("\n}").expect("the Tx trait ends");
    let methods: Vec<String> = body[..end]
        .split("fn ")
        .skip(1)
        .filter_map(|rest| rest.split(['(', '<']).next())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    assert!(
        methods.len() >= 10 && methods.iter().any(|m| m == "insert_payment"),
        "could not read the Tx methods from {path}: {methods:?}"
    );
    methods
}

/// Whether `line` calls `method` (`x.method(`, `Tx::method(`), as a whole name.
fn calls(line: &str, method: &str) -> bool {
    // `::` only after `Tx`: a flow may share a Tx method's name (`flows::x::prune_events`).
    [".", "Tx::"].iter().any(|sep| {
        let needle = format!("{sep}{method}");
        line.match_indices(&needle).any(|(at, _)| {
            let after = line[at + needle.len()..].trim_start();
            after.starts_with('(') || after.starts_with("::<")
        })
    })
}

/// Every violation in the server's sources, as `src/file.rs:line: what`.
fn violations() -> Vec<String> {
    let methods = tx_methods();
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(SRC)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if OWNERS.iter().any(|owner| relative.starts_with(owner)) {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a readable source file");
        for (index, line) in source.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let at = format!("src/{relative}:{}", index + 1);
            for method in &methods {
                if calls(code, method) {
                    found.push(format!("{at}: calls Tx::{method} outside src/flows/"));
                }
            }
            if code.contains("dyn Tx") || code.contains("impl Tx") {
                found.push(format!(
                    "{at}: takes a Tx outside src/flows/ (make it a flow)"
                ));
            }
            if code.contains("outbox::") {
                found.push(format!("{at}: records an event outside src/flows/"));
            }
        }
    }
    found
}

#[test]
fn only_flows_call_the_write_transaction() {
    let found = violations();
    assert!(
        found.is_empty(),
        "state changes outside src/flows/ (move each into a flow taking `tx: &mut dyn Tx`):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_direct_call() {
    assert!(calls("tx.revoke_api_key(&key_id, now)?", "revoke_api_key"));
    assert!(calls(
        "Ok(tx.lease_webhook_deliveries(now, a, b)?)",
        "lease_webhook_deliveries"
    ));
    assert!(calls(
        "            .prune_events (before, 10)",
        "prune_events"
    ));
    assert!(!calls(
        "flows::api_keys::revoke(tx, &key_id, now)",
        "revoke_api_key"
    ));
    assert!(calls("Tx::prune_events(tx, before, 10)", "prune_events"));
    assert!(!calls("tx.insert_payments(&x)", "insert_payment"));
    assert!(!calls(
        "maintenance::prune_events(tx, before)",
        "prune_events"
    ));
}
