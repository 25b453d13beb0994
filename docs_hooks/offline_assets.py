"""MkDocs hook: the site serves its own MathJax 3 and Jupyter-widgets manager, so it works offline and in CI.

Both are third-party JavaScript pinned in ``package.json`` and installed by ``npm ci`` into ``node_modules/``; this
hook copies the files the pages need into ``<site>/assets/vendor/`` after every build (``mkdocs build`` and
``mkdocs serve`` alike) and never into ``docs/``, so nothing third-party is committed.

* MathJax: ``docs/javascripts/mathjax.js`` configures it (``$…$``, ``$$…$$``, arithmatex spans and the notebooks'
  rendered Markdown); ``mkdocs.yml`` loads ``assets/vendor/mathjax/tex-mml-chtml.js`` after it. The MathJax 2 loader
  that nbconvert puts into every notebook page (its URL is the sentinel ``custom_mathjax_url`` from ``mkdocs.yml``) is
  removed here.
* nbconvert's Mermaid loader (a CDN import, unused here) is removed, and any script still loaded from the network
  is reported as a warning, which fails the strict build.
* Widgets: nbconvert points notebook pages at a CDN copy of ``@jupyter-widgets/html-manager``; the URL is rewritten
  to the copy served by the site, which draws sliders and progress bars from the widget state saved in the notebook.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.utils import get_relative_url

log = logging.getLogger("mkdocs.hooks.offline_assets")

VENDOR = "assets/vendor"
MATHJAX_SENTINEL = "MATHJAX_SERVED_BY_SITE"
WIDGETS_EMBED = f"{VENDOR}/jupyter-widgets/embed.js"

# (source under node_modules/, destination under <site>/assets/vendor/, glob or None for a single file / whole tree)
_COPIES = [
    ("mathjax/es5/tex-mml-chtml.js", "mathjax/tex-mml-chtml.js"),
    ("mathjax/es5/input/tex/extensions", "mathjax/input/tex/extensions"),  # loaded on demand (\require, autoload)
    ("mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
    ("mathjax/es5/ui", "mathjax/ui"),  # context menu pieces loaded lazily
    ("mathjax/es5/a11y", "mathjax/a11y"),  # accessibility extensions the menu can switch on
    ("mathjax/es5/sre", "mathjax/sre"),  # speech rule engine used by a11y
    ("mathjax/LICENSE", "mathjax/LICENSE"),
    ("@jupyter-widgets/html-manager/dist/embed.js", "jupyter-widgets/embed.js"),
    ("@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt", "jupyter-widgets/embed.js.LICENSE.txt"),
    ("@jupyter-widgets/html-manager/package.json", "jupyter-widgets/package.json"),  # BSD-3-Clause; no LICENSE file
]
# embed.js loads its icon fonts (Font Awesome) from its own folder by content-hashed names
_WIDGET_FONT_EXTS = (".woff2", ".woff", ".ttf", ".eot", ".svg")


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_config(config):
    root = _root(config)
    modules = root / "node_modules"
    pins = json.loads((root / "package.json").read_text())["dependencies"]
    missing = [src for src, _ in _COPIES if not (modules / src).exists()]
    if missing:
        raise PluginError(
            "The docs serve MathJax and the widget manager themselves, from node_modules/. Missing: "
            + ", ".join(missing)
            + ". Run `npm ci` in the repository root (scripts/docs.sh does it for you)."
        )
    for name, want in pins.items():
        have = json.loads((modules / name / "package.json").read_text())["version"]
        if have != want:
            raise PluginError(f"node_modules/{name} is {have} but package.json pins {want}; run `npm ci`.")
    return config


def on_post_build(config):
    modules, out = _root(config) / "node_modules", Path(config.site_dir) / VENDOR
    for src, dst in _COPIES:
        src_path, dst_path = modules / src, out / dst
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        if src_path.is_dir():
            shutil.copytree(src_path, dst_path, dirs_exist_ok=True)
        else:
            shutil.copy2(src_path, dst_path)
    dist = modules / "@jupyter-widgets/html-manager/dist"
    for font in dist.iterdir():
        if font.suffix in _WIDGET_FONT_EXTS:
            shutil.copy2(font, out / "jupyter-widgets" / font.name)


# nbconvert's MathJax 2 block: a loader <script> with our sentinel URL plus an inert text/x-mathjax-config script
_MATHJAX2_RE = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)
_WIDGET_SRC_RE = re.compile(r"(var widgetRendererSrc = )'[^']*';")
# nbconvert's Mermaid loader imports mermaid from a CDN when a notebook has Mermaid diagrams; ours have none
_MERMAID_RE = re.compile(
    r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded", async \(\) => \{'
    r'\s*const diagrams = document\.querySelectorAll\("\.jp-Mermaid.*?</script>',
    re.DOTALL,
)
_REMOTE_SCRIPT_RE = re.compile(r"(?:<script[^>]*\ssrc=|import\()\s*[\"'](?:https?:)?//[^\"']+", re.IGNORECASE)


def on_post_page(output, page, config):
    output = _MERMAID_RE.sub("", _MATHJAX2_RE.sub("", output))
    if MATHJAX_SENTINEL in output:
        raise PluginError(f"{page.file.src_uri}: nbconvert's MathJax loader was not removed; update offline_assets.py.")
    local = get_relative_url(WIDGETS_EMBED, page.url)
    output = _WIDGET_SRC_RE.sub(lambda m: f"{m[1]}'{local}';", output)
    for m in _REMOTE_SCRIPT_RE.finditer(output):
        log.warning("%s loads a script from the network (%s); the docs must work offline", page.file.src_uri, m[0])
    return output
