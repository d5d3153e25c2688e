//! `itimer alarms`: the host alarm backends in precedence order, and
//! which of them start on this machine (each is started and stopped on
//! the calling thread).

use std::process::ExitCode;

use itimer::hostalarm::alarm::{Precedence, which_start_here};

/// Runs `itimer alarms`.
pub fn run(clock: Option<&str>) -> ExitCode {
    let precedence = match clock.map(Precedence::parse) {
        None => Precedence::default(),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("itimer: {e}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let probes = which_start_here();
    println!("Host alarm backends, in precedence order ({precedence}):");
    println!(
        "  {:<2} {:<11} {:<12} {:>10} {:>10}  description",
        "#", "backend", "starts here", "resolution", "min rearm"
    );
    let mut chosen = None;
    for (i, kind) in precedence.kinds().iter().enumerate() {
        let Some(probe) = probes.iter().find(|p| p.kind == *kind) else {
            continue;
        };
        let (starts, res, rearm) = match &probe.outcome {
            Ok(info) => {
                chosen.get_or_insert(kind.name());
                (
                    "yes".to_owned(),
                    fmt_ns(info.resolution_ns),
                    fmt_ns(info.min_rearm_ns),
                )
            }
            Err(_) => ("no".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        println!(
            "  {:<2} {:<11} {:<12} {:>10} {:>10}  {}",
            i + 1,
            kind.name(),
            starts,
            res,
            rearm,
            kind.description()
        );
        if let Err(e) = &probe.outcome {
            println!("     {e}");
        }
    }
    match chosen {
        Some(name) => {
            println!("The timer loop would start on: {name}");
            ExitCode::SUCCESS
        }
        None => {
            println!("No backend starts here.");
            ExitCode::from(super::EXIT_USAGE)
        }
    }
}

fn fmt_ns(ns: u64) -> String {
    itimer::script::units::fmt_duration(i128::from(ns))
}
