#!/usr/bin/env bash
# Container-image benchmarks (issue 11), printed as markdown on stdout:
#
#   build    `epoch-store build` of a 100 MiB entrypoint on a 200 MiB base,
#            against `umoci insert` + `umoci config --config.entrypoint` of
#            the same file into the same base (both gzip)
#   platform `copy --platform` of one platform out of a 5-platform index:
#            bytes read from storage and written (page cache dropped first;
#            /usr/bin/time's block counts), against that platform's bytes
#   load     `formats::image::load` of an index of 1,000 images (in-process
#            median, examples/load_index.rs)
#
#   bash benches/images.sh                # all three
#   bash benches/images.sh build load     # a subset
#
# Environment: BENCH_DIR (default /var/tmp), BENCH_RUNS (default 5),
# BENCH_BASE_MB (200), BENCH_ENTRY_MB (100), BENCH_LEVELS (the gzip levels of
# build measured, default "1 2 3 6"), BENCH_KEEP=1 keeps the scratch
# directory. Needs root for dropping the page cache (platform); hyperfine,
# umoci, python3 and /usr/bin/time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
BASE_MB=${BENCH_BASE_MB:-200}
LEVELS=${BENCH_LEVELS:-1 2 3 6}
ENTRY_MB=${BENCH_ENTRY_MB:-100}
ALL=(build platform load)
if [ $# -gt 0 ]; then SELECTED=("$@"); else SELECTED=("${ALL[@]}"); fi
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
selected() { local s; for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
for tool in hyperfine umoci python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install hyperfine umoci python3 time)"
done

log "cargo build --release (and examples/load_index)"
(cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example load_index) >&2
E="$ROOT/target/release/epoch-store"
LOAD="$ROOT/target/release/examples/load_index"

W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/epoch-store-images.XXXXXX")
cleanup() { if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi; }
trap cleanup EXIT
cd "$W"

# payload FILE MB SKIP: MB MiB of this machine's own binaries and libraries
# (files over 100 KiB under /usr/bin, /usr/lib, /usr/libexec, sorted by
# path, concatenated, the first SKIP MiB left out): data that compresses
# as real images do (about 2.4:1 under gzip -6).
payload() {
    find /usr/bin /usr/lib /usr/libexec -type f -size +100k 2>/dev/null | sort | xargs cat 2>/dev/null \
        | tail -c +$(( ($3 << 20) + 1 )) | head -c $(( $2 << 20 )) > "$1" || true
    [ "$(stat -c %s "$1")" -eq $(( $2 << 20 )) ] || die "not enough binaries on this machine for $2 MiB"
}

echo "## Container-image benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, runs: $RUNS)"
echo

if selected build; then
    log "build: a ${BASE_MB} MiB base by umoci, a ${ENTRY_MB} MiB entrypoint"
    payload base.bin "$BASE_MB" 0
    payload server "$ENTRY_MB" "$BASE_MB"
    umoci init --layout base >/dev/null
    umoci new --image base:base >/dev/null
    umoci insert --rootless --image base:base base.bin /opt/base.bin >/dev/null
    cmds=(-n "umoci insert + config"
        "umoci insert --rootless --image lay:base server /server && umoci config --image lay:base --config.entrypoint /server")
    for level in $LEVELS; do
        cmds+=(-n "epoch-store build --level $level" "$E --layout lay build --from base --entrypoint server --ref built --level $level")
    done
    hyperfine --runs "$RUNS" --warmup 1 --export-json build.json \
        --prepare "rm -rf lay && cp -a base lay && sync" "${cmds[@]}" >&2
    # The layer each wrote, for the compression each got.
    rm -rf lay && cp -a base lay && touch marker && sleep 1
    umoci insert --rootless --image lay:base server /server >/dev/null
    sizes="umoci=$(find lay/blobs -type f -newer marker -size +1M -printf '%s\n' | sort -n | tail -1)"
    for level in $LEVELS; do
        rm -rf lay && cp -a base lay
        sizes+=" $level=$("$E" --layout lay --json build --from base --entrypoint server --ref built --level "$level" \
            | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["size"])')"
    done
    python3 - build.json "$ENTRY_MB" $sizes <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
mb = int(sys.argv[2])
size = dict(a.split("=") for a in sys.argv[3:])
u = r["umoci insert + config"]
print(f"| build ({mb} MiB entrypoint on a 200 MiB base) | median | user CPU | new layer | vs umoci |")
print("|---|---|---|---|---|")
print(f"| umoci insert + umoci config (pgzip) | {u['median']:.2f} s | {u['user']:.2f} s | {int(size['umoci']) / 2**20:.1f} MiB | 1.00 |")
for name, e in r.items():
    if not name.startswith("epoch-store"):
        continue
    level = name.rsplit(" ", 1)[1]
    print(f"| {name} | {e['median']:.2f} s | {e['user']:.2f} s | {int(size[level]) / 2**20:.1f} MiB | **{u['median'] / e['median']:.2f}x** faster |")
print()
print("Target: at least 2x faster than umoci.")
print()
EOF
fi

if selected platform; then
    log "platform: a 5-platform index, 20 MiB per image"
    "$E" --layout multi init >/dev/null
    python3 - multi <<'EOF'
import hashlib, json, os, random, sys
lay = sys.argv[1]
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(lay, "blobs/sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
entries = []
for i, (arch, var) in enumerate([("amd64", None), ("arm64", "v8"), ("arm", "v7"), ("s390x", None), ("ppc64le", None)]):
    rng = random.Random(i)
    layers = [dict(put(rng.randbytes(5 << 20)), mediaType="application/vnd.oci.image.layer.v1.tar") for _ in range(4)]
    cfg = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}
    if var: cfg["variant"] = var
    c = dict(put(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": layers}).encode())
    plat = {"architecture": arch, "os": "linux"}
    if var: plat["variant"] = var
    entries.append(dict(m, mediaType="application/vnd.oci.image.manifest.v1+json", platform=plat))
idx = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}).encode())
json.dump({"schemaVersion": 2, "manifests": [dict(idx, mediaType="application/vnd.oci.image.index.v1+json", annotations={"org.opencontainers.image.ref.name": "multi:1"})]}, open(os.path.join(lay, "index.json"), "w"))
EOF
    arm_bytes=$("$E" --layout multi --json inspect multi:1 --platform linux/arm64 | python3 -c '
import json, sys; d = json.load(sys.stdin)
print(sum(l["size"] for l in d.get("layers", [])) + d["config"]["size"])')
    total=$(du -sb multi/blobs | cut -f1)
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; else log "not root: the read count includes cached pages"; fi
    "$E" --help >/dev/null   # the binary's own pages are not the copy's reads
    /usr/bin/time -f "%I %O" -o io.txt "$E" --layout multi copy multi:1 --platform linux/arm64 --to one >/dev/null
    sync
    read -r in_blocks out_blocks < io.txt
    written=$(du -sb one/blobs | cut -f1)
    python3 - "$arm_bytes" "$total" "$in_blocks" "$out_blocks" "$written" <<'EOF'
import sys
arm, total, inb, outb, written = (int(x) for x in sys.argv[1:])
mib = lambda n: f"{n / 2**20:.1f} MiB"
print("| copy --platform linux/arm64 of a 5-platform index | bytes |")
print("|---|---|")
print(f"| the index's blobs | {mib(total)} |")
print(f"| the arm64 image's config and layers | {mib(arm)} |")
print(f"| read from storage (cache dropped) | {mib(inb * 512)} ({inb * 512 / arm:.2f}x the image) |")
print(f"| written (dirtied by the process) | {mib(outb * 512)} ({outb * 512 / arm:.2f}x the image) |")
print(f"| in the destination's blobs/ | {mib(written)} |")
print()
EOF
fi

if selected load; then
    log "load: an index of 1,000 images"
    "$E" --layout many init >/dev/null
    python3 - many <<'EOF'
import hashlib, json, os, sys
lay = sys.argv[1]
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(lay, "blobs/sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
archs = [("amd64", None), ("arm64", "v8"), ("arm", "v7"), ("arm", "v6"), ("386", None), ("s390x", None), ("ppc64le", None), ("riscv64", None)]
entries = []
for i in range(1000):
    arch, var = archs[i % len(archs)]
    layer = dict(put(b"layer %d" % i), mediaType="application/vnd.oci.image.layer.v1.tar")
    cfg = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}, "config": {"Env": ["N=%d" % i]}}
    c = dict(put(json.dumps(cfg).encode()), mediaType="application/vnd.oci.image.config.v1+json")
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [layer]}).encode())
    plat = {"architecture": arch, "os": "linux"}
    if var: plat["variant"] = var
    entries.append(dict(m, mediaType="application/vnd.oci.image.manifest.v1+json", platform=plat))
idx = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}).encode())
json.dump({"schemaVersion": 2, "manifests": [dict(idx, mediaType="application/vnd.oci.image.index.v1+json", annotations={"org.opencontainers.image.ref.name": "many:1"})]}, open(os.path.join(lay, "index.json"), "w"))
EOF
    out=$("$LOAD" many many:1 linux/arm/v7)
    echo "| load of an index of 1,000 images (2,001 documents verified) | result |"
    echo "|---|---|"
    echo "| examples/load_index many:1 linux/arm/v7 | $out (target < 100 ms) |"
    echo
fi
