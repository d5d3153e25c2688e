//! `itimer --help` and every subcommand's `--help`.

use std::process::Command;

fn itimer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_itimer"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn every_subcommand_has_help() {
    let top = itimer(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8(top.stdout).unwrap();
    for sub in ["demo", "alarms", "run", "shell", "bench"] {
        assert!(text.contains(sub), "top-level help lists {sub}");
        let out = itimer(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("Usage: itimer"), "{sub}: {help}");
        assert!(
            help.contains("--clock <LIST>"),
            "{sub} takes --clock: {help}"
        );
    }
    let run = String::from_utf8(itimer(&["run", "--help"]).stdout).unwrap();
    assert!(run.contains("--check <TRACE>"));
    let demo = String::from_utf8(itimer(&["demo", "--help"]).stdout).unwrap();
    assert!(demo.contains("--duration <DURATION>"));
    let bench = String::from_utf8(itimer(&["bench", "--help"]).stdout).unwrap();
    assert!(bench.contains("--samples <SAMPLES>") && bench.contains("--svg <PATH>"));
}

#[test]
fn usage_errors_exit_2() {
    let none = itimer(&[]);
    assert_eq!(none.status.code(), Some(2));
    let bad = itimer(&["frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad_duration = itimer(&["demo", "--duration", "soon"]);
    assert_eq!(bad_duration.status.code(), Some(2));
    let err = String::from_utf8(bad_duration.stderr).unwrap();
    assert!(err.contains("`soon` is not a duration"), "{err}");
    let zero_samples = itimer(&["bench", "--samples", "0"]);
    assert_eq!(zero_samples.status.code(), Some(2));
}
