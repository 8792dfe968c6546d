#!/usr/bin/env python3
"""Write an OCI image layout for the gc benchmark, directly as files.

Each of MANIFESTS image manifests has its own OCI image config blob and
LAYERS small gzip'd tar-like layer blobs, i.e. (LAYERS + 2) blobs per
manifest. The first half of the manifests are referenced from index.json
with ref names; the second half are referenced by nothing, so gc must remove
them and everything only they reference. Every blob's mtime is set to two
days ago so that epoch-store's grace period (24 h by default) does not
protect the garbage.

Usage: gen_gc_layout.py DIR [--manifests N] [--layers N] [--seed S]
                          [--expect FILE] [--garbage FILE]
Prints a one-line JSON summary on stdout; --expect writes the hex digests of
the reachable blobs (what a correct gc keeps), one a line; --garbage the
others (what it removes).
"""

import argparse
import gzip
import hashlib
import json
import os
import random
import sys
import time

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--manifests", type=int, default=3000)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect", help="write the reachable blobs' hex digests here")
    ap.add_argument("--garbage", help="write the unreachable blobs' hex digests here")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    root = args.dir
    blob_dir = os.path.join(root, "blobs", "sha256")
    os.makedirs(blob_dir, exist_ok=False)
    old = time.time() - 2 * 24 * 3600
    written = []

    def put(data: bytes) -> dict:
        hexd = hashlib.sha256(data).hexdigest()
        path = os.path.join(blob_dir, hexd)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            written.append(path)
        return {"digest": "sha256:" + hexd, "size": len(data)}

    def canon(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

    index_entries = []
    reachable = set()
    for i in range(args.manifests):
        layers = []
        diff_ids = []
        for j in range(args.layers):
            raw = rng.randbytes(rng.randint(512, 4096))
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            # mtime=0: deterministic gzip output for a given seed.
            d = put(gzip.compress(raw, compresslevel=1, mtime=0))
            layers.append({"mediaType": MT_LAYER, **d})
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Env": [f"BENCH_IMAGE={i}"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        cfg = {"mediaType": MT_CONFIG, **put(canon(config))}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": cfg,
            "layers": layers,
        }
        m = {"mediaType": MT_MANIFEST, **put(canon(manifest))}
        if i < args.manifests // 2:
            index_entries.append({**m, "annotations": {REF_NAME: f"bench-{i:05d}"}})
            reachable.update(x["digest"] for x in [m, cfg, *layers])

    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": index_entries}, f, separators=(",", ":"))
    for p in written:
        os.utime(p, (old, old))
    if args.expect:
        with open(args.expect, "w") as f:
            f.writelines(d.split(":", 1)[1] + "\n" for d in sorted(reachable))
    if args.garbage:
        keep = {d.split(":", 1)[1] for d in reachable}
        with open(args.garbage, "w") as f:
            f.writelines(os.path.basename(p) + "\n" for p in sorted(written)
                         if os.path.basename(p) not in keep)
    json.dump({"manifests": args.manifests, "referenced": len(index_entries),
               "blobs": len(written), "reachable_blobs": len(reachable),
               "unreachable_blobs": len(written) - len(reachable)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
