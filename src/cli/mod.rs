//! The command line: `itimer demo | alarms | run | shell | bench`.
//!
//! `--clock LIST` is accepted by every subcommand (QEMU's `-clock`): a
//! comma-separated list of host alarm backends to try first. `--clock help`
//! prints the list of backends and exits 0; an unknown name prints the
//! error (which lists the valid names) and exits 2. Subcommands that run on
//! the simulated host (`run`, `shell`) check the list, then say on stderr,
//! in one line, that the scenario runs on the simulated host and the list
//! is ignored ([`CLOCK_IGNORED`]); the exit status is what it would be
//! without `--clock`.
//!
//! Exit status: 0 success; 1 a check failed (`run --check`: the trace
//! differs); 2 bad usage, a script error, or no alarm backend could start.

mod alarms;
mod bench;
mod demo;
mod run;
mod shell;
mod svg;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use itimer::hostalarm::alarm::{Choice, help};

/// Exit status for bad usage, a script error, or a failed boot.
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a failed check.
pub const EXIT_CHECK: u8 = 1;

/// The line `run` and `shell` print on stderr when given a `--clock` list
/// (other than `help`): scenarios run on the simulated host, never on a
/// host alarm.
pub const CLOCK_IGNORED: &str =
    "itimer: --clock is ignored: scenarios run on the simulated host, not on a host alarm";

/// POSIX per-process interval timers, built the way illumos builds them, on
/// QEMU-style emulator clocks driven by real host alarms.
#[derive(Debug, Parser)]
#[command(name = "itimer", version, propagate_version = true)]
struct Cli {
    /// Host alarm backends to try first, comma-separated, like QEMU's
    /// `-clock` (e.g. `timerfd,unix`); `help` lists them.
    #[arg(long, global = true, value_name = "LIST")]
    clock: Option<String>,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Boot on a real host alarm, run timers of every kind in two processes
    /// for about two seconds, print a timeline and a summary.
    Demo(demo::DemoArgs),
    /// List the host alarm backends in precedence order and which start here.
    Alarms,
    /// Run a scenario script on the simulated host and print its trace.
    Run(run::RunArgs),
    /// The scenario language, interactively (history, `help`).
    Shell,
    /// Measure wake-up latency through the whole stack on each alarm backend,
    /// against a raw timerfd in the same run.
    Bench(bench::BenchArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let clock = match cli.clock.as_deref().map(Choice::parse) {
        None => None,
        Some(Ok(Choice::Help)) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Some(Ok(Choice::List(_))) => cli.clock.clone(),
        Some(Err(e)) => {
            eprintln!("itimer: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if clock.is_some() && matches!(cli.command, Some(Cmd::Run(_) | Cmd::Shell)) {
        eprintln!("{CLOCK_IGNORED}");
    }
    match cli.command {
        Some(Cmd::Demo(args)) => demo::run(clock.as_deref(), &args),
        Some(Cmd::Alarms) => alarms::run(clock.as_deref()),
        Some(Cmd::Run(args)) => run::run(&args),
        Some(Cmd::Shell) => shell::run(),
        Some(Cmd::Bench(args)) => bench::run(clock.as_deref(), &args),
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Parses a duration option (`300ms`, `2s`) with the scenario language's
/// exact parser.
pub fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    let ns = itimer::script::units::parse_duration(text)?;
    u64::try_from(ns)
        .map(std::time::Duration::from_nanos)
        .map_err(|_| format!("`{text}`: needs a positive duration"))
}
