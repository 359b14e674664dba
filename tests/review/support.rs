//! Finding and running the renderers the diagram tests check with: Graphviz's `dot`, and the
//! `mermaid` npm package in headless Chromium.
//!
//! A missing tool skips the test with the reason on standard error, except on CI (`CI=true`),
//! where it fails the test: `.ci/run` installs Debian's `chromium` and `graphviz` and the
//! pinned `mermaid` package into `target/tools` (`hack/review-tools.sh`).

use std::path::{Path, PathBuf};

/// Whether this is a CI run, where a missing tool is a failure.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Handles a missing tool: fails on CI, else says why the test is skipped.
pub fn missing(what: &str) {
    if on_ci() {
        panic!("CI=true and {what} is missing: .ci/run installs it (hack/review-tools.sh)");
    }
    eprintln!("skipping: {what} is missing (hack/review-tools.sh installs it)");
}

/// `bin` from `PATH`, or `None` (see [`missing`]).
pub fn require(bin: &str, what: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        missing(&format!("{bin} ({what})"));
    }
    found
}

pub mod mermaid {
    use super::*;

    /// The Mermaid blocks (```` ```mermaid ````) of a Markdown text.
    pub fn blocks(md: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = md;
        while let Some(start) = rest.find("```mermaid\n") {
            let body = &rest[start + "```mermaid\n".len()..];
            let Some(end) = body.find("```") else { break };
            out.push(body[..end].to_string());
            rest = &body[end + 3..];
        }
        out
    }

    /// Text as it appears in rendered HTML / SVG.
    pub fn html_text(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    /// What rendering one diagram gave.
    #[derive(Debug, serde::Deserialize)]
    pub struct Rendered {
        /// The SVG (empty on error).
        pub svg: String,
        /// Mermaid's error, if any.
        pub error: Option<String>,
    }

    /// Chromium and the Mermaid library.
    pub struct Tools {
        chromium: PathBuf,
        mermaid_js: PathBuf,
    }

    /// `target/tools`, where `hack/review-tools.sh` installs the mermaid package.
    pub fn tools_dir() -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
            .join("tools")
    }

    impl Tools {
        /// Both tools, or `None` (see [`missing`]).
        pub fn find() -> Option<Self> {
            let chromium = match std::env::var_os("TIERFLOW_CHROMIUM") {
                Some(p) => Some(PathBuf::from(p)),
                None => require("chromium", "Debian's chromium, for the Mermaid renderer"),
            }?;
            let mermaid_js = std::env::var_os("TIERFLOW_MERMAID_JS")
                .map(PathBuf::from)
                .unwrap_or_else(|| tools_dir().join("node_modules/mermaid/dist/mermaid.min.js"));
            if !mermaid_js.is_file() {
                missing(&format!(
                    "the mermaid npm package ({})",
                    mermaid_js.display()
                ));
                return None;
            }
            Some(Tools {
                chromium,
                mermaid_js,
            })
        }

        /// Parses and renders every diagram with Mermaid in one headless Chromium, in `dir`
        /// (a page and a fresh profile are written there).
        pub fn render(&self, dir: &Path, diagrams: &[(String, String)]) -> Vec<Rendered> {
            let texts: Vec<&str> = diagrams.iter().map(|(_, t)| t.as_str()).collect();
            // `</` never appears inside the script (it would end it).
            let data = serde_json::to_string(&texts)
                .expect("json")
                .replace("</", "<\\/");
            let page = format!(
                r#"<!doctype html><html><head><meta charset="utf-8"></head><body>
<pre id="result">pending</pre>
<script src="{}"></script>
<script>
const diagrams = {data};
(async () => {{
  const results = [];
  try {{
    mermaid.initialize({{startOnLoad: false, securityLevel: "strict"}});
    for (let i = 0; i < diagrams.length; i++) {{
      try {{
        await mermaid.parse(diagrams[i]);
        const {{svg}} = await mermaid.render("d" + i, diagrams[i]);
        results.push({{svg, error: null}});
      }} catch (e) {{
        results.push({{svg: "", error: String((e && e.message) || e)}});
      }}
    }}
    document.getElementById("result").textContent = JSON.stringify(results);
  }} catch (e) {{
    document.getElementById("result").textContent = "harness error: " + e;
  }}
}})();
</script></body></html>"#,
                self.mermaid_js.display()
            );
            let html = dir.join("render.html");
            std::fs::write(&html, page).expect("write the page");
            let profile = dir.join("profile");
            let _ = std::fs::remove_dir_all(&profile);
            let out = std::process::Command::new(&self.chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--allow-file-access-from-files",
                    "--virtual-time-budget=60000",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("--dump-dom")
                .arg(format!("file://{}", html.display()))
                .output()
                .expect("run chromium");
            let _ = std::fs::remove_dir_all(&profile);
            let dom = String::from_utf8_lossy(&out.stdout);
            let start = dom
                .find("<pre id=\"result\">")
                .map(|i| i + "<pre id=\"result\">".len());
            let text = start
                .and_then(|s| dom[s..].find("</pre>").map(|e| &dom[s..s + e]))
                .unwrap_or_else(|| {
                    panic!(
                        "chromium gave no result page: {}\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            let text = text
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&nbsp;", "\u{a0}")
                .replace("&amp;", "&");
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!(
                    "mermaid did not finish ({e}): {}",
                    &text[..text.len().min(500)]
                )
            })
        }
    }
}
