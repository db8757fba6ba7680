import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_script():
    "Run a bash script of the project; returns the CompletedProcess (never raises on non-zero exit)."
    def run(*args, env=None, timeout=300):
        return subprocess.run(["bash", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    return run


def entry(*args, timeout=120) -> subprocess.CompletedProcess:
    "`python -m torch_handle.main ARGS` in one process; never raises on a non-zero exit."
    return subprocess.run([sys.executable, "-m", "torch_handle.main", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def chapter_on_cpu_ranks(run_script, tmp_path):
    "Run a distributed chapter on `nproc` CPU ranks with run_chapter.sh; returns its run folder after checking every rank."
    def run(name: str, nproc: int) -> Path:
        r = run_script("scripts/run_chapter.sh", name, "--gpus", "0", "--nproc", nproc,
                       env={"TORCH_HANDLE_RUNS": str(tmp_path)}, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        (folder,) = (tmp_path / name).iterdir()
        assert all((folder / f"{name}.rank{k}.ipynb").exists() for k in range(nproc))
        return folder
    return run
