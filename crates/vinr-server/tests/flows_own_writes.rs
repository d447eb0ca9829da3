//! Flows own every write (issue 12): every state change goes through a function in
//! `src/flows/` that takes a `Tx`, so nothing else in the server calls a method of `Tx`.
//!
//! A source scan, not a type check: each `.rs` file under `src/` outside the places that own
//! the transaction is read, and a line that calls a `Tx` method (the names are read from the
//! `impl Tx` blocks in `src/store/sql/`, so a new method is covered at once), takes a `Tx` as a
//! parameter (a helper taking a transaction is a flow in the wrong place), or records an event
//! through the outbox, is reported as `file:line`. Handlers, checkout, the CLI and workers may
//! still call `store.write(…)` (or `idempotency::run`): with a closure `|tx| …` that hands its
//! `tx` to one flow, so a closure that names `tx` more than once (two flows, or a flow and a
//! write of its own, in one transaction) is reported too: that combination is a flow to name.
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

/// The public method names of every `impl Tx<'_> { … }` block in `src/store/sql/` (the
/// write side's statements, grouped by table).
fn tx_methods() -> Vec<String> {
    let dir = format!("{SRC}/store/sql");
    let mut files = Vec::new();
    rust_files(Path::new(&dir), &mut files);
    let mut methods = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).expect("a readable source file");
        for (start, _) in source.match_indices("\nimpl Tx<'_> {") {
            let body = &source[start..];
            let end = body[1..].find("\n}").expect("the impl block ends");
            methods.extend(
                body[..end]
                    .split("\n    pub fn ")
                    .skip(1)
                    .filter_map(|rest| rest.split(['(', '<']).next())
                    .map(|name| name.trim().to_owned()),
            );
        }
    }
    assert!(
        methods.len() >= 10 && methods.iter().any(|m| m == "insert_payment"),
        "could not read the Tx methods from {dir}: {methods:?}"
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

/// `source` with every `//` comment blanked out (same length, so offsets keep their lines);
/// string literals are kept as they are, so a `//` inside one (a URL) ends nothing.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.split_inclusive('\n') {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = None;
        let bytes = line.as_bytes();
        for (at, &byte) in bytes.iter().enumerate() {
            match byte {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'/' if !in_string && bytes.get(at + 1) == Some(&b'/') => {
                    cut = Some(at);
                    break;
                }
                _ => {}
            }
        }
        match cut {
            Some(at) => {
                out.push_str(&line[..at]);
                out.extend(line[at..].chars().map(|c| if c == '\n' { c } else { ' ' }));
            }
            None => out.push_str(line),
        }
    }
    out
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// For every closure `|tx| body` in `code`: its offset and how often its body names `tx`. The
/// body ends at the `,` or closing bracket that ends the closure as an argument.
fn tx_closures(code: &str) -> Vec<(usize, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for (start, _) in code.match_indices("|tx|") {
        let body = &bytes[start + 4..];
        let mut depth = 0i32;
        // Inside a turbofish (`Ok::<_, E>`), whose commas end nothing.
        let mut angle = 0i32;
        let mut end = body.len();
        for (at, &byte) in body.iter().enumerate() {
            let previous = at.checked_sub(1).map(|before| body[before]);
            match byte {
                b'<' if angle > 0 || body[..at].ends_with(b"::") => angle += 1,
                b'>' if angle > 0 && !matches!(previous, Some(b'-' | b'=')) => angle -= 1,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => {
                    end = at;
                    break;
                }
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 && angle == 0 => {
                    end = at;
                    break;
                }
                _ => {}
            }
        }
        let body = &code[start + 4..start + 4 + end];
        let uses = body
            .match_indices("tx")
            .filter(|(at, _)| {
                let before = body.as_bytes().get(at.wrapping_sub(1)).copied();
                let after = body.as_bytes().get(at + 2).copied();
                !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
            })
            .count();
        found.push((start, uses));
    }
    found
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
        let source =
            without_comments(&std::fs::read_to_string(&path).expect("a readable source file"));
        for (offset, uses) in tx_closures(&source) {
            if uses != 1 {
                let line = source[..offset].matches('\n').count() + 1;
                found.push(format!(
                    "src/{relative}:{line}: a `|tx|` closure names its transaction {uses} \
                     times; hand it to one flow"
                ));
            }
        }
        for (index, code) in source.lines().enumerate() {
            let at = format!("src/{relative}:{}", index + 1);
            for method in &methods {
                if calls(code, method) {
                    found.push(format!("{at}: calls Tx::{method} outside src/flows/"));
                }
            }
            // A parameter of type Tx; a closure bound (`F: FnOnce(&mut Tx<'_>)`) only passes
            // a flow along.
            if code.contains(": &mut Tx") {
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
        "state changes outside src/flows/ (move each into a flow taking `tx: &mut Tx<'_>`):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_counts_what_a_closure_does_with_its_transaction() {
    let one = "store.write(move |tx| flows::accounts::first_start(tx, now)).await";
    assert_eq!(tx_closures(one).len(), 1);
    assert_eq!(tx_closures(one)[0].1, 1);
    let two = "store\n.write(move |tx| {\n    let a = flows::a(tx, now)?;\n    \
               let b = flows::b(tx)?;\n    Ok((a, b))\n})\n.await";
    assert_eq!(tx_closures(two)[0].1, 2);
    let argument = "run(&app, key, now, move |tx| flow::create(tx, new).map(f), tail(txs))";
    assert_eq!(tx_closures(argument)[0].1, 1);
    let turbofish = "write(move |tx| Ok::<_, FlowError>(tx.revoke(&id)?)).await";
    assert_eq!(tx_closures(turbofish)[0].1, 1);
    assert_eq!(
        without_comments("a(tx); // b(tx)\n\"http://x\" // c"),
        "a(tx);         \n\"http://x\"     "
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
