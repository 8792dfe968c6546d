#!/usr/bin/env bash
# Registry benchmarks (issue 12), printed as markdown on stdout. One
# Debian docker-registry (distribution 2.8) on 127.0.0.1 with its storage on
# this disk; every tool moves the same data through it in the same run:
#
#   image     a container-like image: BENCH_LAYERS gzip layers of
#             BENCH_LAYER_MB MiB each (random bytes, so about as large
#             gzipped), built with `epoch-store build --from scratch`
#   snapshot  a VM snapshot of a BENCH_SNAP_MB MiB memory file, chunked v2
#             in 512 MiB chunks, no compression (`pack snapshot`)
#
# For each: push from our layout (ours, `skopeo copy oci:`, `crane push`,
# `oras cp --from-oci-layout-path`) to its own repository, then pull into a
# new directory (ours fsyncs every blob and the index; the others do not).
# The floor is curl moving each blob in one request, BENCH_JOBS at a time
# (a monolithic POST+PUT up, a GET down into a file), hashing nothing: what
# the registry and the loopback allow.
# Wall time is the best of BENCH_RUNS rounds; peak RSS and user+system CPU come
# from /usr/bin/time. "hash x" is our CPU time over `epoch-store verify`'s
# on the same layout (one hash of every byte, nothing else): about 1 when
# every byte is hashed once and the rest is copying.
#
#   bash benches/registry.sh                 # image and snapshot
#   BENCH_SNAP_MB=512 BENCH_LAYERS=4 bash benches/registry.sh image
#
# Environment: BENCH_DIR (default /var/tmp), BENCH_RUNS (default 3),
# BENCH_LAYERS (12), BENCH_LAYER_MB (100), BENCH_SNAP_MB (4096),
# BENCH_JOBS (8), BENCH_KEEP=1 keeps the scratch directory. Needs
# docker-registry, skopeo, /usr/bin/time, python3, and crane and oras
# (`source .ci/go-peers.sh` installs them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-3}
LAYERS=${BENCH_LAYERS:-12}
LAYER_MB=${BENCH_LAYER_MB:-100}
SNAP_MB=${BENCH_SNAP_MB:-4096}
JOBS=${BENCH_JOBS:-8}
ALL=(image snapshot)
if [ $# -gt 0 ]; then SELECTED=("$@"); else SELECTED=("${ALL[@]}"); fi
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
export PATH="$HOME/.cache/epoch-store/tools/bin:$PATH"
for tool in docker-registry skopeo crane oras python3 /usr/bin/time sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install docker-registry skopeo time; source .ci/go-peers.sh)"
done

log "cargo build --release"
(cd "$ROOT" && cargo build --release --quiet) >&2
E="$ROOT/target/release/epoch-store"

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/epoch-store-registry.XXXXXX")
REG_PID=
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
cd "$W"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat > registry.yml <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry
  delete:
    enabled: true
http:
  addr: $HOST
EOF
# fresh_registry: the registry restarted on empty storage (no tool finds
# a blob there from an earlier run, nor mounts one).
fresh_registry() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; fi
    rm -rf "$W/registry"
    docker-registry serve "$W/registry.yml" >/dev/null 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return; sleep 0.1; done
    die "docker-registry did not listen on $HOST"
}
export DOCKER_CONFIG=$W/peer-home

# once NAME CMD...: one timed run of CMD (after $RESET); keeps the
# fastest of NAME's runs in BEST[NAME], with its peak RSS (MiB) and CPU (s).
declare -A BEST RSS CPU
once() {
    local name=$1; shift
    eval "$RESET"
    /usr/bin/time -f '%e %M %U %S' -o time.out "$@" >run.out 2>run.err \
        || { cat run.err >&2; die "$name failed"; }
    read -r wall rss user sys < time.out
    log "$name: ${wall}s, $(( rss / 1024 )) MiB, $user+$sys s CPU"
    if [ -z "${BEST[$name]:-}" ] || python3 -c "import sys; sys.exit(0 if $wall < ${BEST[$name]} else 1)"; then
        BEST[$name]=$wall; RSS[$name]=$(( rss / 1024 )); CPU[$name]=$(python3 -c "print(round($user + $sys, 2))")
    fi
}

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

TOOLS=(ours floor skopeo crane oras)

