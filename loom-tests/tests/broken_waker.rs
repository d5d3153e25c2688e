//! Model 6 bites: with its waker made non-sticky (a bare condvar notify
//! instead of an eventfd counter), loom finds the lost wakeup. The broken
//! waker is the model's own code, switched at run time, so this needs no
//! special build: it runs with the models, under `RUSTFLAGS="--cfg loom"`.
//! (Its own test binary, because it sets the process-wide panic hook.)
#![cfg(all(
    loom,
    not(any(
        loom_broken = "drain",
        loom_broken = "growth",
        loom_broken = "fire",
        loom_broken = "detach",
        loom_broken = "portclose",
        loom_broken = "forget",
        loom_broken = "unmask",
        loom_broken = "closewake"
    ))
))]

use itimer_loom_tests::harness::expect_caught;
use itimer_loom_tests::models;

#[test]
fn non_sticky_waker_is_caught_by_model_6() {
    expect_caught(
        "6 notify_vs_arm [broken: non-sticky waker]",
        models::notify::notify_vs_arm_non_sticky_waker,
        &["lost wakeup"],
    );
}
