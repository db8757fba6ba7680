"""Chapters 09 and 10 from the command line: the roadmap's JSON, written by `python -m torch_handle.labs.roadmap` on
2 and 4 CPU ranks, read back and held against the ZeRO formula (DeepSpeed and FSDP2) and the 1/N trend; bad input to both modules."""
import json
import subprocess
import sys

import pytest

from torch_handle.utils.launch import run_job

SETUPS = "DDP,ZeRO-3,ZeRO-3 + AC + offload,FSDP2"


@pytest.fixture(scope="module")
def roadmaps(tmp_path_factory):
    out = tmp_path_factory.mktemp("roadmap")
    for world in (2, 4):
        run_job("torch_handle.labs.roadmap", str(out / f"{world}.json"), "--setups", SETUPS, "--timed_steps", "1",
                    nproc=world, timeout=400)
    return {world: json.loads((out / f"{world}.json").read_text()) for world in (2, 4)}


def test_the_roadmap_json_follows_the_formula(roadmaps):
    for world, result in roadmaps.items():
        rows = {r["setup"]: r for r in result["rows"]}
        assert result["world"] == world and list(rows) == SETUPS.split(",")
        n = result["n_params"]
        # the ZeRO paper's bf16 Adam bytes, written out: (2 + 2 + 12)Ψ replicated, and all of it over N at stage 3;
        # DeepSpeed holds 4 bytes per parameter more: stage 0 accumulates the gradients in a whole fp32 buffer (4Ψ),
        # stage 3 steps an fp32 copy of its gradient partition (4Ψ/N) beside the bf16 one (chapter 07)
        for name, formula, held in (("DDP", 16 * n, 20 * n), ("ZeRO-3", 16 * n / world, 20 * n / world)):
            assert rows[name]["formula_bytes"] == formula and abs(rows[name]["modelled_bytes"] - held) <= 1e-9 * held
            gathered = 2 * result["largest_param"] if name == "ZeRO-3" else 0               # one bf16 parameter in flight
            assert abs(rows[name]["model_state_bytes"] - held) <= 0.01 * held + gathered, (world, name, rows[name])
        # FSDP2 in bf16 holds (4 + 4 + 8)Ψ/N: fp32 parameter and gradient shards, AdamW's two moments; each parameter is
        # cut on dim 0 into ⌈rows/N⌉-row shards, so rank 0 holds up to one row of each parameter more than Ψ/N
        fsdp2 = rows["FSDP2"]
        assert fsdp2["formula_bytes"] == 16 * n / world and 16 * n / world <= fsdp2["modelled_bytes"] <= 1.01 * 16 * n / world
        assert abs(fsdp2["model_state_bytes"] / fsdp2["modelled_bytes"] - 1) <= 0.01, (world, fsdp2)
        offload = rows["ZeRO-3 + AC + offload"]
        # what left the accelerator: ZeRO-3's partitions (2 + 2 + 12)Ψ/N, plus the fp32 gradient partition (4Ψ/N)
        # that DeepSpeed's CPU optimizer steps on
        assert abs(offload["offloaded_bytes"] / (16 * n / world + 4 * n / world) - 1) < 0.03, offload
        assert offload["activation_bytes"] < rows["ZeRO-3"]["activation_bytes"] / 5          # checkpointed blocks
        assert all(r["step_s"] > 0 for r in rows.values())


def test_the_roadmap_shows_the_1_over_n_trend(roadmaps):
    state = lambda world, name: next(r for r in roadmaps[world]["rows"] if r["setup"] == name)["model_state_bytes"]
    assert state(2, "DDP") == state(4, "DDP")                                  # replicated: independent of N
    for name in ("ZeRO-3", "FSDP2"):                                            # everything partitioned: 1/N
        assert abs(state(2, name) / state(4, name) - 2) < 0.05, name


@pytest.mark.parametrize("module, args, message", [
    ("torch_handle.labs.roadmap", ["{tmp}/r.json", "--setups", "ZeRO-4"], "error: unknown setup 'ZeRO-4'"),
    ("torch_handle.labs.roadmap", ["{tmp}"], "already exists: choose another file (nothing is overwritten)"),
    ("torch_handle.labs.roadmap", ["{tmp}/r.json", "--timed_steps", "0"], "--timed_steps and --micro_batch must be positive"),
    ("torch_handle.labs.profiling", ["{tmp}", "--setups", "ddp-5"], "error: unknown setup 'ddp-5'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, module, args, message):
    r = subprocess.run([sys.executable, "-m", module, *[a.format(tmp=tmp_path) for a in args]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr.strip().splitlines()[-1], r.stderr


def test_the_profiler_never_overwrites_traces(tmp_path):
    (tmp_path / "ddp-5MB").mkdir()
    (tmp_path / "ddp-5MB" / "ddp-5MB.rank0.step4.json").write_text("{}")
    r = subprocess.run([sys.executable, "-m", "torch_handle.labs.profiling", str(tmp_path), "--setups", "ddp-5MB"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "already holds traces" in r.stderr, r.stderr
    assert (tmp_path / "ddp-5MB" / "ddp-5MB.rank0.step4.json").read_text() == "{}"
