#!/usr/bin/env bash
# Kubernetes 1.36's CRD server, for checking the CRD where a current cluster would: CEL rules
# (x-kubernetes-validations) with their cost budget, recognized formats, structural schema
# checks, defaulting, server-side dry-run. Built from Debian sid's Go source packages; nothing
# is installed into the system (a private apt configuration downloads .debs, dpkg -x unpacks
# them into the cache).
#
#   scripts/modern-apiserver.sh build     apiextensions-apiserver (Go, from sid's
#                                         golang-k8s-apiextensions-apiserver-dev), with etcd
#                                         and kubectl from sid; once (~7 min), then cached in
#                                         ~/.cache/orbitnet/modern-apiserver-<version>
#   scripts/modern-apiserver.sh up DIR    etcd + the server on loopback, all state under DIR;
#                                         writes DIR/kubeconfig and DIR/kubectl (a link to
#                                         kubectl 1.36); returns when ready
#   scripts/modern-apiserver.sh down DIR  stops them and removes DIR
#
# `build` exits 75 when this machine cannot build the server (no apt-get or dpkg, the Debian
# archive unreachable, or sid no longer carrying Kubernetes $K8S_MINOR): callers skip then.
# What the server is not: the CRD half of kube-apiserver only, with no core API (no
# namespaces, pods, RBAC or webhooks); the operator runs against scripts/k8s.sh's server.
# Ports (loopback only): ORBITNET_MODERN_PORT (16445) for the API server, ORBITNET_MODERN_ETCD_PORT
# (23795) and the one above it for etcd, clear of scripts/k8s.sh's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The Kubernetes minor version to build. Debian sid carries one version of the libraries at a
# time; whichever 1.36.x it has is built, and a cached build of any 1.36.x is reused.
K8S_MINOR=1.36
CACHE_ROOT=${ORBITNET_CACHE:-$HOME/.cache/orbitnet}
APT=$CACHE_ROOT/modern-apiserver-apt
API_PORT=${ORBITNET_MODERN_PORT:-16445}
ETCD_PORT=${ORBITNET_MODERN_ETCD_PORT:-23795}
UNAVAILABLE=75

