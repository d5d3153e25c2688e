//! Parsing one line of a scenario into a [`Line`]: a [`Command`] and an
//! optional inline expectation (`=> RESULT`).
//!
//! A line is words separated by blanks. `#` starts a comment (to the end
//! of the line); `=>` starts an inline expectation. Positional words come
//! first (names, times, signals), then `key=value` options in any order.
//! Every error names what was expected; nothing here panics on any input.

use std::collections::BTreeMap;

use super::units::{TimeArg, parse_clock, parse_duration, parse_signal};

/// A process, timer, port or LWP name: a letter or `_`, then letters, digits,
/// `_`, `-` or `.`.
pub fn is_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A timer, port or LWP as a script names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// By the name the script gave it.
    Name(String),
    /// By a raw id number (for errno demonstrations: `gettime a 42`; LWP
    /// `1` is every process's first LWP).
    Id(i32),
}

impl Ref {
    fn parse(what: &str, word: &str) -> Result<Ref, String> {
        if let Ok(n) = word.parse::<i32>() {
            return Ok(Ref::Id(n));
        }
        if is_name(word) {
            return Ok(Ref::Name(word.to_owned()));
        }
        Err(format!("`{word}` is not a {what} name or id number"))
    }

    /// As written in a trace.
    pub fn show(&self) -> String {
        match self {
            Ref::Name(n) => n.clone(),
            Ref::Id(n) => n.to_string(),
        }
    }
}

/// How `create` asks to be notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// No sigevent at all (`evp` NULL): SIGALRM with the timer id as value.
    Default,
    /// `SIGEV_NONE`.
    None,
    /// `SIGEV_SIGNAL`.
    Signal {
        /// The signal number (any: the kernel judges it).
        signo: i32,
        /// `sigev_value`.
        value: u64,
    },
    /// `SIGEV_PORT`.
    Port {
        /// The port.
        port: Ref,
        /// `portnfy_user`.
        user: u64,
    },
    /// `SIGEV_THREAD`: the trace shows each callback.
    Thread {
        /// `sigev_value`.
        value: u64,
    },
}

/// How `settime` gives the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetValue {
    /// Relative (flags 0).
    Relative(TimeArg),
    /// `abs=T`: absolute (`TIMER_ABSTIME`).
    Absolute(TimeArg),
    /// `abs=+D` / `abs=-D`: absolute, the timer's clock now plus `D` (ns).
    AbsoluteFromNow(i128),
}

/// What `clock_settime` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockValue {
    /// This reading.
    At(TimeArg),
    /// The clock's reading now plus this many ns (`+10s`, `-5s`).
    Shift(i128),
}

/// A port operation (`port VERB PROC PORT ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortOp {
    /// `port_create`, binding the name.
    Create,
    /// `port_close`.
    Close,
    /// `port_get`, zero timeout.
    Get,
    /// `port_getn`, zero timeout.
    Getn {
        /// At most this many.
        max: usize,
        /// At least this many, else `ETIME` with what was there.
        nget: usize,
    },
    /// `port_send`.
    Send {
        /// `portev_events`.
        events: i32,
        /// `portev_user`.
        user: u64,
    },
    /// `port_alert`.
    Alert {
        /// `PORT_ALERT_UPDATE` instead of `PORT_ALERT_SET`.
        update: bool,
        /// `portev_events` (0 leaves alert mode).
        events: i32,
        /// `portev_user`.
        user: u64,
    },
    /// The number of queued events (`port_getn` with `max` 0).
    Pending,
}

/// An LWP operation (`lwp VERB PROC ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LwpOp {
    /// `lwp create P L`: `lwp_create`, binding the name `L`.
    Create(String),
    /// `lwp exit P L`: `lwp_exit`.
    Exit(Ref),
    /// `lwp bind P T L`: `timer_lwpbind` of timer `T` to LWP `L`.
    Bind {
        /// The timer.
        timer: Ref,
        /// The LWP.
        lwp: Ref,
    },
}

