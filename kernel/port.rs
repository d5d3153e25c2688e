//! Event ports (illumos `port_create`, `port_get`, `PORT_SOURCE_TIMER`).
//!
//! The seam for the event-port module: `timer_create` with `SIGEV_PORT` or
//! `SIGEV_THREAD` refuses every port id with `EBADF` until this module
//! provides ports (see `itimer::validate_sigevent`), and
//! `itimer::timer_detach_notification` is where a deleted timer's cached
//! port event will be detached. Lock order when it lands: `p_lock` →
//! `it_mutex` → port queue lock.