say() { printf 'modern-apiserver: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
unavailable() { say "cannot build here: $*"; exit $UNAVAILABLE; }

APTOPT=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=- -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT/cache" -o APT::Sandbox::User=root)

# The newest complete build of $K8S_MINOR in the cache, if any.
cached() {
  local dir
  for dir in $(ls -d "$CACHE_ROOT/modern-apiserver-$K8S_MINOR".* 2>/dev/null | sort -rV); do
    if [ -x "$dir/bin/apiextensions-apiserver" ] && [ -x "$dir/bin/etcd" ] && [ -x "$dir/bin/kubectl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# sid's package lists, private to the cache (fetched again when a day old).
apt_lists() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || unavailable "no apt-get or dpkg-deb"
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
  echo "deb http://deb.debian.org/debian sid main" >"$APT/sources.list"
  if [ -z "$(find "$APT/lists" -name '*_Packages*' -mmin -1440 2>/dev/null)" ]; then
    say "fetching Debian sid's package lists into $APT"
    apt-get "${APTOPT[@]}" update -qq >&2 || unavailable "apt-get update from deb.debian.org failed"
  fi
}

build() {
  if cached >/dev/null; then return 0; fi
  apt_lists
  local libv
  libv=$(apt-cache "${APTOPT[@]}" madison golang-k8s-apiextensions-apiserver-dev | awk '{print $3; exit}')
  # Debian's library version 0.36.4-1 is Kubernetes v1.36.4.
  local version=1.${libv#0.}
  version=${version%%-*}
  case $version in
    "$K8S_MINOR".*) ;;
    *) unavailable "sid has golang-k8s-apiextensions-apiserver-dev ${libv:-(none)}, not Kubernetes $K8S_MINOR" ;;
  esac
  local dir=$CACHE_ROOT/modern-apiserver-$version
  local work=$dir/work t0=$SECONDS
  local go
  go=$(apt-cache "${APTOPT[@]}" depends golang-go | sed -n 's/^ *Depends: \(golang-[0-9.]*-go\)$/\1/p' | head -1)
  [ -n "$go" ] || die "sid's golang-go names no golang-X.Y-go"
  rm -rf "$work"
  mkdir -p "$work/debs" "$work/root" "$dir/bin"
  # The library's Go source packages (everything it depends on, recursively), the toolchain,
  # and etcd and kubectl pinned to the archive's version (a local kubectl may carry an epoch).
  apt-cache "${APTOPT[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances golang-k8s-apiextensions-apiserver-dev "$go" \
    | grep -E "^(golang-.*-dev|$go|golang-[0-9.]+-src)\$" | sort -u >"$work/packages"
  local pins=() p
  for p in etcd-server kubectl; do
    pins+=("$p=$(apt-cache "${APTOPT[@]}" madison "$p" | awk '{print $3; exit}')")
  done
  say "downloading $(wc -l <"$work/packages") source packages, $go and ${pins[*]}"
  (cd "$work/debs" && apt-get -qq "${APTOPT[@]}" download $(cat "$work/packages") "${pins[@]}") >&2 \
    || unavailable "downloading from deb.debian.org failed"
  local bins=$work/bin-root
  for p in "$work"/debs/*.deb; do
    case ${p##*/} in
      etcd-server_* | kubectl_*) dpkg-deb -x "$p" "$bins" ;;
      *) dpkg-deb -x "$p" "$work/root" ;;
    esac
  done
  "$bins/usr/bin/etcd" --version >/dev/null && "$bins/usr/bin/kubectl" version --client >/dev/null \
    || unavailable "sid's etcd or kubectl does not run on this system"
  # The library's own main (k8s.io/apiextensions-apiserver) lacks two things kube-apiserver
  # adds around it and kubectl needs: /apis discovery (the aggregator serves it in
  # kube-apiserver) and the OpenAPI config (without it /openapi/v2 is 404 and the CRD
  # OpenAPI controllers do not run: no explain, no field validation by kubectl). This main
  # is the library's cmd/server with both added.
  mkdir -p "$work/gopath/src/modern-apiserver"
  cat >"$work/gopath/src/modern-apiserver/main.go" <<'GO'
// k8s.io/apiextensions-apiserver's main with /apis discovery and OpenAPI, as in kube-apiserver.
package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/cli"
)

func main() {
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	cmd := &cobra.Command{
		Use:   "apiextensions-apiserver",
		Short: "CRDs and custom resources, with /apis discovery and OpenAPI",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			config, err := o.Config()
			if err != nil {
				return err
			}
			config.GenericConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(
				openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions),
				openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))
			config.GenericConfig.OpenAPIConfig.Info.Title = "Kubernetes"
			completed := config.Complete()
			completed.GenericConfig.EnableDiscovery = true
			server, err := completed.New(genericapiserver.NewEmptyDelegate())
			if err != nil {
				return err
			}
			return server.GenericAPIServer.PrepareRun().RunWithContext(c.Context())
		},
	}
	cmd.SetContext(genericapiserver.SetupSignalContext())
	o.AddFlags(cmd.Flags())
	os.Exit(cli.Run(cmd))
}
GO
  local goroot=${go#golang-}
  goroot=$work/root/usr/lib/go-${goroot%-go}
  [ -x "$goroot/bin/go" ] || die "no Go toolchain at $goroot"
  local v=k8s.io/component-base/version
  say "building apiextensions-apiserver v$version with $go (~5 min on 2 cores)"
  (
    export GOROOT=$goroot GOPATH=$work/gopath:$work/root/usr/share/gocode GO111MODULE=off \
      GOCACHE=$work/gocache GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 HOME=$work
    cd "$work"
    nice -n 10 "$GOROOT/bin/go" build -o "$work/apiextensions-apiserver" -ldflags "-X $v.gitVersion=v$version \
      -X $v.gitMajor=1 -X $v.gitMinor=$(echo "$version" | cut -d. -f2) -X $v.gitCommit=debian-$libv \
      -X $v.gitTreeState=clean -X $v.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" modern-apiserver
  ) >"$dir/build.log" 2>&1 || die "go build failed; see $dir/build.log"
  mv "$work/apiextensions-apiserver" "$dir/bin/"
  cp "$bins/usr/bin/etcd" "$bins/usr/bin/kubectl" "$dir/bin/"
  # The sources, the toolchain and Go's cache are ~4 GB; the three binaries are what is kept.
  rm -rf "$work"
  say "built v$version in $((SECONDS - t0)) s into $dir/bin"
}

