//! The scenario language: one syscall or time step per line, run on the
//! simulated host, printing a deterministic trace.
//!
//! `itimer run FILE` and `itimer shell` use it, and so can tests and the
//! course book:
//!
//! ```
//! let trace = itimer::script::run_to_string(
//!     "example",
//!     "spawn a uid=1000\n\
//!      create a t1 clock=highres notify=signal signo=SIGALRM value=7\n\
//!      settime a t1 5ms interval=1ms\n\
//!      advance 7ms\n\
//!      consume a => SIGALRM SI_TIMER timerid=0 value=7 overrun=2\n",
//! )
//! .unwrap();
//! assert!(trace.contains("~ t1 expired x1, pending 3"));
//! ```
//!
//! # The language
//!
//! A script is lines. `#` starts a comment. Names of processes, timers,
//! ports and LWPs start with a letter; timers and LWPs are named per
//! process, ports kernel-wide. Where a timer, a port or an LWP is
//! expected, a number is taken as a raw id (to show the errno of a bad
//! one; `1` is every process's first LWP). Durations are exact:
//! `0`, `7ns`, `250us`, `5ms`, `1.5s`; clock readings are seconds
//! (`1700000000.5s`); `{sec,nsec}` is a raw `timespec`, passed unchecked.
//! Signals: `SIGALRM`, `SIGUSR1`, `SIGUSR2`, `SIGRTMIN+N`, numbers. Clocks:
//! `realtime`, `highres` (= `monotonic`), `vm`, `realtime0`, `virtual`,
//! `thread_cputime`, `process_cputime`, numbers.
//!
//! | command | does |
//! |---|---|
//! | `boot [timer_max=N] [port_max=N] [port_max_events=N]` | kernel limits; first line only (default `timer_max` 32) |
//! | `spawn P [uid=N \| root]` | a process (default uid 1000, unprivileged; `root` is uid 0, privileged) |
//! | `exit P` | exits it (timers deleted, ports closed) |
//! | `create P T [clock=C] [notify=default\|none\|signal\|port\|thread] [signo=S] [value=N] [port=PORT] [user=N]` | `timer_create` |
//! | `settime P T VALUE [interval=D]` | relative `timer_settime` (`0` disarms) |
//! | `settime P T abs=TIME [interval=D]` | absolute (`TIMER_ABSTIME`); `abs=+10s` / `abs=-1s`: the timer's clock now ± D |
//! | `gettime P T`, `getoverrun P T`, `delete P T` | the calls |
//! | `status P T` | the model's window: `flags`, `pending`, `overrun` |
//! | `stats P` | live timers, signal entries, LWPs |
//! | `advance D` | moves time, stopping at every deadline on the way |
//! | `step [N]` | jumps to the next armed deadline (N times) |
//! | `consume P [SIG...]` | `sigtimedwait` with a zero timeout (default: any signal) |
//! | `pending P` | `sigpending` |
//! | `block P SIG...`, `unblock P SIG...` | `sigprocmask` |
//! | `ignore P SIG`, `default P SIG` | `sigaction` `SIG_IGN` / `SIG_DFL` |
//! | `handle P SIG` | `sigaction` with a handler: each run is a `~ T handler SIGINFO getoverrun=N` line |
//! | `lwp create P L`, `lwp exit P L` | `lwp_create` (the result is the LWP id), `lwp_exit` |
//! | `lwp bind P T L` | `timer_lwpbind`; `status` shows `lwp=N` for a timer not on LWP 1 |
//! | `port create P NAME`, `port close P PORT` | `port_create`, `port_close` |
//! | `port get P PORT`, `port getn P PORT max=N [nget=N]` | retrieval, zero timeout |
//! | `port send P PORT [events=N] [user=N]`, `port alert P PORT [update] [events=N] [user=N]`, `port pending P PORT` | the rest of the port calls |
//! | `clock_settime P CLOCK TIME`, `+D`, `-D` | sets a clock (to a reading, or shifted) |
//! | `clock_gettime P CLOCK`, `clock_getres P CLOCK` | reads one |
//! | `vm stop`, `vm start` | stops and resumes the VM clock |
//! | `vm warp D` | jumps the VM clock forward by D (running or stopped): VM timers due expire late, together, with overruns |
//! | `vm step D` | advances a stopped VM clock by D, each VM timer expiring at its own deadline (`EBUSY` while the VM runs) |
//! | `CMD => RESULT`, `expect RESULT` | asserts the (previous) command's result |
//! | `limit N`, `limit all` | expiry lines shown per timer per command (default 6) |
//! | `echo TEXT` | a `# TEXT` line in the trace |
//!
//! # The trace
//!
//! Each call prints one line: the model time (seconds since boot, exact to
//! the nanosecond), the process (`-` for the host), the call with its
//! arguments as the kernel got them, `=>`, and the result: a value, `ok`,
//! or an errno name (`EINVAL`). A call's errno is an outcome, not a script
//! error. Lines marked `~` are what happened as a result: an expiry of a
//! signal or port timer (`expired xK, pending N`: K expirations at this
//! instant, the notification now stands for N), a SIGEV_THREAD
//! callback (`callback value=V expirations=E overrun=O`), a run of the
//! script's signal handler (`handler SIGUSR1 SI_TIMER timerid=I value=V
//! overrun=O getoverrun=N`: the siginfo it got, and `timer_getoverrun`
//! called inside it), or a timer unbound because its LWP exited
//! (`unbound: LWP N exited, the timer runs on`). A timer whose signal is
//! caught and not blocked shows handler runs instead of expiries (the
//! handler consumed them). See [`session`] for how the trace is kept
//! deterministic.
//!
//! An expectation matches when the result equals it, or starts with it
//! followed by a blank (`=> SIGALRM` matches the whole siginfo).
//!
//! # Script errors
//!
//! A parse error, an unknown name, or a failed expectation stops the
//! script with `FILE:LINE: message` (exit status 2 from `itimer run`).

