"""The training entry and its launch scripts: `python -m torch_handle.main` under bad input and faults, DDP on one node
(3 ranks: a global batch of 64 does not divide), FSDP2 with accumulation in bf16 on 3 ranks, two nodes over loopback with a c10d rendezvous; and chapter 06 run on
3 CPU ranks by run_chapter.sh."""
import json
import os
import re
import subprocess

from conftest import ROOT, entry
from torch_handle.utils.launch import free_port

TINY = ["--max_steps", "5", "--n_pairs", "1000"]


def one_line(r) -> str:
    """The run's single line of complaint: exit 2 and exactly one line on stderr besides progress lines (a step that
    takes over 10 s on a loaded machine is logged before the failure: `Progress`, chapter 05b)."""
    lines = [l for l in r.stderr.strip().splitlines() if not re.match(r"step \d+/\d+: loss ", l)]
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr[-3000:])
    return lines[0]


def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  d_model: 128\n  n_heads: [4\ntraining:\n  lr: 1.0e-3\n")
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    cases = [(["--mode", "bogus"], "error: unknown mode 'bogus'"),
             (["--config", tmp_path / "none.yaml"], "error: configuration file not found"),
             (["--config", broken], f"error: {broken}:"),
             (["--max_steps", "0"], "error: --max_steps must be positive, got 0"),
             (["--n_pairs", "0"], "error: --n_pairs must be positive, got 0"),
             (["--n_pairs", "-5"], "error: --n_pairs must be positive, got -5"),
             (["--time_budget", "0"], "error: --time_budget must be positive, got 0"),
             (["--checkpoint_every", "-1"], "error: --checkpoint_every must be 0 or more, got -1"),
             (["--keep_last", "0"], "error: --keep_last must be positive, got 0"),
             (["--test_pairs", "-1"], "error: --test_pairs must be 0 or more, got -1"),
             (["--grad_accum", "0"], "error: --grad_accum must be positive, got 0"),
             (["--mode", "fsdp2", "--precision", "fp16"], "error: unknown precision 'fp16'; choose one of fp32, bf16")]
    for args, message in cases:
        line = one_line(entry(*args, "--out", out, "--checkpoint_dir", ckpt))
        assert line.startswith(message), (args, line)
        assert not out.exists() and not ckpt.exists(), args
    assert "not valid YAML" in one_line(entry("--config", broken)) and ":4: " in one_line(entry("--config", broken))   # where YAML noticed
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    assert "already holds metrics.json" in one_line(entry("--out", out, "--max_steps", "1"))
    assert (out / "metrics.json").read_text() == "{}"


def test_a_foreign_resume_folder_is_one_line_on_every_rank(tmp_path):
    from torch_handle.labs.resume_lab import run_training
    foreign = tmp_path / "exported"                      # not named step-N, holding a manifest of its own
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"format": "someone else\'s"}')
    line = one_line(entry("--resume", foreign, *TINY))
    assert line == f"error: {foreign}: not a checkpoint folder (checkpoints are named step-N)", line
    step = tmp_path / "step-00000004"                   # named like ours, but another manifest
    step.mkdir()
    (step / "manifest.json").write_text('{"files": ["model.pt"]}')
    assert "not a checkpoint manifest" in one_line(entry("--resume", step, *TINY))
    r = run_training("ddp", tmp_path / "ddp", "--resume", str(foreign), *TINY, nproc=4, timeout=180)
    log = (tmp_path / "ddp" / "log.txt").read_text()
    assert r["returncode"] != 0 and log.count("error: ") == 4 and "not a checkpoint folder" in log, log[-3000:]
    assert "torch_handle/" not in log, log[-3000:]                   # no traceback through our code


def test_a_diverging_run_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    from torch_handle.utils.checkpoint import get_latest_checkpoint
    config = tmp_path / "diverge.yaml"
    config.write_text("training:\n  lr: 1.0e+30\n  warmup_steps: 0\n")
    ckpt = tmp_path / "ckpt"
    line = one_line(entry("--config", config, *TINY, "--checkpoint_dir", ckpt, "--checkpoint_every", "1"))
    step = int(line.split("not finite at step ")[1].split()[0])
    assert line.startswith("error: the training loss is not finite at step") and step >= 2, line
    assert (ckpt / "latest").read_text().strip() == f"step-{step - 1:08d}"
    assert get_latest_checkpoint(ckpt).name == f"step-{step - 1:08d}"


def test_ranks_stop_together_and_a_log_gets_no_line_per_step(tmp_path):
    from torch_handle.labs.resume_lab import run_training
    r = run_training("ddp", tmp_path, "--max_steps", "400", "--n_pairs", "1000", "--test_pairs", "0",
                     "--time_budget", "3", nproc=3, timeout=300)
    assert r["returncode"] == 0, (tmp_path / "log.txt").read_text()[-3000:]
    m = r["metrics"]
    assert m["world_size"] == 3 and 1 <= m["steps"] < 400 and len(m["train_loss"]) == m["steps"]
    log = (tmp_path / "log.txt").read_text()
    progress = [l for l in log.splitlines() if l.startswith("step ")]
    assert "\r" not in log and 1 <= len(progress) < m["steps"], progress


def test_ddp_on_one_node(run_script, tmp_path):
    r = run_script("scripts/train_ddp_single_node.sh", *TINY, "--out", tmp_path, env={"NPROC": "2"})
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mode"] == "ddp" and metrics["world_size"] == 2 and metrics["steps"] == 5


def test_fsdp2_with_accumulation_in_bf16_on_three_ranks(run_script, tmp_path):
    # the command: FSDP2, two micro-batches an update, bf16 parameters with fp32 reduction, 3 ranks
    r = run_script("scripts/train_fsdp2.sh", *TINY, "--grad_accum", "2", "--precision", "bf16", "--test_pairs", "0",
                   "--out", tmp_path, env={"NPROC": "3"})
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["mode"], metrics["world_size"], metrics["steps"], metrics["grad_accum"], metrics["precision"]) \
        == ("fsdp2", 3, 5, 2, "bf16")
    assert len(metrics["train_loss"]) == 5 and all(0 < l < 10 for l in metrics["train_loss"])   # finite, no blow-up


def test_two_nodes_over_loopback(tmp_path):
    port = free_port()
    env = {**os.environ, "NPROC": "1", "RDZV_ID": f"test-{port}"}
    nodes = [subprocess.Popen(["bash", "scripts/train_ddp_multi_node.sh", "2", str(node), "127.0.0.1", str(port),
                               *TINY, "--out", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    try:
        results = []
        for p in nodes:                                      # communicate: never wait() with pipes open
            _, err = p.communicate(timeout=300)
            results.append((p.returncode, err))
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


def test_chapter_06_on_three_cpu_ranks(chapter_on_cpu_ranks):
    # 3 ranks: reductions are not one a + b, and neither 8 test sentences nor the batch of 64 divide evenly
    run = chapter_on_cpu_ranks("06_ddp", 3)
    assert json.loads((run / "metrics.json").read_text())["world_size"] == 3
