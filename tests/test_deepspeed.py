"""Chapter 07's DeepSpeed path: training on 3 CPU ranks through scripts/train_deepspeed.sh, the chapter on 2, 3 and 4 ranks
(its memory model and parity asserts run there: bit-equal on 2, within 1e-6 on 3 and 4), chapter 08 on 3 ranks, and clear
config errors."""
import json
import os
import subprocess
import sys

import pytest

TINY = ["--max_steps", "30", "--n_pairs", "2000"]


def test_zero_trains_on_three_cpu_ranks(run_script, tmp_path):
    stage = 1                                         # stages 2 and 3 train in test_checkpointing.py and chapter 07
    # 3 ranks: 21 sentences each, a global batch of 63; uneven flat partitions for ZeRO
    r = run_script("scripts/train_deepspeed.sh", "--zero_stage", stage, *TINY, "--out", tmp_path, env={"NPROC": "3"})
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (m["mode"], m["zero_stage"], m["world_size"], m["steps"]) == ("deepspeed", stage, 3, 30)
    assert m["valid_loss"] < 3.0, m                                   # from ~4.9 at the start


@pytest.mark.parametrize("world", [2, 3, 4])
def test_chapter_07(chapter_on_cpu_ranks, world):     # the deepspeed launcher: test_distributed_launch.py
    run = chapter_on_cpu_ranks("07_zero3", world)
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == world and m["valid_loss"] < 3.0
    modelled = m["memory_ratio_to_model"]             # the formula plus DeepSpeed's own terms; ZeRO-3 may hold one more parameter
    assert len(modelled) == 11 and all(abs(v - 1) <= 0.02 for v in modelled.values()), modelled
    parity = m["parity_max_relative"]
    if world == 2:                                    # one a + b per reduction: the same bits in any order
        assert parity["ZeRO-0"] == parity["ZeRO-1"] == parity["ZeRO-2"] == 0.0, parity
    assert all(v <= 1e-6 for v in parity.values()), parity


def test_chapter_08_on_three_ranks(chapter_on_cpu_ranks):
    chapter_on_cpu_ranks("08_checkpointing", 3)


@pytest.mark.parametrize("args, message", [
    (["--zero_stage", "5"], "error: unknown ZeRO stage 5; choose 0, 1, 2 or 3"),
    (["--precision", "fp16"], "error: unknown precision 'fp16'; choose one of fp32, bf16"),
])
def test_bad_deepspeed_options_are_one_line(args, message):
    r = subprocess.run([sys.executable, "-m", "torch_handle.main", "--mode", "deepspeed", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == message, r.stderr


def test_config_files_are_validated(tmp_path):
    from torch_handle.train.config import ConfigError
    from torch_handle.train.deepspeed_trainer import get_deepspeed_config, load_deepspeed_config
    for stage in (1, 2, 3):
        shipped = get_deepspeed_config(stage, 16, "bf16", gradient_clipping=0.5)
        assert (shipped["zero_optimization"]["stage"], shipped["bf16"], shipped["gradient_clipping"]) == (stage, {"enabled": True}, 0.5)
    cases = {"unknown_key.json": ({"gradient_clipping": 1.0, "zero_optimization": {}, "fp8": {}}, "unknown DeepSpeed key(s) fp8"),
             "no_clipping.json": ({"zero_optimization": {"stage": 1}}, "set gradient_clipping explicitly"),
             "bad_zero.json": ({"gradient_clipping": 1.0, "zero_optimization": {"stage": 7}}, "zero_optimization.stage:"),
             "typo.json": ({"gradient_clipping": 1.0, "zero_optimization": {"stage": 2, "overlap_com": True}},
                           "zero_optimization.overlap_com: Extra inputs are not permitted")}
    for name, (config, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(config))
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_deepspeed_config(tmp_path / name)
    with pytest.raises(ConfigError, match="offload 'nvme' needs"):
        get_deepspeed_config(3, 16, offload="nvme")


def test_grad_accum_is_in_the_config_and_the_trainer():
    from torch_handle.train.config import ConfigError
    from torch_handle.train.deepspeed_trainer import DeepSpeedTrainer, get_deepspeed_config
    config = get_deepspeed_config(2, 8, "bf16", grad_accum=4, world=3)
    assert (config["gradient_accumulation_steps"], config["train_batch_size"]) == (4, 8 * 4 * 3)
    with pytest.raises(ConfigError, match="grad_accum must be"):
        get_deepspeed_config(2, 8, grad_accum=0)
    with pytest.raises(ValueError, match="gradient_accumulation_steps is 4"):     # before any engine or process group
        DeepSpeedTrainer(None, None, None, config=config, grad_accum=2)


TWO_WORLDS = """
import sys, torch, deepspeed
from torch_handle.train.ddp_trainer import cleanup, ddp_setup
from torch_handle.train.deepspeed_trainer import deepspeed_cleanup, get_deepspeed_config
teardown = {"cleanup": cleanup, "deepspeed_cleanup": deepspeed_cleanup}[sys.argv[1]]
for world in range(2):                                 # two worlds of one, one after the other, in one process
    ddp_setup()
    m = torch.nn.Linear(4, 4)
    engine, *_ = deepspeed.initialize(model=m, optimizer=torch.optim.AdamW(m.parameters()), config=get_deepspeed_config(2, 2))
    engine.backward(engine(torch.randn(2, 4)).sum()); engine.step(); engine.destroy()
    teardown()
    print("world", world, "trained")
"""


@pytest.mark.parametrize("teardown, works", [("deepspeed_cleanup", True), ("cleanup", False)])
def test_deepspeed_cleanup_lets_a_second_world_start(teardown, works):
    # chapter 07: torch's destroy_process_group leaves DeepSpeed's group handles behind; deepspeed_cleanup clears them
    r = subprocess.run([sys.executable, "-c", TWO_WORLDS, teardown], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert ("world 1 trained" in r.stdout) == works, r.stdout[-2000:] + r.stderr[-2000:]
    if not works:
        assert "is not registered" in r.stderr, r.stderr[-2000:]
