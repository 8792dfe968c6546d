#!/usr/bin/env bash
# epoch-store benchmarks: measure against the floors (openssl, cp + sync) and
# the peers (oci-image-tool, umoci) in the same run, and print a markdown
# report (ratios, targets, pass/fail, absolute times) on stdout.
#
#   bash benches/run.sh                 # everything (about 8 minutes)
#   bash benches/run.sh verify gc       # a subset: verify image gc rss add pack sparse unpack vmrss copy
#
# Benchmarks measure; they never fail a build. The exit status is non-zero
# only when the benchmark itself could not run (missing tool, build error,
# a command failing, gc results that differ between epoch-store and umoci).
#
# Environment:
#   BENCH_DIR       parent of the scratch directory (default /var/tmp); ~14 GB free needed
#   BENCH_TMPFS     tmpfs for the CPU-bound gc variant (default /dev/shm; empty: skip it)
#   BENCH_RUNS      timed runs per command (default 5); BENCH_WARMUP (default 1)
#   BENCH_BIG_MB    size of each of the two big files in MB (default 400)
#   BENCH_IMAGE_MB  container image payload in MB (default 200), BENCH_IMAGE_LAYERS (default 4)
#   BENCH_GC_MANIFESTS  manifests in the gc layout (default 3000; half unreachable)
#   BENCH_DENSE_MB, BENCH_SPARSE_GIB, BENCH_SPARSE_DATA_MB, BENCH_REFLINK_DIR: see benches/vm.sh
#   BENCH_OUT       directory to copy the raw hyperfine JSON and the report into
#   BENCH_KEEP=1    keep the scratch directories (their paths are printed)
#   BENCH_NO_INSTALL=1  never call apt-get; BENCH_NO_BUILD=1  use the existing release binary
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCHES="$ROOT/benches"
RUNS=${BENCH_RUNS:-5}
WARMUP=${BENCH_WARMUP:-1}
BIG_MB=${BENCH_BIG_MB:-400}
IMAGE_MB=${BENCH_IMAGE_MB:-200}
IMAGE_LAYERS=${BENCH_IMAGE_LAYERS:-4}
GC_MANIFESTS=${BENCH_GC_MANIFESTS:-3000}
TMPFS=${BENCH_TMPFS-/dev/shm}
ALL=(verify image gc rss add pack sparse unpack vmrss copy)
if [ $# -gt 0 ]; then SELECTED=("$@"); else SELECTED=("${ALL[@]}"); fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
selected() { local s; for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
for s in "${SELECTED[@]}"; do
    case " ${ALL[*]} " in *" $s "*) ;; *) die "unknown benchmark '$s' (choose from: ${ALL[*]})" ;; esac
done

# ---------------------------------------------------------------- tools
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

install_missing() {
    local missing=() pair cmd pkg
    for pair in rsync:rsync hyperfine:hyperfine skopeo:skopeo umoci:umoci oci-image-tool:oci-image-tool \
        openssl:openssl python3:python3 sha256sum:coreutils /usr/bin/time:time; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${BENCH_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${missing[*]} (BENCH_NO_INSTALL=1)"
    log "installing: ${missing[*]}"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
}
install_missing
command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (>= 1.89) first"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
E="$TARGET_DIR/release/epoch-store"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) >&2
fi
[ -x "$E" ] || die "$E not found"
Eq=$(printf '%q' "$E")

# ---------------------------------------------------------------- scratch
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/epoch-store-bench.XXXXXX")
T=""
if [ -n "$TMPFS" ] && selected gc; then
    if [ "$(stat -f -c %T "$TMPFS" 2>/dev/null)" = tmpfs ] && [ -w "$TMPFS" ]; then
        T=$(mktemp -d "$TMPFS/epoch-store-bench.XXXXXX")
    else
        log "BENCH_TMPFS=$TMPFS is not a writable tmpfs; skipping the tmpfs gc variant"
    fi
