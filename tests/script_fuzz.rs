//! Any script, however wrong, gives a trace or a script error: never a
//! panic, never a hang. Lines are drawn from the language's own words,
//! well-formed or not. (Durations stay small so that every case is quick:
//! a long `advance` over a 1 ms SIGEV_THREAD timer is slow by design, one
//! barrier per expiry.)

use itimer::script::command::VERBS as LANGUAGE_VERBS;
use proptest::prelude::*;

/// The language's own verbs (`VERBS`) plus these argument words.
const ARG_WORDS: &[&str] = &[
    "a",
    "b",
    "r",
    "root",
    "t",
    "u",
    "P",
    "Q",
    "0",
    "1",
    "-1",
    "42",
    "create",
    "close",
    "get",
    "getn",
    "send",
    "alert",
    "update",
    "bind",
    "w",
    "stop",
    "start",
    "warp",
    "all",
    "1ms",
    "250us",
    "0",
    "-1ns",
    "+1s",
    "-2s",
    "{0,1000000000}",
    "{1,-1}",
    "SIGALRM",
    "SIGUSR1",
    "SIGKILL",
    "99",
    "realtime",
    "highres",
    "vm",
    "virtual",
    "clock=highres",
    "clock=vm",
    "clock=realtime",
    "clock=99",
    "notify=signal",
    "notify=port",
    "notify=thread",
    "notify=none",
    "port=P",
    "port=3",
    "signo=SIGUSR2",
    "signo=0",
    "value=7",
    "user=9",
    "interval=1ms",
    "interval=0",
    "abs=+1ms",
    "abs=-1s",
    "abs=1ns",
    "max=2",
    "nget=1",
    "events=3",
    "timer_max=3",
    "uid=0",
    "=>",
    "EINVAL",
    "ok",
    "#",
    "x=",
    "=y",
    "µs",
];

/// Well-formed lines that make time pass and timers fire, so the random
/// ones meet a kernel with something going on.
const SEED: &str = "spawn a\nspawn r root\nport create a P\n\
                    create a t clock=highres notify=thread value=1\n\
                    create a u clock=realtime notify=port port=P\n\
                    create r s clock=vm notify=signal\n\
                    settime a t 1ms interval=1ms\nsettime a u 2ms interval=500us\n\
                    settime r s 1ms interval=3ms\nhandle r SIGALRM\n\
                    lwp create a w\nadvance 3ms\n";

/// The heads of command-shaped lines: a verb, with its subcommand where it
/// has one. Every verb of the language but `boot` and `echo` (whose
/// arguments are free text) starts one; `shaped_heads_cover_the_language`
/// checks that, so a new verb cannot be left out.
const SHAPED_HEADS: &[&str] = &[
    "spawn",
    "exit",
    "create",
    "settime",
    "gettime",
    "getoverrun",
    "delete",
    "status",
    "stats",
    "advance",
    "step",
    "consume",
    "pending",
    "block",
    "unblock",
    "ignore",
    "default",
    "handle",
    "lwp create",
    "lwp exit",
    "lwp bind",
    "port create",
    "port close",
    "port get",
    "port getn",
    "port send",
    "port alert",
    "port pending",
    "clock_settime",
    "clock_gettime",
    "clock_getres",
    "vm",
    "expect",
    "limit",
];
const PROCS: &[&str] = &["a", "r", "b"];
const NAMES: &[&str] = &[
    "t", "u", "s", "P", "Q", "0", "3", "realtime", "highres", "vm", "w",
];
const VALUES: &[&str] = &[
    "1ms",
    "0",
    "250us",
    "-1ns",
    "+1ms",
    "-1s",
    "{0,1000000000}",
    "SIGALRM",
    "SIGUSR1",
    "stop",
    "start",
    "2",
];
const OPTS: &[&str] = &[
    "clock=highres",
    "clock=vm",
    "clock=realtime",
    "clock=7",
    "notify=signal",
    "notify=port",
    "notify=thread",
    "notify=none",
    "port=P",
    "port=Q",
    "port=3",
    "signo=SIGUSR2",
    "value=7",
    "user=9",
    "interval=1ms",
    "interval=300us",
    "abs=+1ms",
    "abs=-1s",
    "abs=1ns",
    "max=2",
    "nget=1",
    "events=3",
    "uid=0",
];

/// Random words, or a command shaped like a real one (verb, process,
/// name, value, options) with random parts.
fn line() -> impl Strategy<Value = String> {
    let vocabulary: Vec<&'static str> = LANGUAGE_VERBS.iter().chain(ARG_WORDS).copied().collect();
    let words =
        prop::collection::vec(prop::sample::select(vocabulary), 0..7).prop_map(|w| w.join(" "));
    let shaped = (
        prop::sample::select(SHAPED_HEADS),
        prop::sample::select(PROCS),
        prop::sample::select(NAMES),
        prop::option::of(prop::sample::select(VALUES)),
        prop::collection::vec(prop::sample::select(OPTS), 0..3),
    )
        .prop_map(|(v, p, n, val, opts)| {
            let mut l = format!("{v} {p} {n}");
            if let Some(val) = val {
                l.push(' ');
                l.push_str(val);
            }
            for o in opts {
                l.push(' ');
                l.push_str(o);
            }
            l
        });
    // The VM clock's controls, with durations well- and ill-formed,
    // negative and far too long.
    let vm = (
        prop::sample::select(&["stop", "start", "warp", "step"][..]),
        prop::sample::select(
            &[
                "",
                "1ms",
                "0",
                "-1ns",
                "250us",
                "9223372037s",
                "5",
                "1ms 2ms",
            ][..],
        ),
    )
        .prop_map(|(op, d)| format!("vm {op} {d}"));
    prop_oneof![words, shaped, vm]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_scripts_never_panic(lines in prop::collection::vec(line(), 1..25)) {
        let mut session = itimer::script::Session::new();
        let mut sink = |_: &str| {};
        let mut ran = 0;
        for l in SEED.lines().map(str::to_owned).chain(lines) {
            // Errors are fine; panics and hangs are not.
            ran += usize::from(session.exec(&l, &mut sink).is_ok());
        }
        prop_assert!(ran >= SEED.lines().count(), "the seed lines run");
    }
}

#[test]
fn shaped_heads_cover_the_language() {
    for verb in LANGUAGE_VERBS {
        if matches!(verb, "boot" | "echo") {
            continue;
        }
        assert!(
            SHAPED_HEADS
                .iter()
                .any(|h| h.split(' ').next() == Some(verb)),
            "no command-shaped fuzz line starts with `{verb}`"
        );
    }
}
