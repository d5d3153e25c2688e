//! Choosing a backend: precedence parsing, `help`, unknown names, fallback
//! when a backend cannot start, all failing, and the probe.

#[macro_use]
mod backend_common;

use backend_common::{in_child, serial};
use itimer_hostalarm::alarm::dynticks::DynticksBackend;
use itimer_hostalarm::alarm::registry::HELP_WORD;
use itimer_hostalarm::alarm::unix::UnixBackend;
use itimer_hostalarm::alarm::{
    AlarmBackend, BackendKind, Choice, Precedence, UnknownBackend, candidates, help, start_first,
    start_first_of, which_start_here,
};
use nix::errno::Errno;

fn names(p: &Precedence) -> Vec<&'static str> {
    p.kinds().iter().map(|k| k.name()).collect()
}

#[test]
fn default_precedence_is_the_documented_order() {
    assert_eq!(
        names(&Precedence::default()),
        ["timerfd", "dynticks", "unix", "mmtimer", "timerqueue"]
    );
    assert_eq!(
        Precedence::default().to_string(),
        "timerfd,dynticks,unix,mmtimer,timerqueue"
    );
}

#[test]
fn named_backends_move_to_the_front_in_the_given_order() {
    let p = Precedence::parse("unix,timerqueue").unwrap();
    assert_eq!(
        names(&p),
        ["unix", "timerqueue", "timerfd", "dynticks", "mmtimer"]
    );
    let p = Precedence::parse("mmtimer").unwrap();
    assert_eq!(
        names(&p),
        ["mmtimer", "timerfd", "dynticks", "unix", "timerqueue"]
    );
    let p = Precedence::parse("timerqueue,mmtimer,unix,dynticks,timerfd").unwrap();
    assert_eq!(
        names(&p),
        ["timerqueue", "mmtimer", "unix", "dynticks", "timerfd"]
    );
}

#[test]
fn repeats_are_ignored_and_whitespace_trimmed() {
    let p = Precedence::parse(" dynticks , unix,dynticks ").unwrap();
    assert_eq!(
        names(&p),
        ["dynticks", "unix", "timerfd", "mmtimer", "timerqueue"]
    );
    // The Display form parses back to the same precedence.
    assert_eq!(Precedence::parse(&p.to_string()).unwrap(), p);
}

#[test]
fn unknown_name_is_an_error_listing_the_valid_ones() {
    let e = Precedence::parse("timerfd,hpet").unwrap_err();
    assert_eq!(
        e,
        UnknownBackend {
            name: "hpet".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "unknown alarm backend `hpet`; valid names are: timerfd, dynticks, unix, mmtimer, \
         timerqueue (or `help` for the list)"
    );
    // Case matters, as in QEMU.
    assert_eq!(Precedence::parse("TIMERFD").unwrap_err().name, "TIMERFD");
    // An empty entry (or an empty list) names nothing.
    assert_eq!(Precedence::parse("unix,,timerfd").unwrap_err().name, "");
    assert_eq!(Precedence::parse("").unwrap_err().name, "");
    // `help` is not a backend inside a list.
    assert_eq!(Precedence::parse("unix,help").unwrap_err().name, "help");
    assert_eq!(Choice::parse("unix,help").unwrap_err().name, "help");
}

#[test]
fn help_is_a_choice_and_a_listing() {
    assert_eq!(Choice::parse(HELP_WORD), Ok(Choice::Help));
    assert_eq!(Choice::parse(" help "), Ok(Choice::Help));
    assert_eq!(
        Choice::parse("unix"),
        Ok(Choice::List(Precedence::parse("unix").unwrap()))
    );
    let listing = help();
    let listed: Vec<&str> = listing.entries.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        listed,
        ["timerfd", "dynticks", "unix", "mmtimer", "timerqueue"]
    );
    assert_eq!(
        listing.to_string(),
        "Available alarm backends, in default precedence order:\n\
         \x20 timerfd     timerfd on CLOCK_MONOTONIC, absolute deadlines, detects wall-clock steps (1 ns)\n\
         \x20 dynticks    POSIX timer, signal SIGRTMIN+4 to the loop thread, read via signalfd (1 ns)\n\
         \x20 unix        setitimer(ITIMER_REAL) and SIGALRM, one per process, one alarm per ms at most (1 us)\n\
         \x20 mmtimer     Windows multimedia timer semantics (timeSetEvent), emulated (1 ms)\n\
         \x20 timerqueue  Windows timer-queue semantics (CreateTimerQueueTimer), emulated (1 ms)\n"
    );
}

#[test]
fn candidates_are_fresh_and_in_order() {
    let p = Precedence::parse("timerqueue,unix").unwrap();
    let c = candidates(&p);
    let got: Vec<&str> = c.iter().map(|b| b.name()).collect();
    assert_eq!(
        got,
        ["timerqueue", "unix", "timerfd", "dynticks", "mmtimer"]
    );
    assert!(
        c.iter().all(|b| b.wait_fd().is_none()),
        "candidates start stopped"
    );
    for kind in BackendKind::ALL {
        assert_eq!(BackendKind::from_name(kind.name()), Some(kind));
        assert_eq!(kind.instantiate().name(), kind.name());
    }
}