fi
cleanup() {
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        log "kept $W ${T:+and $T}"
    else
        rm -rf "$W" ${T:+"$T"}
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
R="$W/results"
mkdir -p "$R"
cd "$W"
log "scratch directory $W ($(findmnt -no FSTYPE -T "$W" 2>/dev/null))"
need_kb=$(( BIG_MB * 1000 * 8 + 300 * 1000 ))   # a, b, the layout, add, cp: 2 x BIG each
# dense, halves, two layouts, cp: 5 x DENSE; sparse data, dense copy, layouts: 4 x SPARSE_DATA
need_kb=$(( need_kb + ${BENCH_DENSE_MB:-2048} * 1049 * 5 + ${BENCH_SPARSE_DATA_MB:-1024} * 1049 * 4 ))
free_kb=$(df -Pk "$W" | awk 'NR==2 {print $4}')
[ "$free_kb" -ge "$need_kb" ] || die "need about $((need_kb / 1000000)) GB free under $W, have $((free_kb / 1000000)) GB"

# Let writeback from the previous step finish so that it does not steal a core.
settle() { sync; sleep 1; }

# fresh_cache DIR...: drop the page cache (root only), then read DIR back
# in, so that each benchmark starts with its inputs cached and without
# gigabytes of earlier benchmarks' pages for the kernel to reclaim (which
# made system time vary by 4x between runs).
fresh_cache() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 1 > /proc/sys/vm/drop_caches; fi
    find "$@" -type f -exec cat {} + > /dev/null
}

# hf NAME HYPERFINE-ARGS...: page-cache-warm runs, JSON into $R/NAME.json,
# hyperfine's own report on stderr.
hf() {
    local name=$1
    shift
    settle
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$R/$name.json" "$@" >&2
}

# ---------------------------------------------------------------- machine
python3 - "$R/meta.json" "$W" "$E" "$ROOT" "$RUNS" "$WARMUP" "$BIG_MB" "$IMAGE_MB" "$IMAGE_LAYERS" "$GC_MANIFESTS" <<'EOF'
import json, os, platform, subprocess, sys, time
out, scratch, exe, root = sys.argv[1:5]
runs, warmup, big_mb, image_mb, image_layers, gc_manifests = map(int, sys.argv[5:11])
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1")
flags = open("/proc/cpuinfo").read()
meta = {
    "params": {"runs": runs, "warmup": warmup, "big_mb": big_mb, "image_mb": image_mb,
               "image_layers": image_layers, "gc_manifests": gc_manifests},
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "cpu": cpu, "sha_ni": " sha_ni" in flags, "cores": os.cpu_count(),
    "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "kernel": platform.release(),
    "fs": " ".join(sh(f"findmnt -no FSTYPE,OPTIONS -T '{scratch}'").split()),
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "commit": sh(f"git -C '{root}' rev-parse --short HEAD") + (" + uncommitted changes" if sh(f"git -C '{root}' status --porcelain") else ""),
    "versions": {
        "epoch-store": sh(f"'{exe}' --version"),
        "openssl": sh("openssl version"),
        "sha256sum": sh("sha256sum --version | head -1"),
        "umoci": sh("umoci --version"),
        "oci-image-tool": sh("oci-image-tool --version"),
        "skopeo": sh("skopeo --version"),
        "hyperfine": sh("hyperfine --version"),
    },
}
json.dump(meta, open(out, "w"), indent=1)
EOF
read -r load1 _ < /proc/loadavg
awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }' &&
    log "warning: load average $load1 at start; other work on this machine skews the figures"

# ---------------------------------------------------------------- data: two big random files
if selected verify || selected rss || selected add; then
    log "writing a.bin and b.bin (${BIG_MB} MB each, random)"
    head -c "${BIG_MB}000000" /dev/urandom > a.bin
    head -c "${BIG_MB}000000" /dev/urandom > b.bin
    "$E" --layout big -q init
    "$E" --layout big -q add --ref big:1 a.bin b.bin
    "$E" --layout big -q verify || die "verify of the fresh layout failed"
fi

