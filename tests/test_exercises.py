"""Exercises as a learner meets them. Every chapter keeps the exercise contract (nbs/00_exercises.ipynb); its learner
copy, run top to bottom through a Jupyter kernel with every stub untouched, finishes with one "not attempted yet"
line per exercise; the distributed chapters run it on 2 real ranks (nbs/05d_ranks.ipynb), and those ranks stop when
a rank fails and when the kernel dies. (nbdev_test, which runs nbs/, proves the other half: each reference solution
passes its check and each `mistakes` cell's wrong answers are rejected, in a world of one; the distributed chapters'
runs on 3 ranks here and in test_deepspeed.py and test_training_entry.py prove it where a mistake shows only on
several ranks.)"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from torch_handle.utils.exercises import TAGS, cell_tags, learner_copy

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
CHAPTERS = sorted(p.stem for p in NBS.glob("[0-9][0-9]*.ipynb"))


def load(name: str) -> dict:
    return json.loads((NBS / f"{name}.ipynb").read_text())


def source(cell) -> str:
    return "".join(cell["source"])


def starts_ranks(nb: dict) -> bool:
    "Whether the chapter starts ranks in JupyterLab (05d, 06, 07, 08; 07b runs on ranks only under run_chapter.sh)."
    return any("start_ranks(" in source(c) for c in nb["cells"] if c["cell_type"] == "code")


def exercises(nb: dict) -> list[list[dict]]:
    "Each exercise's code cells, from its stub to its mistakes cell."
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return [cells[i:i + 4] for i, c in enumerate(cells) if "exercise" in cell_tags(c)]


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_keeps_the_exercise_contract(name):
    nb = load(name)
    found = exercises(nb)
    assert 2 <= len(found) <= 4, f"{name}: {len(found)} exercises; every chapter has 2 to 4"
    assert any(c["cell_type"] == "markdown" and source(c).lstrip().startswith("## Exercises") for c in nb["cells"]), \
        f"{name}: the exercises start under their own '## Exercises' heading"
    grouped = 0
    for n, (stub, solution, check, mistakes) in enumerate(found, 1):
        where = f"{name}, exercise {n}"
        assert [cell_tags(c) for c in (stub, solution, check, mistakes)] == \
            [["exercise"], ["solution"], ["check"], ["mistakes"]], f"{where}: stub, solution, check, mistakes, in order"
        assert re.search(r"raise NotImplementedError|=\s*\.\.\.", source(stub)), f"{where}: the stub raises or is ..."
        assert source(solution).startswith('#| code-fold: true\n#| code-summary: "Solution"'), f"{where}: fold it"
        assert source(check).startswith('#| code-fold: true\n#| code-summary: "Check"'), f"{where}: fold the check"
        assert re.search(rf"^exercise\({n}, ", source(check), re.M), f"{where}: the check cell calls exercise({n}, ...)"
        assert source(mistakes).startswith("#| hide") and "rejects(" in source(mistakes), \
            f"{where}: a hidden mistakes cell feeds the check wrong answers with rejects()"
        assert not any("#| export" in source(c) for c in (stub, solution, check, mistakes)), f"{where}: never exported"
        grouped += 4
    tagged = [c for c in nb["cells"] if set(cell_tags(c)) & set(TAGS)]
    assert len(tagged) == grouped, f"{name}: an exercise tag outside the stub/solution/check/mistakes groups"


def test_a_learner_copy_keeps_no_solution():
    nb = load("03_layers")
    copy = learner_copy(nb)
    tags = [t for c in copy["cells"] for t in cell_tags(c)]
    assert "solution" not in tags and "mistakes" not in tags and tags.count("exercise") == len(exercises(nb))
    assert all(c["metadata"]["jupyter"]["source_hidden"] for c in copy["cells"] if "check" in cell_tags(c))


def test_learner_copies_are_made_once_and_never_overwritten(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "make_learner_copies.py")]
    lab = tmp_path / "lab"
    first = subprocess.run([*script, str(lab)], capture_output=True, text=True, check=True)
    assert f"{len(CHAPTERS)} learner copies made" in first.stdout
    (lab / "03_layers.ipynb").write_text("my work")
    again = subprocess.run([*script, str(lab)], capture_output=True, text=True, check=True)
    assert f"{len(CHAPTERS)} kept" in again.stdout and (lab / "03_layers.ipynb").read_text() == "my work"
    bad = subprocess.run([*script, str(lab / "03_layers.ipynb")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a folder" in bad.stderr


def kernel(tmp_path: Path) -> KernelManager:
    "A python3 kernel on IPC sockets in a private folder (TCP ports race when many kernels start), never a rank."
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "IN_TEST")}
    env["OMP_NUM_THREADS"] = "1"                        # two kernels at a time on two cores, as nbdev_test runs them
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    km.start_kernel(env=env, cwd=str(tmp_path))
    return km


def texts(nb) -> str:
    "Everything the notebook's cells printed or raised, as text."
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") or "".join(o.get("data", {}).get("text/plain", "")))
            if o["output_type"] == "error":
                out.append(f"ERROR {o['ename']}: {o['evalue']}")
    return "\n".join(out)


SLOW_CELL = re.compile(r"^#\|\s*slow\s*$", re.M)    # settings.ini's tst_flags: minutes of jobs that tests/ run anyway


def run_learner_copy(name: str, tmp: Path) -> str:
    "Run chapter `name`'s learner copy top to bottom in a fresh kernel; return everything it printed."
    work = ROOT / "lab_test" / name                     # inside the repository, as lab/ is: the chapters' paths hold
    work.mkdir(parents=True, exist_ok=True)
    km = kernel(tmp)
    executed = nbformat.reads(json.dumps(learner_copy(load(name))), as_version=4)
    executed.cells = [c for c in executed.cells if not SLOW_CELL.search(c.source)]   # as nbdev_test skips them
    try:
        NotebookClient(executed, km=km, timeout=600, resources={"metadata": {"path": str(work)}}).execute()
    finally:
        km.shutdown_kernel(now=True)
        shutil.rmtree(work, ignore_errors=True)
    return texts(executed)


@pytest.fixture(scope="module")
def learner_runs(request, tmp_path_factory):
    "The selected chapters' learner copies, two at a time (two cores), the slowest first; a future per chapter."
    selected = [item.callspec.params["name"] for item in request.session.items
                if item.originalname == "test_a_learner_copy_runs_to_the_end_with_every_stub_untouched"]
    slow_first = sorted(selected, key=lambda n: (not starts_ranks(load(n)), n not in SLOW, n))
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {n: pool.submit(run_learner_copy, n, tmp_path_factory.mktemp(n)) for n in slow_first}


SLOW = {"05b_baseline", "06b_launching", "08c_kill_and_resume", "09a_profiling_lab", "10_roadmap"}


@pytest.mark.parametrize("name", CHAPTERS)
def test_a_learner_copy_runs_to_the_end_with_every_stub_untouched(name, learner_runs):
    printed = learner_runs[name].result()
    n = len(exercises(load(name)))
    if starts_ranks(load(name)):
        for rank in (0, 1):
            lines = re.findall(rf"^\[rank {rank}\] exercise (\d): not attempted yet$", printed, re.M)
            assert lines == [str(k) for k in range(1, n + 1)], f"rank {rank} of 2 in {name}: {lines}\n{printed[-3000:]}"
    else:
        lines = re.findall(r"^exercise (\d): not attempted yet$", printed, re.M)
        assert lines == [str(k) for k in range(1, n + 1)], f"{name}: {lines}\n{printed[-3000:]}"


@contextlib.contextmanager
def kernel_client(tmp_path: Path, now: bool = True):
    "A started kernel and a client ready to talk to it; the kernel is shut down at the end (at once, or politely)."
    km = kernel(tmp_path)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=now)


def run(kc, code: str, timeout: float = 120) -> tuple[str, dict]:
    "Execute `code` in the kernel; return what it printed and its reply."
    out = []
    def hook(msg):
        c = msg["content"]
        out.append(c.get("text", "") or c.get("data", {}).get("text/plain", "") or c.get("evalue", ""))
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "".join(out), reply["content"]


def rank_processes(pids: list[int]) -> list[psutil.Process]:
    "The ranks and everything below them."
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return procs


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


START = "from torch_handle.utils.ranks import start_ranks, stop_ranks\nstart_ranks({n})"
PIDS = "import os\nprint('pid', os.getpid())"


def started(kc, n: int = 2) -> list[psutil.Process]:
    printed, reply = run(kc, START.format(n=n))
    assert reply["status"] == "ok" and f"started {n} CPU rank(s)" in printed, printed
    printed, _ = run(kc, PIDS)
    pids = [int(p) for p in re.findall(r"^\[rank \d\] pid (\d+)$", printed, re.M)]
    assert len(pids) == n, printed
    return rank_processes(pids)


def test_a_failing_rank_stops_every_rank_instead_of_hanging(tmp_path):
    with kernel_client(tmp_path) as (km, kc):
        procs = started(kc, 3)
        printed, reply = run(kc, "%%local\nimport os\n'RANK' in os.environ")
        assert reply["status"] == "ok" and printed.strip() == "False", "%%local runs in the kernel and shows its value"
        fail = ("from torch_handle.train.ddp_trainer import ddp_setup\nimport torch.distributed as dist\n"
                "rank, world, _ = ddp_setup()\nif rank == 1:\n    raise ValueError('rank 1 fails here')\ndist.barrier()")
        t = time.monotonic()
        printed, reply = run(kc, fail)
        assert reply["status"] == "error" and reply["ename"] == "RankFailed", reply
        assert "[1]" in reply["evalue"] and "ValueError: rank 1 fails here" in reply["evalue"], reply["evalue"]
        assert "stopped" in reply["evalue"] and "rank 1 fails here" in printed, "the failed rank's traceback is shown"
        assert time.monotonic() - t < 60, "the waiting ranks were stopped within seconds, not at gloo's timeout"
        assert not wait_gone(procs, 10), "every rank, and everything it started, is gone"
        printed, reply = run(kc, "print('still here')")
        assert reply["status"] == "error" and "start_ranks cell again" in reply["evalue"], "no silent single process"
        procs = started(kc, 2)                                  # and the learner can start again
        printed, reply = run(kc, "stop_ranks()")
        assert "stopped the 2 ranks" in printed and not wait_gone(procs, 10)
        printed, reply = run(kc, "import os\nprint('RANK' in os.environ)")
        assert printed.strip() == "False", "after stop_ranks, cells run in the kernel again"


def test_no_rank_outlives_its_kernel(tmp_path):
    with kernel_client(tmp_path) as (km, kc):
        procs = started(kc, 2)
        kernel_pid = km.provisioner.pid
        controller = [p for p in psutil.Process(kernel_pid).children() if "ipyparallel.controller" in " ".join(p.cmdline())]
        assert controller, "the kernel started an ipyparallel controller"
        os.kill(kernel_pid, signal.SIGKILL)                        # no atexit, no shutdown: the ranks must notice
        assert not wait_gone(procs + controller, 15), "the ranks and the controller end within seconds"

    with kernel_client(tmp_path, now=False) as (km, kc):         # a normal shutdown stops them at once
        procs = started(kc, 2)
        procs += psutil.Process(km.provisioner.pid).children(recursive=True)     # the controller too
    assert not wait_gone(procs, 10)


def test_interrupting_a_cell_interrupts_every_rank(tmp_path):
    with kernel_client(tmp_path) as (km, kc):
        procs = started(kc, 2)
        msg_id = kc.execute("import time\ntime.sleep(60)")
        time.sleep(3)
        t = time.monotonic()
        km.interrupt_kernel()                                  # the ■ button
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "error"
        assert time.monotonic() - t < 15, "the ranks stopped sleeping at once"
        printed, reply = run(kc, "print('awake')")
        assert reply["status"] == "ok" and printed.count("awake") == 2, "a sleep is interruptible: the ranks live on"
        deaf = ("import os, signal\nif os.environ['RANK'] == '0':\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                "time.sleep(60)")                      # rank 0 ignores interrupts, as code inside a GPU collective may
        kc.execute(deaf)
        time.sleep(3)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error"
        assert not wait_gone(procs, 15), "the rank deaf to the interrupt was stopped, with the rest"
        printed, reply = run(kc, "print('still here')")
        assert reply["status"] == "error" and "did not stop on the interrupt" in reply["evalue"]


def test_chapter_05d_on_three_cpu_ranks(chapter_on_cpu_ranks):
    # its solutions and mistakes on more than one rank (nbdev_test is a world of one; a learner copy has neither)
    chapter_on_cpu_ranks("05d_ranks", 3)
