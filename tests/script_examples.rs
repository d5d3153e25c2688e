//! Every scenario in `examples/scenarios/` runs without a script error
//! and prints exactly its `.trace` file (the contract the course book's
//! examples rely on), and does so twice in a row.

use std::path::{Path, PathBuf};

use itimer::script::{compare_traces, run_to_string};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "itimer"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_prints_its_trace() {
    let all = scenarios();
    assert!(
        all.len() >= 6,
        "the six example scenarios are there: {all:?}"
    );
    for script in all {
        let source = std::fs::read_to_string(&script).unwrap();
        let trace_path = script.with_extension("trace");
        let expected = std::fs::read_to_string(&trace_path)
            .unwrap_or_else(|e| panic!("{}: {e}", trace_path.display()));
        let name = script.display().to_string();
        let trace = run_to_string(&name, &source).unwrap_or_else(|(e, _)| panic!("{e}"));
        if let Err(diff) = compare_traces(&expected, &trace) {
            panic!("{name}: {diff}");
        }
        let again = run_to_string(&name, &source).unwrap();
        assert_eq!(trace, again, "{name}: the trace is deterministic");
    }
}
