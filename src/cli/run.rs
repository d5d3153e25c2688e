//! `itimer run SCRIPT [--check TRACE]`: runs a scenario on the simulated
//! host and prints its trace, or compares it with an expected one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use itimer::script::{compare_traces, run_source, run_to_string};

use super::{EXIT_CHECK, EXIT_USAGE};

/// Arguments of `itimer run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario script (`.itimer`); see `itimer shell` and `help` there
    /// for the language.
    script: PathBuf,
    /// Compare the trace with this file instead of printing it: exit 0 if
    /// equal, 1 with the first differing line if not.
    #[arg(long, value_name = "TRACE")]
    check: Option<PathBuf>,
}

fn read(path: &PathBuf) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("itimer: cannot read {}: {e}", path.display());
        ExitCode::from(EXIT_USAGE)
    })
}

/// Runs `itimer run`.
pub fn run(args: &RunArgs) -> ExitCode {
    let source = match read(&args.script) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name = args.script.display().to_string();
    let Some(check) = &args.check else {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let r = run_source(&name, &source, &mut |l| {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(out, "{l}");
        });
        let _ = out.flush();
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    };
    let expected = match read(check) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match run_to_string(&name, &source) {
        Err((e, _)) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
        Ok(trace) => match compare_traces(&expected, &trace) {
            Ok(()) => {
                eprintln!("{name}: trace matches {}", check.display());
                ExitCode::SUCCESS
            }
            Err(diff) => {
                eprintln!("{name}: {diff}");
                ExitCode::from(EXIT_CHECK)
            }
        },
    }
}
