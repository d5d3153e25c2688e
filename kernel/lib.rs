//! # itimer-kernel — the illumos `timer.c` layer
#![forbid(unsafe_code)]

pub mod sync;
