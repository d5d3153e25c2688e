//! `itimer bench` with a handful of samples: a table row per backend and
//! an SVG. Figures are not asserted (speed is measured, never tested).

use std::process::Command;

#[test]
fn a_tiny_bench_prints_its_table_and_writes_the_svg() {
    let svg = std::env::temp_dir().join(format!("itimer-bench-{}.svg", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_itimer"))
        .args(["bench", "--samples", "5", "--svg", svg.to_str().unwrap()])
        .args(["--clock", "timerqueue"])
        .output()
        .expect("runs");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 samples per backend"), "{text}");
    let header = text.lines().position(|l| l.starts_with("backend")).unwrap();
    // In --clock order: timerqueue first, then the others.
    assert!(
        text.lines()
            .nth(header + 1)
            .unwrap()
            .starts_with("timerqueue"),
        "{text}"
    );
    for b in ["timerfd", "dynticks", "unix", "mmtimer"] {
        assert!(text.lines().any(|l| l.starts_with(b)), "{b}: {text}");
    }
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(
        doc.starts_with("<svg") && doc.contains(">timerqueue</text>"),
        "{doc}"
    );
    let _ = std::fs::remove_file(svg);
}
