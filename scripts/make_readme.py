"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which these machines lack).

Markdown cells are copied as they are, except that links to chapters (relative to nbs/, as the site needs them)
gain the `nbs/` prefix the README needs; code cells become ```python blocks without their `#|` directives;
cells marked `#| hide` are left out. Run by scripts/test.sh, which fails if the result differs from git.
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render(nb: dict) -> str:
    parts = ["<!-- Generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file. -->"]
    for cell in nb["cells"]:
        lines = "".join(cell["source"]).splitlines()
        if cell["cell_type"] == "markdown":
            parts.append(re.sub(r"\]\((\w[\w.-]*\.ipynb)\)", r"](nbs/\1)", "\n".join(lines)))
        elif cell["cell_type"] == "code" and not any(l.strip() in ("#| hide", "#|hide") for l in lines):
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip("\n")
            if code:
                parts.append(f"```python\n{code}\n```")
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text(encoding="utf-8"))
    (ROOT / "README.md").write_text(render(nb), encoding="utf-8")
