#!/usr/bin/env python3
"""Writes operator/view/assets/coastlines.json: Natural Earth's 1:110m land outlines (public
domain, naturalearthdata.com, version 4.1.0) as longitude/latitude polylines, for the
browser view. The data comes from the npm package world-atlas 2.0.2 (a redistribution of
Natural Earth as TopoJSON, ISC licence); its tarball's SHA-512 is checked before use.

Run it again only to change the data: its output is committed.
    scripts/gen-coastlines.py [OUT]
"""
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request

URL = "https://registry.npmjs.org/world-atlas/-/world-atlas-2.0.2.tgz"
MEMBER = "package/land-110m.json"


def fetch():
    meta = json.load(urllib.request.urlopen("https://registry.npmjs.org/world-atlas/2.0.2"))
    integrity = meta["dist"]["integrity"]
    data = urllib.request.urlopen(URL).read()
    algo, want = integrity.split("-", 1)
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        sys.exit(f"gen-coastlines: {URL}: {algo} {got} is not the registry's {want}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return json.load(tar.extractfile(MEMBER))


def lines(topo):
    """Every arc of the land object, decoded: TopoJSON arcs are delta-encoded integers
    scaled by `transform` (https://github.com/topojson/topojson-specification)."""
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    out = []
    for arc in topo["arcs"]:
        x = y = 0
        line = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            line += [round(x * sx + tx, 2), round(y * sy + ty, 2)]
        out.append(line)
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "operator/view/assets/coastlines.json"
    doc = {
        "source": "Natural Earth 1:110m land (naturalearthdata.com, v4.1.0), via world-atlas 2.0.2",
        "license": "public domain",
        "lines": lines(fetch()),
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    points = sum(len(l) // 2 for l in doc["lines"])
    print(f"gen-coastlines: {out}: {len(doc['lines'])} lines, {points} points")


if __name__ == "__main__":
    main()