/// One command of the language (see the module docs of [`crate::script`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `boot [timer_max=N] [port_max=N] [port_max_events=N]`.
    Boot {
        /// Per-process timer limit.
        timer_max: Option<usize>,
        /// Per-process port limit.
        port_max: Option<usize>,
        /// Per-port event-slot limit.
        port_max_events: Option<usize>,
    },
    /// `spawn P [root | uid=N]`.
    Spawn {
        /// The process name.
        name: String,
        /// uid 0 with privileges.
        root: bool,
        /// The uid (unprivileged).
        uid: u32,
    },
    /// `exit P`.
    Exit(String),
    /// `create P T [clock=C] [notify=...] ...`.
    Create {
        /// The process.
        proc: String,
        /// The timer's new name.
        timer: String,
        /// The clock id.
        clock: i32,
        /// The notification.
        notify: Notify,
    },
    /// `settime P T VALUE [interval=D]`.
    Settime {
        /// The process.
        proc: String,
        /// The timer.
        timer: Ref,
        /// The value.
        value: SetValue,
        /// The interval.
        interval: TimeArg,
    },
    /// `gettime P T`.
    Gettime(String, Ref),
    /// `getoverrun P T`.
    Getoverrun(String, Ref),
    /// `delete P T`.
    Delete(String, Ref),
    /// `status P T`: the model's window on a timer (pending, overrun, flags).
    Status(String, Ref),
    /// `stats P`: the process's resource counts.
    Stats(String),
    /// `advance D`.
    Advance(i128),
    /// `step [N]`: to the next armed deadline, N times.
    Step(u64),
    /// `consume P [SIG...]`: `sigtimedwait` with a zero timeout.
    Consume(String, Vec<i32>),
    /// `pending P`: `sigpending`.
    Pending(String),
    /// `block P SIG...`.
    Block(String, Vec<i32>),
    /// `unblock P SIG...`.
    Unblock(String, Vec<i32>),
    /// `ignore P SIG`.
    Ignore(String, i32),
    /// `default P SIG`.
    DefaultAction(String, i32),
    /// `handle P SIG`: `sigaction` installing the script's handler, which
    /// reports each delivery as a `~ ... handler ...` trace line.
    Handle(String, i32),
    /// `lwp VERB P ...`.
    Lwp {
        /// The process.
        proc: String,
        /// The operation.
        op: LwpOp,
    },
    /// `port VERB P PORT ...`.
    Port {
        /// The process making the call.
        proc: String,
        /// The port.
        port: Ref,
        /// The operation.
        op: PortOp,
    },
    /// `clock_settime P CLOCK VALUE`.
    ClockSettime(String, i32, ClockValue),
    /// `clock_gettime P CLOCK`.
    ClockGettime(String, i32),
    /// `clock_getres P CLOCK`.
    ClockGetres(String, i32),
    /// `vm stop`, `vm start`, `vm warp D`, `vm step D`.
    Vm(VmOp),
    /// `expect RESULT`: the previous command's result.
    Expect(String),
    /// `limit N` / `limit all`: expiry lines shown per timer per command.
    Limit(Option<usize>),
    /// `echo TEXT`: a `#` line in the trace.
    Echo(String),
}

/// What a `vm` command does to the VM clock (`CLOCK_VM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmOp {
    /// `vm stop`: the VM clock freezes.
    Stop,
    /// `vm start`: it advances with host time again.
    Start,
    /// `vm warp D`: jumps it forward by D ns (VM timers due expire late,
    /// at the warped time). Negative D is passed on, to show `EINVAL`.
    Warp(i64),
    /// `vm step D`: advances a stopped VM's clock by D ns, each VM timer
    /// expiring at its own deadline. Negative D is passed on (`EINVAL`).
    Step(i64),
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The command.
    pub command: Command,
    /// `=> RESULT`, whitespace-normalised.
    pub expect: Option<String>,
}

/// Words and `key=value` options of one command.
struct Args<'a> {
    verb: &'a str,
    words: Vec<&'a str>,
    opts: BTreeMap<&'a str, &'a str>,
    next: usize,
}

