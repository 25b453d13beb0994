"""MkDocs hook: pages generated from what exists in the repository, so the strict build never names a missing file.

* Tutorials: every ``notebooks/NN_*.ipynb`` (two digits, an underscore) is read in place (single source) and becomes
  the page ``notebooks/NN_*/`` of the site, rendered by mkdocs-jupyter from its stored outputs and appended to the nav
  section whose index is ``tutorials/index.md``. Keeping the repository path means a notebook's Markdown link to
  ``02_discrete_diffusion.ipynb`` works both in Jupyter and on the site.
* API reference: one page ``api/<module>.md`` per public module or subpackage of ``diffuse_edu`` (preferred order in
  ``API_ORDER``, anything new after it, alphabetically), appended to the section whose index is ``api/index.md``.
* Benchmarks: one page ``benchmarks/<name>.md`` per ``benchmarks/results/<name>.md``, included with
  pymdownx.snippets, appended to the section whose index is ``benchmarks/index.md``.
* Links written ``[text](nb:01_continuous_diffusion)``, ``[text](api:gaussian)`` or ``[text](bench:continuous)`` in any
  Markdown page point at the generated page when it exists and become plain text marked "coming soon" otherwise.
* Docstrings written with Sphinx roles (``:math:`...```, ``:class:`~x.Y```) are rendered as math and cross-references.

This file lives outside ``docs/`` on purpose: mkdocs-jupyter would turn any ``.py`` under ``docs/`` into a page.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.generated_pages")

PACKAGE = "diffuse_edu"
# The reading order of the API reference; modules that do not exist yet are skipped, unknown ones go last.
API_ORDER = [
    "config",
    "schedules",
    "grids",
    "cache",
    "process",
    "gaussian",
    "categorical",
    "masked",
    "uniform",
    "clocks",
    "joint",
    "guidance",
    "sampling",
    "train",
    "distributed",
    "checkpoint",
    "nets",
    "data",
    "metrics",
    "recipes",
    "viz",
]
NOTEBOOK_RE = re.compile(r"^\d\d_[A-Za-z0-9_\-]+\.ipynb$")
TUTORIALS_INDEX, API_INDEX, BENCH_INDEX = "tutorials/index.md", "api/index.md", "benchmarks/index.md"


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def notebooks(root: Path) -> list[Path]:
    """The tutorial notebooks, in their numbered order."""
    folder = root / "notebooks"
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_RE.match(p.name)) if folder.is_dir() else []


def api_modules(root: Path) -> list[str]:
    """Public modules and subpackages of the package that exist now."""
    pkg = root / PACKAGE
    found = {p.stem for p in pkg.glob("*.py") if not p.stem.startswith("_")}
    found |= {p.parent.name for p in pkg.glob("*/__init__.py") if not p.parent.name.startswith("_")}
    return [m for m in API_ORDER if m in found] + sorted(found - set(API_ORDER))


def bench_results(root: Path) -> list[Path]:
    folder = root / "benchmarks" / "results"
    return sorted(p for p in folder.glob("*.md") if p.stem != "index") if folder.is_dir() else []


def _title_of_markdown(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("_", " ")


def _append_to_section(nav, index_page: str, entries: list) -> bool:
    """Append ``entries`` to the nav section that lists ``index_page``; return whether it was found."""
    for item in nav:
        if isinstance(item, dict):
            for value in item.values():
                if isinstance(value, list):
                    flat = [v for v in value if isinstance(v, str)] + [
                        w for v in value if isinstance(v, dict) for w in v.values() if isinstance(w, str)
                    ]
                    if index_page in flat:
                        value.extend(entries)
                        return True
                    if _append_to_section(value, index_page, entries):
                        return True
    return False


def _nav_paths(nav):
    """Every page path named anywhere in the nav."""
    for item in nav:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for value in item.values():
                if isinstance(value, str):
                    yield value
                elif isinstance(value, list):
                    yield from _nav_paths(value)


def on_config(config):
    root = _root(config)
    # Snippets resolve paths against the working directory by default; anchor them at the repository root.
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(root)]
    nav = config.nav
    if nav is None:
        return config
    sections = {
        TUTORIALS_INDEX: [f"notebooks/{p.name}" for p in notebooks(root)],
        API_INDEX: [{m: f"api/{m}.md"} for m in api_modules(root)],
        BENCH_INDEX: [{_title_of_markdown(p): f"benchmarks/{p.stem}.md"} for p in bench_results(root)],
    }
    listed = set(_nav_paths(nav))  # pages named in mkdocs.yml keep their place and title there
    for index_page, entries in sections.items():
        entries = [e for e in entries if (e if isinstance(e, str) else next(iter(e.values()))) not in listed]
        if not _append_to_section(nav, index_page, entries):
            log.warning("generated_pages: no nav section lists %s; its generated pages are not in the nav", index_page)
    return config


def _api_page(module: str, root: Path) -> str:
    is_package = (root / PACKAGE / module / "__init__.py").is_file()
    lines = [f"# `{PACKAGE}.{module}`", "", f"::: {PACKAGE}.{module}"]
    if is_package:
        lines += ["    options:", "      show_submodules: true"]
    return "\n".join(lines) + "\n"


@event_priority(100)  # before mkdocs-jupyter's on_files, so it wraps the notebooks as pages
def on_files(files, config):
    root = _root(config)
    for nb in notebooks(root):
        # A real file whose src_dir is the repository root (not docs/): mkdocs-jupyter wraps it as a page.
        files.append(
            File(
                f"notebooks/{nb.name}",
                src_dir=str(root),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    for module in api_modules(root):
        files.append(File.generated(config, f"api/{module}.md", content=_api_page(module, root)))
    for result in bench_results(root):
        rel = result.relative_to(root).as_posix()
        content = f'--8<-- "{rel}"\n\n<small>Source: `{rel}` (written by `benchmarks/*.py --write`).</small>\n'
        files.append(File.generated(config, f"benchmarks/{result.stem}.md", content=content))
    return files


# --- links that degrade gracefully --------------------------------------------------------------------------------
_LINK_RE = re.compile(
    # code (fenced blocks, inline spans) is matched first and left alone, so examples of the syntax stay literal
    r"(?P<code>^(?P<fence>`{3,}|~{3,}).*?^[ \t]*(?P=fence)|(?P<ticks>`+).+?(?P=ticks))"
    r"|\[(?P<text>[^\]]+)\]\((?P<kind>nb|api|bench):(?P<name>[A-Za-z0-9_\-]+)(?P<anchor>#[^)\s]*)?\)",
    re.MULTILINE | re.DOTALL,
)


def on_page_markdown(markdown, page, config, files):
    root = _root(config)
    targets = {
        "nb": ({p.stem for p in notebooks(root)}, "notebooks/{}.ipynb"),
        "api": (set(api_modules(root)), "api/{}.md"),
        "bench": ({p.stem for p in bench_results(root)}, "benchmarks/{}.md"),
    }
    here = posixpath.dirname(page.file.src_uri) or "."

    def replace(m: re.Match) -> str:
        if m["code"]:
            return m["code"]
        existing, pattern = targets[m["kind"]]
        if m["name"] not in existing:
            return f'{m["text"]} <span class="de-coming">(coming soon)</span>'
        return f"[{m['text']}]({posixpath.relpath(pattern.format(m['name']), here)}{m['anchor'] or ''})"

    return _LINK_RE.sub(replace, markdown)


# --- Sphinx roles in docstrings ------------------------------------------------------------------------------------
_ROLE_RE = re.compile(r":(?P<role>math|class|meth|func|mod|attr|data|obj|exc):<code>(?P<body>.*?)</code>", re.DOTALL)


def on_page_content(html, page, config, files):
    if page.file.src_uri.endswith(".ipynb"):
        return html
    m = re.match(r"api/(\w+)\.md$", page.file.src_uri)
    module = f"{PACKAGE}.{m[1]}" if m else None

    def replace(m: re.Match) -> str:
        body = m["body"]
        if m["role"] == "math":
            return f'<span class="arithmatex">\\({body}\\)</span>'
        short = body.startswith("~")
        ident = body.lstrip("~").rstrip("()")
        title = ident.rsplit(".", 1)[-1] if short else ident
        if not ident.startswith(PACKAGE) and module:
            ident = f"{module}.{ident}"
        return f'<autoref identifier="{ident}" optional><code>{title}</code></autoref>'

    return _ROLE_RE.sub(replace, html)


def on_serve(server, config, builder):
    root = _root(config)
    for rel in ("notebooks", "benchmarks/results", PACKAGE, "docs_hooks", "docs_overrides"):
        if (root / rel).exists():
            server.watch(str(root / rel))
    return server