# ---------------------------------------------------------------- 1. verify vs openssl / sha256sum
if selected verify; then
    log "1. verify 2 x ${BIG_MB} MB vs openssl dgst / sha256sum"
    hf verify \
        -n "epoch-store verify" "$Eq --layout big -q verify" \
        -n "openssl dgst -sha256" "openssl dgst -sha256 a.bin b.bin" \
        -n "sha256sum" "sha256sum a.bin b.bin"
fi

# ---------------------------------------------------------------- 4. peak RSS
if selected rss; then
    log "4. peak RSS of verify (/usr/bin/time -v, max of 3 runs)"
    rss_of() {
        local max=0 kb i
        for i in 1 2 3; do
            /usr/bin/time -v "$@" >/dev/null 2> "$R/time-v.txt" || die "$* failed: $(tail -5 "$R/time-v.txt")"
            kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$R/time-v.txt")
            [ "$kb" -gt "$max" ] && max=$kb
        done
        echo "$max"
    }
    settle
    es_kb=$(rss_of "$E" --layout big -q verify)
    ossl_kb=$(rss_of openssl dgst -sha256 a.bin b.bin)
    [ -n "$es_kb" ] && [ -n "$ossl_kb" ] || die "could not measure peak RSS"
    printf '{"epoch-store verify": %s, "openssl dgst -sha256": %s}\n' "$es_kb" "$ossl_kb" > "$R/rss.json"
fi

# ---------------------------------------------------------------- 5. add vs cp + sync
if selected add; then
    log "5. add 2 x ${BIG_MB} MB vs cp + sync, openssl + cp + sync"
    hf add \
        --prepare "bash -c 'rm -rf add && $Eq --layout add -q init && sync'" \
        -n "epoch-store add" "$Eq --layout add -q add --ref big:1 a.bin b.bin" \
        --prepare "bash -c 'rm -rf cp && mkdir cp && sync'" \
        -n "cp + sync" "bash -c 'cp a.bin b.bin cp/ && sync'" \
        --prepare "bash -c 'rm -rf cp && mkdir cp && sync'" \
        -n "openssl dgst + cp + sync" "bash -c 'openssl dgst -sha256 a.bin b.bin >/dev/null && cp a.bin b.bin cp/ && sync'"
    rm -rf add cp
fi

# The big files are not needed any more: free the page cache and disk.
rm -rf a.bin b.bin big

# ---------------------------------------------------------------- 6-10. VM pack and unpack
# shellcheck source=benches/vm.sh
source "$BENCHES/vm.sh"
vm_benchmarks

# ---------------------------------------------------------------- 11. copy between layouts
# shellcheck source=benches/transfer.sh
source "$BENCHES/transfer.sh"
transfer_benchmarks

# ---------------------------------------------------------------- 2. container image verify vs oci-image-tool
if selected image; then
    log "2. container image (${IMAGE_MB} MB in ${IMAGE_LAYERS} layers, umoci) verify vs oci-image-tool validate"
    rootless=()
    [ "$(id -u)" -eq 0 ] || rootless=(--rootless)
    umoci init --layout img
    umoci new --image img:bench
    per_layer=$((IMAGE_MB * 1000000 / IMAGE_LAYERS))
    for l in $(seq "$IMAGE_LAYERS"); do
        mkdir -p "src/layer$l/sub"
        # A few files of mixed sizes per layer, random (incompressible) content.
        head -c $((per_layer / 2)) /dev/urandom > "src/layer$l/big.bin"
        for f in 1 2 3 4; do head -c $((per_layer / 8)) /dev/urandom > "src/layer$l/sub/part$f.bin"; done
        umoci insert "${rootless[@]}" --image img:bench "src/layer$l" "/opt/layer$l" >&2
    done
    rm -rf src
    umoci gc --layout img   # drop the intermediate manifests umoci insert leaves behind
    skopeo inspect --raw oci:img:bench >/dev/null || die "skopeo cannot read the umoci image"
    oci-image-tool validate --type image --ref name=bench img >/dev/null || die "oci-image-tool rejects the umoci image"
    "$E" --layout img -q verify || die "epoch-store verify rejects the umoci image"
    du -sb img | awk '{printf "{\"bytes\": %s}\n", $1}' > "$R/image-size.json"
    hf image \
        -n "epoch-store verify" "$Eq --layout img -q verify" \
        -n "oci-image-tool validate" "oci-image-tool validate --type image --ref name=bench img"
    rm -rf img