wait_ready() {
  local run=$1 i
  for ((i = 0; i < 180; i++)); do
    # informer-sync never passes: the Service informer (for conversion webhooks) has no core
    # API to list from. Every other check must.
    "$run/kubectl" --kubeconfig "$run/kubeconfig" get --raw '/readyz?exclude=informer-sync' >/dev/null 2>&1 \
      && return 0
    kill -0 "$(cat "$run/pids/apiserver")" 2>/dev/null || break
    sleep 0.5
  done
  say "the server did not get ready; its log:"
  tail -n 20 "$run/logs/apiserver.log" >&2
  return 1
}

up() {
  local run=${1:?usage: modern-apiserver.sh up DIR}
  build
  local dir
  dir=$(cached)
  [ -e "$run/pids" ] && die "$run holds a server already; run: scripts/modern-apiserver.sh down $run"
  mkdir -p "$run/logs" "$run/pids" "$run/pki"
  run=$(cd "$run" && pwd)
  ln -sfn "$dir/bin/kubectl" "$run/kubectl"
  # A serving certificate for 127.0.0.1, and a client certificate of group system:masters,
  # which passes the delegated authorizer without asking the (absent) core API.
  (
    cd "$run/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
      -subj /CN=orbitnet-modern-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
    # Extensions make X.509 v3 certificates, the only kind rustls (the tests' client) takes.
    # Files, not <(...): a minimal /dev has no /dev/fd.
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" extendedKeyUsage=serverAuth >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=admin" 2>/dev/null
    echo extendedKeyUsage=clientAuth >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile admin.ext -out admin.crt 2>/dev/null
  )
  cat >"$run/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: modern
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$run/pki/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$run/pki/admin.crt", client-key: "$run/pki/admin.key"}
contexts:
- name: modern
  context: {cluster: modern, user: admin}
current-context: modern
EOF
  local t0=$SECONDS
  start_logged "$run" etcd "$dir/bin/etcd" --name orbitnet-modern --data-dir "$run/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "orbitnet-modern=http://127.0.0.1:$((ETCD_PORT + 1))" --log-level=warn
  # The core kube-apiserver it would delegate to (informers, TokenReview, SubjectAccessReview)
  # is itself, which serves no core types: the admission plugins that need them are off.
  start_logged "$run" apiserver "$dir/bin/apiextensions-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$run/pki/server.crt" --tls-private-key-file "$run/pki/server.key" \
    --client-ca-file "$run/pki/ca.crt" --authentication-skip-lookup \
    --kubeconfig "$run/kubeconfig" --authentication-kubeconfig "$run/kubeconfig" \
    --authorization-kubeconfig "$run/kubeconfig" \
    --disable-admission-plugins NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy \
    --enable-priority-and-fairness=false
  wait_ready "$run" || { down "$run"; exit 1; }
  say "${dir##*/} up in $((SECONDS - t0)) s: export KUBECONFIG=$run/kubeconfig"
}

down() {
  stop_logged "${1:?usage: modern-apiserver.sh down DIR}" apiserver etcd
}

case ${1:-} in
  build) build ;;
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  *) die "usage: $0 build | up DIR | down DIR" ;;
esac
