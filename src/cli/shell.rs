//! `itimer shell`: the scenario language, one line at a time, on one
//! simulated kernel. On a terminal it edits lines and keeps history
//! (rustyline, in memory); with piped input it reads lines plainly, with no
//! prompt, so its output is the trace. Script errors are reported and the
//! session goes on.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use itimer::script::{HELP, Session};
use rustyline::error::ReadlineError;

const PROMPT: &str = "itimer> ";
const NAME: &str = "<shell>";

/// What the shell does with one line, besides running it.
enum Meta {
    Help,
    Quit,
    Run,
}

fn meta(line: &str) -> Meta {
    match line.trim() {
        "help" | "?" => Meta::Help,
        "quit" | "exit" | "q" => Meta::Quit,
        _ => Meta::Run,
    }
}

fn exec(session: &mut Session, n: usize, line: &str) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(message) = session.exec(line, &mut |l| {
        let _ = writeln!(out, "{l}");
    }) {
        let _ = out.flush();
        eprintln!("{NAME}:{n}: {message}");
    }
}

/// Runs `itimer shell`.
pub fn run() -> ExitCode {
    let mut session = Session::new();
    if !std::io::stdin().is_terminal() {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            let Ok(line) = line else { break };
            match meta(&line) {
                Meta::Help => print!("{HELP}"),
                Meta::Quit => break,
                Meta::Run => exec(&mut session, i + 1, &line),
            }
        }
        return ExitCode::SUCCESS;
    }
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("itimer: cannot start the line editor: {e}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    println!(
        "itimer shell: the scenario language on a simulated host. `help` lists it, `quit` leaves."
    );
    let mut n = 0;
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                n += 1;
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                match meta(&line) {
                    Meta::Help => print!("{HELP}"),
                    Meta::Quit => break,
                    Meta::Run => exec(&mut session, n, &line),
                }
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("itimer: {e}");
                return ExitCode::from(super::EXIT_USAGE);
            }
        }
    }
    ExitCode::SUCCESS
}
