#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager 1.20.2 from Debian's `kubernetes`
# source package with Debian's Go, and caches them by version. Idempotent: a second
# run with the binaries present returns at once.
set -euo pipefail

K8S_VERSION="1.20.2"
DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
CACHE="${TIERFLOW_CACHE:-$HOME/.cache/tierflow}/k8s-v${K8S_VERSION}"
BIN="$CACHE/bin"

if [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" ]]; then
  echo "control plane binaries cached in $BIN"
  exit 0
fi

log() { printf '[build-k8s] %s\n' "$*" >&2; }
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"

# deb-src for bookworm (and its security suite, where the +deb12u1 upload lives).
if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  log "adding deb-src entries for bookworm"
  $SUDO tee /etc/apt/sources.list.d/tierflow-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

need=()
for p in golang-go rsync make dpkg-dev golang-github-modern-go-reflect2-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
log "apt-get update"
$SUDO apt-get update -qq
if ((${#need[@]})); then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

WORK="$CACHE/src"
rm -rf "$WORK"
mkdir -p "$WORK" "$BIN"
cd "$WORK"
log "fetching source package kubernetes=$DEB_VERSION"
apt-get source --download-only "kubernetes=$DEB_VERSION" >/dev/null
dpkg-source --no-check -x ./*.dsc tree >/dev/null
TREE="$WORK/tree"

# reflect2 1.0.1 breaks map iteration with Go >= 1.18: use Debian's 1.0.2.
rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$TREE/vendor/github.com/modern-go/reflect2"

mkdir -p "$WORK/.go/src/k8s.io"
ln -sfn "$TREE" "$WORK/.go/src/k8s.io/kubernetes"
cd "$WORK/.go/src/k8s.io/kubernetes"
log "building kube-apiserver and kube-controller-manager (about 5 minutes on 2 cores)"
export GOPATH="$WORK/.go" GO111MODULE=off GOFLAGS=-mod=vendor CGO_ENABLED=0
export GOCACHE="$WORK/.gocache"
export KUBE_GIT_VERSION="v${K8S_VERSION}" KUBE_GIT_TREE_STATE=clean
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$WORK/build.log" 2>&1 || {
  tail -n 40 "$WORK/build.log" >&2
  exit 1
}
out="$TREE/_output/bin"
[[ -x "$out/kube-apiserver" ]] || out="$TREE/_output/local/bin/linux/amd64"
install -m 0755 "$out/kube-apiserver" "$out/kube-controller-manager" "$BIN/"
cd /
rm -rf "$WORK"
log "cached in $BIN"
