//! The course book cannot rot: every example it shows is checked here.
//!
//! * Every scenario `docs/examples/NAME.itimer` is run through the
//!   scenario interpreter (`itimer::script`) on the simulated host, and its
//!   trace must equal `docs/examples/NAME.trace` **byte for byte** (the
//!   interpreter is deterministic: exact nanoseconds, no host timing).
//!   A failed inline expectation (`=> RESULT`) in a script fails too.
//! * Every `.trace` has its script, and every example is included by some
//!   chapter, so the book shows exactly what is checked.
//! * Every `{{#include ...}}` in the book names an existing file, and every
//!   relative link between chapters names an existing file and, if it has
//!   one, an existing heading anchor. (mdBook reports a broken include only
//!   as an error line and still builds, and it does not check links; this
//!   makes both failures of `cargo test`.)
//!
//! To regenerate a trace after a deliberate change of behaviour, run
//! `cargo run -- run docs/examples/NAME.itimer > docs/examples/NAME.trace`
//! and read the diff: a trace that shows a bug is a bug, not a new answer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The book's source directory.
fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

fn examples() -> PathBuf {
    docs().join("examples")
}

/// File names in `dir` ending in `.ext`, without the extension, sorted.
fn stems(dir: &Path, ext: &str) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            p.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The chapters: every `.md` file the book's SUMMARY lists (each must
/// exist), as (file name, text).
fn chapters() -> BTreeMap<String, String> {
    let summary = read(&docs().join("SUMMARY.md"));
    let mut out = BTreeMap::new();
    for target in link_targets(&summary) {
        let (file, _) = split_anchor(&target);
        let path = docs().join(file);
        assert!(
            path.is_file(),
            "SUMMARY.md lists {file}, which does not exist"
        );
        out.insert(file.to_owned(), read(&path));
    }
    out
}

/// The targets of inline Markdown links `[text](target)` outside code
/// blocks and code spans, in order.
fn link_targets(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let line = strip_code_spans(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            match after.find(')') {
                Some(j) => {
                    out.push(after[..j].trim().to_owned());
                    rest = &after[j + 1..];
                }
                None => break,
            }
        }
    }
    out
}

/// The line with every `` `code span` `` removed.
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

fn split_anchor(target: &str) -> (&str, Option<&str>) {
    match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    }
}

/// The anchor mdBook gives a heading: its text without code-span
/// backticks, lower-cased, whitespace as `-`, only alphanumerics, `_` and
/// `-` kept (mdBook's `normalize_id`); a repeated id gets `-1`, `-2`, ...
fn heading_anchors(md: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut in_fence = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#').trim().replace('`', "");
        let id: String = text
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let n = seen.entry(id.clone()).or_insert(0);
        out.insert(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    out
}

/// The file names of `{{#include examples/...}}` directives in `md`.
fn included_examples(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(i) = rest.find("{{#include ") {
        let after = &rest[i + "{{#include ".len()..];
        let end = after.find("}}").expect("an include directive ends with }}");
        out.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_example_trace_matches_the_book() {
    let scripts = stems(&examples(), "itimer");
    assert!(
        scripts.len() >= 10,
        "expected the book's examples in docs/examples, found {}",
        scripts.len()
    );
    let mut failures = Vec::new();
    for name in &scripts {
        let script_path = examples().join(format!("{name}.itimer"));
        let trace_path = examples().join(format!("{name}.trace"));
        let source = read(&script_path);
        let expected = read(&trace_path);
        match itimer::script::run_to_string(&format!("docs/examples/{name}.itimer"), &source) {
            Err((err, partial)) => failures.push(format!(
                "{name}: the script failed: {err}\n--- trace up to the failure:\n{partial}"
            )),
            Ok(actual) if actual != expected => {
                let why = itimer::script::compare_traces(&expected, &actual)
                    .err()
                    .unwrap_or_else(|| "line endings or trailing blank lines differ".into());
                failures.push(format!("{name}: {why}"));
            }
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} book examples disagree with their traces:\n\n{}",
        failures.len(),
        scripts.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_trace_has_its_script_and_every_example_is_in_the_book() {
    let scripts = stems(&examples(), "itimer");
    let traces = stems(&examples(), "trace");
    let orphans: Vec<_> = traces.difference(&scripts).collect();
    assert!(orphans.is_empty(), "traces without a script: {orphans:?}");
    let untraced: Vec<_> = scripts.difference(&traces).collect();
    assert!(untraced.is_empty(), "scripts without a trace: {untraced:?}");

    let included: BTreeSet<String> = chapters()
        .values()
        .flat_map(|md| included_examples(md))
        .collect();
    for name in &scripts {
        for ext in ["itimer", "trace"] {
            let file = format!("examples/{name}.{ext}");
            assert!(
                included.contains(&file),
                "{file} is checked but no chapter includes it"
            );
        }
    }
}

#[test]
fn every_include_and_link_in_the_book_resolves() {
    let chapters = chapters();
    let mut broken = Vec::new();
    for (file, md) in &chapters {
        for inc in included_examples(md) {
            if !docs().join(&inc).is_file() {
                broken.push(format!("{file}: {{{{#include {inc}}}}} names no file"));
            }
        }
        for target in link_targets(md) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = split_anchor(&target);
            let text = if path.is_empty() {
                Some(md.clone())
            } else {
                let p = docs().join(path);
                if !p.exists() {
                    broken.push(format!("{file}: link to {target}: no such file"));
                    continue;
                }
                (p.extension().is_some_and(|x| x == "md")).then(|| read(&p))
            };
            if let (Some(anchor), Some(text)) = (anchor, text)
                && !heading_anchors(&text).contains(anchor)
            {
                broken.push(format!("{file}: link to {target}: no such heading"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken in the book:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_anchor_rule_is_mdbooks() {
    let a = heading_anchors(
        "# Intro\n## REALTIME and `clock_settime`\n## 1. Ten periods, one signal\n\
         ```text\n# not a heading\n```\n## Intro\n",
    );
    let want: BTreeSet<String> = [
        "intro",
        "realtime-and-clock_settime",
        "1-ten-periods-one-signal",
        "intro-1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(a, want);
    assert_eq!(
        link_targets("see [a](x.md#y) and `[b](not.md)` and\n```\n[c](fenced.md)\n```\n[d](z.md)"),
        vec!["x.md#y".to_owned(), "z.md".to_owned()]
    );
}
