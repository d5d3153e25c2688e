//! The models, one module per protocol (see `docs/loom.md`). Each is a
//! plain function: `tests/models.rs` explores it against the real kernel,
//! `tests/broken.rs` against a kernel built with a deliberately broken
//! variant (a patch under `loom-tests/broken/`, built with
//! `--cfg loom_broken="..."`), where it must fail.

mod common;
/// Model 5: two `timer_create` calls racing the growth of the table.
pub mod create_growth;
/// Model 3: `timer_delete` against an in-flight fire.
pub mod delete_fire;
/// Model 2: `timer_fire` against signal consumption.
pub mod fire_consume;
/// Model 1: `timer_grab` (settime, gettime) against `timer_delete`.
pub mod grab_delete;
/// Model 8: signal handler delivery against `sigprocmask` and a fire.
pub mod mask_delivery;
/// Model 6: the timer loop's notify handshake against arming threads.
pub mod notify;
/// Model 4: port close against fire and against retrieval.
pub mod port_close;
/// Model 7: SIGEV_THREAD, `timer_delete` against the notification thread.
pub mod thread_delete;
