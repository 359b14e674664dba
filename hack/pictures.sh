#!/usr/bin/env bash
# Regenerates the pictures in docs/ (make pictures):
#   docs/diff-comment.png   the pull-request comment of `tierflow diff` (examples/shop.yaml
#                           against tests/fixtures/diff/shop-new.yaml): summary, table, diagram
#   docs/explain-shop.png   `tierflow explain -f examples/shop.yaml --output mermaid`
# The Markdown is rendered with marked, the diagrams with mermaid (target/tools, pinned by
# hack/review-tools.sh), and the page is photographed by headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/review-tools.sh >/dev/null
cargo build --quiet
bin=target/debug/tierflow
tools=$PWD/target/tools/node_modules
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

chrome() { # chrome OUTPUT-FLAG... PAGE: headless Chromium with a fresh profile
  local page=${*: -1}
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d "$work/profile.XXXX")" --allow-file-access-from-files \
    --hide-scrollbars --force-device-scale-factor=1 --virtual-time-budget=30000 \
    "${@:1:$#-1}" "file://$page" 2>/dev/null
}

# page NAME MARKDOWN-FILE WIDTH: an HTML page that renders the Markdown like a GitHub comment.
page() {
  local name=$1 md=$2 width=$3
  python3 - "$md" "$work/$name.html" "$tools" "$width" <<'PY'
import json, sys
md, out, tools, width = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4]
data = json.dumps(md).replace("</", "<\\/")
open(out, "w").write(f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #fff; font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328; }}
#c {{ width: {width}px; padding: 16px 24px; box-sizing: border-box; border: 1px solid #d0d7de; border-radius: 6px; margin: 12px; }}
h3 {{ margin-top: 0; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
th, td {{ border: 1px solid #d0d7de; padding: 4px 10px; }}
tr:nth-child(2n) {{ background: #f6f8fa; }}
code {{ background: #eff1f3; border-radius: 4px; padding: .1em .3em; font-size: 85%; }}
pre.mermaid {{ background: #fff; text-align: center; }}
blockquote {{ color: #59636e; border-left: .25em solid #d0d7de; margin: 0; padding: 0 1em; }}
</style></head><body><div id="c"></div>
<script src="{tools}/marked/lib/marked.umd.js"></script>
<script src="{tools}/mermaid/dist/mermaid.min.js"></script>
<script>
(async () => {{
  const c = document.getElementById("c");
  c.innerHTML = marked.parse({data});
  for (const code of c.querySelectorAll("code.language-mermaid")) {{
    const pre = document.createElement("pre");
    pre.className = "mermaid";
    pre.textContent = code.textContent;
    code.parentElement.replaceWith(pre);
  }}
  mermaid.initialize({{startOnLoad: false, securityLevel: "strict"}});
  await mermaid.run({{querySelector: "pre.mermaid"}});
  document.title = "height=" + Math.ceil(c.getBoundingClientRect().bottom + 12);
}})();
</script></body></html>""")
PY
}

shoot() { # shoot NAME WIDTH OUTPUT.png
  local name=$1 width=$2 png=$3 height
  height=$(chrome --dump-dom "$work/$name.html" | sed -n 's/.*<title>height=\([0-9]*\)<\/title>.*/\1/p')
  [ -n "$height" ] || { echo "pictures: $name did not render" >&2; exit 1; }
  chrome --screenshot="$png" --window-size="$((width + 26)),$((height + 4))" "$work/$name.html" >/dev/null
  echo "wrote $png ($((width + 26))x$((height + 4)))"
}

"$bin" diff -f examples/shop.yaml --against tests/fixtures/diff/shop-new.yaml --output markdown >"$work/diff.md"
page diff "$work/diff.md" 900
shoot diff 900 docs/diff-comment.png

{ echo '#### `tierflow explain -f examples/shop.yaml --output mermaid`'; echo '```mermaid'; "$bin" explain -f examples/shop.yaml --output mermaid; echo '```'; } >"$work/explain.md"
page explain "$work/explain.md" 900
shoot explain 900 docs/explain-shop.png
