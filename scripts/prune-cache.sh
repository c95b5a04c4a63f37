#!/usr/bin/env bash
# Keeps the shared build cache (CARGO_TARGET_DIR under ~/.cache/orbitnet, as .ci/run sets
# it) within ORBITNET_TARGET_CAP_GB (default 30). Every clone builds its own copies of the
# workspace's crates there (cargo's hashes differ by checkout), and incremental state grows
# with every edit: left alone, the cache filled this machine's disk, and a full disk stalls
# etcd and with it the apiserver tier. Over the cap: incremental state goes, then, of each
# artifact (crate or test binary, by name and kind), all but the newest 3 copies; if that is
# not enough, the whole cache. Cargo rebuilds whatever it still needs. `make deps` runs it.
set -euo pipefail

say() { printf 'prune-cache: %s\n' "$*" >&2; }

dir=${CARGO_TARGET_DIR:-}
cache=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}
# Only the project's own cache: a target/ in someone's clone is theirs to clean.
case "$dir" in
  "$cache"/*) ;;
  *) exit 0 ;;
esac
[ -d "$dir" ] || exit 0
cap_kb=$(( ${ORBITNET_TARGET_CAP_GB:-30} * 1024 * 1024 ))
size_kb() { du -sk "$dir" 2>/dev/null | cut -f1; }
before=$(size_kb)
[ "$before" -gt "$cap_kb" ] || exit 0

say "$dir holds $((before / 1048576)) GiB, over the cap of $((cap_kb / 1048576)) GiB: pruning"
rm -rf "$dir"/*/incremental
for deps in "$dir"/*/deps; do
  [ -d "$deps" ] || continue
  # Newest first; an artifact's group is its name without the hash, plus its extension.
  declare -A seen=()
  while IFS= read -r f; do
    [[ $f =~ ^(.*)-[0-9a-f]{16}(.*)$ ]] || continue
    group=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
    seen[$group]=$(( ${seen[$group]:-0} + 1 ))
    [ "${seen[$group]}" -le 3 ] || rm -rf -- "${deps:?}/$f"
  done < <(ls -t "$deps")
  unset seen
done
after=$(size_kb)
if [ "$after" -gt "$cap_kb" ]; then
  say "still $((after / 1048576)) GiB: removing the whole cache (the next build starts afresh)"
  rm -rf "$dir"
  after=0
fi
say "freed $(((before - after) / 1048576)) GiB; $((after / 1048576)) GiB left"
