"""Gradient accumulation in every mode: one update from K micro-batches of b sentences against one from a single batch of
the same K·b, from the same weights, dropout 0, plain SGD at learning rate 1 and no clipping; the whole weights (fp32)
must agree within a bound derived from fp32 rounding. `single` in this process; DDP, ZeRO-2, ZeRO-3 and FSDP2 on 3 ranks
under torchrun, each rank with its own K·b sentences (tests/accumulation_worker.py)."""
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import accumulation_worker as worker
from torch_handle.data.dataset import PAD_ID
from torch_handle.utils.launch import ranks_env, run_job

TESTS = Path(__file__).resolve().parent
WORLD = 3
U = 2.0 ** -24                                            # fp32's unit roundoff


def rounding_bound(world: int, weights: dict) -> float:
    """How far apart fp32 rounding alone can put the two updated models. Each weight's gradient is a sum of the same
    per-token terms c_t over the update's n label tokens (every rank's), added in another order: n - 1 additions over the
    tokens, and at most K·world + 2 more roundings of partial sums for the micro-batches, the ranks and the division by
    the world size. A sum with m roundings is off by at most about m·u·Σ|c_t| (u = 2^-24), so two orders differ by at most
    twice that; the SGD update w - g then rounds once more in each run, by at most u·|w - g|."""
    batch = worker.sentences(world)
    n = batch.n_tokens
    model = worker.tiny_model()
    params = list(model.parameters())
    abs_sum = [torch.zeros_like(p) for p in params]           # Σ_t |c_t|, element by element
    for i in range(batch.src.size(0)):
        one = worker.rows(batch, torch.tensor([i]))
        real = one.tgt_out[0] != PAD_ID
        per_token = F.cross_entropy(model(one.src, one.tgt_in)[0][real], one.tgt_out[0][real], reduction="none") / n
        for loss in per_token:
            for a, g in zip(abs_sum, torch.autograd.grad(loss, params, retain_graph=True)):
                a += g.abs()
    rounds = n + worker.K * world + 2
    largest_weight = max(w.abs().max().item() for w in weights.values())
    return 2 * rounds * U * max(a.max().item() for a in abs_sum) + 2 * U * largest_weight


def check_parity(result: dict, world: int) -> None:
    accumulated, one_batch = result["accumulated"], result["one_batch"]
    assert accumulated.keys() == one_batch.keys()
    initial = worker.tiny_model().state_dict()
    diff = max((accumulated[k] - one_batch[k]).abs().max().item() for k in one_batch)
    moved = max((one_batch[k] - initial[k]).abs().max().item() for k in one_batch)
    bound = rounding_bound(world, one_batch)
    print(f"world {world}: max |{worker.K} micro-batches - one batch| = {diff:.1e}, bound {bound:.1e}; update {moved:.1e}")
    assert moved > 1000 * bound, "the update barely moved the weights: the check would not see a wrong gradient"
    assert diff <= bound, f"the accumulated update is {diff:.1e} off the one-batch update, beyond fp32 rounding ({bound:.1e})"


def test_single_process():
    check_parity({"accumulated": worker.updated_weights("single", worker.K),
                  "one_batch": worker.updated_weights("single", 1)}, world=1)


MODES = ["ddp", "zero2", "zero3", "fsdp2"]


@pytest.fixture(scope="module")
def on_three_ranks(tmp_path_factory) -> dict:
    "Every distributed mode's two updated models, from one torchrun job on 3 ranks (one start of the ranks for all)."
    out = tmp_path_factory.mktemp("accumulation") / "results.pt"
    env = {**ranks_env(WORLD), "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    run_job("accumulation_worker", ",".join(MODES), str(out), nproc=WORLD, timeout=300, env=env)
    return torch.load(out)


@pytest.mark.parametrize("mode", MODES)
def test_on_three_ranks(on_three_ranks, mode):
    result = on_three_ranks[mode]
    assert result["world"] == WORLD
    check_parity(result, WORLD)
