"""Look at the built docs as a reader does: headless Chromium screenshots plus checks on the rendered page.

    python scripts/check_docs_render.py                      # every notebook page, the home and concepts pages
    python scripts/check_docs_render.py --out /tmp/shots notebooks/01_continuous_diffusion/
    bash scripts/docs.sh render-check                        # build the site first, then this

For each page it serves ``site/`` on 127.0.0.1 (a thread in this process, stopped at the end), saves a screenshot
``<out>/<page>.png`` and the DOM after JavaScript ran ``<out>/<page>.html``, and checks that
  * MathJax typeset something on pages that have math, with no TeX errors and no raw ``$…$`` / ``\\(…\\)`` left in
    rendered Markdown,
  * pages whose notebook saved widget views (sliders, progress bars) show rendered widgets,
  * no page asks for a resource outside the site (the docs must work offline).
Exit status 1 if a check fails. Needs Chromium (Debian: ``apt-get install -y chromium``; or set CHROMIUM=/path).
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_chromium() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("No Chromium found: apt-get install -y chromium (Debian/Ubuntu), or set CHROMIUM=/path/to/chrome.")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []

    def log_message(self, fmt, *args):  # record instead of printing
        _Quiet.requested.append(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else '?'}")


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def chromium(binary: str, url: str, *, screenshot: Path | None, budget_ms: int, width: int, height: int) -> str:
    """Run headless Chromium once; return the DOM (``--dump-dom``) or '' when taking a screenshot."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            # an offline reader: every host but the local server fails to resolve
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={width},{height}",
        ]
        cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=180)
        return out.stdout


class _RawMath(html.parser.HTMLParser):
    """Collect text inside rendered-Markdown / arithmatex elements, outside MathJax output and code."""

    SCOPES = ("jp-RenderedMarkdown", "arithmatex")
    SKIP = {"mjx-container", "code", "pre", "script", "style"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "area", "col", "embed", "param", "track"}

    def __init__(self):
        super().__init__()
        self.stack: list[tuple[bool, bool]] = []  # (in scope, skipping)
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        scope, skip = self.stack[-1] if self.stack else (False, False)
        classes = dict(attrs).get("class") or ""
        scope = scope or any(c in classes.split() for c in self.SCOPES)
        skip = skip or tag in self.SKIP
        self.stack.append((scope, skip))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == (True, False):
            self.text.append(data)


REMOTE = re.compile(r'<(?:script|link|img|iframe)\b[^>]*\s(?:src|href)="((?:https?:)?//(?!127\.0\.0\.1)[^"]+)"[^>]*>')
RAW_TEX = re.compile(r"\$[^$\s][^$]*\$|\\\(|\\\[")


def check_page(rel: str, site: Path, dom: str) -> list[str]:
    problems = []
    src = (site / rel / "index.html") if not rel.endswith(".html") else site / rel
    source = src.read_text(encoding="utf-8") if src.exists() else ""
    n_math = dom.count("<mjx-container")
    n_errors = dom.count("<mjx-merror") + dom.count("data-mjx-error=")
    parser = _RawMath()
    parser.feed(dom)
    raw = RAW_TEX.findall(" ".join(parser.text))
    has_math = 'class="arithmatex"' in source or bool(raw) or n_math > 0
    n_views = source.count("application/vnd.jupyter.widget-view+json")
    n_widgets = len(re.findall(r'class="[^"]*\bjupyter-widgets\b', dom))
    n_plots = len(re.findall(r'<img[^>]+src="data:image/(?:png|jpeg|svg)', source))
    remote = sorted(set(REMOTE.findall(dom)))
    print(
        f"  math typeset: {n_math:4d}   TeX errors: {n_errors}   raw TeX left: {len(raw)}   "
        f"widget views: {n_views} -> rendered widget elements: {n_widgets}   embedded images: {n_plots}"
    )
    if has_math and n_math == 0:
        problems.append("page has math but MathJax typeset nothing")
    if n_errors:
        problems.append(f"{n_errors} TeX error(s) (look for red formulas in the screenshot)")
    if raw:
        problems.append(f"raw TeX left in rendered Markdown, e.g. {raw[:3]}")
    if n_views and not n_widgets:
        problems.append("the notebook saved widget views but none was drawn")
    if remote:
        problems.append(f"loads resources from the network: {remote[:3]}")
    return problems


def default_pages(site: Path) -> list[str]:
    pages = ["", "concepts/"]
    pages += sorted(f"notebooks/{p.parent.name}/" for p in (site / "notebooks").glob("*/index.html"))
    return [p for p in pages if (site / p / "index.html").exists()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", help="site-relative page paths such as notebooks/01_x/ (default: a set)")
    ap.add_argument("--site", type=Path, default=ROOT / "site", help="built site (default: site/)")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "diffuse_edu_render",
        help="where screenshots and DOM dumps go (default: $TMPDIR/diffuse_edu_render)",
    )
    ap.add_argument("--budget-ms", type=int, default=8000, help="virtual time Chromium gives scripts (ms)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args(argv)
    site = args.site.resolve()
    if not (site / "index.html").exists():
        sys.exit(f"{site} has no index.html: build the docs first (bash scripts/docs.sh)")
    binary = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    pages = args.pages or default_pages(site)
    server, base = serve(site)
    failures = {}
    try:
        for rel in pages:
            rel = rel.lstrip("/")
            stem = rel.strip("/").replace("/", "__") or "home"
            url = base + rel
            print(f"{url}")
            png = args.out / f"{stem}.png"
            chromium(binary, url, screenshot=png, budget_ms=args.budget_ms, width=args.width, height=args.height)
            dom = chromium(binary, url, screenshot=None, budget_ms=args.budget_ms, width=args.width, height=args.height)
            (args.out / f"{stem}.html").write_text(dom, encoding="utf-8")
            print(f"  screenshot: {png}")
            problems = check_page(rel, site, dom)
            if problems:
                failures[rel] = problems
    finally:
        server.shutdown()
        server.server_close()
    missing = sorted({r for r in _Quiet.requested if r.endswith("-> 404")})
    if missing:
        failures["(server)"] = [f"missing file requested: {r}" for r in missing]
    if failures:
        print("\nRENDER CHECK FAILED")
        for rel, problems in failures.items():
            for p in problems:
                print(f"  {rel or '/'}: {p}")
        return 1
    print(f"\nrender check passed ({len(pages)} page(s)); screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