impl<'a> Args<'a> {
    fn new(verb: &'a str, rest: &[&'a str]) -> Result<Args<'a>, String> {
        let mut words = Vec::new();
        let mut opts = BTreeMap::new();
        for w in rest {
            // `abs=` is a value, not an option, in `settime`; any word
            // with `=` is an option.
            if let Some((k, v)) = w.split_once('=') {
                if k.is_empty() || v.is_empty() {
                    return Err(format!("`{w}`: write options as key=value"));
                }
                if opts.insert(k, v).is_some() {
                    return Err(format!("option `{k}` given twice"));
                }
            } else {
                words.push(*w);
            }
        }
        Ok(Args {
            verb,
            words,
            opts,
            next: 0,
        })
    }

    fn word(&mut self, what: &str) -> Result<&'a str, String> {
        let w = self
            .words
            .get(self.next)
            .copied()
            .ok_or_else(|| format!("`{}` needs {what}", self.verb))?;
        self.next += 1;
        Ok(w)
    }

    fn name(&mut self, what: &str) -> Result<String, String> {
        let w = self.word(what)?;
        if is_name(w) {
            Ok(w.to_owned())
        } else {
            Err(format!(
                "`{w}` is not {what} (a name starts with a letter, then letters, digits, _ - .)"
            ))
        }
    }

    fn rest_words(&mut self) -> Vec<&'a str> {
        let r = self.words[self.next..].to_vec();
        self.next = self.words.len();
        r
    }

    fn opt(&mut self, key: &str) -> Option<&'a str> {
        self.opts.remove(key)
    }

    fn opt_num<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, String> {
        match self.opt(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("`{key}={v}`: not a number in range")),
        }
    }

    /// Fails on leftover words or options (`allowed` lists the options the
    /// command takes).
    fn done(self, allowed: &[&str]) -> Result<(), String> {
        if let Some(w) = self.words.get(self.next) {
            return Err(format!("unexpected `{w}` after `{}`", self.verb));
        }
        if let Some(k) = self.opts.keys().next() {
            return Err(if allowed.is_empty() {
                format!("`{}` takes no option, got `{k}=`", self.verb)
            } else {
                format!(
                    "unknown option `{k}` for `{}` (valid: {})",
                    self.verb,
                    allowed.join(", ")
                )
            });
        }
        Ok(())
    }
}

/// Strips the comment and splits off an inline expectation.
fn split_line(text: &str) -> (&str, Option<String>) {
    let text = text.split_once('#').map_or(text, |(code, _)| code);
    match text.split_once("=>") {
        Some((code, want)) => (
            code,
            Some(want.split_whitespace().collect::<Vec<_>>().join(" ")),
        ),
        None => (text, None),
    }
}

/// Parses one line; `Ok(None)` for a blank or comment-only line.
pub fn parse_line(text: &str) -> Result<Option<Line>, String> {
    // `echo` keeps its text verbatim (no comment or arrow parsing).
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("echo")
        && (rest.is_empty() || rest.starts_with(char::is_whitespace))
    {
        return Ok(Some(Line {
            command: Command::Echo(rest.trim().to_owned()),
            expect: None,
        }));
    }
    let (code, expect) = split_line(text);
    let words: Vec<&str> = code.split_whitespace().collect();
    let Some((&verb, rest)) = words.split_first() else {
        return match expect {
            Some(_) => Err("`=>` needs a command before it".to_owned()),
            None => Ok(None),
        };
    };
    if expect.as_deref() == Some("") {
        return Err("`=>` needs the expected result after it".to_owned());
    }
    let command = parse_command(verb, rest)?;
    if expect.is_some() && matches!(command, Command::Expect(_) | Command::Limit(_)) {
        return Err(format!("`{verb}` has no result to check with `=>`"));
    }
    Ok(Some(Line { command, expect }))
}

fn signals(words: &[&str]) -> Result<Vec<i32>, String> {
    words.iter().map(|w| parse_signal(w)).collect()
}

