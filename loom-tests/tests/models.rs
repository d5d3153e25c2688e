//! Explores every model against the real kernel, and checks that each
//! reached every outcome its race allows (so the race was really run).
//! Compiled only under `RUSTFLAGS="--cfg loom"` without `loom_broken`
//! (see `README.md`).
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

use itimer_loom_tests::harness::{explore_expecting, explore_expecting_deeper};
use itimer_loom_tests::models;

#[test]
fn model_1_grab_vs_delete() {
    explore_expecting(
        "1 grab_vs_delete",
        models::grab_delete::grab_vs_delete,
        &[
            "set ok, get ok, getoverrun ok",
            "set ok, get ok, getoverrun EINVAL",
            "set ok, get EINVAL, getoverrun ok",
            "set ok, get EINVAL, getoverrun EINVAL",
            "set EINVAL, get ok, getoverrun ok",
            "set EINVAL, get ok, getoverrun EINVAL",
            "set EINVAL, get EINVAL, getoverrun ok",
            "set EINVAL, get EINVAL, getoverrun EINVAL",
        ],
    );
}

#[test]
fn model_2_fire_vs_consume() {
    explore_expecting(
        "2 fire_vs_consume",
        models::fire_consume::fire_vs_consume,
        &[
            "consumer took [], left 3",
            "consumer took [1], left 2",
            "consumer took [1, 2], left 0",
            "consumer took [3], left 0",
        ],
    );
}

#[test]
fn model_3_delete_vs_fire() {
    explore_expecting(
        "3 delete_vs_fire",
        models::delete_fire::delete_vs_fire,
        &[
            "fired 0: consumer None, deleter None",
            "fired 1: consumer Some(1), deleter None",
            "fired 1: consumer None, deleter Some(1)",
            "fired 2: consumer Some(2), deleter None",
            "fired 2: consumer Some(1), deleter Some(1)",
            "fired 2: consumer None, deleter Some(1)",
            "fired 2: consumer Some(1), deleter None",
        ],
    );
}

#[test]
fn model_5_create_vs_growth() {
    explore_expecting(
        "5 create_vs_growth",
        models::create_growth::create_vs_growth,
        &["a=8 b=9", "a=9 b=8", "a=3 b=8", "a=8 b=3"],
    );
}

#[test]
fn model_4_port_close_vs_fire_and_get() {
    explore_expecting(
        "4 port_close_vs_fire_and_get",
        models::port_close::close_vs_fire_and_get,
        &["event 1", "event 2", "EBADF", "EBADFD"],
    );
}

#[test]
fn model_6_notify_vs_arm() {
    explore_expecting(
        "6 notify_vs_arm",
        models::notify::notify_vs_arm,
        &[
            "1 rounds, 0 kicks",
            "2 rounds, 1 kicks",
            "2 rounds, 2 kicks",
            "3 rounds, 2 kicks",
        ],
    );
}

#[test]
fn model_7_thread_delete_vs_notify() {
    explore_expecting_deeper(
        "7 thread_delete_vs_notify",
        models::thread_delete::delete_vs_notify,
        &[
            "fired 0: 0 callbacks, 0 expirations",
            "fired 1: 0 callbacks, 0 expirations",
            "fired 1: 1 callbacks, 1 expirations",
            "fired 2: 0 callbacks, 0 expirations",
            "fired 2: 1 callbacks, 1 expirations",
            "fired 2: 1 callbacks, 2 expirations",
        ],
        // Fire, retrieve, call, fire, retrieve, call, all before the delete.
        &["fired 2: 2 callbacks, 2 expirations"],
    );
}

#[test]
fn model_7b_thread_self_delete() {
    explore_expecting_deeper(
        "7b thread_self_delete",
        models::thread_delete::self_delete,
        &[
            "fired 0: callbacks deleted 0, EINVAL 0; main Ok(())",
            "fired 1: callbacks deleted 0, EINVAL 0; main Ok(())",
            "fired 1: callbacks deleted 0, EINVAL 1; main Ok(())",
            "fired 1: callbacks deleted 1, EINVAL 0; main Err(EINVAL)",
            "fired 2: callbacks deleted 0, EINVAL 0; main Ok(())",
            "fired 2: callbacks deleted 0, EINVAL 1; main Ok(())",
            "fired 2: callbacks deleted 1, EINVAL 0; main Err(EINVAL)",
        ],
        // A second callback starts while the main thread's delete is under
        // way (the first one's delete got EINVAL), before it unregisters.
        &["fired 2: callbacks deleted 0, EINVAL 2; main Ok(())"],
    );
}

#[test]
fn model_8_mask_vs_delivery() {
    explore_expecting(
        "8 mask_vs_delivery",
        models::mask_delivery::mask_vs_delivery,
        &[
            "handled [1, 1], pending 0 at block",
            "handled [2], pending 0 at block",
            "handled [2], pending 1 at block",
        ],
    );
}
