//! `itimer run` and `itimer shell` from the outside: traces on stdout,
//! `--check`, script errors as `file:line:` with exit status 2.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn itimer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_itimer"))
        .args(args)
        .output()
        .expect("runs")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(name)
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("itimer-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn run_prints_the_trace_and_check_compares() {
    for name in ["oneshot_periodic", "sigev_thread"] {
        let script = example(&format!("{name}.itimer"));
        let trace = example(&format!("{name}.trace"));
        let out = itimer(&["run", script.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(&trace).unwrap()
        );
        let out = itimer(&[
            "run",
            "--check",
            trace.to_str().unwrap(),
            script.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        assert!(
            String::from_utf8(out.stderr)
                .unwrap()
                .contains("trace matches")
        );
    }
}

#[test]
fn a_differing_trace_fails_the_check_with_status_1() {
    let script = example("vm_clock.itimer");
    let good = std::fs::read_to_string(example("vm_clock.trace")).unwrap();
    let bad = scratch(
        "vm.trace",
        &good.replacen("0.004000000s", "0.004000001s", 1),
    );
    let out = itimer(&[
        "run",
        "--check",
        bad.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("trace differs at line 7"), "{err}");
}

#[test]
fn script_errors_point_at_the_line_and_exit_2() {
    let p = scratch(
        "bad.itimer",
        "spawn a\ncreate a t clock=highres\nsettime a t 1ms\n\nsettime a t 1 parsec\n",
    );
    let out = itimer(&["run", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end(),
        format!(
            "{}:5: `1` is not a duration (write e.g. `5ms`, `1.5s`, `250us`, `7ns`, `0`)",
            p.display()
        )
    );
    // The trace up to the error was printed.
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);

    let p = scratch("expect.itimer", "spawn a\nconsume a => SIGALRM\n");
    let out = itimer(&["run", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("expect.itimer:2: expected `SIGALRM`, got `EAGAIN`"),
        "{err}"
    );

    let out = itimer(&["run", "/no/such/script.itimer"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read")
    );
}

#[test]
fn the_shell_reads_piped_lines_and_goes_on_after_errors() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_itimer"))
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"spawn a\nbogus\ncreate a t clock=highres\nhelp\nsettime a t 2ms\nadvance 2ms\nconsume a\nquit\nspawn b\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("spawn uid=1000 => 100"));
    assert!(text.contains("Scenario language"), "help was printed");
    assert!(
        text.contains("SIGALRM SI_TIMER timerid=0 value=0 overrun=0"),
        "{text}"
    );
    assert!(!text.contains("=> 101"), "nothing runs after quit");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("<shell>:2: unknown command `bogus`"),
        "{err}"
    );
}
