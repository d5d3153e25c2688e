//! loom models of the itimer protocols. See `README.md` in this folder.
