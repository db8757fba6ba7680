"""Helpers for the tests of scripts/run_chapter.sh: test chapters written into a temporary nbs/ folder
(TORCH_HANDLE_NBS), and the launcher started in the background with every process below it recorded (psutil)."""
import os
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import nbformat
import psutil

from torch_handle.utils.launch import stop_process_tree

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"name": "python3", "display_name": "python3", "language": "python"}


def write_chapter(nbs: Path, name: str, *cells: str, parameters: str | None = None, distributed: bool = True) -> None:
    "nbs/NAME.ipynb made of `cells` (after a `parameters` cell, if given)."
    metadata = {"kernelspec": KERNELSPEC, **({"torch_handle": {"distributed": True}} if distributed else {})}
    nb = nbformat.v4.new_notebook(metadata=metadata)
    if parameters:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, nbs / f"{name}.ipynb")


def environ(p: psutil.Process) -> dict:
    "A process's environment, or {} once it is gone."
    try:
        return p.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {}


def cmdline(p: psutil.Process) -> str:
    "A process's command line, or '' once it is gone."
    try:
        return " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


class Launch:
    """`bash scripts/run_chapter.sh ARGS` in the background. While it runs, `wait` reads its output and records
    every process below it in `seen`; leaving the `with` block stops whatever a failed test left."""

    def __init__(self, *args: str, env: dict):
        self.proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run_chapter.sh"), *args], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env})
        self.launcher = psutil.Process(self.proc.pid)
        self.seen: dict[int, psutil.Process] = {}
        self.stdout = self.stderr = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in [self.launcher, *self.seen.values()]:
            if p.is_running():                          # the same process, not a later one with its pid
                stop_process_tree(p.pid)
        self.proc.communicate()

    def wait(self, timeout: float, until=None) -> bool:
        """Until the launcher exits (True), or `until(descendants)` holds (False); TimeoutError past `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.stdout, self.stderr = self.proc.communicate(timeout=0.2)
                return True
            except subprocess.TimeoutExpired:
                with suppress(psutil.NoSuchProcess):
                    below = self.launcher.children(recursive=True)
                    self.seen.update((p.pid, p) for p in below)
                    if until and until(below):
                        return False
        raise TimeoutError(f"run_chapter.sh still running after {timeout} s")

    def left(self, timeout: float = 30) -> list[str]:
        "The processes seen below the launcher that are still running `timeout` s after it exited."
        _, alive = psutil.wait_procs(self.seen.values(), timeout=timeout)
        return [str(p) for p in alive]
