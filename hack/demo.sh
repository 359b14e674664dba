#!/usr/bin/env bash
# make demo: the local control plane, the CRDs, the three-tier example, the operator, and what it
# rendered. Leaves the control plane running (make cluster-down stops it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/target/debug/tierflow"
OUT="$ROOT/target/demo"
mkdir -p "$OUT"

hack/cluster.sh up
export KUBECONFIG="$ROOT/target/cluster/kubeconfig"
k() { kubectl "$@" 2> >(grep -v -i 'version skew\|^WARNING: version difference' >&2); }

echo "== installing the CRDs"
# The CRDs with the CEL rules this server understands (none before Kubernetes 1.28).
SERVER_VERSION=$(k version -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"v\([0-9]*\.[0-9]*\).*/\1/p' | tail -1)
"$BIN" crds --kube-version "${SERVER_VERSION:-1.20}" | k apply --server-side --force-conflicts -f - >/dev/null
k wait --for condition=Established crd/appnetworks.tierflow.dev --timeout=30s >/dev/null

echo "== namespaces production and monitoring, and the three-tier AppNetwork (examples/shop.yaml)"
for ns in production monitoring; do
  k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
  # Kubernetes 1.21+ sets this label itself; the local 1.20 control plane does not.
  k label namespace "$ns" "kubernetes.io/metadata.name=$ns" --overwrite >/dev/null
done
k apply --server-side --force-conflicts -f examples/shop.yaml >/dev/null

# The local control plane runs no CNI; tests may have left Calico or Cilium CRDs installed, which
# detection would follow. The demo shows the standard backend.
echo "== running the operator (log: target/demo/operator.log)"
"$BIN" run --backend networkpolicy --metrics-addr 127.0.0.1:0 >"$OUT/operator.log" 2>&1 &
OP=$!
trap 'kill $OP 2>/dev/null || true' EXIT
k wait --for condition=Ready appnetwork/shop -n production --timeout=60s
until k get networkpolicy tierflow-baseline -n production >/dev/null 2>&1; do
  kill -0 $OP 2>/dev/null || { tail -20 "$OUT/operator.log"; exit 1; }
  sleep 0.2
done

echo
k get appnetwork -n production
echo
k get networkpolicy -n production -L tierflow.dev/tier
echo
echo "== the rendered policy of the api tier"
k get networkpolicy tierflow-shop-api -n production -o yaml | sed -n '/^spec:/,$p'
echo
echo "== what may talk to what"
"$BIN" render -f examples/shop.yaml --summary
echo
echo "The operator keeps these true: try"
echo "  KUBECONFIG=$KUBECONFIG kubectl delete networkpolicy tierflow-shop-api -n production"
echo "while it runs ($BIN run). make cluster-down stops the control plane."
