#!/usr/bin/env bash
# Writes a one-layer OCI image layout (a tar that `ctr images import` takes) from a directory,
# without Docker or a registry. More NAME ENTRYPOINT CMD triples add images on the same layer
# to the same tar, which then holds the layer once:
#
#   scripts/oci-image.sh ROOTFS NAME OUT.tar ENTRYPOINT_JSON CMD_JSON [NAME ENTRYPOINT_JSON CMD_JSON]...
#   e.g. scripts/oci-image.sh rootfs/ docker.io/local/busybox:1 busybox.tar null '["sh"]'
set -euo pipefail
[ $# -ge 5 ] && [ $(( ($# - 5) % 3 )) = 0 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
root=$1 out=$3; w=$(mktemp -d); mkdir -p $w/blobs/sha256
set -- "$2" "$4" "$5" "${@:6}"
blob() { local d; d=$(sha256sum $1 | cut -d' ' -f1); echo "\"sha256:$d\",\"size\":$(stat -c %s $1)"; mv $1 $w/blobs/sha256/$d; }
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$root" -cf $w/l .
diff=$(sha256sum $w/l | cut -d' ' -f1); L=$(blob $w/l)
manifests=
while [ $# -gt 0 ]; do
  name=$1 entrypoint=$2 cmd=$3; shift 3
  echo "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],\"Entrypoint\":$entrypoint,\"Cmd\":$cmd},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff\"]}}" > $w/c
  C=$(blob $w/c)
  echo "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":$C},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":$L}]}" > $w/m
  M=$(blob $w/m)
  manifests+="${manifests:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":$M,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{\"io.containerd.image.name\":\"$name\"}}"
done
echo "{\"schemaVersion\":2,\"manifests\":[$manifests]}" > $w/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > $w/oci-layout
tar -C $w -cf "$out" oci-layout index.json blobs; rm -rf $w
