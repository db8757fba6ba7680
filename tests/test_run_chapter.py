"""scripts/run_chapter.sh: argument errors are one clear line and a non-zero exit; a run keeps its notebook; a
cancelled run leaves no process behind, not even a job that a cell started in a session of its own."""
import json
import re
import signal

import pytest
from launcher import Launch, environ, write_chapter


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


def test_a_port_outside_1_to_65535_is_refused(run_script):
    for port in ("0", "65536", "-1"):
        r = run_script("scripts/run_chapter.sh", "06_ddp", "--master-port", port)
        assert r.returncode == 2 and r.stderr == f"error: --master-port needs a port number in 1-65535, got '{port}'\n", r.stderr


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
    # 2 steps learn nothing, so the chapter's own asserts on what it learned fail (0 steps is refused as bad input).
    r = run_script("scripts/run_chapter.sh", "05b_baseline", "-p", "max_steps", "2",
                   env={"TORCH_HANDLE_RUNS": str(tmp_path)})
    assert r.returncode != 0
    assert "AssertionError" in r.stderr
    log = re.search(r"full log: (\S+)", r.stderr).group(1)
    run_dir = tmp_path / "05b_baseline"
    (out,) = run_dir.iterdir()
    assert log == str(out / "05b_baseline.log")
    nb = json.loads((out / "05b_baseline.ipynb").read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "max_steps = 2" in "".join(injected[0]["source"])


# Cells that start a torchrun job in a session of its own, as chapters 08c, 09a and 10 do: one waits, one leaves it running.
START_A_JOB = """import subprocess, time
import psutil
from torch_handle.utils.launch import cpu_ranks_env, torchrun_command
job = subprocess.Popen(torchrun_command("th_sleeper", nproc=3), env=cpu_ranks_env(3), start_new_session=True)"""
WAIT = "time.sleep(3600)"
UNTIL_THE_RANKS_EXIST = "while len(psutil.Process(job.pid).children()) < 3:\n    time.sleep(0.1)"


@pytest.fixture
def job_chapters(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "th_sleeper.py").write_text("import time\ntime.sleep(3600)\n")    # `python -m th_sleeper` from the kernel's cwd
    write_chapter(nbs, "95_starts_a_job", START_A_JOB, WAIT, distributed=False)
    write_chapter(nbs, "96_leaves_a_job", START_A_JOB, UNTIL_THE_RANKS_EXIST, distributed=False)
    return {"TORCH_HANDLE_NBS": str(nbs), "TORCH_HANDLE_RUNS": str(tmp_path / "runs")}


def test_cancelling_a_chapter_stops_the_job_its_cell_started(job_chapters):
    with Launch("95_starts_a_job", env=job_chapters) as run:
        ranks = lambda below: [p for p in below if "RANK" in environ(p)]
        assert not run.wait(timeout=120, until=lambda below: len(ranks(below)) == 3), run.stderr[-3000:]
        run.proc.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        assert run.proc.returncode == 143, run.stderr[-3000:]
        assert "stopped by SIGTERM" in run.stderr
        assert len(run.seen) >= 6, "papermill, the kernel, torchrun and 3 ranks were seen"
        assert not run.left(), run.left()


def test_a_job_left_running_by_a_chapter_is_stopped_when_the_run_ends(job_chapters):
    with Launch("96_leaves_a_job", env=job_chapters) as run:
        run.wait(timeout=120)
        assert run.proc.returncode == 0, run.stderr[-3000:]
        assert len(run.seen) >= 6, "papermill, the kernel, torchrun and 3 ranks were seen"
        assert not run.left(), run.left()