fn parse_command(verb: &str, rest: &[&str]) -> Result<Command, String> {
    // `expect` takes its words verbatim.
    if verb == "expect" {
        if rest.is_empty() {
            return Err("`expect` needs the expected result (e.g. `expect EINVAL`)".to_owned());
        }
        return Ok(Command::Expect(rest.join(" ")));
    }
    if verb == "port" {
        let (sub, rest) = rest
            .split_first()
            .ok_or("`port` needs an operation: create, close, get, getn, send, alert, pending")?;
        return parse_port(sub, rest);
    }
    if verb == "lwp" {
        let (sub, rest) = rest
            .split_first()
            .ok_or("`lwp` needs an operation: create, exit, bind")?;
        return parse_lwp(sub, rest);
    }
    let mut a = Args::new(verb, rest)?;
    let cmd = match verb {
        "boot" => {
            let c = Command::Boot {
                timer_max: a.opt_num("timer_max")?,
                port_max: a.opt_num("port_max")?,
                port_max_events: a.opt_num("port_max_events")?,
            };
            a.done(&["timer_max", "port_max", "port_max_events"])?;
            c
        }
        "spawn" => {
            let name = a.name("a process name")?;
            let root = match a.rest_words().as_slice() {
                [] => false,
                ["root"] => true,
                [w, ..] => return Err(format!("unexpected `{w}` (write `root` or `uid=N`)")),
            };
            let uid: Option<u32> = a.opt_num("uid")?;
            if root && uid.is_some() {
                return Err("`root` is uid 0: do not give uid= as well".to_owned());
            }
            a.done(&["uid"])?;
            Command::Spawn {
                name,
                root,
                uid: uid.unwrap_or(if root { 0 } else { 1000 }),
            }
        }
        "exit" => {
            let p = a.name("a process name")?;
            a.done(&[])?;
            Command::Exit(p)
        }
        "create" => parse_create(a)?,
        "settime" => {
            let proc = a.name("a process name")?;
            let timer = Ref::parse("timer", a.word("a timer")?)?;
            let value = match (a.words.get(a.next).copied(), a.opt("abs")) {
                (Some(_), Some(_)) => {
                    return Err("give either a relative value or abs=, not both".to_owned());
                }
                (None, None) => {
                    return Err(
                        "`settime` needs a value (`5ms`, `0` to disarm, or `abs=...`)".to_owned(),
                    );
                }
                (Some(w), None) => {
                    a.next += 1;
                    SetValue::Relative(TimeArg::parse(w)?)
                }
                (None, Some(v)) if v.starts_with(['+', '-']) => {
                    SetValue::AbsoluteFromNow(parse_duration(v)?)
                }
                (None, Some(v)) => SetValue::Absolute(TimeArg::parse(v)?),
            };
            let interval = match a.opt("interval") {
                Some(v) => TimeArg::parse(v)?,
                None => TimeArg::Ns(0),
            };
            a.done(&["abs", "interval"])?;
            Command::Settime {
                proc,
                timer,
                value,
                interval,
            }
        }
        "gettime" | "getoverrun" | "delete" | "status" => {
            let proc = a.name("a process name")?;
            let timer = Ref::parse("timer", a.word("a timer")?)?;
            a.done(&[])?;
            match verb {
                "gettime" => Command::Gettime(proc, timer),
                "getoverrun" => Command::Getoverrun(proc, timer),
                "delete" => Command::Delete(proc, timer),
                _ => Command::Status(proc, timer),
            }
        }
        "stats" | "pending" => {
            let proc = a.name("a process name")?;
            a.done(&[])?;
            if verb == "stats" {
                Command::Stats(proc)
            } else {
                Command::Pending(proc)
            }
        }
        "advance" => {
            let d = parse_duration(a.word("a duration")?)?;
            if d < 0 {
                return Err("time only moves forward: `advance` needs a duration >= 0".to_owned());
            }
            a.done(&[])?;
            Command::Advance(d)
        }
        "step" => {
            let n = match a.words.get(a.next) {
                Some(w) => {
                    a.next += 1;
                    w.parse::<u64>()
                        .ok()
                        .filter(|n| (1..=MAX_STEP_COUNT).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "`step {w}`: the count must be a number from 1 to {MAX_STEP_COUNT}"
                            )
                        })?
                }
                None => 1,
            };
            a.done(&[])?;
            Command::Step(n)
        }
        "consume" | "block" | "unblock" => {
            let proc = a.name("a process name")?;
            let sigs = signals(&a.rest_words())?;
            a.done(&[])?;
            match verb {
                "consume" => Command::Consume(proc, sigs),
                _ if sigs.is_empty() => return Err(format!("`{verb}` needs signals")),
                "block" => Command::Block(proc, sigs),
                _ => Command::Unblock(proc, sigs),
            }
        }
        "ignore" | "default" | "handle" => {
            let proc = a.name("a process name")?;
            let sig = parse_signal(a.word("a signal")?)?;
            a.done(&[])?;
            match verb {
                "ignore" => Command::Ignore(proc, sig),
                "default" => Command::DefaultAction(proc, sig),
                _ => Command::Handle(proc, sig),
            }
        }
        "clock_settime" => {
            let proc = a.name("a process name")?;
            let clock = parse_clock(a.word("a clock")?)?;
            let v = a.word("a clock value (`100s`, `+10s`, `-5s`)")?;
            let value = if v.starts_with(['+', '-']) {
                ClockValue::Shift(parse_duration(v)?)
            } else {
                ClockValue::At(TimeArg::parse(v)?)
            };
            a.done(&[])?;
            Command::ClockSettime(proc, clock, value)
        }
        "clock_gettime" | "clock_getres" => {
            let proc = a.name("a process name")?;
            let clock = parse_clock(a.word("a clock")?)?;
            a.done(&[])?;
            if verb == "clock_gettime" {
                Command::ClockGettime(proc, clock)
            } else {
                Command::ClockGetres(proc, clock)
            }
        }
        "vm" => {
            let op = match a.word("an operation: stop, start, warp D, step D")? {
                "stop" => VmOp::Stop,
                "start" => VmOp::Start,
                w @ ("warp" | "step") => {
                    a.verb = if w == "warp" { "vm warp" } else { "vm step" };
                    let text = a.word("a duration")?;
                    let d = i64::try_from(parse_duration(text)?).map_err(|_| {
                        format!(
                            "`{text}` is too long for the VM clock (at most {} ns)",
                            i64::MAX
                        )
                    })?;
                    if w == "warp" {
                        VmOp::Warp(d)
                    } else {
                        VmOp::Step(d)
                    }
                }
                w => {
                    return Err(format!(
                        "unknown `vm {w}` (valid: stop, start, warp D, step D)"
                    ));
                }
            };
            a.done(&[])?;
            Command::Vm(op)
        }
        "limit" => {
            let w = a.word("a number or `all`")?;
            let n = if w == "all" {
                None
            } else {
                Some(
                    w.parse()
                        .map_err(|_| format!("`limit {w}`: write a number or `all`"))?,
                )
            };
            a.done(&[])?;
            Command::Limit(n)
        }
        _ => {
            return Err(format!(
                "unknown command `{verb}` (commands: {}; see `help`)",
                VERBS.join(", ")
            ));
        }
    };
    Ok(cmd)
}

