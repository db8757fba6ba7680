"""The training entry and its launch scripts: `python -m torch_handle.main`, DDP on one node, and two nodes over
loopback with a c10d rendezvous; and chapter 06 run on 2 CPU ranks by run_chapter.sh."""
import json
import os
import socket
import subprocess
import sys

from conftest import ROOT

TINY = ["--max_steps", "5", "--n_pairs", "1000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, message in [(["--mode", "bogus"], "error: unknown mode 'bogus'"),
                          (["--config", str(tmp_path / "none.yaml")], "error: configuration file not found")]:
        r = subprocess.run([sys.executable, "-m", "torch_handle.main", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.strip().startswith(message), r.stderr


def test_ddp_on_one_node(run_script, tmp_path):
    r = run_script("scripts/train_ddp_single_node.sh", *TINY, "--out", tmp_path, env={"NPROC": "2"})
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mode"] == "ddp" and metrics["world_size"] == 2 and metrics["steps"] == 5


def test_two_nodes_over_loopback(tmp_path):
    port = free_port()
    env = {**os.environ, "NPROC": "1", "RDZV_ID": f"test-{port}"}
    nodes = [subprocess.Popen(["bash", "scripts/train_ddp_multi_node.sh", "2", str(node), "127.0.0.1", str(port),
                               *TINY, "--out", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    try:
        results = [(p.wait(timeout=300), p.stderr.read()) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    assert all(rc == 0 for rc, _ in results), [err[-2000:] for _, err in results]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2, metrics


def test_launch_script_arguments(run_script):
    r = run_script("scripts/train_ddp_multi_node.sh", "2", "0")
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_script("scripts/train_ddp_multi_node.sh", "2", "2", "127.0.0.1", "29500")
    assert r.returncode == 2 and "NODE_RANK must be in [0, 2), got '2'" in r.stderr
    r = run_script("scripts/train_ddp_single_node.sh", env={"NPROC": "0"})
    assert r.returncode == 2 and "NPROC must be a positive integer" in r.stderr


def test_chapter_06_on_two_cpu_ranks(run_script, tmp_path):
    r = run_script("scripts/run_chapter.sh", "06_ddp", "--gpus", "0", "--nproc", "2",
                   env={"TORCH_HANDLE_RUNS": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "06_ddp").iterdir()
    assert (run / "06_ddp.rank0.ipynb").exists() and (run / "06_ddp.rank1.ipynb").exists()
    assert json.loads((run / "metrics.json").read_text())["world_size"] == 2
