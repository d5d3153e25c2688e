//! The `itimer` command: the demo, the host alarm list, the scenario
//! runner and shell, and the latency bench. See `itimer --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
