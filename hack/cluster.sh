#!/usr/bin/env bash
# A real local control plane for tierflow's tests and demo:
# etcd (Debian's etcd-server) + kube-apiserver + kube-controller-manager 1.20.2
# (built from Debian's kubernetes source package by hack/build-k8s.sh, cached).
#
#   hack/cluster.sh up      start (idempotent), write target/cluster/kubeconfig
#   hack/cluster.sh down    stop and remove all data
#   hack/cluster.sh status  exit 0 when the API server answers /readyz
#   hack/cluster.sh stop|start|restart COMPONENT
#                           stop one of etcd, kube-apiserver, kube-controller-manager (its
#                           command line is kept in <dir>/COMPONENT.cmdline), start it again with
#                           exactly the same flags and data (log appended), or both; for outage
#                           tests (hack/chaos.sh, tests/chaos). CLUSTER_STOP_SIGNAL=KILL
#                           (default TERM) makes the stop a crash.
#
# KUBEBUILDER_ASSETS: a folder with kube-apiserver and etcd (any version) to use instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${TIERFLOW_CLUSTER_DIR:-$ROOT/target/cluster}"
CACHE_BIN="${TIERFLOW_CACHE:-$HOME/.cache/tierflow}/k8s-v1.20.2/bin"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"

log() { printf '[cluster] %s\n' "$*" >&2; }

alive() { [[ -f "$DIR/$1.pid" ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

ready() {
  [[ -f "$DIR/env" ]] || return 1
  # shellcheck disable=SC1091
  source "$DIR/env"
  alive etcd && alive kube-apiserver || return 1
  curl -fsS --max-time 2 --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

fail_with_log() {
  log "$1 failed to start; last lines of $DIR/$1.log:"
  tail -n 30 "$DIR/$1.log" >&2 || true
  exit 1
}

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_with_log "$name"
    ((SECONDS < deadline)) || { log "$name not ready after ${secs}s"; fail_with_log "$name"; }
    sleep 0.2
  done
}

binaries() {
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" && -x "${KUBEBUILDER_ASSETS}/etcd" ]]; then
    APISERVER_BIN="$KUBEBUILDER_ASSETS/kube-apiserver"
    ETCD_BIN="$KUBEBUILDER_ASSETS/etcd"
    KCM_BIN="$KUBEBUILDER_ASSETS/kube-controller-manager"
    [[ -x "$KCM_BIN" ]] || KCM_BIN="$CACHE_BIN/kube-controller-manager"
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  else
    "$ROOT/hack/build-k8s.sh"
    APISERVER_BIN="$CACHE_BIN/kube-apiserver"
    KCM_BIN="$CACHE_BIN/kube-controller-manager"
    if ! command -v etcd >/dev/null; then
      log "installing etcd-server"
      [[ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ]] || $SUDO apt-get update -qq
      # Keep apt from starting the packaged etcd service; we run our own on free ports.
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
      $SUDO chmod +x /usr/sbin/policy-rc.d
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
      $SUDO rm -f /usr/sbin/policy-rc.d
    fi
    ETCD_BIN="$(command -v etcd)"
  fi
}

pki() {
  local p="$DIR/pki"
  [[ -f "$p/serving.crt" ]] && return 0
  mkdir -p "$p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tierflow-local-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$p/serving.key" -out "$p/serving.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >"$p/ext.cnf"
  openssl x509 -req -in "$p/serving.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 3650 -extfile "$p/ext.cnf" -out "$p/serving.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
}

kubeconfig() { # file user token
  local ca
  ca=$(base64 -w0 <"$DIR/pki/ca.crt")
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tierflow-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $3
contexts:
- name: tierflow-local
  context: {cluster: tierflow-local, user: $2}
current-context: tierflow-local
KC
}

up() {
  if ready; then
    log "already running: export KUBECONFIG=$DIR/kubeconfig"
    return 0
  fi
  down_processes
  binaries
  mkdir -p "$DIR"
  pki
  ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); APISERVER_PORT=$(free_port)
  ADMIN_TOKEN=$(openssl rand -hex 16); OPERATOR_TOKEN=$(openssl rand -hex 16)
  cat >"$DIR/env" <<ENV
ETCD_PORT=$ETCD_PORT
APISERVER_PORT=$APISERVER_PORT
ADMIN_TOKEN=$ADMIN_TOKEN
OPERATOR_TOKEN=$OPERATOR_TOKEN
ENV
  printf '%s,admin,admin,"system:masters"\n%s,tierflow-operator,tierflow-operator\n' \
    "$ADMIN_TOKEN" "$OPERATOR_TOKEN" >"$DIR/tokens.csv"

  local extra=()
  "$ETCD_BIN" --help 2>&1 | grep -q -- '--unsafe-no-fsync' && extra+=(--unsafe-no-fsync)
  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  rm -rf "$DIR/etcd-data"
  setsid "$ETCD_BIN" --name tierflow --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tierflow=http://127.0.0.1:$ETCD_PEER_PORT" "${extra[@]}" \
    >"$DIR/etcd.log" 2>&1 </dev/null &
  echo $! >"$DIR/etcd.pid"
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
  setsid "$APISERVER_BIN" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" --insecure-port 0 \
    --tls-cert-file "$DIR/pki/serving.crt" --tls-private-key-file "$DIR/pki/serving.key" \
    --client-ca-file "$DIR/pki/ca.crt" \
    --token-auth-file "$DIR/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$DIR/pki/sa.pub" --service-account-signing-key-file "$DIR/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged \
    --disable-admission-plugins ServiceAccount --endpoint-reconciler-type none \
    >"$DIR/kube-apiserver.log" 2>&1 </dev/null &
  echo $! >"$DIR/kube-apiserver.pid"
  wait_for kube-apiserver 90 curl -fsS --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://127.0.0.1:$APISERVER_PORT/readyz"

  kubeconfig "$DIR/kubeconfig" admin "$ADMIN_TOKEN"
  kubeconfig "$DIR/operator.kubeconfig" tierflow-operator "$OPERATOR_TOKEN"

  if [[ -x "${KCM_BIN:-}" ]]; then
    log "starting kube-controller-manager (garbage collector, namespace lifecycle, service accounts)"
    setsid "$KCM_BIN" --kubeconfig "$DIR/kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
      --controllers garbagecollector,namespace,serviceaccount,serviceaccount-token \
      --service-account-private-key-file "$DIR/pki/sa.key" --root-ca-file "$DIR/pki/ca.crt" \
      >"$DIR/kube-controller-manager.log" 2>&1 </dev/null &
    echo $! >"$DIR/kube-controller-manager.pid"
  else
    log "WARNING: no kube-controller-manager: owner-reference garbage collection and namespace deletion will not run"
  fi

  # Newer clusters label every namespace with its name (1.21+); 1.20 does not, so do it here.
  local k=(kubectl --kubeconfig "$DIR/kubeconfig")
  local deadline=$((SECONDS + 30))
  until "${k[@]}" get namespace kube-system >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail_with_log kube-apiserver
    sleep 0.2
  done
  for ns in default kube-system kube-public kube-node-lease; do
    "${k[@]}" label namespace "$ns" "kubernetes.io/metadata.name=$ns" --overwrite >/dev/null 2>&1 || true
  done
  # 1.20 refuses to publish a loopback address as the endpoint of default/kubernetes, so the
  # endpoint reconciler is off and the endpoints are set here, to a documentation address
  # (TEST-NET-1, never contacted): enough for policies that name the API server.
  "${k[@]}" apply -f - >/dev/null <<'EP'
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: default}
subsets:
- addresses: [{ip: 192.0.2.10}]
  ports: [{name: https, port: 6443, protocol: TCP}]
EP
  if [[ -x "${KCM_BIN:-}" ]] && ! alive kube-controller-manager; then fail_with_log kube-controller-manager; fi
  log "ready: export KUBECONFIG=$DIR/kubeconfig"
}

down_processes() {
  for c in kube-controller-manager kube-apiserver etcd; do
    if alive "$c"; then
      local pid; pid=$(cat "$DIR/$c.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$c.pid"
  done
}

down() {
  down_processes
  rm -rf "$DIR"
  log "stopped and removed $DIR"
}

component() { # validates a component name
  case "${1:-}" in
    etcd | kube-apiserver | kube-controller-manager) ;;
    *) echo "usage: $0 stop|start|restart etcd|kube-apiserver|kube-controller-manager" >&2; exit 2 ;;
  esac
}

