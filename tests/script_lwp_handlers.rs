//! The scenario language's LWP commands (`lwp create | exit | bind`) and
//! signal handlers (`handle`): exact traces, errnos as outcomes, and
//! handler traces that do not depend on when the delivery thread runs.

use itimer::script::command::VERBS;
use itimer::script::{HELP, run_to_string};

fn trace(src: &str) -> String {
    run_to_string("t.itimer", src).unwrap_or_else(|(e, t)| panic!("{e}\n{t}"))
}

fn error(src: &str) -> (String, String) {
    match run_to_string("t.itimer", src) {
        Ok(t) => panic!("no script error:\n{t}"),
        Err((e, t)) => (e.to_string(), t),
    }
}

fn lines(t: &str) -> Vec<&str> {
    t.lines().collect()
}

#[test]
fn a_handler_trace_is_exact() {
    let t = trace(
        "spawn a\n\
         create a t clock=highres notify=signal signo=SIGUSR1 value=3\n\
         handle a SIGUSR1\n\
         settime a t 1500us interval=1ms\n\
         advance 3ms\n\
         pending a\n\
         consume a SIGUSR1\n",
    );
    let want = [
        " 0.000000000  a   spawn uid=1000 => 100",
        " 0.000000000  a   timer_create t clock=highres notify=signal signo=SIGUSR1 value=3 => 0",
        " 0.000000000  a   sigaction SIGUSR1 handler => ok",
        " 0.000000000  a   timer_settime t value=1500us interval=1ms => old value=0 interval=0",
        " 0.000000000  -   advance 3ms => now 0.003000000",
        " 0.001500000  a   ~ t handler SIGUSR1 SI_TIMER timerid=0 value=3 overrun=0 getoverrun=0",
        " 0.002500000  a   ~ t handler SIGUSR1 SI_TIMER timerid=0 value=3 overrun=0 getoverrun=0",
        " 0.003000000  a   sigpending => {}",
        " 0.003000000  a   sigtimedwait {SIGUSR1} timeout=0 => EAGAIN",
    ];
    assert_eq!(lines(&t), want);
}

#[test]
fn a_blocked_caught_signal_shows_expiries_then_one_handler_run() {
    let t = trace(
        "spawn a\n\
         create a t clock=highres notify=signal signo=SIGUSR1 value=3\n\
         block a SIGUSR1\n\
         handle a SIGUSR1\n\
         settime a t 1ms interval=1ms\n\
         advance 4ms\n\
         unblock a SIGUSR1\n\
         getoverrun a t => 3\n\
         status a t => flags=SIGNAL pending=0 overrun=3\n",
    );
    assert!(
        t.contains(" 0.004000000  a   ~ t expired x1, pending 4\n"),
        "{t}"
    );
    let unblock = t
        .lines()
        .position(|l| l.contains("SIG_UNBLOCK"))
        .expect("the unblock line");
    assert_eq!(
        lines(&t)[unblock + 1],
        " 0.004000000  a   ~ t handler SIGUSR1 SI_TIMER timerid=0 value=3 overrun=3 getoverrun=3"
    );
    assert_eq!(t.matches("handler SIGUSR1").count(), 1);
}

#[test]
fn installing_a_handler_delivers_what_is_queued() {
    let t = trace(
        "spawn a\n\
         create a t clock=highres\n\
         settime a t 1ms interval=1ms\n\
         advance 2ms\n\
         handle a SIGALRM\n\
         pending a => {}\n",
    );
    let h = t.lines().position(|l| l.contains("sigaction")).unwrap();
    assert_eq!(
        lines(&t)[h..h + 2],
        [
            " 0.002000000  a   sigaction SIGALRM handler => ok",
            " 0.002000000  a   ~ t handler SIGALRM SI_TIMER timerid=0 value=0 overrun=1 getoverrun=1",
        ]
    );
}

#[test]
fn handlers_run_lowest_signal_first_then_oldest() {
    // Created in the opposite order of their signals; all fire at 1 ms.
    let t = trace(
        "spawn a\n\
         create a hi clock=highres notify=signal signo=SIGRTMIN+1 value=1\n\
         create a lo clock=highres notify=signal signo=SIGRTMIN value=2\n\
         create a lo2 clock=highres notify=signal signo=SIGRTMIN value=3\n\
         block a SIGRTMIN SIGRTMIN+1\n\
         handle a SIGRTMIN\n\
         handle a SIGRTMIN+1\n\
         settime a hi 1ms\n\
         settime a lo2 1ms\n\
         settime a lo 2ms\n\
         advance 2ms\n\
         unblock a SIGRTMIN SIGRTMIN+1\n",
    );
    let runs: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("~ ") && l.contains(" handler "))
        .map(|l| l.split(" ~ ").nth(1).unwrap())
        .collect();
    assert_eq!(
        runs,
        [
            "lo2 handler SIGRTMIN SI_TIMER timerid=2 value=3 overrun=0 getoverrun=0",
            "lo handler SIGRTMIN SI_TIMER timerid=1 value=2 overrun=0 getoverrun=0",
            "hi handler SIGRTMIN+1 SI_TIMER timerid=0 value=1 overrun=0 getoverrun=0",
        ],
        "{t}"
    );
}

