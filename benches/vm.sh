# Sourced by benches/run.sh (uses its E, Eq, R, W, hf, log, die, settle,
# selected): pack and unpack of VM data against the machine's floors.
#
#   pack    a dense image (BENCH_DENSE_MB, default 2048 MiB, random) packed as
#           a snapshot, against cp + sync, SHA-256 on two cores (two openssl
#           processes on the two halves) and the sequential pipeline
#           openssl dgst, cp, sync. Also `pack image` and both copy modes.
#   sparse  a 32 GiB sparse disk holding 1 GiB (64 runs of 16 MiB) against
#           the same 1 GiB as a dense file.
#   unpack  the dense snapshot against cp --sparse=always + sync; the sparse
#           one for context.
#   vmrss   peak RSS of pack and unpack.
#
# Environment: BENCH_DENSE_MB, BENCH_SPARSE_GIB (32), BENCH_SPARSE_DATA_MB
# (1024), BENCH_REFLINK_DIR (a directory on a filesystem with reflinks, e.g.
# an XFS loop mount: pack and unpack are also timed there, with
# EPOCH_STORE_COPY=copy and =write).

DENSE_MB=${BENCH_DENSE_MB:-2048}
SPARSE_GIB=${BENCH_SPARSE_GIB:-32}
SPARSE_DATA_MB=${BENCH_SPARSE_DATA_MB:-1024}

# mkdata: dense/dense.img, halves for the two-core hash floor, the sparse
# disk and the same data dense.
vm_data() {
    log "writing dense/dense.img (${DENSE_MB} MiB random), sparse/disk.raw (${SPARSE_GIB} GiB, ${SPARSE_DATA_MB} MiB of data)"
    mkdir -p dense sparse onegig halves
    head -c "$((DENSE_MB << 20))" /dev/urandom > dense/dense.img
    split -n 2 -d dense/dense.img halves/h.
    python3 - sparse/disk.raw onegig/data.img "$SPARSE_GIB" "$SPARSE_DATA_MB" <<'EOF'
import os, sys
sparse, dense, gib, data_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run = 16 << 20
runs = (data_mb << 20) // run
stride = (gib << 30) // runs
with open(sparse, "wb") as s, open(dense, "wb") as d:
    s.truncate(gib << 30)
    for i in range(runs):
        block = os.urandom(run)
        s.seek(i * stride)
        s.write(block)
        d.write(block)
EOF
    echo "{\"dense_mb\": $DENSE_MB, \"sparse_gib\": $SPARSE_GIB, \"sparse_data_mb\": $SPARSE_DATA_MB}" > "$R/vm-params.json"
}

