#!/usr/bin/env bash
# Builds the development/test control plane into test/k8s/bin/ (git-ignored):
#   kube-apiserver, kube-controller-manager  (k8s.io/kubernetes at the version go.mod pins)
#   etcd                                     (go.etcd.io/etcd/server/v3/embed, cmd/etcd)
#   failwatch-node-agent                     (cmd/node-agent)
# Each group is rebuilt only when its stamp changes: the Kubernetes binaries when go.mod,
# go.sum or the Go version change (a cold build takes several minutes per binary), the small
# ones also when their sources change. FORCE=1 rebuilds everything.
set -euo pipefail
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "build.sh: Go is required (https://go.dev/dl/)" >&2; exit 1; }

mkdir -p bin
exec 9>bin/.lock
flock 9 # one build at a time (test suites may start together)
export CGO_ENABLED=0
kube_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
go_version=$(go env GOVERSION)

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
up_to_date() { [ "${FORCE:-0}" != 1 ] && [ -f "bin/.$1.stamp" ] && [ "$(cat "bin/.$1.stamp")" = "$2" ]; }

kube_stamp="$kube_version $go_version $(hash_of go.mod go.sum)"
if up_to_date kube "$kube_stamp" && [ -x bin/kube-apiserver ] && [ -x bin/kube-controller-manager ]; then
  echo "build.sh: kube-apiserver, kube-controller-manager $kube_version up to date"
else
  echo "build.sh: building kube-apiserver, kube-controller-manager $kube_version (cold: several minutes)"
  major=${kube_version#v}; major=${major%%.*}
  minor=${kube_version#v*.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  start=$SECONDS
  go build -trimpath -ldflags="$ldflags" -o bin/ \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  echo "$kube_stamp" >bin/.kube.stamp
  echo "build.sh: built in $((SECONDS - start)) s"
fi

own_stamp="$go_version $(hash_of go.mod go.sum build.sh $(find cmd -name '*.go' | sort))"
if up_to_date own "$own_stamp" && [ -x bin/etcd ] && [ -x bin/failwatch-node-agent ]; then
  echo "build.sh: etcd, failwatch-node-agent up to date"
else
  echo "build.sh: building etcd, failwatch-node-agent"
  go build -trimpath -ldflags="-s -w" -o bin/etcd ./cmd/etcd
  go build -trimpath -ldflags="-s -w" -o bin/failwatch-node-agent ./cmd/node-agent
  echo "$own_stamp" >bin/.own.stamp
fi