#[test]
fn first_that_starts_wins() {
    let _g = serial();
    let b = start_first(&Precedence::default()).expect("some backend starts here");
    assert_eq!(b.name(), "timerfd", "timerfd starts on this Linux host");
    assert!(b.wait_fd().is_some(), "the winner is started");
    let b = start_first(&Precedence::parse("mmtimer").unwrap()).unwrap();
    assert_eq!(b.name(), "mmtimer");
}

#[test]
fn unix_already_claimed_falls_back_to_the_next() {
    let _g = serial();
    let mut live = UnixBackend::new();
    live.start().expect("first unix starts");
    // "unix" alone: the rest follow in default order, so timerfd is next.
    let b = start_first(&Precedence::parse("unix").unwrap()).unwrap();
    assert_eq!(b.name(), "timerfd");
    let b2 = start_first(&Precedence::parse("unix,mmtimer").unwrap()).unwrap();
    assert_eq!(b2.name(), "mmtimer");
    drop((b, b2));
    live.stop();
    // Released: the next unix start wins again.
    let b = start_first(&Precedence::parse("unix").unwrap()).unwrap();
    assert_eq!(b.name(), "unix");
}

#[test]
fn dynticks_busy_on_this_thread_falls_back() {
    let _g = serial();
    let mut live = DynticksBackend::new();
    live.start().expect("dynticks starts on this thread");
    let b = start_first(&Precedence::parse("dynticks,timerqueue").unwrap()).unwrap();
    assert_eq!(b.name(), "timerqueue");
}

#[test]
fn all_failing_reports_every_error_in_order() {
    let _g = serial();
    // With no file descriptor left to open, no backend can start. Done in a
    // child so the limit does not reach the other tests.
    let outcome = in_child(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid out-pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return Err("getrlimit failed".into());
        }
        lim.rlim_cur = 0;
        // SAFETY: a valid rlimit (hard limit unchanged), this child only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err("setrlimit failed".into());
        }
        let err = match start_first(&Precedence::default()) {
            Ok(b) => return Err(format!("{} started with no fds", b.name())),
            Err(e) => e,
        };
        let got: Vec<(&str, Option<Errno>)> =
            err.errors.iter().map(|e| (e.backend, e.errno)).collect();
        let want = [
            ("timerfd", Some(Errno::EMFILE)),
            ("dynticks", Some(Errno::EMFILE)),
            ("unix", Some(Errno::EMFILE)),
            ("mmtimer", Some(Errno::EMFILE)),
            ("timerqueue", Some(Errno::EMFILE)),
        ];
        if got != want {
            return Err(format!("errors {got:?}"));
        }
        let text = err.to_string();
        if !text.starts_with(
            "no host alarm backend could start\n  alarm backend `timerfd` cannot start: ",
        ) || text.lines().count() != 6
        {
            return Err(format!("display {text:?}"));
        }
        // The failed unix start released its claim.
        if itimer_hostalarm::alarm::unix::is_claimed() {
            return Err("unix claim leaked".into());
        }
        Ok(())
    });
    assert_eq!(outcome, Ok(()));
}

#[test]
fn start_first_of_an_empty_list_fails_with_no_errors() {
    let e = start_first_of(Vec::new()).err().expect("nothing to start");
    assert!(e.errors.is_empty());
}

#[test]
fn probe_reports_every_backend() {
    let _g = serial();
    let probes = which_start_here();
    let got: Vec<(&str, bool)> = probes
        .iter()
        .map(|p| (p.kind.name(), p.outcome.is_ok()))
        .collect();
    assert_eq!(
        got,
        [
            ("timerfd", true),
            ("dynticks", true),
            ("unix", true),
            ("mmtimer", true),
            ("timerqueue", true)
        ]
    );
    let info = |name: &str| {
        probes
            .iter()
            .find(|p| p.kind.name() == name)
            .unwrap()
            .outcome
            .clone()
            .unwrap()
    };
    assert_eq!(info("unix").resolution_ns, 1_000);
    assert_eq!(info("mmtimer").resolution_ns, 1_000_000);
    assert_eq!(info("timerqueue").min_rearm_ns, 1_000_000);
    assert_eq!(info("timerfd").min_rearm_ns, 0);
    // The probe left nothing behind: unix is free, dynticks free here.
    assert!(!itimer_hostalarm::alarm::unix::is_claimed());
    let mut d = DynticksBackend::new();
    d.start().expect("dynticks free again on this thread");

    // With a live unix backend the probe reports it busy and touches nothing.
    let mut live = UnixBackend::new();
    live.start().unwrap();
    let probes = which_start_here();
    let unix = probes.iter().find(|p| p.kind.name() == "unix").unwrap();
    assert_eq!(unix.outcome.as_ref().unwrap_err().errno, Some(Errno::EBUSY));
    // ... and dynticks is busy on this thread, where `d` runs.
    let dyn_probe = probes.iter().find(|p| p.kind.name() == "dynticks").unwrap();
    assert_eq!(
        dyn_probe.outcome.as_ref().unwrap_err().errno,
        Some(Errno::EBUSY)
    );
    assert!(
        itimer_hostalarm::alarm::unix::is_claimed(),
        "live one kept its claim"
    );
    live.stop();
}
