"""Gradient-accumulation parity in one mode, for tests/test_accumulation.py: a dropout-0 tiny model from a fixed seed takes
one update from K micro-batches and, from the same initial weights, one update from one batch of the same sentences,
each with plain SGD at learning rate 1 and no clipping. Rank 0 saves the two whole models' weights (fp32).

    python -m torch.distributed.run ... -m accumulation_worker MODES OUT    (MODES: some of ddp,zero2,zero3,fsdp2)

runs the modes one after another in one job (one start of the ranks for all) and saves {mode: result} to OUT.

`single` runs in the test's own process (`updated_weights("single", ...)`, no process group)."""
import sys

import torch
import torch.distributed as dist

from torch_handle.data.dataset import PAD_ID, TranslationBatch
from torch_handle.model import Transformer, TransformerConfig

K, B = 3, 2                          # micro-batches per update, sentences per micro-batch and rank
VOCAB, LENGTH = 20, 10


def tiny_model() -> Transformer:
    "One layer on each side, d_model 16, no dropout: the same weights wherever it is built."
    torch.manual_seed(0)
    return Transformer(TransformerConfig(VOCAB, VOCAB, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                                         d_ff=32, dropout=0.0, max_len=16))


def sentences(world: int) -> TranslationBatch:
    "K·B sentences per rank, of random lengths 2..LENGTH, the same on every rank and in the test."
    size = world * K * B
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(2, LENGTH + 1, (size,), generator=g)
    src = torch.randint(3, VOCAB, (size, LENGTH), generator=g).masked_fill(torch.arange(LENGTH) >= lengths[:, None], PAD_ID)
    tgt = torch.randint(3, VOCAB, (size, LENGTH + 1), generator=g).masked_fill(torch.arange(LENGTH + 1) > lengths[:, None], PAD_ID)
    tgt[:, 0] = 1
    return TranslationBatch(src, tgt[:, :-1], tgt[:, 1:])


def rows(batch: TranslationBatch, index: torch.Tensor) -> TranslationBatch:
    return TranslationBatch(batch.src[index], batch.tgt_in[index], batch.tgt_out[index])


def updated_weights(mode: str, grad_accum: int, rank: int = 0, world: int = 1, device: str | torch.device = "cpu") -> dict:
    """The whole model's fp32 weights after one update from this rank's K·B sentences: `grad_accum` micro-batches of
    them (1: one batch of all). On every rank (ZeRO-3 and FSDP2 gather their shards)."""
    mine = torch.tensor_split(torch.arange(world * K * B), world)[rank]
    batches = [rows(sentences(world), index) for index in torch.tensor_split(mine, grad_accum)]
    model = tiny_model()
    common = dict(clip_grad_norm=None, device=device)
    if mode == "single":
        from torch_handle.train.trainer import Trainer
        trainer = Trainer(model, None, torch.optim.SGD(model.parameters(), lr=1.0), grad_accum=grad_accum, **common)
    elif mode == "ddp":
        from torch_handle.train.ddp_trainer import DDPTrainer
        trainer = DDPTrainer(model, None, torch.optim.SGD(model.parameters(), lr=1.0), grad_accum=grad_accum, **common)
    elif mode in ("zero2", "zero3"):
        from torch_handle.train.deepspeed_trainer import DeepSpeedTrainer, get_deepspeed_config
        config = get_deepspeed_config(int(mode[-1]), batches[0].src.size(0), grad_accum=grad_accum)
        trainer = DeepSpeedTrainer(model, None, torch.optim.SGD(model.parameters(), lr=1.0), config=config, **common)
    elif mode == "fsdp2":
        from torch_handle.train.fsdp_trainer import FSDPTrainer, fsdp2_shard
        model = fsdp2_shard(model)
        trainer = FSDPTrainer(model, None, torch.optim.SGD(model.parameters(), lr=1.0), grad_accum=grad_accum, **common)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    trainer.train_step([b.to(device) for b in batches])
    if hasattr(trainer, "full_state_dict"):
        weights = trainer.full_state_dict()
    else:
        module = getattr(trainer.model, "module", trainer.model)        # DDP wraps it
        weights = {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}
    if mode in ("zero2", "zero3"):
        trainer.model.destroy()
    return weights


def main(modes: str, out: str) -> None:
    from torch_handle.train.ddp_trainer import ddp_setup
    from torch_handle.train.deepspeed_trainer import deepspeed_cleanup
    rank, world, device = ddp_setup()
    results = {mode: {"accumulated": updated_weights(mode, K, rank, world, device),
                      "one_batch": updated_weights(mode, 1, rank, world, device), "world": world}
               for mode in modes.split(",")}
    if rank == 0:
        torch.save(results, out)
    deepspeed_cleanup()                               # the process group, and DeepSpeed's if it ran


if __name__ == "__main__":
    main(*sys.argv[1:])
