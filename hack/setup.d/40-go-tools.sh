#!/usr/bin/env bash
# Test servers and CLIs built from pinned Go modules (the Go module proxy), one wrapper module per
# tool under hack/go/: etcd + etcdctl, kube-apiserver, helm, fake-gcs-server, and the components
# hack/dev-cluster runs besides them (kubelet, kube-proxy, kube-scheduler, kube-controller-manager:
# hack/go/kube-node) -> $KUBEFIT_TOOLS/bin.
# Each tool has its own stamp (hash of its wrapper module + the build flags); a warm run is instant.
# Cold builds take minutes each on 2 cores; the module cache stays in the default place
# (~/go/pkg/mod) and the build cache in ~/.cache/go-build, so a rebuild is much faster.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
gomods="$KUBEFIT_ROOT/hack/go"
bin="$KUBEFIT_TOOLS/bin"

KUBE_VERSION=v1.37.2   # must match the k8s.io/kubernetes require in hack/go/kube-{apiserver,node}/go.mod
HELM_VERSION=v3.19.5   # must match hack/go/helm/go.mod

kube_ldflags() {
  local v=$KUBE_VERSION major minor p flags="-s -w"
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s' "$flags"
}

# build_tool STAMP MODULE_DIR LDFLAGS OUT=PKG...: go build each PKG of the wrapper module into
# $bin/OUT, unless the stamp says these inputs were built already and the binaries are there.
build_tool() {
  local stamp=$1 dir="$gomods/$2" ldflags=$3; shift 3
  local key pair out pkg all_there=1 start files=("$dir/go.mod" "$dir/go.sum")
  shopt -s nullglob; files+=("$dir"/*.go); shopt -u nullglob
  key="$(hash_of "${files[@]}")"
  key="$key $(printf '%s' "$ldflags $*" | sha256sum | cut -c1-16)"
  for pair in "$@"; do [ -x "$bin/${pair%%=*}" ] || all_there=0; done
  if [ $all_there = 1 ] && stamp_ok "go-$stamp" "$key"; then return 0; fi
  for pair in "$@"; do
    out=${pair%%=*}; pkg=${pair#*=}
    say "go-tools: building $out from $pkg (cold: several minutes)"
    start=$(date +%s)
    # Build next to the target, then rename: a half-written binary is never on PATH.
    (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" go build -trimpath -ldflags="$ldflags" -o "$bin/.$out.tmp" "$pkg")
    mv -f "$bin/.$out.tmp" "$bin/$out"
    say "go-tools: $out built in $(( $(date +%s) - start ))s"
  done
  stamp_set "go-$stamp" "$key"
}

if ! command -v go >/dev/null 2>&1; then
  echo "hack/setup: go-tools: the 'go' command (1.26+) is needed to build etcd, kube-apiserver," \
       "helm and fake-gcs-server; install Go and rerun hack/setup" >&2
  exit 1
fi
mkdir -p "$bin"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# One at a time: a kube-apiserver build alone wants most of 24 GB and both cores.
build_tool etcd etcd "-s -w" etcd=. etcdctl=go.etcd.io/etcd/etcdctl/v3
build_tool kube-apiserver kube-apiserver "$(kube_ldflags)" kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver
build_tool helm helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm=helm.sh/helm/v3/cmd/helm
build_tool fake-gcs-server fake-gcs-server "-s -w" fake-gcs-server=github.com/fsouza/fake-gcs-server
# After kube-apiserver: most of their packages are then in the build cache.
build_tool kube-node kube-node "$(kube_ldflags)" kubelet=k8s.io/kubernetes/cmd/kubelet \
  kube-proxy=k8s.io/kubernetes/cmd/kube-proxy kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
