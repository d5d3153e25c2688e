//! The `itimer` command.

fn main() {
    println!("itimer: see `itimer --help`");
}