stop_component() { # component: keep its command line, then stop it
  local c=$1 pid
  alive "$c" || { log "$c is not running"; return 0; }
  pid=$(cat "$DIR/$c.pid")
  cat "/proc/$pid/cmdline" >"$DIR/$c.cmdline"
  kill -s "${CLUSTER_STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
  # (A zombie nobody has reaped yet counts as stopped.)
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$DIR/$c.pid"
  log "stopped $c (pid $pid, SIG${CLUSTER_STOP_SIGNAL:-TERM})"
}

start_component() { # component: start it again from the command line stop_component kept
  local c=$1
  if alive "$c"; then log "$c is already running"; return 0; fi
  [[ -s "$DIR/$c.cmdline" ]] || { log "no $DIR/$c.cmdline: stop $c with this script first"; exit 1; }
  local cmd=()
  mapfile -d '' -t cmd <"$DIR/$c.cmdline"
  # shellcheck disable=SC1091
  source "$DIR/env"
  printf '\n[cluster] restarted at %s\n' "$(date -u +%FT%TZ)" >>"$DIR/$c.log"
  setsid "${cmd[@]}" >>"$DIR/$c.log" 2>&1 </dev/null &
  echo $! >"$DIR/$c.pid"
  case "$c" in
    etcd) wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health" ;;
    kube-apiserver)
      wait_for kube-apiserver 90 curl -fsS --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
        "https://127.0.0.1:$APISERVER_PORT/readyz"
      ;;
    kube-controller-manager) sleep 0.5; alive "$c" || fail_with_log "$c" ;;
  esac
  log "started $c (pid $(cat "$DIR/$c.pid"))"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) ready ;;
  stop) component "${2:-}"; stop_component "$2" ;;
  start) component "${2:-}"; start_component "$2" ;;
  restart) component "${2:-}"; stop_component "$2"; start_component "$2" ;;
  *) echo "usage: $0 up|down|status|stop|start|restart [COMPONENT]" >&2; exit 2 ;;
esac