/// Handlers run on the delivery thread; the trace must not depend on when.
#[test]
fn handler_traces_are_deterministic() {
    let src = "spawn a\nspawn b root\n\
               create a t1 clock=highres notify=signal signo=SIGUSR1 value=1\n\
               create a t2 clock=highres notify=signal signo=SIGUSR2 value=2\n\
               create a t3 clock=highres notify=thread value=3\n\
               create b u clock=realtime notify=signal signo=SIGRTMIN value=4\n\
               handle a SIGUSR1\nhandle a SIGUSR2\nhandle b SIGRTMIN\n\
               settime a t1 1ms interval=1ms\n\
               settime a t2 1ms interval=3ms\n\
               settime a t3 500us interval=500us\n\
               settime b u abs=+500us interval=250us\n\
               limit all\n\
               advance 10ms\n\
               block a SIGUSR2\n\
               advance 7ms\n\
               unblock a SIGUSR2\n\
               clock_settime b realtime +2ms\n\
               delete a t2\n\
               advance 3ms\n";
    let first = trace(src);
    assert_eq!(first.matches("~ t1 handler").count(), 20, "{first}");
    assert_eq!(first.matches("~ t2 handler").count(), 5, "{first}");
    assert_eq!(first.matches("~ t3 callback").count(), 40, "{first}");
    assert!(
        first.contains("~ u handler SIGRTMIN SI_TIMER timerid=0 value=4 overrun=7 getoverrun=7"),
        "the clock step's 8 expirations in one run: {first}"
    );
    for _ in 0..20 {
        assert_eq!(trace(src), first);
    }
}

#[test]
fn an_orphan_signal_reaches_the_handler_of_its_deleted_timer() {
    let t = trace(
        "spawn a\n\
         create a t clock=highres notify=signal signo=SIGUSR1 value=9\n\
         handle a SIGUSR1\nblock a SIGUSR1\n\
         settime a t 1ms interval=1ms\nadvance 3ms\n\
         delete a t\nunblock a SIGUSR1\nstats a => timers=0 sig_entries=0\n",
    );
    assert!(
        t.contains(
            " 0.003000000  a   ~ t handler SIGUSR1 SI_TIMER timerid=0 value=9 overrun=0 (timer deleted)\n"
        ),
        "{t}"
    );
}

#[test]
fn ignore_over_a_handler_stops_the_runs() {
    let t = trace(
        "spawn a\n\
         create a t clock=highres notify=signal signo=SIGUSR1\n\
         handle a SIGUSR1\nsettime a t 1ms interval=1ms\nadvance 2ms\n\
         ignore a SIGUSR1\nadvance 2ms\n\
         default a SIGUSR1\nadvance 1ms\n",
    );
    assert_eq!(t.matches(" handler SIGUSR1 SI_TIMER").count(), 2, "{t}");
    assert!(
        t.ends_with(" 0.005000000  a   ~ t expired x1, pending 1\n"),
        "{t}"
    );
}

#[test]
fn handle_errnos_are_outcomes() {
    let t = trace(
        "spawn a\nhandle a SIGKILL => EINVAL\nhandle a SIGSTOP => EINVAL\n\
         handle a 0 => EINVAL\nhandle a 99 => EINVAL\nexit a\nhandle a SIGUSR1 => ESRCH\n",
    );
    assert!(t.contains("sigaction SIGKILL handler => EINVAL"));
}

#[test]
fn the_handler_tracer_needs_a_free_slot_and_says_so() {
    let (e, _) = error(
        "boot timer_max=1\nspawn a\n\
         create a t clock=highres notify=signal signo=SIGUSR1\n\
         handle a SIGUSR1\n",
    );
    assert!(
        e.starts_with(
            "t.itimer:4: the signal handler tracer needs one free timer slot in process `a` (EAGAIN)"
        ),
        "{e}"
    );
    // Blocked: nothing to deliver, no tracer needed.
    trace(
        "boot timer_max=1\nspawn a\nblock a SIGUSR1\n\
         create a t clock=highres notify=signal signo=SIGUSR1\n\
         handle a SIGUSR1\nsettime a t 1ms\nadvance 1ms\n",
    );
}

