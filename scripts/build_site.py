"""Build the course site offline, without Quarto: one HTML page per notebook of nbs/sidebar.yml.

    python scripts/build_site.py [--out DIR] [--runs DIR] [--run NAME|missing ...] [--stage-nbs]

Each page shows the newest successful run of its notebook (rank 0's notebook for a distributed chapter) from
runs/ (or --runs, or $TORCH_HANDLE_RUNS); a notebook without one is shown without outputs, under a banner
saying how to run it. --run NAME runs chapters first with scripts/run_chapter.sh ('missing': every notebook
without a successful run). Notebooks go through nbdev's own processors, as nbdev_docs does (front matter,
`#| hide`, `#| export` cells shown as show_doc's API docs), then nbconvert. Pages need no network: CSS, images
and math (as MathML) are inline.

--stage-nbs writes each notebook's newest successful run over nbs/NAME.ipynb instead of building pages, so
that nbdev_docs renders the outputs: only in a CI checkout (it refuses unless CI=true), as the Pages workflow does.
Where Quarto is installed, `bash scripts/docs.sh` builds the Quarto site.
"""
import argparse
import html
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import yaml
from execnb.nbio import nb2str, read_nb, write_nb
from jinja2 import DictLoader, pass_context
from latex2mathml.converter import convert as tex2mathml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbdev.config import get_config
from nbdev.processors import FilterDefaults, exec_show_docs

from chapter_runs import rank_statuses

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Stray output of libraries, not of the lesson: their warnings (with the source line Python prints after
# one), and DeepSpeed's linker probe for libaio.
NOISE = re.compile(r"^\S*site-packages/\S+:\d+: \w*Warning: .*\n(?:  .*\n)?"
                   r"|^/usr/bin/ld: cannot find -laio.*\n|^collect2: error: ld returned 1 exit status\n", re.M)
PANDOC_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}")           # show_doc's [source](url){attrs}
DIRECTIVE = re.compile(r"#\|\s*([\w-]+):\s*(.*)")
_cfg = get_config(path=ROOT)
SITE_URL = f"{_cfg.doc_host}{_cfg.doc_baseurl}/"                      # where nbdev's links point: the hosted docs


def fail(msg: str):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def sidebar() -> list[tuple[str | None, str]]:
    "(section, notebook name) for every entry of nbs/sidebar.yml, in order."
    def walk(items, section=None):
        for item in items:
            if isinstance(item, dict):
                yield from walk(item.get("contents", []), item.get("section"))
            else:
                yield section, Path(item).stem
    return list(walk(yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]))


def succeeded(notebook: Path) -> bool:
    "papermill finished the notebook without an exception, and no rank of its run reported a failure."
    try:
        pm = json.loads(notebook.read_text())["metadata"].get("papermill", {})
    except (OSError, ValueError, KeyError):
        return False
    return bool(pm.get("end_time")) and not pm.get("exception") and all(s.get("ok") for s in rank_statuses(notebook.parent))


def newest_run(runs: Path, name: str) -> Path | None:
    "The executed notebook of the newest successful run of `name` (rank 0's for a distributed chapter)."
    for run in sorted((runs / name).glob("*/"), reverse=True):            # folders are named by start time
        nb = next((p for p in (run / f"{name}.rank0.ipynb", run / f"{name}.ipynb") if p.exists()), None)
        if nb and succeeded(nb):
            return nb
    return None


def clean_outputs(nb) -> None:
    "Drop libraries' stray stderr; a progress bar widget becomes its final line of text (no widget JS needed)."
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("name") == "stderr":
                text = NOISE.sub("", "".join(out["text"]))
                if not text.strip():
                    continue
                out["text"] = text
            if WIDGET_VIEW in out.get("data", {}):
                box = models.get(out["data"][WIDGET_VIEW]["model_id"], {}).get("state", {})
                parts = [models.get(c.removeprefix("IPY_MODEL_"), {}).get("state", {}).get("value")
                         for c in box.get("children", [])]
                text = " ".join(html.unescape(p) for p in parts if isinstance(p, str) and p).replace("\xa0", " ")
                if not text:
                    continue
                out["data"] = {"text/plain": text}
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    nb.metadata.pop("widgets", None)