# push_with TOOL KIND LAYOUT REF: one push by TOOL to a fresh registry.
push_with() {
    local tool=$1 kind=$2 layout=$3 ref=$4 repo=$HOST/$1-$2/$2
    RESET=fresh_registry
    case $tool in
        ours) once "push $tool" "$E" --layout "$layout" push "$ref" "$repo:1" --plain-http --jobs "$JOBS" ;;
        floor) once "push $tool" bash -c "ls $layout/blobs/sha256 | xargs -P $JOBS -I{} bash -c 'loc=\$(curl -sf -D - -o /dev/null -X POST -H content-length:0 http://$HOST/v2/$tool-$kind/$kind/blobs/uploads/ | tr -d \\\\r | sed -n \"s/^[Ll]ocation: //p\"); curl -sf -o /dev/null -T $layout/blobs/sha256/{} \"\$loc&digest=sha256:{}\"'" ;;
        skopeo) once "push $tool" skopeo copy -q --dest-tls-verify=false "oci:$layout:$ref" "docker://$repo:1" ;;
        crane) once "push $tool" crane push --insecure "$layout" "$repo:1" ;;
        oras) once "push $tool" oras cp --no-tty --to-plain-http --from-oci-layout-path "$layout" "$ref" "$repo:1" ;;
    esac
}

# pull_with TOOL KIND LAYOUT SRC: one pull by TOOL into an empty directory.
pull_with() {
    local tool=$1 kind=$2 layout=$3 src=$4
    RESET="rm -rf $W/pulled"
    case $tool in
        ours) once "pull $tool" "$E" --layout "$W/pulled" pull "$src" --plain-http --jobs "$JOBS" ;;
        floor) once "pull $tool" bash -c "mkdir -p $W/pulled && ls $layout/blobs/sha256 | xargs -P $JOBS -I{} curl -s -o $W/pulled/{} http://$HOST/v2/ours-$kind/$kind/blobs/sha256:{}" ;;
        skopeo) once "pull $tool" skopeo copy -q --src-tls-verify=false "docker://$src" "oci:$W/pulled:$kind" ;;
        crane) once "pull $tool" crane pull --insecure --format=oci "$src" "$W/pulled" ;;
        oras) once "pull $tool" oras cp --no-tty --from-plain-http "$src" --to-oci-layout-path "$W/pulled" "$kind" ;;
    esac
}

# row DIR TOOL HASH: one line of the table.
row() {
    local k="$1 $2" hx=""
    [ "$2" = ours ] && hx=$(ratio "${CPU[$k]}" "$3")
    echo "| $1 | $2 | ${BEST[$k]} | $(ratio "${BEST[$k]}" "${BEST[$1 ours]}") | ${RSS[$k]} | ${CPU[$k]} | $hx |"
}

# bench KIND LAYOUT REF BYTES: the push and pull table of one data set. The
# tools take turns, round after round (BENCH_RUNS rounds), so that none
# always runs first; before the first round the data's size is written
# and removed twice, so no tool pays for this VM's first touch of memory
# that the page cache has not used yet.
bench() {
    local kind=$1 layout=$2 ref=$3 bytes=$4 tool r
    BEST=(); RSS=(); CPU=()
    # One hash of every byte, by our own code: verify's CPU time.
    local sha; sha=$( /usr/bin/time -f '%U %S' "$E" --layout "$layout" verify 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}')
    for r in 1 2; do
        head -c "$(( bytes * 2 ))" /dev/zero > warm && rm -f warm
    done
    for r in $(seq "$RUNS"); do
        for tool in "${TOOLS[@]}"; do push_with "$tool" "$kind" "$layout" "$ref"; done
    done
    local src=$HOST/ours-$kind/$kind:1
    fresh_registry
    "$E" --layout "$layout" push "$ref" "$src" --plain-http >/dev/null
    for r in $(seq "$RUNS"); do
        for tool in "${TOOLS[@]}"; do pull_with "$tool" "$kind" "$layout" "$src"; done
    done
    rm -rf "$W/pulled"
    echo "### $kind: $(python3 -c "print(f'{$bytes / 1e9:.2f}')") GB ($(ls "$layout"/blobs/sha256 | wc -l) blobs), $JOBS jobs, best of $RUNS"
    echo
    echo "| | tool | seconds | peer / ours | peak RSS MiB | CPU s | hash x |"
    echo "|---|---|---|---|---|---|---|"
    for tool in "${TOOLS[@]}"; do row push "$tool" "$sha"; done
    for tool in "${TOOLS[@]}"; do row pull "$tool" "$sha"; done
    echo
    echo "verify (one hash of every byte): ${sha}s CPU."
    echo
}

