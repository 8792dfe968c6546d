# Sourced by benches/run.sh (uses its E, Eq, R, hf, log, die, selected):
# copy of a whole layout against cp -r + sync and rsync -a + sync, and the
# bytes an incremental copy writes.
#
#   copy    a ~1.4 GB layout: a snapshot (1 GiB memory file, a 4 GiB sparse
#           disk holding 192 MiB, 512 MiB chunks) and an `add` of 150 files
#           of 1 MiB (many small blobs), copied into a fresh directory.
#           Then one 4 KiB page of the memory file changes, the snapshot is
#           packed again, and `copy` of the new ref reports what it wrote.

transfer_benchmarks() {
    selected copy || return 0
    log "11. copy of a ~1.4 GB layout vs cp -r + sync, rsync -a + sync"
    command -v rsync >/dev/null || die "rsync not found (apt-get install rsync)"
    mkdir -p xsnap xfiles
    head -c $((1024 << 20)) /dev/urandom > xsnap/memory-ranges
    python3 - xsnap/disk.raw <<'EOF'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(4 << 30)
    for i in range(12):
        f.seek(i * (300 << 20))
        f.write(os.urandom(16 << 20))
EOF
    for i in $(seq 150); do head -c $((1 << 20)) /dev/urandom > "xfiles/f$i.bin"; done
    "$E" --layout X -q init
    "$E" --layout X -q pack snapshot xsnap --ref vm:1
    "$E" --layout X -q add --ref files:1 xfiles/*
    fresh_cache X
    du -sb X | awk '{printf "{\"bytes\": %s}\n", $1}' > "$R/copy-size.json"
    hf copy \
        --prepare "bash -c 'rm -rf D && sync'" \
        -n "epoch-store copy --all" "$Eq --layout X -q copy --all --to D" \
        --prepare "bash -c 'rm -rf D && sync'" \
        -n "cp -r + sync" "bash -c 'cp -r X D && sync'" \
        --prepare "bash -c 'rm -rf D && sync'" \
        -n "rsync -a + sync" "bash -c 'rsync -a X/ D/ && sync'"
    # Incremental: the last timed run left D as epoch-store's... or rsync's
    # copy; make it epoch-store's, change one page, pack and copy the new ref.
    rm -rf D && "$E" --layout X -q copy --all --to D
    printf 'changed' | dd of=xsnap/memory-ranges bs=4096 seek=1000 conv=notrunc status=none
    "$E" --layout X -q pack snapshot xsnap --ref vm:2
    "$E" --layout X --json copy vm:2 --to D > "$R/copy-incremental.json"
    "$E" --layout D -q verify || die "the copy does not verify"
    rm -rf X D xsnap xfiles
}
