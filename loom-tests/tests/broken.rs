//! The models bite: each test here runs a model against a kernel built with
//! one deliberately broken variant and asserts that loom finds an
//! interleaving where the model fails, for the expected reason.
//!
//! Compiled only under `RUSTFLAGS='--cfg loom --cfg loom_broken="<name>"'`;
//! the test for `<name>` is the only one that runs then (see `README.md`).
#![cfg(all(
    loom,
    any(
        loom_broken = "drain",
        loom_broken = "growth",
        loom_broken = "fire",
        loom_broken = "detach",
        loom_broken = "portclose",
        loom_broken = "forget",
        loom_broken = "unmask",
        loom_broken = "closewake"
    )
))]

#[allow(unused_imports)]
use itimer_loom_tests::harness::expect_caught as must_fail;
#[allow(unused_imports)]
use itimer_loom_tests::harness::expect_deadlock as must_deadlock;
#[allow(unused_imports)]
use itimer_loom_tests::models;

/// `timer_delete_locked` clears the slot without waiting for the blockers:
/// a blocker wakes to a missing slot.
#[cfg(loom_broken = "drain")]
#[test]
fn broken_drain_is_caught_by_model_1() {
    must_fail(
        "1 grab_vs_delete [broken: drain]",
        models::grab_delete::grab_vs_delete,
        &["the deleter waits for blockers before clearing the slot"],
    );
}

/// `timer_fire` decides that a notification is outstanding before taking
/// `p_lock`: a consumption in between leaves expirations pending behind no
/// queued signal (lost).
#[cfg(loom_broken = "fire")]
#[test]
fn broken_fire_is_caught_by_model_2() {
    must_fail(
        "2 fire_vs_consume [broken: fire]",
        models::fire_consume::fire_vs_consume,
        &["consumed", "pending"],
    );
}

/// `timer_delete_locked` detaches the notification before deleting the
/// timer in the backend: an in-flight fire then queues a freed entry.
#[cfg(loom_broken = "detach")]
#[test]
fn broken_detach_is_caught_by_model_3() {
    must_fail(
        "3 delete_vs_fire [broken: detach]",
        models::delete_fire::delete_vs_fire,
        &["invalid key", "a notification arrived after delete"],
    );
}

/// `TimerTable::install` of a growth that lost the race still frees the
/// new half of the table: an id already handed out is handed out again.
#[cfg(loom_broken = "growth")]
#[test]
fn broken_growth_is_caught_by_model_5() {
    must_fail(
        "5 create_vs_growth [broken: growth]",
        models::create_growth::create_vs_growth,
        &["distinct ids", "handed out twice"],
    );
}

/// `Port::close` does not detach the associated timers: they keep
/// `IT_PORT` and a link to a dead port, and their expirations pile up in
/// `pending` behind an event no one can retrieve.
#[cfg(loom_broken = "portclose")]
#[test]
fn broken_portclose_is_caught_by_model_4() {
    must_fail(
        "4 port_close_vs_fire_and_get [broken: portclose]",
        models::port_close::close_vs_fire_and_get,
        &["flags", "nothing outstanding after close"],
    );
}

/// `timer_forget` unregisters the timer but does not wait for its running
/// callback: `timer_delete` returns while the callback runs, or before it
/// starts.
#[cfg(loom_broken = "forget")]
#[test]
fn broken_forget_is_caught_by_model_7() {
    must_fail(
        "7 thread_delete_vs_notify [broken: forget]",
        models::thread_delete::delete_vs_notify,
        &[
            "the callback is running after timer_delete returned",
            "a callback started after timer_delete returned",
        ],
    );
}

/// `sigprocmask` wakes the delivery thread before the new mask is in
/// place: the delivery thread may re-check first, find SIGALRM still
/// blocked and sleep again, and the unblocked signal is never handled (the
/// main thread waits for it for ever).
#[cfg(loom_broken = "unmask")]
#[test]
fn broken_unmask_is_caught_by_model_8() {
    must_deadlock(
        "8 mask_vs_delivery [broken: unmask]",
        "broken_unmask_is_caught_by_model_8",
        models::mask_delivery::mask_vs_delivery,
    );
}

/// `Port::close` wakes the waiters before marking the port closed: a
/// retrieval that checks in between sleeps for ever on a closed port.
#[cfg(loom_broken = "closewake")]
#[test]
fn broken_closewake_is_caught_by_model_4() {
    must_deadlock(
        "4 port_close_vs_fire_and_get [broken: closewake]",
        "broken_closewake_is_caught_by_model_4",
        models::port_close::close_vs_fire_and_get,
    );
}
