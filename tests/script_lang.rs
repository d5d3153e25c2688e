//! The scenario language: exact traces, script errors with their line,
//! expectations, limits, and deterministic SIGEV_THREAD traces.

use itimer::script::{HELP, Session, compare_traces, run_to_string};

fn trace(src: &str) -> String {
    run_to_string("t.itimer", src).unwrap_or_else(|(e, t)| panic!("{e}\n{t}"))
}

fn error(src: &str) -> (String, String) {
    match run_to_string("t.itimer", src) {
        Ok(t) => panic!("no script error:\n{t}"),
        Err((e, t)) => (e.to_string(), t),
    }
}

#[test]
fn a_periodic_timer_trace_is_exact() {
    let t = trace(
        "spawn a\n\
         create a t clock=highres notify=signal signo=SIGUSR1 value=3\n\
         settime a t 1500us interval=1ms\n\
         advance 3ms\n\
         consume a\n",
    );
    let want = [
        " 0.000000000  a   spawn uid=1000 => 100",
        " 0.000000000  a   timer_create t clock=highres notify=signal signo=SIGUSR1 value=3 => 0",
        " 0.000000000  a   timer_settime t value=1500us interval=1ms => old value=0 interval=0",
        " 0.000000000  -   advance 3ms => now 0.003000000",
        " 0.001500000  a   ~ t expired x1, pending 1",
        " 0.002500000  a   ~ t expired x1, pending 2",
        " 0.003000000  a   sigtimedwait all timeout=0 => SIGUSR1 SI_TIMER timerid=0 value=3 overrun=1",
    ];
    assert_eq!(t.lines().collect::<Vec<_>>(), want);
}

#[test]
fn script_errors_name_the_line_and_keep_the_trace_so_far() {
    let (e, t) = error("spawn a\n\n# comment\ngettime a nosuch\n");
    assert_eq!(e, "t.itimer:4: unknown timer `nosuch` in process `a`");
    assert_eq!(t.lines().count(), 1);
    for (src, want) in [
        ("frob a\n", "t.itimer:1: unknown command `frob`"),
        (
            "spawn a\nspawn a\n",
            "t.itimer:2: process `a` exists already",
        ),
        (
            "gettime x t\n",
            "t.itimer:1: unknown process `x` (spawn it first)",
        ),
        (
            "spawn a\nboot timer_max=3\n",
            "t.itimer:2: `boot` must come before",
        ),
        (
            "spawn a\ncreate a t\ncreate a t\n",
            "t.itimer:3: timer `t` of `a` exists already",
        ),
        (
            "spawn a\ncreate a t notify=port port=Q\n",
            "t.itimer:2: unknown port `Q`",
        ),
        (
            "spawn a\nconsume a => SIGALRM\n",
            "t.itimer:2: expected `SIGALRM`, got `EAGAIN`",
        ),
        (
            "spawn a\nexpect 101\n",
            "t.itimer:2: expected `101`, got `100`",
        ),
        (
            "expect ok\n",
            "t.itimer:1: `expect` needs a command before it",
        ),
        (
            "boot timer_max=0\n",
            "t.itimer:1: boot: invalid setting: EINVAL",
        ),
        (
            "spawn a\nsettime a 3 abs=+1s\n",
            "t.itimer:2: `abs=1s` needs a timer the script created",
        ),
        ("advance 1h\n", "t.itimer:1: `1h` is not a duration"),
    ] {
        let (e, _) = error(src);
        assert!(e.starts_with(want), "{src:?}: {e}");
    }
}

#[test]
fn errnos_are_outcomes_not_script_errors() {
    let t = trace(
        "spawn a\n\
         create a t clock=42 => EINVAL\n\
         gettime a 0\n\
         expect EINVAL\n\
         create a t\n\
         gettime a t => value=0 interval=0\n\
         gettime a t => value=0\n",
    );
    assert!(t.contains("timer_create t clock=42 notify=default => EINVAL"));
    assert!(t.contains("timer_gettime 0 => EINVAL"));
    // A prefix must end at a word boundary.
    let (e, _) = error("spawn a\ncreate a t\ngettime a t => value=0 int\n");
    assert!(e.contains("expected `value=0 int`"), "{e}");
}

#[test]
fn limit_controls_the_expiry_lines() {
    let src = |limit: &str| {
        format!(
            "limit {limit}\nspawn a\ncreate a t clock=highres\n\
             settime a t 1ms interval=1ms\nadvance 10ms\n"
        )
    };
    let expiries = |t: &str| t.lines().filter(|l| l.contains(" ~ ")).count();
    assert_eq!(expiries(&trace(&src("all"))), 10);
    let two = trace(&src("2"));
    assert_eq!(expiries(&two), 3, "{two}");
    assert!(two.contains(
        " 0.010000000  a   ~ t ... 8 more expiries not shown (8 expirations) up to here, pending 10"
    ));
    assert_eq!(expiries(&trace(&src("0"))), 1);
}

