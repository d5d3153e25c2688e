//! illumos clock backends implemented on hostalarm's emulator clocks.

pub mod cputime;
