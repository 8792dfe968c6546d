#!/usr/bin/env bash
# Builds the cocoonstack oracles from source: `oracle-cocoon` (this harness,
# cocoon-common's own library calls over an OCI layout) and the real `cocoon`
# CLI, into $EPOCH_STORE_TOOLS/bin (default ~/.cache/epoch-store/tools/bin),
# where tests/it/cocoon_oracle.rs finds them.
#
# The Go module proxy refuses github.com/cocoonstack/cocoon-common and
# github.com/cocoonstack/cocoon (403 "not available"), so `go install` cannot
# fetch them: give checkouts of the pinned tags instead.
#
#   COCOON_COMMON_SRC=~/src/cocoon-common   # tag v0.3.0 (8de9092a)
#   COCOON_SRC=~/src/cocoon                 # tag v0.3.8 (34c6c4a8)
#   bash tests/oracle-cocoon/build.sh
#
# Their dependencies come through the proxy as usual (go.sum pins them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${EPOCH_STORE_TOOLS:-$HOME/.cache/epoch-store/tools}
: "${COCOON_COMMON_SRC:?set COCOON_COMMON_SRC to a checkout of cocoon-common v0.3.0}"
: "${COCOON_SRC:?set COCOON_SRC to a checkout of cocoon v0.3.8}"
for f in "$COCOON_COMMON_SRC/snapshot/pull.go" "$COCOON_SRC/main.go"; do
  [ -f "$f" ] || { echo "build.sh: $f is missing: not the source tree asked for" >&2; exit 2; }
done
grep -q '^module github.com/cocoonstack/cocoon-common$' "$COCOON_COMMON_SRC/go.mod" ||
  { echo "build.sh: $COCOON_COMMON_SRC is not cocoon-common" >&2; exit 2; }
grep -q '^module github.com/cocoonstack/cocoon$' "$COCOON_SRC/go.mod" ||
  { echo "build.sh: $COCOON_SRC is not cocoon" >&2; exit 2; }

mkdir -p "$tools/bin" "$here/peer"
ln -sfn "$(cd "$COCOON_COMMON_SRC" && pwd)" "$here/peer/cocoon-common"
(cd "$here" && go build -o "$tools/bin/oracle-cocoon" .)
(cd "$COCOON_SRC" && go build -o "$tools/bin/cocoon" .)
echo "built $tools/bin/oracle-cocoon and $tools/bin/cocoon"