def quarto_options(nb) -> None:
    "Apply the Quarto cell options that nbdev's processors leave in code cells, and remove their lines."
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.startswith("---"):
            continue                                                      # front matter: shown as the header
        if cell.cell_type == "code":
            lines = cell.source.splitlines()
            opts = {}
            while lines and lines[0].lstrip().startswith("#|"):             # Quarto's `key: value`, or any left
                if m := DIRECTIVE.match(lines.pop(0).lstrip()):
                    opts[m[1]] = yaml.safe_load(m[2])
            cell.source = "\n".join(lines).strip("\n")
            if opts.get("include") is False or not (cell.source or cell.get("outputs")):
                continue
            if opts.get("echo") is False:
                cell.metadata["transient"] = {"remove_source": True}
            if opts.get("output") is False:
                cell.outputs = []
            if opts.get("code-fold") in (True, "show"):
                cell.metadata["fold"] = {"open": opts["code-fold"] == "show", "summary": opts.get("code-summary", "Code")}
        cells.append(cell)
    nb.cells = cells


class SiteRenderer(IPythonRenderer):
    "Markdown renderer: math as MathML (browsers draw it without MathJax); links to notebooks go to their pages."
    pages: dict[str, str] = {}

    def _math(self, tex: str, display: str) -> str:
        try:
            return tex2mathml(tex, display=display)
        except Exception:                                                 # noqa: BLE001 (unsupported TeX: show it)
            return f"<code>{html.escape(tex)}</code>"

    def inline_math(self, body: str) -> str:
        return self._math(body, "inline")

    def block_math(self, body: str) -> str:
        return self._math(body, "block")

    def heading(self, text: str, level: int, **attrs) -> str:
        "Anchors in lower case, as Quarto makes them: nbdev's links to a name point there."
        return re.sub(r'(id="|href="#)([^"]*)', lambda m: m[1] + m[2].lower(), super().heading(text, level, **attrs))

    def inline_html(self, html: str) -> str:
        "An inline tag as it is: embedding images, nbconvert parses each tag alone, and <a ...>text</a> falls apart."
        return super().inline_html(html) if html.startswith("<img") else html

    def link(self, text: str, url: str, title=None) -> str:
        url = url.removeprefix(SITE_URL)                                  # nbdev's links to the hosted docs
        path, _, anchor = url.partition("#")
        page = self.pages.get(Path(path).stem) if path.endswith(".ipynb") and "://" not in path else None
        return super().link(text, page + (f"#{anchor}" if anchor else "") if page else url, title)


def markdown(source: str, **renderer_options) -> str:
    return MarkdownWithMath(renderer=SiteRenderer(escape=False, **renderer_options)).render(
        PANDOC_LINK.sub(r'<a href="\2" \3>\1</a>', source))


class SiteExporter(HTMLExporter):
    @pass_context
    def markdown2html(self, context, source):
        return markdown(source, attachments=context.get("cell", {}).get("attachments", {}), embed_images=True,
                        path=str(NBS), anchor_link_text=self.anchor_link_text)


TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{% block html_head_js %}{% endblock %}
{% block jupyter_widgets %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block html_head_css %}<style>{{ resources.site.css }}</style>{% endblock %}
{% block body_header %}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<nav class="site-nav">{{ resources.site.nav }}</nav>
<main>
<header class="site-header">
<h1 class="title">{{ resources.site.title | e }}</h1>
<div class="description">{{ resources.site.description }}</div>
{% for kind, text in resources.site.banners %}<div class="banner {{ kind }}">{{ text }}</div>{% endfor %}
</header>
{% endblock body_header %}
{% block input %}{# as lab's, without bleach's clean_html: the notebooks are ours, and it halves the build #}
<div class="jp-CodeMirrorEditor jp-Editor jp-InputArea-editor" data-type="inline"><div class="cm-editor cm-s-jupyter">
{{ cell.source | highlight_code(metadata=cell.metadata) }}
</div></div>
{% endblock input %}
{% block input_group %}
{%- set fold = cell.metadata.get('fold') -%}
{%- if fold -%}
<details class="code-fold"{% if fold.open %} open{% endif %}><summary>{{ fold.summary | e }}</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{% endblock input_group %}
"""

CSS = """
body.jp-Notebook { display: flex; align-items: flex-start; padding: 0; margin: 0; }
.site-nav { position: sticky; top: 0; flex: 0 0 17rem; height: 100vh; overflow-y: auto; box-sizing: border-box;
  padding: 1.5rem 1rem; background: #f6f7f9; border-right: 1px solid #dde1e6; font: 14px/1.5 system-ui, sans-serif; }
.site-nav .section { margin: 1rem 0 0.25rem; font-weight: 600; color: #555; }
.site-nav ul { list-style: none; margin: 0; padding: 0; }
.site-nav a { color: #1f4e8c; text-decoration: none; display: block; padding: 0.15rem 0.4rem; border-radius: 4px; }
.site-nav a:hover { background: #e7ebf0; }
.site-nav a.current { background: #1f4e8c; color: #fff; }
main { flex: 1 1 auto; min-width: 0; max-width: 60rem; padding: 1.5rem 2rem 4rem; }
.site-header .title { font: 600 2rem/1.2 system-ui, sans-serif; margin: 0 0 0.5rem; }
.site-header .description { font-size: 1.1rem; color: #555; margin: 0 0 1rem; }
.site-header .description p { margin: 0; }
.jp-RenderedMarkdown pre { background: #f5f5f5; padding: 0.6rem 0.8rem; border-radius: 4px; margin: 0.6rem 0; }
.banner { padding: 0.6rem 1rem; border-radius: 6px; margin: 0 0 1rem; font: 14px/1.5 system-ui, sans-serif; }
.banner.unexecuted { background: #fff4d6; border: 1px solid #e8c45c; }
.banner.problem { background: #fde8e8; border: 1px solid #e09a9a; }
.banner.executed { background: #eef5ee; border: 1px solid #b9d8b9; color: #333; }
details.code-fold > summary { cursor: pointer; color: #1f4e8c; font: 14px system-ui, sans-serif; padding: 0.2rem 0; }
.jp-RenderedHTMLCommon math[display="block"] { margin: 0.8em 0; }
"""


def nav_html(entries, titles: dict[str, str], pages: dict[str, str], current: str) -> str:
    "The sidebar: the home page, then each section's chapters."
    out, section = [], object()
    for sec, name in entries:
        if sec != section:
            if out:
                out.append("</ul>")
            if sec:
                out.append(f'<div class="section">{html.escape(sec)}</div>')
            out.append("<ul>")
            section = sec
        cls = ' class="current"' if name == current else ""
        out.append(f'<li><a href="{pages[name]}"{cls}>{html.escape(titles[name])}</a></li>')
    return "\n".join(out + ["</ul>"])


def run_chapters(names: list[str], runs: Path) -> list[str]:
    "Run each chapter with scripts/run_chapter.sh; the names of those that failed."
    failed = []
    for name in names:
        print(f"[site] running {name}", file=sys.stderr)
        r = subprocess.run(["bash", str(ROOT / "scripts" / "run_chapter.sh"), name],
                           env={**os.environ, "TORCH_HANDLE_RUNS": str(runs)})
        if r.returncode:
            failed.append(name)
    return failed


class WithoutShowDocRuns(FilterDefaults):
    "nbdev's docs processors without exec_show_docs: the fallback for a notebook on which that step fails."
    def base_procs(self):
        return [p for p in super().base_procs() if p is not exec_show_docs]


def process(name: str, src: Path):
    "The notebook after nbdev's docs processors, as nbdev_docs runs them; its front matter; problems met."
    problems = []
    for filt in FilterDefaults(), WithoutShowDocRuns():
        nb = read_nb(src)
        nb.path_ = str(NBS / f"{name}.ipynb")                             # nbdev names the page after the notebook
        clean_outputs(nb)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                filt(nb)
            except Exception as e:                                        # noqa: BLE001 (reported, then the fallback)
                cell = [l for l in str(e).splitlines()[1:] if not l.startswith("#|")] or [""]
                problems.append(f"error: {name}: nbdev_docs fails here: it runs every cell that imports, and the cell "
                                f"`{cell[0]}` raised {e.__cause__ or e!r}; keep import cells to imports")
                continue
        for w in caught:                       # e.g. "Found cells containing imports and other code" + the cell
            if w.filename.endswith("processors.py"):
                lines = str(w.message).splitlines()
                problems.append(f"warning: {name}: nbdev: {lines[0]}" + (f" `{lines[2]}`" if len(lines) > 2 else ""))
        quarto_options(nb)
        return nbformat.reads(nb2str(nb), as_version=4), nb.frontmatter_, problems   # nbconvert's kind of notebook


def build(entries, runs: dict[str, Path | None], out: Path) -> list[str]:
    "Write one HTML page per notebook into `out`; the problems nbdev's processing met."
    processed = {name: process(name, runs[name] or NBS / f"{name}.ipynb") for _, name in entries}
    fm = {name: f for name, (_, f, _) in processed.items()}
    pages = {name: f.get("output-file", f"{name}.html") for name, f in fm.items()}
    titles = {name: f.get("title", name) for name, f in fm.items()}
    SiteRenderer.pages = pages
    exporter = SiteExporter(extra_loaders=[DictLoader({"site.html.j2": TEMPLATE})], template_file="site.html.j2",
                            exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)
    out.mkdir(parents=True, exist_ok=True)
    for _, name in entries:
        (nb, _, problems), src = processed[name], runs[name]
        nb.metadata["title"] = titles[name]
        banners = [("problem", html.escape(p)) for p in problems]
        if src:
            where = src.relative_to(ROOT) if src.is_relative_to(ROOT) else src
            banners.append(("executed", f"Outputs from <code>{html.escape(str(where))}</code>."))
        elif name != "index" and any(c.cell_type == "code" for c in nb.cells):       # the home page is the README
            banners.append(("unexecuted", f"No successful run of {name} yet: this page shows the notebook without "
                            f"outputs. Run it with <code>bash scripts/run_chapter.sh {name}</code>, then rebuild the "
                            f"site with <code>python scripts/build_site.py</code>."))
        site = {"css": CSS, "nav": nav_html(entries, titles, pages, name), "title": titles[name],
                "description": markdown(fm[name].get("description", "")), "banners": banners}
        body, _ = exporter.from_notebook_node(nb, resources={"site": site, "metadata": {"name": titles[name]}})
        (out / pages[name]).write_text(body, encoding="utf-8")
        print(f"[site] {out / pages[name]} ({'executed' if src else 'not executed'})", file=sys.stderr)
    return [p for _, _, problems in processed.values() for p in problems]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "_site_offline", help="site folder (default: _site_offline)")
    p.add_argument("--runs", type=Path, default=Path(os.environ.get("TORCH_HANDLE_RUNS", ROOT / "runs")),
                   help="where run_chapter.sh keeps runs (default: runs/, or $TORCH_HANDLE_RUNS)")
    p.add_argument("--run", nargs="+", default=[], metavar="NAME",
                   help="run these chapters first with run_chapter.sh; 'missing': those without a successful run")
    p.add_argument("--stage-nbs", action="store_true",
                   help="write the newest successful runs over nbs/NAME.ipynb (for nbdev_docs) instead of building")
    a = p.parse_args()

    a.out, a.runs = a.out.resolve(), a.runs.resolve()
    os.chdir(NBS)                                                         # where nbdev_test runs notebooks too
    entries = []
    for sec, name in sidebar():
        if (NBS / f"{name}.ipynb").exists():
            entries.append((sec, name))
        else:
            print(f"warning: nbs/sidebar.yml lists {name}, which nbs/ does not have", file=sys.stderr)
    names = [name for _, name in entries]
    unknown = [n for n in a.run if n != "missing" and n.removesuffix(".ipynb") not in names]
    if unknown:
        fail(f"no notebook named {unknown[0]!r} in nbs/sidebar.yml (notebooks: {', '.join(names)})")
    if a.runs.exists() and not a.runs.is_dir():
        fail(f"--runs {a.runs} is not a folder")
    if a.stage_nbs and os.environ.get("CI") != "true":
        fail("--stage-nbs overwrites nbs/*.ipynb with executed copies: it is for CI checkouts (CI=true)")
    to_run = [n.removesuffix(".ipynb") for n in a.run if n != "missing"]
    if "missing" in a.run:
        to_run += [n for n in names if n not in to_run and not newest_run(a.runs, n)]
    problems = [f"error: run_chapter.sh {n} failed (its output is above)" for n in run_chapters(to_run, a.runs)]
    runs = {name: newest_run(a.runs, name) for name in names}

    if a.stage_nbs:
        for name, nb_path in runs.items():
            if nb_path:
                nb = read_nb(nb_path)
                clean_outputs(nb)
                write_nb(nb, NBS / f"{name}.ipynb")
            print(f"[site] nbs/{name}.ipynb: {nb_path or 'no successful run, left without outputs'}", file=sys.stderr)
    else:
        problems += build(entries, runs, a.out)
        print(f"[site] open {a.out / 'index.html'}", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if any(p.startswith("error") for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
