#!/usr/bin/env python3
"""Turn the raw results of benches/run.sh into a markdown report on stdout.

Usage: report.py RESULTS_DIR

Ratios are "how many times faster epoch-store is": the other command's
median wall time divided by epoch-store's (below 1: epoch-store is slower).
Medians, not means, because a few runs on a virtual disk can be outliers.
"""

import json
import os
import sys

R = sys.argv[1]


def load(name):
    path = os.path.join(R, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def runs(name):
    """hyperfine results by command name."""
    data = load(name + ".json")
    if data is None:
        return None
    return {r["command"]: r for r in data["results"]}


def secs(t):
    return f"{t * 1000:.0f} ms" if t < 1 else f"{t:.2f} s"


def mib(kb):
    return kb / 1024


meta = load("meta.json") or {}
meta_end = load("meta-end.json") or {}
p = meta.get("params", {})
big_mb = p.get("big_mb", 400)

targets = []  # rows of the targets table
details = []  # (benchmark, hyperfine result, bytes or None)


def compare(label, res, ours, theirs, target=None, extra_ok=True, note=""):
    a, b = res[ours]["median"], res[theirs]["median"]
    ratio = b / a
    if target is None:
        verdict = "context"
        tgt = "—"
    else:
        verdict = "**PASS**" if ratio >= target and extra_ok else "**FAIL**"
        tgt = f"≥ {target:g}×"
    targets.append([label, f"{ours}: {secs(a)}", f"{theirs}: {secs(b)}", f"{ratio:.2f}×", tgt, verdict, note])


v = runs("verify")
if v:
    compare(f"1. verify, 2 × {big_mb} MB blobs", v, "epoch-store verify", "openssl dgst -sha256", 1.7,
            note="openssl: one core; epoch-store: both")
    compare(f"1b. verify, 2 × {big_mb} MB blobs (context)", v, "epoch-store verify", "sha256sum")
    for r in v.values():
        details.append(("verify 2 × %d MB" % big_mb, r, 2 * big_mb * 10**6))

img = runs("image")
if img:
    size = (load("image-size.json") or {}).get("bytes")
    compare(f"2. verify, container image ({p.get('image_mb', 200)} MB, {p.get('image_layers', 4)} layers, umoci)",
            img, "epoch-store verify", "oci-image-tool validate", 3)
    for r in img.values():
        details.append(("verify container image", r, size))

fs_type = (meta.get("fs") or "?").split()[0]
for fs, label, target in (("disk", f"3. gc, {p.get('gc_manifests', 3000)} manifests, on {fs_type} (the target)", 5),
                          ("tmpfs", "3b. gc, same layout on tmpfs (no disk; context)", None)):
    g = runs("gc-" + fs)
    if not g:
        continue
    sets = load(f"gc-{fs}-sets.json") or {}
    same = sets.get("identical", False)
    note = (f"kept blob sets identical: {'yes' if same else 'NO'} "
            f"({sets.get('epoch-store')} vs {sets.get('umoci')}; expected {sets.get('expected')}"
            f"{', matches' if sets.get('as_expected') else ', DIFFERS'})")
    dry, floor = g.get("epoch-store gc --dry-run"), g.get("rm of the garbage (floor)")
    if dry and floor:
        note += (f"; planning alone (--dry-run) {secs(dry['median'])}, "
                 f"rm of the same garbage files {secs(floor['median'])}")
    compare(label, g, "epoch-store gc", "umoci gc", target, extra_ok=same, note=note)
    for r in g.values():
        details.append((f"gc ({fs_type if fs == 'disk' else fs})", r, None))

rss = load("rss.json")
if rss:
    es = mib(rss["epoch-store verify"])
    targets.append([f"4. peak RSS, verify of 2 × {big_mb} MB", f"epoch-store verify: {es:.1f} MiB",
                    f"openssl dgst: {mib(rss['openssl dgst -sha256']):.1f} MiB", "—", "≤ 64 MiB",
                    "**PASS**" if es <= 64 else "**FAIL**", "/usr/bin/time -v, max of 3 runs"])

a = runs("add")
if a:
    ratio = a["cp + sync"]["median"] / a["epoch-store add"]["median"]
    compare(f"5. add 2 × {big_mb} MB files (context)", a, "epoch-store add", "cp + sync",
            note="< 1×: slower than the copy floor (which hashes nothing)" if ratio < 1 else "")
    compare(f"5b. add 2 × {big_mb} MB files (context)", a, "epoch-store add", "openssl dgst + cp + sync")
    for r in a.values():
        details.append(("add 2 × %d MB" % big_mb, r, 2 * big_mb * 10**6))

vmp = load("vm-params.json") or {}
dense_mb = vmp.get("dense_mb", 2048)


def floor_row(label, res, ours, floors, target, note=""):
    """ours ÷ max(floors) must be at most `target`."""
    a = res[ours]["median"]
    name, b = max(((f, res[f]["median"]) for f in floors if f in res), key=lambda x: x[1])
    ratio = a / b
    verdict = "**PASS**" if ratio <= target else "**FAIL**"
    others = ", ".join(f"{f}: {secs(res[f]['median'])}" for f in floors if f in res)
    targets.append([label, f"{ours}: {secs(a)}", f"floor = max({others})", f"{ratio:.2f}× the floor",
                    f"≤ {target:g}× the floor", verdict, note])


pk = runs("pack")
if pk:
    floor_row(f"6. pack snapshot, dense {dense_mb} MiB", pk, "epoch-store pack snapshot",
              ["sha256, 2 cores", "cp + sync"], 1.3, note="floor: the slower of hashing on both cores and copying")
    compare(f"6b. pack snapshot, dense {dense_mb} MiB", pk, "epoch-store pack snapshot",
            "openssl dgst + cp + sync", 1.4, note="the best sequential pipeline")
    for other in ("epoch-store pack image", "epoch-store pack snapshot (copy_file_range)"):
        if other in pk:
            floor_row(f"6c. {other.removeprefix('epoch-store ')} (context)", pk, other,
                      ["sha256, 2 cores", "cp + sync"], 1.3)
    for r in pk.values():
        details.append((f"pack {dense_mb} MiB dense", r, dense_mb << 20))

sp = runs("sparse")
if sp:
    a, b = sp["pack sparse"]["median"], sp["pack dense"]["median"]
    targets.append([f"7. pack, {vmp.get('sparse_gib', 32)} GiB sparse disk with {vmp.get('sparse_data_mb', 1024)} MiB of data",
                    f"pack sparse: {secs(a)}", f"pack of the same data dense: {secs(b)}", f"{a / b:.2f}×",
                    "≤ 1.3×", "**PASS**" if a / b <= 1.3 else "**FAIL**", "holes are never read"])
    for r in sp.values():
        details.append(("pack sparse vs dense", r, vmp.get("sparse_data_mb", 1024) << 20))

up = runs("unpack")
if up:
    floor_row(f"8. unpack, dense {dense_mb} MiB", up, "epoch-store unpack", ["cp --sparse=always + sync"], 1.3,
              note="unpack also verifies every byte")
    if "epoch-store unpack (copy_file_range)" in up:
        floor_row("8b. unpack with copy_file_range (context)", up, "epoch-store unpack (copy_file_range)",
                  ["cp --sparse=always + sync"], 1.3)
    if "epoch-store unpack, sparse disk" in up:
        floor_row("8c. unpack, sparse disk (context)", up, "epoch-store unpack, sparse disk",
                  ["cp --sparse=always + sync, sparse disk"], 1.3)
    for r in up.values():
        details.append(("unpack", r, None))

vr = load("vmrss.json")
if vr:
    worst = max(vr.values())
    targets.append(["9. peak RSS of pack and unpack",
                    ", ".join(f"{k}: {mib(v):.1f} MiB" for k, v in vr.items()), "—", "—", "≤ 128 MiB",
                    "**PASS**" if mib(worst) <= 128 else "**FAIL**", "/usr/bin/time -v, max of 3 runs"])

cp = runs("copy")
if cp:
    size = (load("copy-size.json") or {}).get("bytes")
    a = cp["epoch-store copy --all"]["median"]
    b = cp["cp -r + sync"]["median"]
    targets.append([f"11. copy --all of a {size / 1e9:.2f} GB layout" if size else "11. copy --all",
                    f"epoch-store copy: {secs(a)}", f"cp -r + sync: {secs(b)}", f"{a / b:.2f}× cp",
                    "≤ 1.25× cp", "**PASS**" if a / b <= 1.25 else "**FAIL**", "copy verifies every digest; cp verifies nothing"])
    compare("11b. copy --all vs rsync -a + sync", cp, "epoch-store copy --all", "rsync -a + sync", 1,
            note="no slower than rsync")
    for r in cp.values():
        details.append(("copy of a layout", r, size))
inc = load("copy-incremental.json")
if inc:
    targets.append(["11c. incremental copy after one 4 KiB page changed", f"{inc['blobs']} blobs, {inc['bytes']:,} bytes written",
                    f"{inc['skippedBlobs']} blobs ({inc['skippedBytes']:,} bytes) skipped", "—",
                    "the changed chunk + metadata", "context", "default 512 MiB chunks"])

rl = runs("reflink")
if rl:
    fs = (load("reflink-fs.json") or {}).get("fs", "?")
    for ours in ("pack, copy_file_range", "pack, read + write"):
        floor_row(f"10. {ours} on {fs} (context)", rl, ours, ["cp + sync"], 1.3)
    for r in rl.values():
        details.append((f"on {fs}", r, dense_mb << 20))

out = []
out.append(f"## epoch-store benchmarks, {meta.get('date', '?')}")
out.append("")
out.append(f"Machine: {meta.get('cpu', '?')} ({'SHA-NI' if meta.get('sha_ni') else 'no SHA-NI'}), "
           f"{meta.get('cores', '?')} cores, {meta.get('mem_gib', '?')} GiB RAM, Linux {meta.get('kernel', '?')}; "
           f"scratch on {meta.get('fs', '?')}. "
           f"Load average at start {' '.join(meta.get('loadavg_start', []))}, "
           f"at end {' '.join(meta_end.get('loadavg_end', []))}.")
out.append(f"epoch-store {meta.get('commit', '?')}; "
           + "; ".join(f"{v}" for k, v in meta.get("versions", {}).items() if k != "epoch-store" and v) + ".")
out.append(f"hyperfine, page cache warm: --warmup {p.get('warmup', 1)} --runs {p.get('runs', 5)}; "
           "ratio = the other command's median time ÷ epoch-store's (how many times faster epoch-store is).")
out.append("")
out.append("| benchmark | epoch-store | compared with | ratio | target | result | notes |")
out.append("|---|---|---|---|---|---|---|")
for row in targets:
    out.append("| " + " | ".join(row) + " |")
out.append("")
out.append("Absolute times (wall clock; user and system CPU are per run, all threads):")
out.append("")
out.append("| benchmark | command | median | mean ± σ | min … max | user | system | throughput |")
out.append("|---|---|---|---|---|---|---|---|")
for bench, r, nbytes in details:
    tput = f"{nbytes / r['median'] / 1e6:,.0f} MB/s" if nbytes else "—"
    out.append(f"| {bench} | {r['command']} | {secs(r['median'])} | {secs(r['mean'])} ± {secs(r['stddev'] or 0)} "
               f"| {secs(r['min'])} … {secs(r['max'])} | {secs(r['user'])} | {secs(r['system'])} | {tput} |")
gl = load("gc-layout.json")
if gl:
    out.append("")
    out.append(f"gc layout: {gl['manifests']} manifests ({gl['referenced']} referenced from index.json), "
               f"{gl['blobs']} blobs of which {gl['unreachable_blobs']} unreachable, all mtimes 2 days old.")
print("\n".join(out))
