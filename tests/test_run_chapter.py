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


def test_a_failing_chapter_exits_non_zero_and_keeps_its_notebook_and_log(run_script, tmp_path):
    # max_steps 0 trains nothing, so the chapter's own assert on the validation loss fails.
    r = run_script("scripts/run_chapter.sh", "05b_baseline", "-p", "max_steps", "0",
                   env={"TORCH_HANDLE_RUNS": str(tmp_path)})
    assert r.returncode != 0
    assert "AssertionError" in r.stderr
    log = re.search(r"full log: (\S+)", r.stderr).group(1)
    run_dir = tmp_path / "05b_baseline"
    (out,) = run_dir.iterdir()
    assert log == str(out / "05b_baseline.log")
    nb = json.loads((out / "05b_baseline.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "max_steps = 0" in "".join(injected[0]["source"])