pub mod command;
pub mod events;
pub mod session;
pub mod units;

use std::fmt;

pub use session::Session;

/// The language reference the shell's `help` prints.
pub const HELP: &str = "\
Scenario language: one command per line; `#` starts a comment.
Names start with a letter; a number where a timer/port/LWP is expected is a raw id
(LWP 1 is every process's first).
Durations: 0 7ns 250us 5ms 1.5s   readings: 1700000000.5s   raw timespec: {sec,nsec}
Signals: SIGALRM SIGUSR1 SIGUSR2 SIGRTMIN+N N   clocks: realtime highres monotonic vm
  realtime0 virtual thread_cputime process_cputime N

  boot [timer_max=N] [port_max=N] [port_max_events=N]   (first line only)
  spawn P [uid=N | root]              exit P
  create P T [clock=C] [notify=default|none|signal|port|thread]
             [signo=S] [value=N] [port=PORT] [user=N]
  settime P T VALUE [interval=D]      settime P T abs=TIME|+D|-D [interval=D]
  gettime P T    getoverrun P T    delete P T    status P T    stats P
  advance D      step [N]
  consume P [SIG...]   pending P   block P SIG...   unblock P SIG...
  ignore P SIG   default P SIG
  handle P SIG                        (a handler: each run is a `~ T handler ...` line)
  lwp create P L   lwp exit P L   lwp bind P T L   (status shows lwp=N off LWP 1)
  port create P NAME   port close P PORT   port get P PORT
  port getn P PORT max=N [nget=N]   port send P PORT [events=N] [user=N]
  port alert P PORT [update] [events=N] [user=N]   port pending P PORT
  clock_settime P CLOCK TIME|+D|-D   clock_gettime P CLOCK   clock_getres P CLOCK
  vm stop   vm start   vm warp D   vm step D   (step: a stopped VM only; result ok vm=READING)
  CMD => RESULT   expect RESULT       (the result equals RESULT or starts with it)
  limit N|all     echo TEXT

Trace: TIME PROC CALL => RESULT; `~` lines are expiries, SIGEV_THREAD callbacks,
handler runs and timers unbound by an LWP's exit.
";

/// A script error: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The script's name, as given.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

/// Runs a whole script on a fresh simulated kernel, sending each trace
/// line to `out` as it is made; stops at the first script error.
pub fn run_source(file: &str, source: &str, out: &mut dyn FnMut(&str)) -> Result<(), ScriptError> {
    let mut session = Session::new();
    for (i, line) in source.lines().enumerate() {
        session.exec(line, out).map_err(|message| ScriptError {
            file: file.to_owned(),
            line: i + 1,
            message,
        })?;
    }
    Ok(())
}

/// Runs a whole script and returns its trace (each line ending in `\n`).
/// On a script error, the error and the trace up to it.
pub fn run_to_string(file: &str, source: &str) -> Result<String, (ScriptError, String)> {
    let mut trace = String::new();
    let r = run_source(file, source, &mut |l| {
        trace.push_str(l);
        trace.push('\n');
    });
    match r {
        Ok(()) => Ok(trace),
        Err(e) => Err((e, trace)),
    }
}

/// Compares a trace with the expected one, line by line, ignoring only
/// line-ending style and trailing blank lines; the error names the first
/// differing line.
pub fn compare_traces(expected: &str, actual: &str) -> Result<(), String> {
    let norm = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .lines()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .collect();
        while v.last().is_some_and(|l| l.trim().is_empty()) {
            v.pop();
        }
        v
    };
    let (e, a) = (norm(expected), norm(actual));
    for i in 0..e.len().max(a.len()) {
        let (el, al) = (e.get(i), a.get(i));
        if el != al {
            return Err(format!(
                "trace differs at line {}:\n  expected: {}\n  actual:   {}",
                i + 1,
                el.map_or("(end of trace)", String::as_str),
                al.map_or("(end of trace)", String::as_str)
            ));
        }
    }
    Ok(())
}
