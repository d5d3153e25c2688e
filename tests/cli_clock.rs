//! `--clock` on every subcommand, and `itimer alarms`.

use std::process::Command;

const SUBCOMMANDS: [&[&str]; 5] = [
    &["demo", "--duration", "10ms"],
    &["alarms"],
    &["run", "no-such-file.itimer"],
    &["shell"],
    &["bench", "--samples", "1", "--svg", "/nonexistent/x.svg"],
];

fn itimer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_itimer"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs")
}

#[test]
fn clock_help_lists_the_backends_and_exits_0() {
    for sub in SUBCOMMANDS {
        let mut args = sub.to_vec();
        args.extend(["--clock", "help"]);
        let out = itimer(&args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.starts_with("Available alarm backends, in default precedence order:"),
            "{args:?}: {text}"
        );
        for name in ["timerfd", "dynticks", "unix", "mmtimer", "timerqueue"] {
            assert!(text.contains(name), "{args:?}: {text}");
        }
    }
    assert!(itimer(&["--clock", "help"]).status.success());
}

#[test]
fn an_unknown_backend_is_an_error_listing_the_valid_ones() {
    for sub in SUBCOMMANDS {
        let mut args = sub.to_vec();
        args.extend(["--clock", "timerfd,bogus"]);
        let out = itimer(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(
                "unknown alarm backend `bogus`; valid names are: timerfd, dynticks, unix, \
                 mmtimer, timerqueue"
            ),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "nothing ran: {args:?}");
    }
}

#[test]
fn alarms_lists_the_precedence_and_what_starts() {
    let out = itimer(&["alarms"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let order = |text: &str, names: &[&str]| {
        let pos: Vec<usize> = names.iter().map(|n| text.find(n).unwrap()).collect();
        pos.windows(2).all(|w| w[0] < w[1])
    };
    assert!(
        text.contains("timerfd,dynticks,unix,mmtimer,timerqueue"),
        "{text}"
    );
    assert!(order(
        &text,
        &["\n  1  timerfd", "\n  2  dynticks", "\n  5  timerqueue"]
    ));
    // The emulations of the Windows timers need nothing from the host.
    for line in text
        .lines()
        .filter(|l| l.contains("mmtimer ") || l.contains("timerqueue "))
    {
        if line.contains("Windows") {
            assert!(line.contains(" yes "), "{line}");
        }
    }
    assert!(text.contains("The timer loop would start on: "), "{text}");

    let out = itimer(&["alarms", "--clock", "mmtimer,unix"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("(mmtimer,unix,timerfd,dynticks,timerqueue)"),
        "{text}"
    );
    assert!(text.contains("\n  1  mmtimer"), "{text}");
    assert!(
        text.contains("The timer loop would start on: mmtimer"),
        "{text}"
    );
}

/// `run` and `shell` run on the simulated host: a valid list is checked,
/// then ignored, and they say so in one stderr line; the exit status and
/// the trace are what they are without `--clock`.
#[test]
fn run_and_shell_say_the_list_is_ignored() {
    const IGNORED: &str =
        "itimer: --clock is ignored: scenarios run on the simulated host, not on a host alarm\n";
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/vm_clock.itimer"
    );
    let plain = itimer(&["run", script]);
    let with = itimer(&["run", script, "--clock", "unix,timerfd"]);
    assert!(plain.status.success() && with.status.success());
    assert_eq!(with.stdout, plain.stdout, "the same trace");
    assert!(plain.stderr.is_empty());
    assert_eq!(String::from_utf8(with.stderr).unwrap(), IGNORED);
    // A script error keeps its status (2) and its message, after the note.
    let missing = itimer(&["run", "no-such-file.itimer", "--clock", "unix"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8(missing.stderr).unwrap();
    assert!(err.starts_with(IGNORED), "{err}");
    assert!(err.contains("cannot read no-such-file.itimer"), "{err}");
    let shell = itimer(&["shell", "--clock", "timerfd"]);
    assert!(shell.status.success());
    assert_eq!(String::from_utf8(shell.stderr).unwrap(), IGNORED);
    // The subcommands that use a host alarm print no such line.
    let alarms = itimer(&["alarms", "--clock", "unix"]);
    assert!(
        !String::from_utf8(alarms.stderr)
            .unwrap()
            .contains("ignored")
    );
}
