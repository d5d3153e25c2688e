#!/usr/bin/env bash
# The loom suite: every model against the real kernel, then every
# deliberately broken kernel variant, each of which its model must catch.
# The broken variants are not in the product code: each is a patch,
# loom-tests/broken/NAME.patch, applied to a scratch copy of the tree
# (under LOOM_TARGET_DIR) that is then built with --cfg loom_broken="NAME"
# (which picks the model in tests/broken.rs). Every patch is checked to
# apply to the current tree before anything runs, so a patch that no
# longer applies fails the suite (and CI) instead of rotting.
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
mkdir -p "$base"
base="$(cd "$base" && pwd)"
all_variants="drain fire detach growth portclose forget unmask closewake"
variants="${LOOM_BROKEN-$all_variants}"
patches="$PWD/loom-tests/broken"
start=$(date +%s)

# A scratch copy of the source tree (no target/, no .git) in $1.
scratch_copy() {
    rm -rf "$1"
    mkdir -p "$1"
    tar --exclude=./target --exclude=./.git -cf - . | tar -xf - -C "$1"
}

echo "--- every broken variant's patch applies to this tree"
for v in $all_variants; do
    [ -f "$patches/$v.patch" ] || { echo "missing patch for variant $v" >&2; exit 1; }
done
for f in "$patches"/*.patch; do
    v="$(basename "$f" .patch)"
    case " $all_variants " in
        *" $v "*) ;;
        *) echo "patch $f has no variant in the list (and no model to catch it)" >&2; exit 1 ;;
    esac
    patch -p1 --dry-run --silent --force < "$f" > /dev/null \
        || { echo "loom-tests/broken/$v.patch no longer applies: regenerate it" >&2; exit 1; }
done

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
    scratch="$base/scratch-$v"
    scratch_copy "$scratch"
    (
        cd "$scratch"
        patch -p1 --silent --force < "$patches/$v.patch"
        RUSTFLAGS="--cfg loom --cfg loom_broken=\"$v\"" CARGO_TARGET_DIR="$base/broken-$v" \
            cargo test -p itimer-loom-tests --release --test broken -- --nocapture
    )
done

echo "--- loom suite done in $(( $(date +%s) - start )) s"