#[test]
fn step_jumps_to_each_deadline() {
    let t = trace(
        "step => nothing armed\n\
         spawn a\n\
         create a x clock=highres\n\
         create a y clock=vm\n\
         settime a x 3ms\n\
         settime a y 1ms\n\
         step => now 0.001000000\n\
         step 5 => now 0.003000000 (nothing armed after 1 steps)\n",
    );
    assert!(
        t.contains(" 0.001000000  a   ~ y expired x1, pending 1"),
        "{t}"
    );
    assert!(
        t.contains(" 0.003000000  a   ~ x expired x1, pending 1"),
        "{t}"
    );
}

/// Callbacks run on another thread; the trace must not depend on when.
#[test]
fn sigev_thread_traces_are_deterministic() {
    let src = "spawn a\nspawn b\n\
               create a t1 clock=highres notify=thread value=1\n\
               create a t2 clock=highres notify=thread value=2\n\
               create b u clock=realtime notify=thread value=3\n\
               settime a t1 1ms interval=1ms\n\
               settime a t2 1ms interval=3ms\n\
               settime b u 500us interval=250us\n\
               limit all\n\
               advance 20ms\n\
               delete a t2\n\
               advance 3ms\n";
    let first = trace(src);
    assert_eq!(
        first
            .matches("~ t1 callback value=1 expirations=1 overrun=0")
            .count(),
        23
    );
    assert_eq!(first.matches("~ t2 callback").count(), 7);
    assert_eq!(first.matches("~ u callback").count(), 91);
    for _ in 0..20 {
        assert_eq!(trace(src), first);
    }
}

#[test]
fn the_thread_tracer_needs_a_free_slot_and_says_so() {
    let (e, _) = error(
        "boot timer_max=1\nspawn a\n\
         create a t clock=highres notify=thread\n\
         settime a t 1ms\nadvance 1ms\n",
    );
    assert!(
        e.starts_with(
            "t.itimer:3: the SIGEV_THREAD tracer needs one free timer slot in process `a` (EAGAIN)"
        ),
        "{e}"
    );
}

#[test]
fn exit_and_name_reuse() {
    let t = trace(
        "spawn a\ncreate a t clock=highres\ndelete a t\n\
         create a t clock=vm => 0\n\
         port create a P => 3\nport close a P\nport create a P => 3\n\
         exit a\ngettime a t => ESRCH\nconsume a => ESRCH\n",
    );
    assert!(t.contains("timer_create t clock=vm notify=default => 0"));
}

#[test]
fn a_session_runs_lines_one_by_one() {
    let mut s = Session::new();
    let mut out = Vec::new();
    s.exec("spawn a root", &mut |l| out.push(l.to_owned()))
        .unwrap();
    assert!(s.exec("nonsense", &mut |_| {}).is_err());
    s.exec("clock_getres a highres => 1ns", &mut |l| {
        out.push(l.to_owned())
    })
    .unwrap();
    s.exec("echo done # not a comment", &mut |l| out.push(l.to_owned()))
        .unwrap();
    assert_eq!(
        out,
        [
            " 0.000000000  a   spawn root => 100",
            " 0.000000000  a   clock_getres highres => 1ns",
            "# done # not a comment",
        ]
    );
    assert!(HELP.contains("settime P T VALUE"));
}

#[test]
fn trace_comparison_names_the_first_difference() {
    assert_eq!(compare_traces("a\nb\n", "a\r\nb\n\n"), Ok(()));
    let e = compare_traces("a\nb\n", "a\nc\n").unwrap_err();
    assert!(e.contains("line 2") && e.contains("expected: b") && e.contains("actual:   c"));
    let e = compare_traces("a\n", "a\nb\n").unwrap_err();
    assert!(e.contains("expected: (end of trace)"), "{e}");
}

