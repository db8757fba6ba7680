"""Chapter 08 end to end: the kill-and-resume lab for DDP, ZeRO-2, ZeRO-3 and FSDP2 on 2 CPU ranks under torchrun
(bit-identical losses and weights after a SIGKILL and `--resume auto`), the ZeRO-3 checkpoint consolidated, a
checkpoint of 2 ranks resumed on 3 or 4 and on 1 (08a: DCP reshards it), the training entry's checkpoint options and their
errors, and `--activation_checkpointing` under DDP and ZeRO-3."""
import json
import math

import psutil
import pytest
import torch

from conftest import entry
from torch_handle.utils.checkpoint import checkpoint_weights, consolidate_zero_checkpoint, get_latest_checkpoint
from torch_handle.labs.resume_lab import kill_and_resume, run_training
from torch_handle.train.build import MODES

QUICK = ("--n_pairs", "2000", "--test_pairs", "0")


def running(pid: int) -> bool:
    "Alive: present and not a zombie (dead, its exit status not yet collected)."
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("mode, args", [("ddp", ()), ("deepspeed", ("--zero_stage", "2")),
                                        ("deepspeed", ("--zero_stage", "3")),
    pytest.param("fsdp2", (), marks=pytest.mark.skipif("fsdp2" not in MODES, reason="no --mode fsdp2 yet"))])
