"""run_chapter.sh on distributed chapters: every rank runs the notebook under torchrun on CPU (gloo); a rank
that raises or hangs ends the whole job non-zero, in time, naming the rank and the cell, leaving no process; so
does a Ctrl-C."""
import json
import re
import signal

import pytest
from launcher import Launch, cmdline, environ, write_chapter

SETUP = """import os, time
import torch, torch.distributed as dist
dist.init_process_group(os.environ["TORCH_HANDLE_BACKEND"])
rank, world = dist.get_rank(), dist.get_world_size()"""
ALL_REDUCE = """t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
assert t.item() == world * (world + 1) / 2, t"""


@pytest.fixture
def chapters(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_chapter(nbs, "90_ok", SETUP, ALL_REDUCE,
                  "open(os.path.join(os.environ['TORCH_HANDLE_RUN_DIR'], f'{greeting}.rank{rank}'), 'w').close()\n"
                  "dist.destroy_process_group()", parameters="greeting = 'hello'")
    write_chapter(nbs, "91_raises", SETUP, "if rank == 1:\n    raise RuntimeError('boom on rank 1')", ALL_REDUCE)
    write_chapter(nbs, "92_hangs", SETUP, "if rank == 1:\n    time.sleep(3600)", ALL_REDUCE)
    write_chapter(nbs, "93_sleeps", SETUP, "time.sleep(3600)")
    return {"TORCH_HANDLE_NBS": str(nbs), "TORCH_HANDLE_RUNS": str(tmp_path / "runs")}


def test_every_rank_runs_the_notebook(run_script, chapters, tmp_path):
    r = run_script("scripts/run_chapter.sh", "90_ok", "--gpus", "0", "-p", "greeting", "-hi", env=chapters)
    assert r.returncode == 0, r.stderr[-3000:]
    rank0 = re.search(r"executed notebook \(rank 0\): (\S+)", r.stdout).group(1)
    out = tmp_path / "runs" / "90_ok"
    (run,) = out.iterdir()
    assert rank0 == str(run / "90_ok.rank0.ipynb")
    for rank in (0, 1):
        assert (run / f"90_ok.rank{rank}.ipynb").exists() and (run / f"-hi.rank{rank}").exists()   # a value may start with -
        assert json.loads((run / f"status.rank{rank}.json").read_text())["ok"]
    assert (run / "logs").is_dir()


@pytest.mark.parametrize("name, extra, message", [
    ("91_raises", [], r"rank 1 failed in cell \[2\] .*RuntimeError: boom on rank 1"),
    ("92_hangs", ["--timeout", "10"], r"rank 1 failed in cell \[2\] .*CellTimeoutError"),
])
def test_a_failing_or_hanging_rank_ends_the_job(chapters, name, extra, message):
    # A job that hung past the cell timeout would raise TimeoutError here: kernel start-up, 10 s, teardown fit well in 150 s.
    with Launch(name, "--nproc", "2", *extra, env=chapters) as run:
        run.wait(timeout=150)
        assert run.proc.returncode != 0
        assert re.search(message, run.stderr), run.stderr[-3000:]
        assert len(run.seen) >= 4, "the runners and kernels of both ranks were seen"
        assert not run.left(), run.left()


def test_ctrl_c_stops_every_rank_and_kernel(chapters):
    def kernels(below):
        return [p for p in below if "RANK" in environ(p) and "ipykernel_launcher" in cmdline(p)]
    with Launch("93_sleeps", "--nproc", "2", env=chapters) as run:
        assert not run.wait(timeout=150, until=lambda below: len(kernels(below)) == 2), run.stderr[-3000:]
        run.proc.send_signal(signal.SIGINT)
        run.wait(timeout=60)
        assert run.proc.returncode == 130, run.stderr[-3000:]
        assert not run.left(), run.left()


def test_bad_distributed_arguments(run_script, chapters):
    for args, message in [(["--gpus", "4"], "asked for --gpus 4 but 0 GPU(s) are visible"),
                          (["--nproc", "two"], "--nproc needs a positive integer, got 'two'"),
                          (["--timeout", "0"], "--timeout needs a positive integer, got '0'"),
                          (["--launcher", "deepspeed", "--nnodes", "2", "--master-addr", "h"], "deepspeed runs on one node"),
                          (["--launcher", "mpirun"], "--launcher is torchrun or deepspeed, got 'mpirun'"),
                          (["--nnodes", "2"], "--nnodes 2 needs --master-addr"),
                          (["--nnodes", "2", "--node-rank", "2", "--master-addr", "127.0.0.1"], "--node-rank 2 is outside --nnodes 2")]:
        r = run_script("scripts/run_chapter.sh", "90_ok", *args, env=chapters)
        assert r.returncode != 0 and message in r.stderr, (args, r.stderr)


def test_the_deepspeed_launcher_runs_every_rank_too(run_script, chapters, tmp_path):
    r = run_script("scripts/run_chapter.sh", "90_ok", "--launcher", "deepspeed", "-p", "greeting", "ds", env=chapters)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "90_ok").iterdir()
    assert all((run / f"ds.rank{rank}").exists() for rank in (0, 1))
    assert any((run / "logs").iterdir()), "per-rank logs"


def test_distributed_options_are_refused_for_a_single_process_chapter(run_script):
    r = run_script("scripts/run_chapter.sh", "01_embeddings", "--nproc", "4")
    assert r.returncode != 0 and "01_embeddings is a single-process chapter; --nproc applies" in r.stderr