vm_benchmarks() {
    if selected pack || selected sparse || selected unpack || selected vmrss; then
        vm_data
    fi
    local init="$Eq -q --layout"
    if selected pack; then
        log "6. pack of a dense ${DENSE_MB} MiB image vs floors"
        fresh_cache dense halves
        hf pack \
            --prepare "bash -c 'rm -rf P && $init P init && sync'" \
            -n "epoch-store pack snapshot" "$Eq --layout P -q pack snapshot dense --ref d:1" \
            --prepare "bash -c 'rm -rf P && $init P init && sync'" \
            -n "epoch-store pack snapshot (copy_file_range)" "env EPOCH_STORE_COPY=copy $Eq --layout P -q pack snapshot dense --ref d:1" \
            --prepare "bash -c 'rm -rf P && $init P init && sync'" \
            -n "epoch-store pack image" "$Eq --layout P -q pack image dense/dense.img --ref i:1" \
            --prepare "bash -c 'rm -rf cp && mkdir cp && sync'" \
            -n "cp + sync" "bash -c 'cp dense/dense.img cp/ && sync'" \
            --prepare "true" \
            -n "sha256, 2 cores" "bash -c 'openssl dgst -sha256 halves/h.00 >/dev/null & openssl dgst -sha256 halves/h.01 >/dev/null; wait'" \
            --prepare "bash -c 'rm -rf cp && mkdir cp && sync'" \
            -n "openssl dgst + cp + sync" "bash -c 'openssl dgst -sha256 dense/dense.img >/dev/null && cp dense/dense.img cp/ && sync'"
        rm -rf cp P
    fi
    if selected sparse; then
        log "7. pack of a ${SPARSE_GIB} GiB sparse disk vs its ${SPARSE_DATA_MB} MiB of data dense"
        fresh_cache onegig
        hf sparse \
            --prepare "bash -c 'rm -rf S && $init S init && sync'" \
            -n "pack sparse" "$Eq --layout S -q pack snapshot sparse --ref s:1" \
            --prepare "bash -c 'rm -rf S && $init S init && sync'" \
            -n "pack dense" "$Eq --layout S -q pack snapshot onegig --ref s:1" \
            --prepare "bash -c 'rm -rf cp && mkdir cp && sync'" \
            -n "cp --sparse=always + sync" "bash -c 'cp --sparse=always sparse/disk.raw cp/ && sync'"
        rm -rf S cp
    fi
    if selected unpack; then
        log "8. unpack vs cp --sparse=always + sync"
        $init U init
        "$E" --layout U -q pack snapshot dense --ref d:1
        "$E" --layout U -q pack snapshot sparse --ref s:1
        fresh_cache U dense
        hf unpack \
            --prepare "bash -c 'rm -rf out && sync'" \
            -n "epoch-store unpack" "$Eq --layout U -q unpack d:1 out" \
            --prepare "bash -c 'rm -rf out && sync'" \
            -n "epoch-store unpack (copy_file_range)" "env EPOCH_STORE_COPY=copy $Eq --layout U -q unpack d:1 out" \
            --prepare "bash -c 'rm -rf out && mkdir out && sync'" \
            -n "cp --sparse=always + sync" "bash -c 'cp --sparse=always dense/dense.img out/ && sync'" \
            --prepare "bash -c 'rm -rf out && sync'" \
            -n "epoch-store unpack, sparse disk" "$Eq --layout U -q unpack s:1 out" \
            --prepare "bash -c 'rm -rf out && mkdir out && sync'" \
            -n "cp --sparse=always + sync, sparse disk" "bash -c 'cp --sparse=always sparse/disk.raw out/ && sync'"
        rm -rf out
    fi
    if selected vmrss; then
        log "9. peak RSS of pack and unpack"
        local pack_kb sparse_kb unpack_kb
        vm_rss() {   # vm_rss PREPARE COMMAND...: max RSS of 3 runs in KiB
            local prep=$1 max=0 kb i
            shift
            for i in 1 2 3; do
                bash -c "$prep"
                /usr/bin/time -v "$@" >/dev/null 2> "$R/time-v.txt" || die "$* failed: $(tail -5 "$R/time-v.txt")"
                kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$R/time-v.txt")
                [ "$kb" -gt "$max" ] && max=$kb
            done
            echo "$max"
        }
        pack_kb=$(vm_rss "rm -rf M && $init M init" "$E" --layout M -q pack snapshot dense --ref d:1)
        sparse_kb=$(vm_rss "rm -rf M && $init M init" "$E" --layout M -q pack snapshot sparse --ref s:1)
        "$E" --layout M -q pack snapshot dense --ref d:1
        unpack_kb=$(vm_rss "rm -rf out" "$E" --layout M -q unpack d:1 out)
        printf '{"pack dense": %s, "pack sparse": %s, "unpack dense": %s}\n' \
            "$pack_kb" "$sparse_kb" "$unpack_kb" > "$R/vmrss.json"
        rm -rf M out
    fi
    if [ -n "${BENCH_REFLINK_DIR:-}" ] && { selected pack || selected unpack; }; then
        local X
        X=$(mktemp -d "$BENCH_REFLINK_DIR/epoch-store-bench.XXXXXX")
        log "10. pack and unpack on $(findmnt -no FSTYPE -T "$X") ($X)"
        cp -r dense "$X/dense"
        local Xq
        Xq=$(printf '%q' "$X")
        hf reflink \
            --prepare "bash -c 'rm -rf $Xq/P && $init $Xq/P init && sync'" \
            -n "pack, copy_file_range" "env EPOCH_STORE_COPY=copy $Eq --layout $Xq/P -q pack snapshot $Xq/dense --ref d:1" \
            --prepare "bash -c 'rm -rf $Xq/P && $init $Xq/P init && sync'" \
            -n "pack, read + write" "env EPOCH_STORE_COPY=write $Eq --layout $Xq/P -q pack snapshot $Xq/dense --ref d:1" \
            --prepare "bash -c 'rm -rf $Xq/cp && mkdir $Xq/cp && sync'" \
            -n "cp + sync" "bash -c 'cp --reflink=never $Xq/dense/dense.img $Xq/cp/ && sync'" \
            --prepare "bash -c 'rm -rf $Xq/out && sync'" \
            -n "unpack, copy_file_range" "env EPOCH_STORE_COPY=copy $Eq --layout $Xq/P -q unpack d:1 $Xq/out" \
            --prepare "bash -c 'rm -rf $Xq/out && sync'" \
            -n "unpack, read + write" "env EPOCH_STORE_COPY=write $Eq --layout $Xq/P -q unpack d:1 $Xq/out"
        findmnt -no FSTYPE,OPTIONS -T "$X" | awk '{printf "{\"fs\": \"%s %s\"}\n", $1, $2}' > "$R/reflink-fs.json"
        rm -rf "$X"
    fi
    rm -rf dense sparse onegig halves U
}