fi

# ---------------------------------------------------------------- 3. gc vs umoci gc
if selected gc; then
    log "3. gc of ${GC_MANIFESTS} manifests (half unreachable) vs umoci gc"
    python3 "$BENCHES/gen_gc_layout.py" gc-src --manifests "$GC_MANIFESTS" \
        --expect gc-expected.txt --garbage gc-garbage.txt > "$R/gc-layout.json"
    gc_bench() {   # gc_bench LABEL DIR: DIR/src is the layout
        local label=$1 dir=$2
        cp gc-garbage.txt "$dir/garbage.txt"
        # epoch-store and umoci each on a fresh copy per run; then, for the
        # analysis, epoch-store's planning alone (read-only, on the source) and
        # the deletion floor: rm of exactly the garbage files.
        hf "gc-$label" \
            --prepare "bash -c 'rm -rf $dir/es && cp -a $dir/src $dir/es && sync'" \
            -n "epoch-store gc" "$Eq --layout $dir/es -q gc --grace 0s" \
            --prepare "bash -c 'rm -rf $dir/umoci && cp -a $dir/src $dir/umoci && sync'" \
            -n "umoci gc" "umoci gc --layout $dir/umoci" \
            --prepare "true" \
            -n "epoch-store gc --dry-run" "$Eq --layout $dir/src -q gc --dry-run --grace 0s" \
            --prepare "bash -c 'rm -rf $dir/rm && cp -a $dir/src $dir/rm && sync'" \
            -n "rm of the garbage (floor)" "bash -c 'cd $dir/rm/blobs/sha256 && xargs rm -f < $dir/garbage.txt'"
        # The last timed run of each left its result behind: compare them.
        python3 - "$dir/es" "$dir/umoci" gc-expected.txt "$R/gc-$label-sets.json" <<'EOF'
import json, os, sys
es_dir, um_dir, expected_file, out = sys.argv[1:5]
def blobs(d):
    return set(os.listdir(os.path.join(d, "blobs", "sha256")))
es, um = blobs(es_dir), blobs(um_dir)
expected = set(open(expected_file).read().split())
json.dump({"epoch-store": len(es), "umoci": len(um), "expected": len(expected),
           "identical": es == um, "as_expected": es == expected,
           "only_epoch_store": len(es - um), "only_umoci": len(um - es)}, open(out, "w"))
EOF
        rm -rf "$dir/es" "$dir/umoci" "$dir/rm" "$dir/garbage.txt"
    }
    mkdir -p gc
    mv gc-src gc/src
    gc_bench disk "$W/gc"
    if [ -n "$T" ]; then
        cp -a gc/src "$T/src"
        gc_bench tmpfs "$T"
        rm -rf "$T/src"
    fi
    rm -rf gc
fi

awk '{printf "{\"loadavg_end\": [\"%s\", \"%s\", \"%s\"]}\n", $1, $2, $3}' /proc/loadavg > "$R/meta-end.json"

# ---------------------------------------------------------------- report
python3 "$BENCHES/report.py" "$R" | tee "$R/report.md"
if [ -n "${BENCH_OUT:-}" ]; then
    mkdir -p "$BENCH_OUT"
    cp "$R"/*.json "$R/report.md" "$BENCH_OUT/"
    log "raw results copied to $BENCH_OUT"
fi
# A gc that keeps a different set of blobs than umoci is a broken benchmark run.
for f in "$R"/gc-*-sets.json; do
    [ -e "$f" ] || continue
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["identical"] else 1)' "$f" ||
        die "epoch-store gc and umoci gc kept different blobs ($f)"
done
