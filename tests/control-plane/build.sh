#!/usr/bin/env bash
# Builds the real Kubernetes control plane the tests run against -- kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd and kwok -- from the Go module proxy, at the
# versions pinned in pins.env, into a cache outside the checkout keyed by those versions.
#
# Idempotent: when the cache already holds a complete build for the pins, it only prints where.
# Prints the binary directory on its last line of standard output.
#
# Environment:
#   TANDEM_CONTROL_PLANE_CACHE  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tandem/control-plane)
#   TANDEM_CONTROL_PLANE_REBUILD=1  ignore a cached build and build again
#
# Why wrapper modules: `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` cannot work, because
# the kubernetes module requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at the
# fake version v0.0.0 and maps them with replace directives that only apply inside its own repo.
# A throw-away module that requires kubernetes and replaces each of those with the published
# v0.x.y does. etcd and kwok get modules of their own so that minimum version selection cannot
# move kubernetes' dependencies.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=pins.env
source "$here/pins.env"

command -v go >/dev/null || {
    echo "build.sh: the go command is required to build the control plane (Go >= 1.26)" >&2
    exit 1
}

cache_root="${TANDEM_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/control-plane}"
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_r${BUILD_RECIPE}"
dest="$cache_root/$key"
binaries=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

log() { echo "build.sh: $*" >&2; }

kubernetes_module() {
    local dir="$work/kubernetes" gomod
    mkdir -p "$dir"
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
        sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    [[ -f "$gomod" ]] || { log "no go.mod downloaded for k8s.io/kubernetes@$KUBERNETES_VERSION"; exit 1; }
    {
        echo "module tandem.invalid/control-plane/kubernetes"
        echo
        grep -E '^go [0-9.]+$' "$gomod"
        grep -E '^godebug ' "$gomod" || true
        echo
        echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
        echo
        # Every k8s.io module the kubernetes go.mod requires at the fake v0.0.0 is a staging module.
        # (awk rather than a JSON tool: nothing beyond go and a POSIX shell is needed.)
        awk '$1 == "require" && NF >= 3 { $1 = ""; $0 = $0 }
             $1 ~ /^k8s\.io\// && $2 == "v0.0.0" && !/=>/ { print $1 }' "$gomod" |
            while read -r module; do
                echo "replace $module v0.0.0 => $module $KUBERNETES_STAGING_VERSION"
            done
    } >"$dir/go.mod"
    if (($(grep -c '^replace ' "$dir/go.mod") < 20)); then
        log "found too few staging modules in $gomod; has the format of the kubernetes go.mod changed?"
        exit 1
    fi
    cat >"$dir/tools.go" <<'EOF'
//go:build tools

// Package tools pins the commands this module builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
EOF
    echo "$dir"
}

build_kubernetes() {
    local dir minor ldflags="" build_date
    dir=$(kubernetes_module)
    log "resolving k8s.io/kubernetes $KUBERNETES_VERSION with staging modules at $KUBERNETES_STAGING_VERSION"
    (cd "$dir" && go mod tidy)
    minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
    # A fixed date keeps the build reproducible; the version is what matters to clients.
    build_date="1970-01-01T00:00:00Z"
    for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $package.gitVersion=$KUBERNETES_VERSION"
        ldflags+=" -X $package.gitMajor=1 -X $package.gitMinor=$minor"
        ldflags+=" -X $package.gitTreeState=clean -X $package.buildDate=$build_date"
    done
    log "building kube-apiserver, kube-controller-manager, kube-scheduler"
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$staging/bin/" \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler)
}

build_etcd() {
    local dir="$work/etcd"
    mkdir -p "$dir"
    cat >"$dir/go.mod" <<EOF
module tandem.invalid/control-plane/etcd

go 1.26

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
    cat >"$dir/tools.go" <<'EOF'
//go:build tools

// Package tools pins the command this module builds.
package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
    log "building etcd $ETCD_VERSION"
    (cd "$dir" && go mod tidy && go build -trimpath -o "$staging/bin/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
    local module_dir source
    log "building kwok $KWOK_VERSION"
    # kwok's go.mod has no replace directives, so go install at a version works.
    GOBIN="$staging/bin" go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    # The bare kwok binary has no stages; take the ones kwok ships (fast node start-up, node
    # heartbeat through leases, fast pod life cycle, and the fault injections that a label on a
    # node or a pod triggers) from its module, into one file.
    module_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
        sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    for source in node/fast node/heartbeat-with-lease node/chaos pod/fast pod/chaos; do
        for file in "$module_dir/kustomize/stage/$source"/*.yaml; do
            [[ "$(basename "$file")" == kustomization.yaml ]] && continue
            echo "---"
            echo "# from sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/$source/$(basename "$file")"
            cat "$file"
        done
    done >"$staging/stages/kwok-stages.yaml"
}

# The whole script is read before anything runs (main is called on the last line), so editing
# this file during a build cannot derail the build.
main() {
    if [[ -f "$dest/complete" && "${TANDEM_CONTROL_PLANE_REBUILD:-0}" != 1 ]]; then
        log "reusing $dest"
        echo "$dest/bin"
        exit 0
    fi

    # Go's own caches (module downloads, compiled packages) stay where go keeps them; only the
    # wrapper modules live in the ignored work folder.
    work="$here/.work/$key"
    staging="$cache_root/.building-$key-$$"
    trap 'rm -rf "$staging"' EXIT
    rm -rf "$work"
    mkdir -p "$work" "$staging/bin" "$staging/stages"

    export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
    started=$(date +%s)

    build_kubernetes
    build_etcd
    build_kwok

    for binary in "${binaries[@]}"; do
        [[ -x "$staging/bin/$binary" ]] || { log "missing $binary after the build"; exit 1; }
    done
    "$staging/bin/kube-apiserver" --version >&2
    # No `| head`: with pipefail, a SIGPIPE in etcd would fail the whole build.
    "$staging/bin/etcd" --version >&2
    cp "$here/pins.env" "$staging/pins.env"
    echo "built in $(($(date +%s) - started))s with $(go version)" >"$staging/complete"

    rm -rf "$dest"
    mkdir -p "$cache_root"
    mv "$staging" "$dest"
    trap - EXIT
    rm -rf "$work"
    log "built into $dest ($(cat "$dest/complete"))"
    echo "$dest/bin"
}

main "$@"
exit
