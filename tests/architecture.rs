//! The shape of the code, checked (see `ARCHITECTURE.md`):
//!
//! * the import graph of each crate, read from its `crate::` paths (in
//!   `use` items and in code; comments, doc links and `#[cfg(test)]`
//!   modules are not imports): its strongly connected components are
//!   listed, and the kernel's largest may hold at most seven modules; the
//!   other crates have none;
//! * only the sync seam (`sync/`) names parking_lot or loom (in code and
//!   in the crates' dependencies), and no product file carries a
//!   `loom_broken` cfg (the loom suite's broken variants are patches under
//!   `loom-tests/broken/`).
//!
//! Run `cargo test --test architecture -- --nocapture` to see the
//! components.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, skipping `tests/`, `benches/`,
/// `examples/` and `target/` folders.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !["tests", "benches", "examples", "target"].contains(&name.as_str()) {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// The file's code: comments removed (line comments, doc comments and
/// block comments), string contents kept, and everything from a
/// `#[cfg(test)]` line on dropped (test modules close product files).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        let code = match line.find("//") {
            // A `//` inside a string literal ("http://…") is not a comment:
            // good enough for this tree, where such strings do not name
            // crate paths.
            Some(i) if line[..i].matches('"').count() % 2 == 0 => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The module path of a file relative to its crate's source root:
/// `lib.rs` is the root (""), `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is
/// `a::b`.
fn module_of(src_root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src_root).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_owned());
    }
    parts.join("::")
}

/// Paths named after `crate::` (and `super::`, resolved against `module`),
/// with brace groups expanded: `crate::{a::X, b::{c, d}}` gives `a::X`,
/// `b::c`, `b::d`.
fn crate_paths(code: &str, module: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
        let mut at = 0;
        while let Some(i) = code[at..].find(prefix) {
            let start = at + i;
            at = start + prefix.len();
            // A whole word: not `itimer_crate::` or `$crate::`.
            if start > 0 {
                let b = bytes[start - 1];
                if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b':' {
                    continue;
                }
            }
            let mut prefixes = Vec::new();
            expand(&code[at..], &base, &mut prefixes);
            found.extend(prefixes);
        }
    }
    found
}

/// The parent module of `module` (`a::b` → `a`; a top-level one → root).
fn parent(module: &str) -> String {
    match module.rfind("::") {
        Some(i) => module[..i].to_owned(),
        None => String::new(),
    }
}

/// Reads one path (possibly a brace group) at the start of `rest`.
fn expand(rest: &str, base: &str, out: &mut Vec<String>) {
    let ident_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    let head = rest[..ident_len].trim_end_matches(':');
    let joined = match (base.is_empty(), head.is_empty()) {
        (true, _) => head.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}::{head}"),
    };
    if rest[ident_len..].starts_with('{') {
        let body = &rest[ident_len + 1..];
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(body[item_start..i].trim(), &joined, out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(body[item_start..i].trim(), &joined, out);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    } else if !joined.is_empty() {
        out.push(joined);
    }
}

/// The longest module of `modules` that `path` starts with.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find(|m| modules.contains(m))
}

/// The import graph of the crate whose sources are under `src_root`:
/// module → the modules it names.
fn import_graph(src_root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src_root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src_root, f)).collect();
    let mut graph = BTreeMap::new();
    for f in &files {
        let m = module_of(src_root, f);
        let code = code_of(&fs::read_to_string(f).unwrap());
        let mut edges = BTreeSet::new();
        for p in crate_paths(&code, &m) {
            if let Some(to) = resolve(&p, &modules) {
                // The crate root only declares and re-exports; a child
                // naming its own parent module (`super::X` in `a/b.rs`
                // naming `a`) is kept.
                if to != m && !to.is_empty() && !m.is_empty() {
                    edges.insert(to);
                }
            }
        }
        graph.insert(m, edges);
    }
    graph
}

/// Tarjan's strongly connected components, largest first.
fn sccs(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct St<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            comp.sort();
            s.out.push(comp);
        }
    }
    let mut s = St {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort_by_key(|c| std::cmp::Reverse(c.len()));
    s.out
}