def test_kill_one_rank_then_resume_is_bit_identical(tmp_path, mode, args):
    lab = kill_and_resume(mode, tmp_path, *QUICK, *args, max_steps=20, every=5, kill_after=5)
    ref, killed, res = lab["reference"], lab["killed"], lab["resumed"]
    assert ref["returncode"] == 0 and res["returncode"] == 0, (tmp_path / "resumed" / "log.txt").read_text()[-3000:]
    assert killed["killed"]["rank"] == 1 and killed["returncode"] != 0
    assert not running(killed["killed"]["pid"]), "the killed rank is gone"
    m = res["metrics"]
    assert m["resumed_from"] is not None and 5 <= int(m["resumed_from"][-8:]) < 20
    assert m["train_loss"] == ref["metrics"]["train_loss"] and len(m["train_loss"]) == 20
    assert m["valid_loss"] == ref["metrics"]["valid_loss"]
    a, b = torch.load(tmp_path / "reference" / "model.pt"), torch.load(tmp_path / "resumed" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if args == ("--zero_stage", "3"):             # the 2-rank ZeRO-3 checkpoint consolidates to the gathered weights
        state = consolidate_zero_checkpoint(get_latest_checkpoint(tmp_path / "checkpoints"))
        assert state.keys() == b.keys() and all(torch.equal(state[k], b[k]) for k in b)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("mode, more, one", [("ddp", 4, "single"),
    pytest.param("fsdp2", 3, "ddp", marks=pytest.mark.skipif("fsdp2" not in MODES, reason="no --mode fsdp2 yet"))])
def test_a_checkpoint_of_2_ranks_reshards_to_more_ranks_and_to_1(tmp_path, mode, more, one):
    """Saved at step 4 on 2 ranks; resumed with --max_steps 4 (no training) on `more` ranks and on 1 rank in mode `one`
    (single: one process; ddp: torchrun with 1 rank): the weights each job ends with are the checkpoint's, bit for
    bit. Then (ddp) 4 ranks train on from it, 2 more steps."""
    root = tmp_path / "ckpt"
    saved = run_training(mode, tmp_path / "two", *QUICK, "--max_steps", "4", "--checkpoint_dir", str(root), nproc=2)
    assert saved["returncode"] == 0, (tmp_path / "two" / "log.txt").read_text()[-3000:]
    step4 = root / "step-00000004"
    weights = checkpoint_weights(step4)
    assert same_weights(weights, torch.load(tmp_path / "two" / "model.pt"))
    for how, nproc in ((mode, more), (one, 1)):
        out = tmp_path / f"{how}-{nproc}"
        r = run_training(how, out, *QUICK, "--max_steps", "4", "--resume", str(step4), nproc=nproc)
        assert r["returncode"] == 0, (out / "log.txt").read_text()[-3000:]
        assert r["metrics"]["resumed_from"] == str(step4) and r["metrics"]["world_size"] == nproc
        assert r["metrics"]["train_loss"] == saved["metrics"]["train_loss"]          # the history, restored
        assert same_weights(torch.load(out / "model.pt"), weights), f"{how} on {nproc}"
        assert "saved by 2 rank(s), resumed on" in (out / "log.txt").read_text()
    if mode != "ddp":
        return
    on = run_training(mode, tmp_path / "on", *QUICK, "--max_steps", "6", "--checkpoint_dir", str(root), "--resume",
                      "auto", nproc=4)
    assert on["returncode"] == 0, (tmp_path / "on" / "log.txt").read_text()[-3000:]
    losses = on["metrics"]["train_loss"]
    assert on["metrics"]["steps"] == 6 and losses[:4] == saved["metrics"]["train_loss"] and len(losses) == 6
    assert all(math.isfinite(x) for x in losses[4:])
    assert json.loads((root / "step-00000006" / "manifest.json").read_text())["world_size"] == 4
    assert not same_weights(checkpoint_weights(root / "step-00000006"), weights)     # it trained


def test_checkpoint_options_fail_in_one_line(tmp_path):
    assert entry("--checkpoint_every", "5").stderr.strip() == \
        "error: --checkpoint_every and --resume auto need --checkpoint_dir"
    r = entry("--resume", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: no checkpoint"), r.stderr
    r = entry("--test_pairs", "-1")
    assert r.returncode == 2 and r.stderr.strip() == "error: --test_pairs must be 0 or more, got -1"


def test_existing_checkpoints_are_never_overwritten_and_corruption_is_caught(tmp_path):
    root = tmp_path / "ckpt"
    first = run_training("single", tmp_path / "a", *QUICK, "--max_steps", "4", "--checkpoint_dir", str(root),
                         "--checkpoint_every", "2")
    assert first["returncode"] == 0 and sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000004"]
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    r = entry(*QUICK, "--max_steps", "4", "--checkpoint_dir", str(root))          # no --resume: refuse, keep all
    assert r.returncode == 2 and "already holds step-00000004" in r.stderr.strip().splitlines()[-1], r.stderr
    model = root / "step-00000004" / "dcp" / "__0_0.distcp"
    model.write_bytes(model.read_bytes()[:1000])                                     # truncate the newest checkpoint
    r = entry(*QUICK, "--max_steps", "4", "--resume", str(root / "step-00000004"))
    assert r.returncode == 2 and "truncated" in r.stderr.strip().splitlines()[-1], r.stderr
    assert all(p.read_bytes() == data for p, data in before.items() if p != model)
    resumed = run_training("single", tmp_path / "b", *QUICK, "--max_steps", "6", "--checkpoint_dir", str(root),
                           "--resume", "auto")                                        # falls back to step 2
    assert resumed["returncode"] == 0 and resumed["metrics"]["resumed_from"].endswith("step-00000002")


def test_activation_checkpointing_changes_no_loss_under_zero3(tmp_path):     # DDP: chapter 08
    runs = [run_training("deepspeed", tmp_path / str(flag), *QUICK, "--zero_stage", "3", "--max_steps", "8",
                         *(["--activation_checkpointing"] if flag else [])) for flag in (False, True)]
    assert all(r["returncode"] == 0 for r in runs), (tmp_path / "True" / "log.txt").read_text()[-3000:]
    assert runs[0]["metrics"]["train_loss"] == runs[1]["metrics"]["train_loss"]
    assert json.dumps(runs[0]["metrics"]["valid_loss"]) == json.dumps(runs[1]["metrics"]["valid_loss"])
