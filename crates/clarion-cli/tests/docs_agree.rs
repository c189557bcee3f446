//! The docs and the binary agree: every flag (`--xxx`), `CLARION_*`
//! variable and config key that `docs/server.md`, `docs/limits.md` and
//! `docs/operations.md` name exists in the real `clarion` binary — its own
//! `--help` and `clarion serve --print-config` (every key the config
//! deserializer knows, with its default) — and the defaults the docs'
//! tables state are the binary's. Also: the committed sample config is what
//! the binary prints, and durations read the same from flags, environment
//! and file (the one grammar).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const DOCS: &[&str] = &["docs/server.md", "docs/limits.md", "docs/operations.md"];
const SUBCOMMANDS: &[&str] = &["serve", "echo", "connect", "bench", "token", "publish"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_doc(doc: &str) -> String {
    std::fs::read_to_string(repo().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

/// `clarion ARGS` without any `CLARION_*` or `RUST_LOG` of the caller.
fn clarion(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clarion"));
    command.args(args).current_dir(repo());
    for (var, _) in std::env::vars() {
        if var.starts_with("CLARION_") || var == "RUST_LOG" {
            command.env_remove(var);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("clarion runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What the binary says about itself.
struct Binary {
    /// Flags of each subcommand (global ones included), from `--help`.
    flags: BTreeMap<String, BTreeSet<String>>,
    /// `CLARION_*` variable -> config key, as `clarion serve --help` lists them.
    serve_env: BTreeMap<String, String>,
    /// Every `CLARION_*` any subcommand's help names.
    env: BTreeSet<String>,
    /// Dotted config key (or table) -> its default as printed (`"10s"`,
    /// `65536`, `(not set)` for unset keys, empty for tables).
    keys: BTreeMap<String, String>,
}

impl Binary {
    fn read() -> Binary {
        let mut flags = BTreeMap::new();
        let mut env = BTreeSet::new();
        let mut serve_env = BTreeMap::new();
        for sub in SUBCOMMANDS {
            let output = run(&mut clarion(&[sub, "--help"]));
            assert!(output.status.success(), "clarion {sub} --help failed");
            let help = stdout(&output);
            flags.insert(sub.to_string(), words(&help, "--"));
            env.extend(env_vars(&help));
            if *sub == "serve" {
                for line in help.lines() {
                    let mut parts = line.split_whitespace();
                    if let (Some(var), Some(key), None) = (parts.next(), parts.next(), parts.next())
                    {
                        if var.starts_with("CLARION_") {
                            serve_env.insert(var.to_owned(), key.to_owned());
                        }
                    }
                }
            }
        }
        let printed = print_config(&[]);
        Binary {
            flags,
            serve_env,
            env,
            keys: printed_keys(&printed),
        }
    }

    /// Whether `key` (dotted) is a config key or table; namespace names
    /// are written `NAME` in the docs.
    fn has_key(&self, key: &str) -> bool {
        self.keys.contains_key(&normalize_key(key))
    }
}

/// `hub.namespaces.chat.x` -> `hub.namespaces.NAME.x`.
fn normalize_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["hub", "namespaces", _, rest @ ..] => {
            let mut key = "hub.namespaces.NAME".to_owned();
            for part in rest {
                key.push('.');
                key.push_str(part);
            }
            key
        }
        _ => key.to_owned(),
    }
}

/// `clarion serve --print-config ARGS`, which must succeed.
fn print_config(args: &[&str]) -> String {
    let mut all = vec!["serve", "--print-config"];
    all.extend_from_slice(args);
    let output = run(&mut clarion(&all));
    assert!(
        output.status.success(),
        "clarion {all:?}: {}",
        stderr(&output)
    );
    stdout(&output)
}

/// Keys (and tables) of `--print-config` output with their printed values.
fn printed_keys(toml: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let mut table = String::new();
    for line in toml.lines() {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = normalize_key(&header.replace('"', ""));
            keys.insert(table.clone(), String::new());
            continue;
        }
        let line = line.strip_prefix("# ").unwrap_or(line);
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        if key.contains(' ') {
            continue; // a comment
        }
        let dotted = match table.as_str() {
            "" => key.to_owned(),
            table => format!("{table}.{key}"),
        };
        keys.insert(dotted, value.to_owned());
    }
    keys
}

/// Every `PREFIX[a-z0-9-]+` in `text` (flags: `--max-connections`).
fn words(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let word = &after[..len];
        let starts_ok = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-');
        if starts_ok && word.starts_with(|c: char| c.is_ascii_lowercase()) {
            found.insert(format!("{prefix}{}", word.trim_end_matches('-')));
        }
        rest = &after[len..];
    }
    found
}

/// Every `CLARION_X` named in `text` (not the `CLARION_*` pattern).
fn env_vars(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("CLARION_") {
        let after = &rest[at..];
        let len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let var = &after[..len];
        if !var.ends_with('_') {
            found.insert(var.to_owned());
        }
        rest = &after[len..];
    }
    found
}

/// A piece of code in a doc: an inline code span or a line of a fenced
/// block, with where it is and which command its section is about.
struct Code {
    doc: &'static str,
    line: usize,
    text: String,
    /// The subcommand the nearest heading names (`clarion serve`), else
    /// the doc's own.
    section: Option<&'static str>,
    /// The header of the table column it is in, if in a table.
    column: Option<String>,
    /// The table's first cell on this row, if in a table.
    row_key: Option<String>,
    /// The row's default cell, if the table has a `default` column.
    row_default: Option<String>,
    /// The nearest heading's text.
    heading: String,
}

fn default_command(doc: &str) -> Option<&'static str> {
    match doc {
        "docs/server.md" => Some("serve"),
        _ => None,
    }
}

/// The doc's lines, with each paragraph of prose joined into one (a code
/// span may go over a line break), numbered by their first line; fences
/// are kept as lines of their own.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut fenced = false;
    let mut prose = false;
    for (n, line) in text.lines().enumerate() {
        let special = line.trim().is_empty()
            || line.starts_with('#')
            || line.starts_with('|')
            || line.starts_with("```");
        if line.starts_with("```") {
            fenced = !fenced;
        }
        match (prose && !special && !fenced, lines.last_mut()) {
            (true, Some((_, last))) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => lines.push((n + 1, line.to_owned())),
        }
        prose = !special && !fenced;
    }
    lines
}

fn code_pieces(doc: &'static str) -> Vec<Code> {
    let text = read_doc(doc);
    let mut pieces = Vec::new();
    let mut section = default_command(doc);
    let mut heading = String::new();
    let mut fenced = false;
    let mut columns: Vec<String> = Vec::new();
    for (number, line) in logical_lines(&text) {
        let line = line.as_str();
        let piece = |text: &str, column: Option<String>, row: &[String], columns: &[String]| {
            let default_at = columns.iter().position(|c| c == "default");
            Code {
                doc,
                line: number,
                text: text.to_owned(),
                section,
                column,
                row_key: row.first().cloned(),
                row_default: default_at.and_then(|i| row.get(i).cloned()),
                heading: heading.clone(),
            }
        };
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            pieces.push(piece(line, None, &[], &columns));
            continue;
        }
        if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_owned();
            // A heading that names one command; none, or several: the doc's.
            let named: Vec<&'static str> = SUBCOMMANDS
                .iter()
                .filter(|sub| heading.contains(&format!("clarion {sub}")))
                .copied()
                .collect();
            section = match named.as_slice() {
                [one] => Some(*one),
                [] => default_command(doc),
                _ => None,
            };
            columns.clear();
            continue;
        }
        let cells: Vec<String> = match line.starts_with('|') {
            true => line
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect(),
            false => {
                columns.clear();
                Vec::new()
            }
        };
        if !cells.is_empty() && columns.is_empty() {
            columns = cells;
            continue;
        }
        if cells.first().is_some_and(|c| c.starts_with("---")) {
            continue;
        }
        let parts: Vec<(Option<String>, String)> = match cells.is_empty() {
            true => vec![(None, line.to_owned())],
            false => cells
                .iter()
                .enumerate()
                .map(|(i, cell)| (columns.get(i).cloned(), cell.clone()))
                .collect(),
        };
        for (column, part) in parts {
            for (i, span) in part.split('`').enumerate() {
                if i % 2 == 1 {
                    pieces.push(piece(span, column.clone(), &cells, &columns));
                }
            }
        }
    }
    pieces
}