/// The largest count `step N` takes.
pub const MAX_STEP_COUNT: u64 = 1_000_000;

/// Every verb, for error messages (and for the fuzz test's vocabulary).
pub const VERBS: [&str; 28] = [
    "boot",
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
    "lwp",
    "port",
    "clock_settime",
    "clock_gettime",
    "clock_getres",
    "vm",
    "expect",
    "limit",
    "echo",
];

fn parse_create(mut a: Args<'_>) -> Result<Command, String> {
    let proc = a.name("a process name")?;
    let timer = a.name("a timer name")?;
    let clock = parse_clock(a.opt("clock").unwrap_or("realtime"))?;
    let kind = a.opt("notify");
    let value = a.opt_num::<u64>("value")?;
    let signo = a.opt("signo").map(parse_signal).transpose()?;
    let port = a.opt("port").map(|p| Ref::parse("port", p)).transpose()?;
    let user = a.opt_num::<u64>("user")?;
    let only = |ok: &[(&str, bool)], kind: &str| -> Result<(), String> {
        for (key, given) in ok {
            if *given {
                return Err(format!("`{key}=` does not apply to notify={kind}"));
            }
        }
        Ok(())
    };
    let notify = match kind.unwrap_or("default") {
        "default" => {
            only(
                &[
                    ("value", value.is_some()),
                    ("signo", signo.is_some()),
                    ("port", port.is_some()),
                    ("user", user.is_some()),
                ],
                "default",
            )?;
            Notify::Default
        }
        "none" => {
            only(
                &[
                    ("value", value.is_some()),
                    ("signo", signo.is_some()),
                    ("port", port.is_some()),
                    ("user", user.is_some()),
                ],
                "none",
            )?;
            Notify::None
        }
        "signal" => {
            only(
                &[("port", port.is_some()), ("user", user.is_some())],
                "signal",
            )?;
            Notify::Signal {
                signo: signo.unwrap_or(crate::kernel::abi::SIGALRM),
                value: value.unwrap_or(0),
            }
        }
        "port" => {
            only(
                &[("value", value.is_some()), ("signo", signo.is_some())],
                "port",
            )?;
            Notify::Port {
                port: port.ok_or("notify=port needs port=NAME")?,
                user: user.unwrap_or(0),
            }
        }
        "thread" => {
            only(
                &[
                    ("signo", signo.is_some()),
                    ("port", port.is_some()),
                    ("user", user.is_some()),
                ],
                "thread",
            )?;
            Notify::Thread {
                value: value.unwrap_or(0),
            }
        }
        other => {
            return Err(format!(
                "`notify={other}` (valid: default, none, signal, port, thread)"
            ));
        }
    };
    a.done(&["clock", "notify", "signo", "value", "port", "user"])?;
    Ok(Command::Create {
        proc,
        timer,
        clock,
        notify,
    })
}