/// The crate's cycles (components of more than one module), printed.
fn cycles_of(name: &str, src_root: &str) -> Vec<Vec<String>> {
    let g = import_graph(&root().join(src_root));
    let comps = sccs(&g);
    let cycles: Vec<_> = comps.into_iter().filter(|c| c.len() > 1).collect();
    println!("{name}: {} modules; cycles: {cycles:?}", g.len());
    cycles
}

#[test]
fn the_kernels_largest_import_cycle_is_at_most_seven_modules() {
    let cycles = cycles_of("kernel", "kernel");
    let largest = cycles.first().map_or(0, Vec::len);
    assert!(
        largest <= 7,
        "the kernel's largest import cycle has {largest} modules: {:?}",
        cycles.first()
    );
}

#[test]
fn hostalarm_has_no_import_cycle() {
    let cycles = cycles_of("hostalarm", "hostalarm/src");
    assert!(cycles.is_empty(), "hostalarm's import cycles: {cycles:?}");
}

#[test]
fn the_clock_backends_the_sync_seam_and_the_facade_have_no_import_cycle() {
    for (name, dir) in [
        ("clock_backends", "clock_backends/src"),
        ("sync", "sync/src"),
        ("facade", "src"),
    ] {
        let cycles = cycles_of(name, dir);
        assert!(cycles.is_empty(), "{name}'s import cycles: {cycles:?}");
    }
}

#[test]
fn the_graph_reader_reads_use_groups_super_and_skips_comments() {
    let code = code_of(
        "use crate::{a::X, b::{c::Y, d}};\n// use crate::z;\nlet _ = super::e::f();\n\
         #[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let mut p = crate_paths(&code, "m::n");
    p.sort();
    assert_eq!(p, ["a::X", "b::c::Y", "b::d", "m::e::f"]);
    let g = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(sccs(&g)[0], ["a", "b"]);
}

/// Product source folders: every crate's sources, not its tests, benches
/// or examples, and not the loom suite (test scaffolding by definition).
const PRODUCT: [&str; 5] = [
    "kernel",
    "hostalarm/src",
    "clock_backends/src",
    "src",
    "sync/src",
];

/// Whether `code` names `word` as a whole identifier.
fn names(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn only_the_sync_seam_names_parking_lot_or_loom() {
    let mut offenders = Vec::new();
    for dir in PRODUCT {
        if dir == "sync/src" {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&root().join(dir), &mut files);
        for f in files {
            let code = code_of(&fs::read_to_string(&f).unwrap());
            for word in ["parking_lot", "loom"] {
                if names(&code, word) {
                    offenders.push(format!("{} names {word}", f.display()));
                }
            }
        }
    }
    for manifest in [
        "Cargo.toml",
        "kernel/Cargo.toml",
        "hostalarm/Cargo.toml",
        "clock_backends/Cargo.toml",
    ] {
        let text = fs::read_to_string(root().join(manifest)).unwrap();
        let deps: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| !l.contains("check-cfg"))
            .skip_while(|l| !l.contains("dependencies]"))
            .map(|l| format!("{l}\n"))
            .collect();
        for word in ["parking_lot", "loom"] {
            if manifest == "Cargo.toml" {
                // The root manifest's [workspace.dependencies] lists them
                // for the sync crate and the loom suite; its own package
                // must not depend on them.
                let own: String = deps
                    .split("[workspace.dependencies]")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if names(&own, word) {
                    offenders.push(format!("{manifest} depends on {word}"));
                }
            } else if names(&deps, word) {
                offenders.push(format!("{manifest} depends on {word}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn no_product_file_carries_a_loom_broken_variant() {
    // The broken variants are patches under `loom-tests/broken/`, which
    // `loom-tests/run.sh` applies to a scratch copy of the tree.
    let mut offenders = Vec::new();
    for dir in PRODUCT {
        let mut files = Vec::new();
        rust_files(&root().join(dir), &mut files);
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            if text.contains("loom_broken") {
                offenders.push(f.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "loom_broken in {offenders:#?}");
}