#[test]
fn a_process_with_handlers_exits_cleanly() {
    let t = trace(
        "spawn a\ncreate a t clock=highres notify=signal signo=SIGUSR1\n\
         handle a SIGUSR1\nsettime a t 1ms interval=1ms\nadvance 1ms\nexit a\n\
         advance 2ms\nstatus a t => ESRCH\n",
    );
    assert_eq!(t.matches("~ t handler ").count(), 1, "{t}");
}

#[test]
fn lwp_create_bind_and_exit() {
    let t = trace(
        "spawn a\n\
         lwp create a w => 2\nlwp create a v => 3\n\
         create a t clock=highres notify=signal signo=SIGUSR1\n\
         create a u clock=highres notify=none\n\
         status a t => flags=SIGNAL pending=0 overrun=0\n\
         lwp bind a t w\nlwp bind a u w\n\
         status a t => flags=SIGNAL pending=0 overrun=0 lwp=2\n\
         stats a => timers=2 sig_entries=1 lwps=3\n\
         settime a t 1ms interval=1ms\n\
         lwp exit a w\n\
         status a t => flags=SIGNAL pending=0 overrun=0 lwp=none\n\
         status a u\n\
         expect flags=none pending=0 overrun=0 lwp=none\n\
         advance 1ms\n\
         lwp exit a w => EINVAL\n\
         lwp bind a t w => EINVAL\n\
         lwp bind a t 99 => EINVAL\n\
         lwp bind a 7 v => EINVAL\n\
         lwp bind a t v => ok\n\
         lwp exit a v\n\
         lwp exit a 1 => ok\n\
         lwp create a x => ESRCH\n",
    );
    let exit = t
        .lines()
        .position(|l| l.contains("lwp_exit w => ok"))
        .unwrap();
    assert_eq!(
        lines(&t)[exit..exit + 3],
        [
            " 0.000000000  a   lwp_exit w => ok",
            " 0.000000000  a   ~ t unbound: LWP 2 exited, the timer runs on",
            " 0.000000000  a   ~ u unbound: LWP 2 exited, the timer runs on",
        ]
    );
    assert!(
        t.contains(" 0.001000000  a   ~ t expired x1, pending 1\n"),
        "{t}"
    );
    assert!(t.contains("timer_lwpbind t lwp=99 => EINVAL"));
    assert!(t.contains("lwp_exit v => ok\n 0.001000000  a   ~ t unbound: LWP 3 exited"));
    // LWP 1 was the last: its exit is the process's (nothing was bound
    // to it any more, so no unbinding lines).
    assert!(
        t.contains("lwp_exit 1 => ok\n 0.001000000  a   lwp_create x => ESRCH"),
        "{t}"
    );
}

#[test]
fn lwp_names_are_per_process_and_checked() {
    for (src, want) in [
        (
            "spawn a\nlwp exit a w\n",
            "t.itimer:2: unknown LWP `w` in process `a`",
        ),
        (
            "spawn a\nspawn b\nlwp create a w\nlwp bind b 0 w\n",
            "t.itimer:4: unknown LWP `w` in process `b`",
        ),
        (
            "spawn a\nlwp create a w\nlwp create a w\n",
            "t.itimer:3: LWP `w` of `a` exists already (id 2)",
        ),
        (
            "spawn a\nlwp create a w\nlwp bind a t w\n",
            "t.itimer:3: unknown timer `t` in process `a`",
        ),
        ("lwp frob a w\n", "t.itimer:1: unknown `lwp frob`"),
    ] {
        let (e, _) = error(src);
        assert!(e.starts_with(want), "{src}: {e}");
    }
    // A name is free again once its LWP exited.
    let t = trace("spawn a\nlwp create a w => 2\nlwp exit a w\nlwp create a w => 3\n");
    assert!(t.ends_with("lwp_create w => 3\n"));
}

#[test]
fn the_new_commands_are_listed() {
    for verb in ["handle", "lwp"] {
        assert!(VERBS.contains(&verb));
    }
    for usage in [
        "handle P SIG",
        "lwp create P L",
        "lwp exit P L",
        "lwp bind P T L",
    ] {
        assert!(HELP.contains(usage), "help lists `{usage}`");
    }
    let (e, _) = error("frob\n");
    assert!(e.contains("handle") && e.contains("lwp"), "{e}");
}
