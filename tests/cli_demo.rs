//! `itimer demo` on the real host. No timing is asserted: only that the
//! demo names its backend, saw expirations, and ends cleanly.

use std::process::Command;

fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_itimer"))
        .arg("demo")
        .args(args)
        .output()
        .expect("runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number before " expirations" in the summary's total line.
fn total_expirations(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("total: "))
        .unwrap_or_else(|| panic!("no total line:\n{text}"));
    line.trim_start()["total: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_short_demo_names_its_backend_and_sees_expirations() {
    let text = demo(&["--duration", "300ms"]);
    assert!(text.contains("Timeline"), "{text}");
    let backend = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("host alarm backend: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ["timerfd", "dynticks", "unix", "mmtimer", "timerqueue"]
            .iter()
            .any(|b| backend.starts_with(b)),
        "{backend}"
    );
    // The 1 ms timer alone expires ~300 times; ask for far fewer.
    assert!(total_expirations(&text) >= 50, "{text}");
    assert!(
        text.contains("wake-up latency (deadline to delivery"),
        "{text}"
    );
    assert!(text.contains("root/fast"), "{text}");
}

#[test]
fn clock_picks_the_backend() {
    let text = demo(&["--duration", "200ms", "--clock", "mmtimer"]);
    assert!(text.contains("host alarm backend: mmtimer"), "{text}");
    assert!(total_expirations(&text) > 0);
}