fn parse_lwp(sub: &str, rest: &[&str]) -> Result<Command, String> {
    let mut a = Args::new(sub, rest)?;
    // Error messages name the whole command (`lwp exit`, not `exit`).
    a.verb = match sub {
        "create" => "lwp create",
        "exit" => "lwp exit",
        "bind" => "lwp bind",
        _ => return Err(format!("unknown `lwp {sub}` (valid: create, exit, bind)")),
    };
    let proc = a.name("a process name")?;
    let op = match sub {
        "create" => LwpOp::Create(a.name("an LWP name")?),
        "exit" => LwpOp::Exit(Ref::parse("LWP", a.word("an LWP")?)?),
        _ => {
            let timer = Ref::parse("timer", a.word("a timer")?)?;
            let lwp = Ref::parse("LWP", a.word("an LWP")?)?;
            LwpOp::Bind { timer, lwp }
        }
    };
    a.done(&[])?;
    Ok(Command::Lwp { proc, op })
}

fn parse_port(sub: &str, rest: &[&str]) -> Result<Command, String> {
    let verb = format!("port {sub}");
    let mut a = Args::new(sub, rest)?;
    a.verb = match sub {
        "create" | "close" | "get" | "getn" | "send" | "alert" | "pending" => sub,
        _ => {
            return Err(format!(
                "unknown `{verb}` (valid: create, close, get, getn, send, alert, pending)"
            ));
        }
    };
    let proc = a.name("a process name")?;
    let port = if sub == "create" {
        Ref::Name(a.name("a port name")?)
    } else {
        Ref::parse("port", a.word("a port")?)?
    };
    let op = match sub {
        "create" => PortOp::Create,
        "close" => PortOp::Close,
        "get" => PortOp::Get,
        "pending" => PortOp::Pending,
        "getn" => {
            let max = a.opt_num("max")?.ok_or("`port getn` needs max=N")?;
            let nget = a.opt_num("nget")?.unwrap_or(0);
            PortOp::Getn { max, nget }
        }
        "send" => PortOp::Send {
            events: a.opt_num("events")?.unwrap_or(1),
            user: a.opt_num("user")?.unwrap_or(0),
        },
        _ => {
            let update = match a.rest_words().as_slice() {
                [] => false,
                ["update"] => true,
                [w, ..] => return Err(format!("unexpected `{w}` (write `update` or nothing)")),
            };
            PortOp::Alert {
                update,
                events: a.opt_num("events")?.unwrap_or(1),
                user: a.opt_num("user")?.unwrap_or(0),
            }
        }
    };
    a.done(&["max", "nget", "events", "user"])?;
    Ok(Command::Port { proc, port, op })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(text: &str) -> Command {
        parse_line(text).unwrap().unwrap().command
    }

    #[test]
    fn lines() {
        assert_eq!(parse_line("   # only a comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
        let l = parse_line("gettime a t1   =>  value=1ms   interval=0 # c")
            .unwrap()
            .unwrap();
        assert_eq!(
            l.command,
            Command::Gettime("a".into(), Ref::Name("t1".into()))
        );
        assert_eq!(l.expect.as_deref(), Some("value=1ms interval=0"));
        assert!(parse_line("=> EINVAL").is_err());
        assert!(parse_line("gettime a t1 =>").is_err());
        assert!(parse_line("limit 3 => ok").is_err());
        assert_eq!(cmd("echo a # b => c"), Command::Echo("a # b => c".into()));
    }

    #[test]
    fn commands() {
        assert_eq!(
            cmd("spawn r root"),
            Command::Spawn {
                name: "r".into(),
                root: true,
                uid: 0
            }
        );
        assert_eq!(
            cmd("create a t2 clock=realtime notify=port port=P user=9"),
            Command::Create {
                proc: "a".into(),
                timer: "t2".into(),
                clock: crate::kernel::abi::CLOCK_REALTIME,
                notify: Notify::Port {
                    port: Ref::Name("P".into()),
                    user: 9
                }
            }
        );
        assert_eq!(
            cmd("settime a t1 abs=+10s interval=1s"),
            Command::Settime {
                proc: "a".into(),
                timer: Ref::Name("t1".into()),
                value: SetValue::AbsoluteFromNow(10_000_000_000),
                interval: TimeArg::Ns(1_000_000_000),
            }
        );
        assert_eq!(cmd("step 3"), Command::Step(3));
        assert_eq!(cmd("vm stop"), Command::Vm(VmOp::Stop));
        assert_eq!(cmd("vm start"), Command::Vm(VmOp::Start));
        assert_eq!(cmd("vm warp 1.5s"), Command::Vm(VmOp::Warp(1_500_000_000)));
        assert_eq!(cmd("vm step 250us"), Command::Vm(VmOp::Step(250_000)));
        assert_eq!(cmd("vm step 0"), Command::Vm(VmOp::Step(0)));
        // A negative duration reaches the call, whose errno the trace shows.
        assert_eq!(cmd("vm warp -7ns"), Command::Vm(VmOp::Warp(-7)));
        assert_eq!(
            cmd("vm step 9223372036.854775807s"),
            Command::Vm(VmOp::Step(i64::MAX))
        );
        let l = parse_line("vm step 1ms => EBUSY").unwrap().unwrap();
        assert_eq!(l.command, Command::Vm(VmOp::Step(1_000_000)));
        assert_eq!(l.expect.as_deref(), Some("EBUSY"));
        assert_eq!(
            cmd("port getn a P max=4"),
            Command::Port {
                proc: "a".into(),
                port: Ref::Name("P".into()),
                op: PortOp::Getn { max: 4, nget: 0 }
            }
        );
    }

    #[test]
    fn lwp_and_handler_commands() {
        assert_eq!(
            cmd("handle a SIGUSR1"),
            Command::Handle("a".into(), crate::kernel::abi::SIGUSR1)
        );
        assert_eq!(
            cmd("handle a SIGRTMIN+2"),
            Command::Handle("a".into(), crate::kernel::abi::SIGRTMIN + 2)
        );
        assert_eq!(
            cmd("lwp create a w"),
            Command::Lwp {
                proc: "a".into(),
                op: LwpOp::Create("w".into())
            }
        );
        assert_eq!(
            cmd("lwp exit a w"),
            Command::Lwp {
                proc: "a".into(),
                op: LwpOp::Exit(Ref::Name("w".into()))
            }
        );
        assert_eq!(
            cmd("lwp exit a 1"),
            Command::Lwp {
                proc: "a".into(),
                op: LwpOp::Exit(Ref::Id(1))
            }
        );
        let l = parse_line("lwp bind a t1 w => EINVAL").unwrap().unwrap();
        assert_eq!(
            l.command,
            Command::Lwp {
                proc: "a".into(),
                op: LwpOp::Bind {
                    timer: Ref::Name("t1".into()),
                    lwp: Ref::Name("w".into())
                }
            }
        );
        assert_eq!(l.expect.as_deref(), Some("EINVAL"));
        assert_eq!(
            cmd("lwp bind a 3 99"),
            Command::Lwp {
                proc: "a".into(),
                op: LwpOp::Bind {
                    timer: Ref::Id(3),
                    lwp: Ref::Id(99)
                }
            }
        );
        for verb in ["handle", "lwp"] {
            assert!(VERBS.contains(&verb), "{verb} is in VERBS");
            let e = parse_line("frobnicate").unwrap_err();
            assert!(
                e.contains(verb),
                "the unknown-command message lists {verb}: {e}"
            );
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (line, needle) in [
            ("frobnicate a", "unknown command `frobnicate`"),
            ("spawn", "needs a process name"),
            ("spawn 1a", "is not a process name"),
            ("create a t1 clock=wall", "not a clock"),
            ("create a t1 notify=smoke", "valid: default, none"),
            ("create a t1 notify=port", "needs port=NAME"),
            ("create a t1 notify=signal user=3", "does not apply"),
            ("create a t1 colour=red", "unknown option `colour`"),
            ("settime a t1", "needs a value"),
            ("settime a t1 5ms abs=1s", "not both"),
            ("settime a t1 5 ", "not a duration"),
            ("advance -1s", "forward"),
            ("step 0", "from 1 to"),
            ("step 1000001", "from 1 to 1000000"),
            ("block a", "needs signals"),
            (
                "vm pause",
                "unknown `vm pause` (valid: stop, start, warp D, step D)",
            ),
            ("vm", "`vm` needs an operation: stop, start, warp D, step D"),
            ("vm warp", "`vm warp` needs a duration"),
            ("vm step 5", "`5` is not a duration"),
            ("vm step 1ms 2ms", "unexpected `2ms` after `vm step`"),
            ("vm warp 1ms fast=yes", "takes no option"),
            ("vm warp 9223372037s", "too long for the VM clock"),
            ("vm stop now", "unexpected `now`"),
            ("port open a P", "unknown `port open`"),
            ("port getn a P", "max=N"),
            ("gettime a t1 extra", "unexpected `extra`"),
            ("create a t1 value=x", "not a number"),
            ("create a t1 clock=highres clock=vm", "given twice"),
            ("handle a", "`handle` needs a signal"),
            ("handle a SIGWHAT", "SIGWHAT"),
            ("handle a SIGUSR1 SIGUSR2", "unexpected `SIGUSR2`"),
            ("handle a SIGUSR1 mode=fast", "takes no option"),
            ("lwp", "`lwp` needs an operation: create, exit, bind"),
            (
                "lwp spawn a w",
                "unknown `lwp spawn` (valid: create, exit, bind)",
            ),
            ("lwp create", "`lwp create` needs a process name"),
            ("lwp create a", "`lwp create` needs an LWP name"),
            ("lwp create a 2", "`2` is not an LWP name"),
            ("lwp exit a", "`lwp exit` needs an LWP"),
            ("lwp exit a w!", "`w!` is not a LWP name or id number"),
            ("lwp bind a t1", "`lwp bind` needs an LWP"),
            (
                "lwp bind a t1 w extra",
                "unexpected `extra` after `lwp bind`",
            ),
            ("lwp bind a", "`lwp bind` needs a timer"),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }
}
