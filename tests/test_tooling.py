"""Project tooling that the notebooks rely on: nbdev settings, the README generator, the environment."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_readme import render  # noqa: E402


def test_nbdev_clean_keeps_the_papermill_parameters_tag(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": 3, "id": "abc", "outputs": [], "source": "x = 1",
                     "metadata": {"tags": ["parameters"], "scrolled": True}}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "p.ipynb"
    path.write_text(json.dumps(nb))
    subprocess.run([shutil.which("nbdev_clean"), "--fname", str(path)], cwd=ROOT, check=True)
    cell = json.loads(path.read_text())["cells"][0]
    assert cell["metadata"] == {"tags": ["parameters"]}, "papermill finds its cell by this tag"
    assert cell["execution_count"] is None


def test_readme_render_drops_hidden_cells_and_directives():
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Title\n", "text"]},
                    {"cell_type": "code", "source": ["#| hide\n", "secret = 1"]},
                    {"cell_type": "code", "source": ["#| eval: false\n", "print(1)"]}]}
    out = render(nb)
    assert "# Title\ntext" in out and "secret" not in out
    assert "```python\nprint(1)\n```" in out and "#|" not in out


def test_the_environment_is_reused_not_rebuilt():
    r = subprocess.run(["bash", "-c", "source scripts/env.sh && python -c 'import torch_handle, deepspeed, papermill'"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[env] building" not in r.stderr


def test_every_third_party_import_is_declared():
    "settings.ini's requirements (and the deepspeed extra) name every third-party module torch_handle imports."
    import ast
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    declared = {re.split(r"[<>=!~ ]", r)[0].lower() for key in ("requirements", "deepspeed_requirements")
                for r in cfg["DEFAULT"][key].split()}
    imported = set()
    for path in (ROOT / "torch_handle").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "torch_handle"}
    names = {"yaml": "pyyaml", "IPython": "ipython"}                # import name → distribution name
    assert {names.get(m, m) for m in third_party} <= declared, sorted({names.get(m, m) for m in third_party} - declared)


def test_the_gpu_check_says_in_one_line_that_it_needs_a_gpu(run_script):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: run bash scripts/gpu_check.sh itself")
    r = run_script("scripts/gpu_check.sh")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: no CUDA GPU is visible"), r.stderr
