"""torch_handle.utils.launch where chapter 06b cannot show it: a process that starts a child while it is being
stopped, and a job stopped by its timeout or by an interrupt, every process of it gone."""
import os
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from torch_handle.utils.launch import has_exited, run_job, stop_process_tree

# Ignores SIGTERM, and answers it by starting a child: the stop must find that child too.
STUBBORN = """import signal, subprocess, time
def on_term(*_):
    print(subprocess.Popen(["sleep", "3600"]).pid, flush=True)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    time.sleep(1)"""


def test_a_child_started_during_the_stop_is_stopped_too():
    parent = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline() == "ready\n"
    stopped = stop_process_tree(parent.pid, grace=2)
    late_child = int(parent.stdout.readline())           # printed by the SIGTERM handler before SIGKILL
    parent.stdout.close()
    assert stopped == sorted([parent.pid, late_child])
    assert has_exited(parent.pid) and has_exited(late_child)       # gone, or a zombie its new parent will collect


class Watch(threading.Thread):
    "Records this process's descendants until stopped; calls `on_ranks` once `nproc` ranks exist."

    def __init__(self, nproc: int, on_ranks=lambda: None):
        super().__init__(daemon=True)
        self.nproc, self.on_ranks, self.seen, self.done = nproc, on_ranks, {}, threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            below = psutil.Process().children(recursive=True)
            self.seen.update((p.pid, p) for p in below)
            ranks = 0
            for p in below:
                try:
                    ranks += "RANK" in p.environ()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            if ranks == self.nproc:
                self.on_ranks()
                self.on_ranks = lambda: None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join()


@pytest.fixture
def sleeper(tmp_path, monkeypatch):
    "A module whose ranks sleep, on PYTHONPATH."
    (tmp_path / "th_sleeper.py").write_text("import time\ntime.sleep(3600)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    return "th_sleeper"


def running(p: psutil.Process) -> bool:
    "Still running: not gone, not a zombie (an ended process whose parent has not yet collected it)."
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_job_past_its_timeout_is_stopped_whole(sleeper):
    with Watch(3) as watch, pytest.raises(TimeoutError, match="still running after 10 s: stopped"):
        run_job(sleeper, nproc=3, timeout=10)
    assert watch.seen, "the job was seen"
    assert not [p for p in watch.seen.values() if running(p)]


def test_an_interrupted_job_is_stopped_whole(sleeper):
    # A learner interrupting the cell: SIGINT to this process once the 3 ranks exist, with Python's own handler even
    # where this process started with SIGINT ignored (a shell's `cmd &` does that)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with Watch(3, on_ranks=lambda: os.kill(os.getpid(), signal.SIGINT)) as watch, pytest.raises(KeyboardInterrupt):
            run_job(sleeper, nproc=3, timeout=300)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(watch.seen) >= 4, "torchrun and its 3 ranks were seen"
    assert not [p for p in watch.seen.values() if running(p)]
