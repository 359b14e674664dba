#!/usr/bin/env bash
# Installs the renderers the diagram tests (tests/review.rs) and hack/pictures.sh use:
# Debian's chromium and graphviz, and pinned npm packages in target/tools: mermaid (parses and
# renders the Mermaid diagrams) and marked (renders the Markdown comment for the pictures).
# Idempotent and quick when everything is there (CI runs it on every run).
set -euo pipefail
cd "$(dirname "$0")/.."

MERMAID_VERSION=11.12.0
MARKED_VERSION=15.0.8
TOOLS=target/tools

need=()
for p in chromium graphviz fonts-dejavu-core; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

installed() { # the version of an npm package in target/tools, or nothing
  sed -n 's/^  "version": "\(.*\)",$/\1/p' "$TOOLS/node_modules/$1/package.json" 2>/dev/null | head -1
}
if [ "$(installed mermaid)" != "$MERMAID_VERSION" ] || [ "$(installed marked)" != "$MARKED_VERSION" ]; then
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-save --no-package-lock --no-audit --no-fund --ignore-scripts \
    --cache "${XDG_CACHE_HOME:-$HOME/.cache}/tierflow/npm" \
    "mermaid@$MERMAID_VERSION" "marked@$MARKED_VERSION" >/dev/null
fi
echo "review tools: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), $(dot -V 2>&1 | awk '{print $1, $5}'), mermaid $(installed mermaid), marked $(installed marked)"