# cocoon_bench LAYOUT REF BYTES: cocoon-common's own pipeline (its
# snapshot.Pusher, 8-way, 512 MiB chunks, from the tar `cocoon snapshot
# export` writes; its snapshot.Stream back into that tar) against ours on
# the same tar (import-tar then push; pull then export-tar), where
# tests/oracle-cocoon is built.
cocoon_bench() {
    local layout=$1 ref=$2 bytes=$3 r
    command -v oracle-cocoon >/dev/null || { echo "(cocoon-common: tests/oracle-cocoon is not built here; skipped)"; echo; return; }
    BEST=(); RSS=(); CPU=()
    "$E" --layout "$layout" export-tar "$ref" -o "$W/snap.tar" >/dev/null
    local src=$HOST/ours-tar/snapshot:1
    for r in $(seq "$RUNS"); do
        RESET=fresh_registry
        once "push cocoon-common" oracle-cocoon push-registry "$HOST/cocoon/snapshot:1" "$W/snap.tar" -chunk 512 -concurrency "$JOBS"
        once "push ours" bash -c "rm -rf $W/t && $E --layout $W/t import-tar $W/snap.tar --ref snapshot:1 --format v2 --chunk-size 512MiB >/dev/null && $E --layout $W/t push snapshot:1 $src --plain-http --jobs $JOBS"
        RESET="rm -rf $W/t2"
        once "pull cocoon-common" bash -c "oracle-cocoon stream-registry $src > /dev/null"
        once "pull ours" bash -c "$E --layout $W/t2 pull $src --plain-http --jobs $JOBS >/dev/null && $E --layout $W/t2 export-tar ours-tar/snapshot:1 -o - > /dev/null"
    done
    rm -rf "$W/t" "$W/t2" "$W/snap.tar"
    echo "### cocoon-common's own pipeline: the snapshot's tar ($(python3 -c "print(f'{$bytes / 1e9:.2f}')") GB) to the registry and back, best of $RUNS"
    echo
    echo "| | tool | seconds | peer / ours | peak RSS MiB | CPU s |"
    echo "|---|---|---|---|---|---|"
    local d t k
    for d in push pull; do
        for t in ours cocoon-common; do
            k="$d $t"
            echo "| $d | $t | ${BEST[$k]} | $(ratio "${BEST[$k]}" "${BEST[$d ours]}") | ${RSS[$k]} | ${CPU[$k]} |"
        done
    done
    echo
    echo "push: cocoon-common's Pusher from the tar; ours \`import-tar\` into a new layout (hashed, fsynced) then \`push\`. pull: its Stream writes the import tar; ours \`pull\` (fsynced) then \`export-tar\`."
    echo
}

echo "## Registry benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, runs: $RUNS, load before: $(cut -d' ' -f1 /proc/loadavg))"
echo
for kind in "${SELECTED[@]}"; do
    case $kind in
        image)
            log "building the image: $LAYERS layers of $LAYER_MB MiB"
            "$E" --layout img init >/dev/null
            args=()
            for i in $(seq "$LAYERS"); do
                mkdir -p "l$i" && head -c $(( LAYER_MB << 20 )) /dev/urandom > "l$i/data$i"
                args+=(--layer "l$i")
            done
            "$E" --layout img build --from scratch --ref image:1 "${args[@]}" >/dev/null
            rm -rf l[0-9]*
            bench image "$W/img" image:1 "$(du -sb img/blobs | cut -f1)"
            ;;
        snapshot)
            log "packing the snapshot: $SNAP_MB MiB"
            mkdir -p vm && head -c $(( SNAP_MB << 20 )) /dev/urandom > vm/memory-ranges && echo '{}' > vm/state.json
            "$E" --layout snap init >/dev/null
            "$E" --layout snap pack snapshot vm --ref snapshot:1 --format v2 --chunk-size 512MiB --no-ch-config >/dev/null
            rm -rf vm
            bench snapshot "$W/snap" snapshot:1 "$(du -sb snap/blobs | cut -f1)"
            cocoon_bench "$W/snap" snapshot:1 "$(du -sb snap/blobs | cut -f1)"
            ;;
        *) die "unknown benchmark $kind (image, snapshot)" ;;
    esac
done