#[test]
fn vm_warp_and_step_traces_are_exact() {
    let t = trace(
        "spawn a\n\
         create a t clock=vm notify=signal signo=SIGUSR1 value=7\n\
         settime a t 10ms interval=10ms\n\
         advance 5ms\n\
         vm step 1ms => EBUSY\n\
         vm stop\n\
         vm step -1ns\n\
         expect EINVAL\n\
         vm step 25ms => ok vm=0.030000000s\n\
         vm warp 21ms => ok\n\
         vm warp -1ms => EINVAL\n\
         expect EINVAL\n\
         vm start\n\
         advance 9ms\n\
         clock_gettime a vm => 0.060000000s\n\
         consume a => SIGUSR1 SI_TIMER timerid=0 value=7 overrun=5\n",
    );
    let want = [
        " 0.000000000  a   spawn uid=1000 => 100",
        " 0.000000000  a   timer_create t clock=vm notify=signal signo=SIGUSR1 value=7 => 0",
        " 0.000000000  a   timer_settime t value=10ms interval=10ms => old value=0 interval=0",
        " 0.000000000  -   advance 5ms => now 0.005000000",
        " 0.005000000  -   vm_step 1ms => EBUSY",
        " 0.005000000  -   vm_stop => ok",
        " 0.005000000  -   vm_step -1ns => EINVAL",
        // A step: one line per guest deadline (10, 20, 30 ms), host time
        // standing still.
        " 0.005000000  -   vm_step 25ms => ok vm=0.030000000s",
        " 0.005000000  a   ~ t expired x1, pending 1",
        " 0.005000000  a   ~ t expired x1, pending 2",
        " 0.005000000  a   ~ t expired x1, pending 3",
        // A warp: 40 and 50 ms jumped over, both expire late, together.
        " 0.005000000  -   vm_warp 21ms => ok vm=0.051000000s",
        " 0.005000000  a   ~ t expired x2, pending 5",
        " 0.005000000  -   vm_warp -1ms => EINVAL",
        " 0.005000000  -   vm_start => ok",
        " 0.005000000  -   advance 9ms => now 0.014000000",
        " 0.014000000  a   ~ t expired x1, pending 6",
        " 0.014000000  a   clock_gettime vm => 0.060000000s",
        " 0.014000000  a   sigtimedwait all timeout=0 => SIGUSR1 SI_TIMER timerid=0 value=7 overrun=5",
    ];
    assert_eq!(t.lines().collect::<Vec<_>>(), want);
    // A failed expectation on a VM result is a script error at its line.
    let (e, _) = error("spawn a\nvm step 1ms => ok\n");
    assert_eq!(
        e, "t.itimer:2: expected `ok`, got `EBUSY`",
        "stepping a running VM"
    );
    let (e, _) = error("vm warp 1ms 2ms\n");
    assert_eq!(e, "t.itimer:1: unexpected `2ms` after `vm warp`");
    assert!(HELP.contains("vm warp D"), "{HELP}");
    assert!(HELP.contains("vm step D"), "{HELP}");
}

#[test]
fn vm_step_runs_each_guest_deadline_in_its_own_instant() {
    // Two VM timers at 3 and 7 ms, one HIGHRES at 1 ms of host time: the
    // step shows the VM expiries in guest order, each on its own line, and
    // no HIGHRES expiry (host time does not move).
    let t = trace(
        "spawn a\n\
         create a x clock=vm notify=signal signo=SIGUSR1\n\
         create a y clock=vm notify=signal signo=SIGUSR2\n\
         create a h clock=highres notify=signal signo=SIGALRM\n\
         vm stop\n\
         settime a y 7ms\n\
         settime a x 3ms interval=3ms\n\
         settime a h 1ms\n\
         vm step 7ms => ok vm=0.007000000s\n\
         gettime a x => value=2ms interval=3ms\n\
         gettime a h => value=1ms interval=0\n",
    );
    let after: Vec<_> = t.lines().skip_while(|l| !l.contains("vm_step")).collect();
    assert_eq!(
        after,
        [
            " 0.000000000  -   vm_step 7ms => ok vm=0.007000000s",
            " 0.000000000  a   ~ x expired x1, pending 1",
            " 0.000000000  a   ~ x expired x1, pending 2",
            " 0.000000000  a   ~ y expired x1, pending 1",
            " 0.000000000  a   timer_gettime x => value=2ms interval=3ms",
            " 0.000000000  a   timer_gettime h => value=1ms interval=0",
        ]
    );
}

/// Guest time ends at `i64::MAX` ns: a step or warp past it is `EOVERFLOW`
/// and leaves the VM clock where it was, as the facade's calls do.
#[test]
fn vm_step_and_warp_past_the_end_of_guest_time_are_eoverflow() {
    let t = trace(
        "spawn a\n\
         advance 1ms\n\
         vm stop\n\
         vm step 9223372036854775807ns => EOVERFLOW\n\
         vm warp 9223372036854775807ns => EOVERFLOW\n\
         clock_gettime a vm => 0.001000000s\n",
    );
    assert!(t.contains("vm_step "), "{t}");
}