/// The last `clarion SUB` in `text`.
fn named_command(text: &str) -> Option<&'static str> {
    SUBCOMMANDS
        .iter()
        .filter_map(|sub| text.rfind(&format!("clarion {sub}")).map(|i| (i, *sub)))
        .max()
        .map(|(_, sub)| sub)
}

/// The subcommand a flag at byte `at` of `code` belongs to: the last
/// `clarion SUB` before it in the same piece of code, else the one the
/// section's heading names, else the doc's (`clarion serve` for
/// `docs/server.md`).
fn command_of(code: &Code, at: usize) -> Option<&'static str> {
    named_command(&code.text[..at]).or(code.section)
}

#[test]
fn every_documented_flag_exists() {
    let binary = Binary::read();
    let mut missing = Vec::new();
    for doc in DOCS {
        for code in code_pieces(doc) {
            for flag in words(&code.text, "--") {
                let at = code.text.find(&flag).expect("found in it");
                let subs: Vec<&str> = match command_of(&code, at) {
                    Some(sub) => vec![sub],
                    // Not said which: it must be a flag of a server.
                    None => vec!["serve", "echo", "connect"],
                };
                if !subs.iter().any(|sub| binary.flags[*sub].contains(&flag)) {
                    missing.push(format!(
                        "{}:{}: {flag} is not a flag of clarion {}",
                        code.doc,
                        code.line,
                        subs.join(" / ")
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

#[test]
fn every_documented_variable_exists_and_sets_its_key() {
    let binary = Binary::read();
    let mut wrong = Vec::new();
    for doc in DOCS {
        let text = read_doc(doc);
        for (n, line) in text.lines().enumerate() {
            for var in env_vars(line) {
                if !binary.env.contains(&var) && !binary.serve_env.contains_key(&var) {
                    wrong.push(format!("{doc}:{}: {var} is not read by clarion", n + 1));
                }
            }
        }
    }
    // The table of docs/server.md: each variable sets the key it says
    // (`| `CLARION_A`, `CLARION_B` | `a`, `b` |`).
    let server = read_doc("docs/server.md");
    for (n, line) in server.lines().enumerate() {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        if !line.starts_with("| `CLARION_") || cells.len() < 2 {
            continue;
        }
        let codes = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(|c| c.trim().to_owned())
                .collect()
        };
        let (vars, keys) = (codes(cells[0]), codes(cells[1]));
        for (i, var) in vars.iter().enumerate() {
            match (binary.serve_env.get(var), keys.get(i)) {
                (Some(key), Some(doc_key)) if key == doc_key => {}
                (actual, documented) => wrong.push(format!(
                    "docs/server.md:{}: {var} sets {actual:?}, the doc says {documented:?}",
                    n + 1
                )),
            }
        }
    }
    // And every variable the binary reads is documented there.
    let table = read_doc("docs/server.md");
    for var in binary.serve_env.keys() {
        if !table.contains(&format!("`{var}`")) {
            wrong.push(format!(
                "{var} is read by clarion serve but not in docs/server.md"
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// A documented default (`100,000`, `64 KiB`, `10 s`, `` `"10s"` ``,
/// `none`) as the binary prints it, if it is one of those forms.
fn comparable_default(cell: &str) -> Option<String> {
    let cell = cell.trim();
    if cell == "none" {
        return Some("(not set)".into());
    }
    if let Some(code) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
        return (!code.contains('`')).then(|| code.to_owned());
    }
    let (number, unit) = cell.split_once(' ').unwrap_or((cell, ""));
    let number: u64 = number.replace(',', "").parse().ok()?;
    match unit {
        "" => Some(number.to_string()),
        "KiB" => Some((number * 1024).to_string()),
        "MiB" => Some((number * 1024 * 1024).to_string()),
        "s" => Some(format!("\"{}\"", fmt_secs(number))),
        _ => None,
    }
}

fn fmt_secs(secs: u64) -> String {
    clarion_server::config::format_duration(Duration::from_secs(secs))
}

#[test]
fn every_documented_key_exists_with_its_default() {
    let binary = Binary::read();
    let mut wrong = Vec::new();
    let tops = ["tls.", "auth.", "api.", "websocket.", "hub.", "broker."];
    for doc in DOCS {
        // The key column of a limits table names keys relative to the last
        // dotted one of the cell (`hub.rate_limits.commands_per_second`,
        // `command_burst`).
        let mut cell_parent: Option<(usize, String)> = None;
        for code in code_pieces(doc) {
            let key_column = matches!(code.column.as_deref(), Some("config key" | "where"));
            let in_key_table = code.column.as_deref() == Some("key");
            let dotted = code.text.contains('.')
                && code
                    .text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
            let bare = !code.text.is_empty()
                && code
                    .text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_');
            let key = if in_key_table && bare {
                // docs/server.md's tables under "### `[section]`".
                let section = code
                    .heading
                    .strip_prefix("`[")
                    .and_then(|h| h.strip_suffix("]`"));
                match section {
                    Some(section) => format!("{section}.{}", code.text),
                    None if code.heading == "Top level" => code.text.clone(),
                    None => continue,
                }
            } else if dotted
                && !is_file_name(&code.text)
                && (tops.iter().any(|t| code.text.starts_with(t)) || key_column)
            {
                if key_column {
                    let parent = code.text.rsplit_once('.').map(|(p, _)| p.to_owned());
                    cell_parent = parent.map(|p| (code.line, p));
                }
                code.text.clone()
            } else if key_column && bare {
                match &cell_parent {
                    Some((line, parent)) if *line == code.line => format!("{parent}.{}", code.text),
                    _ => code.text.clone(),
                }
            } else {
                continue;
            };
            if !binary.has_key(&key) {
                wrong.push(format!(
                    "{}:{}: config key {key} does not exist (clarion serve --print-config)",
                    code.doc, code.line
                ));
                continue;
            }
            // The default the table states is the binary's.
            let single_key = code.row_key.as_deref() == Some(&format!("`{}`", code.text))
                || (key_column && !code.text.is_empty());
            let documented = code.row_default.as_deref().and_then(comparable_default);
            let printed = &binary.keys[&normalize_key(&key)];
            if let (true, Some(documented)) = (single_key && !printed.is_empty(), documented) {
                if key_column && count_codes_in_row(&code) > 1 {
                    continue; // one default for several keys
                }
                if &documented != printed {
                    wrong.push(format!(
                        "{}:{}: {key} defaults to {printed}, the doc says {}",
                        code.doc,
                        code.line,
                        code.row_default.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// `hub.md`, `config.rs`: a file, not a key.
fn is_file_name(text: &str) -> bool {
    [".md", ".rs", ".toml", ".js", ".sh", ".json"]
        .iter()
        .any(|ext| text.ends_with(ext))
}

/// How many code spans the key column of this row holds.
fn count_codes_in_row(code: &Code) -> usize {
    let text = read_doc(code.doc);
    let line = text.lines().nth(code.line - 1).unwrap_or_default();
    let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
    let column = cells
        .iter()
        .find(|c| c.contains(&format!("`{}`", code.text)));
    column.map_or(0, |c| c.matches('`').count() / 2)
}

#[test]
fn the_sample_config_is_what_the_binary_prints() {
    let sample = read_doc("docs/clarion.sample.toml");
    let printed = print_config(&[]);
    assert!(
        sample == printed,
        "docs/clarion.sample.toml is stale: regenerate it with \
         `clarion serve --print-config > docs/clarion.sample.toml`\n--- printed:\n{printed}"
    );
    // And it is a valid config that prints the same.
    let output = run(&mut clarion(&[
        "serve",
        "--check-config",
        "--config",
        "docs/clarion.sample.toml",
    ]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        print_config(&["--config", "docs/clarion.sample.toml"]),
        printed
    );
}

#[test]
fn print_config_applies_every_layer_and_masks_secrets() {
    let dir = std::env::temp_dir().join(format!("clarion-docs-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, "log_level = \"debug\"\n[api]\nkey = \"file-key\"\n").unwrap();
    let output = run(clarion(&[
        "serve",
        "--print-config",
        "--config",
        file.to_str().unwrap(),
        "--hmac-secret",
        "flag-secret",
        "--max-connections",
        "7",
        "--idle-timeout",
        "90",
    ])
    .env("CLARION_SHUTDOWN_TIMEOUT", "1.5")
    .env("CLARION_BROKER", "redis://user:redis-pw@127.0.0.1:6379"));
    assert!(output.status.success(), "{}", stderr(&output));
    let keys = printed_keys(&stdout(&output));
    assert_eq!(keys["log_level"], "\"debug\"");
    assert_eq!(keys["shutdown_timeout"], "\"1500ms\"");
    assert_eq!(keys["websocket.max_connections"], "7");
    assert_eq!(keys["websocket.idle_timeout"], "\"90s\"");
    assert_eq!(keys["api.key"], "\"<masked>\"");
    assert_eq!(keys["auth.hmac_secret"], "\"<masked>\"");
    assert_eq!(
        keys["broker.urls"],
        "[\"redis://user:<masked>@127.0.0.1:6379\"]"
    );
    let all = stdout(&output);
    for secret in ["file-key", "flag-secret", "redis-pw"] {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }
    // A bad value: the errors, exit 1, nothing on stdout.
    let output = run(&mut clarion(&[
        "serve",
        "--print-config",
        "--shutdown-timeout",
        "1.5.s",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("shutdown_timeout: invalid duration \"1.5.s\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn one_duration_grammar_on_every_command() {
    // serve: flags, environment and file alike.
    for value in ["10", "1.5", "250ms", "10s", "1.5s", "2m", "1h", "1d"] {
        let output = run(&mut clarion(&[
            "serve",
            "--check-config",
            "--shutdown-timeout",
            value,
        ]));
        assert!(
            output.status.success(),
            "--shutdown-timeout {value}: {}",
            stderr(&output)
        );
        let output =
            run(clarion(&["serve", "--check-config"]).env("CLARION_SHUTDOWN_TIMEOUT", value));
        assert!(
            output.status.success(),
            "CLARION_SHUTDOWN_TIMEOUT={value}: {}",
            stderr(&output)
        );
    }
    for value in ["-1s", "1.5.s", "s", "0.0001ms", "99999999999d", "10 s"] {
        // `=`: clap would take a lone `-1s` for a flag.
        let flag = format!("--shutdown-timeout={value}");
        let output = run(&mut clarion(&["serve", "--check-config", &flag]));
        assert_eq!(
            output.status.code(),
            Some(1),
            "--shutdown-timeout {value} accepted"
        );
        assert!(
            stderr(&output).contains("invalid duration"),
            "{}",
            stderr(&output)
        );
    }
    // echo: `1h` and bare seconds are accepted (it starts listening), and
    // the same values are refused.
    for value in ["1h", "1.5", "off"] {
        let mut child = clarion(&["echo", "--listen", "127.0.0.1:0", "--idle-timeout", value])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("clarion echo starts");
        let mut first = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
        std::io::BufRead::read_line(&mut out, &mut first).expect("reads");
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            first.starts_with("listening on ws://"),
            "--idle-timeout {value}: {first:?}"
        );
    }
    for value in ["-1s", "1.5.s", "0.0001ms"] {
        let flag = format!("--idle-timeout={value}");
        let output = run(&mut clarion(&["echo", &flag]));
        assert_eq!(
            output.status.code(),
            Some(2),
            "echo --idle-timeout {value} accepted"
        );
        assert!(
            stderr(&output).contains("invalid duration"),
            "{}",
            stderr(&output)
        );
    }
    // token --ttl and bench durations too.
    let output = run(&mut clarion(&[
        "token", "--secret", "s", "--user", "u", "--ttl", "1.5h",
    ]));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&mut clarion(&[
        "token", "--secret", "s", "--user", "u", "--ttl", "1.5.h",
    ]));
    assert_eq!(output.status.code(), Some(2));
    let output = run(&mut clarion(&[
        "bench",
        "echo",
        "--duration",
        "1.5.s",
        "ws://127.0.0.1:1",
    ]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid duration"),
        "{}",
        stderr(&output)
    );
}
