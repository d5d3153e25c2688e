#!/usr/bin/env bash
# The loom suite: every model against the real kernel, then every
# deliberately broken kernel variant, each of which its model must catch.
# Called by .ci/run; run it by hand the same way (see README.md):
#
#   loom-tests/run.sh                          # CI: bound 2, all variants
#   LOOM_MAX_PREEMPTIONS=3 loom-tests/run.sh   # deeper, on demand
#   LOOM_BROKEN= loom-tests/run.sh             # the models only
#   LOOM_BROKEN=drain loom-tests/run.sh        # the models, then one variant
#   LOOM_CLIPPY=0 loom-tests/run.sh            # skip clippy under --cfg loom
#
# Each build has its own target directory under LOOM_TARGET_DIR (default
# target/loom): loom builds use different RUSTFLAGS, which would otherwise
# make cargo rebuild everything each time it switches. They are release
# builds without debug info (CARGO_PROFILE_RELEASE_DEBUG, default 0 here):
# nothing reads it, and it costs compile time in every one of the builds.
set -euo pipefail
cd "$(dirname "$0")/.."

export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-0}"
base="${LOOM_TARGET_DIR:-target/loom}"
variants="${LOOM_BROKEN-drain fire detach growth portclose forget unmask closewake}"
start=$(date +%s)

if [ "${LOOM_CLIPPY:-1}" != 0 ]; then
    # The workspace clippy step builds without --cfg loom, so it never sees
    # the loom-only code of this crate: lint it here.
    echo "--- clippy under --cfg loom"
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$base/clippy" \
        cargo clippy -p itimer-loom-tests --all-targets --release -- -D warnings
fi

echo "--- loom models, preemption bound $LOOM_MAX_PREEMPTIONS (and model 6 with a broken waker)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$base/models" \
    cargo test -p itimer-loom-tests --release --test models --test broken_waker -- --nocapture

for v in $variants; do
    echo "--- loom: broken variant \"$v\" must be caught"
    RUSTFLAGS="--cfg loom --cfg loom_broken=\"$v\"" CARGO_TARGET_DIR="$base/broken-$v" \
        cargo test -p itimer-loom-tests --release --test broken -- --nocapture
done

echo "--- loom suite done in $(( $(date +%s) - start )) s"
