"""scripts/run_chapter.sh: argument errors are one clear line and a non-zero exit; a run keeps its notebook."""
import json
import re


def test_unknown_chapter_lists_the_chapters(run_script, tmp_path):
    r = run_script("scripts/run_chapter.sh", "99_nope", env={"TORCH_HANDLE_RUNS": str(tmp_path)})
    assert r.returncode != 0
    assert "no chapter named '99_nope'" in r.stderr
    assert "01_embeddings" in r.stderr and "04_transformer" in r.stderr
    assert not any(tmp_path.iterdir()), "nothing is written for a bad name"


def test_bad_arguments(run_script):
    r = run_script("scripts/run_chapter.sh")
    assert r.returncode != 0 and "usage:" in r.stderr
    r = run_script("scripts/run_chapter.sh", "01_embeddings", "-p", "only_key")
    assert r.returncode != 0 and "-p needs KEY and VALUE" in r.stderr
    r = run_script("scripts/run_chapter.sh", "01_embeddings", "--frobnicate")
    assert r.returncode != 0 and "unknown argument '--frobnicate'" in r.stderr
    r = run_script("scripts/run_chapter.sh", "../README.md")
    assert r.returncode != 0 and "no chapter named" in r.stderr


def test_a_run_keeps_its_executed_notebook_and_never_overwrites(run_script, tmp_path):
    env = {"TORCH_HANDLE_RUNS": str(tmp_path)}
    outs = []
    for name in ("01_embeddings.ipynb", "01_embeddings"):    # with and without the suffix
        r = run_script("scripts/run_chapter.sh", name, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(re.search(r"executed notebook: (\S+)", r.stdout).group(1))
    assert outs[0] != outs[1], "a second run must not reuse the first run's folder"
    nb = json.loads(open(outs[1]).read())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "every code cell was executed"
    assert any("ValueError:" in "".join(o.get("text", "")) for c in code for o in c["outputs"])
