"""Training-step throughput: torch_handle's Transformer vs torch.nn.Transformer, identical sizes, fp32 or bf16, CPU or GPU.

Both models get the same embeddings-to-logits pipeline (token embedding × √d + sinusoidal positions, dropout,
a pre-norm encoder-decoder with final norms, a linear output), the same batch, loss and AdamW step. Runs are
interleaved in one process (the order alternating each round), so machine noise hits both alike; the
headline is the median over rounds of the paired ratio (their step time / ours within the same round). MFU is achieved matmul FLOP/s (the chapter-04 formula) over a matmul ceiling measured here, in the
same dtype on the same device (bf16: autocast, fp32 master weights, as the course trains). On a GPU every timer is
bracketed by torch.cuda.synchronize().

    source scripts/env.sh && python bench/model_throughput.py [--device cuda --dtype bf16] [--rounds 7 --steps 5 ...]
"""
import argparse
import math
import statistics
import time
import warnings

import torch
from torch import nn

from torch_handle.model import Transformer, TransformerConfig, count_parameters
from torch_handle.model.embeddings import sinusoidal_table


class TorchReference(nn.Module):
    "nn.Transformer with the same embedding and output layers as `Transformer`."
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.pad_id, self.scale = c.pad_id, math.sqrt(c.d_model)
        self.src_tok = nn.Embedding(c.src_vocab_size, c.d_model, padding_idx=c.pad_id)
        self.tgt_tok = nn.Embedding(c.tgt_vocab_size, c.d_model, padding_idx=c.pad_id)
        self.register_buffer("pe", sinusoidal_table(c.max_len, c.d_model), persistent=False)
        self.dropout = nn.Dropout(c.dropout)
        warnings.filterwarnings("ignore", message="enable_nested_tensor")   # the eval fast path: unused here
        self.core = nn.Transformer(c.d_model, c.n_heads, c.n_encoder_layers, c.n_decoder_layers, c.d_ff, c.dropout,
                                   c.activation, batch_first=True, norm_first=c.norm_first)
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)

    def embed(self, table, tokens):
        return self.dropout(table(tokens) * self.scale + self.pe[: tokens.size(1)])

    def forward(self, src, tgt):
        causal = torch.ones(tgt.size(1), tgt.size(1), dtype=torch.bool, device=tgt.device).triu(1)
        h = self.core(self.embed(self.src_tok, src), self.embed(self.tgt_tok, tgt), tgt_mask=causal,
                      src_key_padding_mask=src == self.pad_id, tgt_key_padding_mask=tgt == self.pad_id,
                      memory_key_padding_mask=src == self.pad_id, tgt_is_causal=True)
        return self.generator(h)


def sync(device: torch.device) -> None:
    "Wait for the device's queued work: a GPU runs asynchronously, so a timer must not stop before it has finished."
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    "Median FLOP/s of an n×n matmul in `dtype` on `device` (on a CPU with torch's threads)."
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        sync(device); t = time.perf_counter(); a @ b; sync(device); times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def make_batch(c: TransformerConfig, batch: int, src_len: int, tgt_len: int, gen: torch.Generator):
    "Random ids with realistic padding: lengths uniform in [len/2, len]."
    def ids(vocab, length):
        x = torch.randint(1, vocab, (batch, length), generator=gen)
        lengths = torch.randint(length // 2, length + 1, (batch,), generator=gen)
        return x.masked_fill(torch.arange(length) >= lengths[:, None], c.pad_id)
    src, tgt = ids(c.src_vocab_size, src_len), ids(c.tgt_vocab_size, tgt_len + 1)
    return src, tgt[:, :-1], tgt[:, 1:]


def time_steps(model, opt, batch, steps, dtype: torch.dtype) -> float:
    "Seconds per training step (forward, loss, backward, AdamW), averaged over `steps`; bf16 through autocast."
    src, tgt_in, tgt_out = batch
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    sync(src.device)
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(src.device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            logits = model(src, tgt_in)
        loss = loss_fn(logits.float().reshape(-1, logits.size(-1)), tgt_out.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(src.device)
    return (time.perf_counter() - start) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--layers", type=int, default=3, help="encoder layers = decoder layers")
    p.add_argument("--d-ff", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--src-len", type=int, default=64)
    p.add_argument("--tgt-len", type=int, default=64)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round and model")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--ceiling-n", type=int, help="matmul size of the ceiling (default 2048 on CPU, 8192 on GPU)")
    a = p.parse_args()
    device, dtype = torch.device(a.device), {"fp32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda, but no CUDA GPU is visible")
    ceiling_n = a.ceiling_n or (8192 if device.type == "cuda" else 2048)

    torch.manual_seed(0)
    c = TransformerConfig(a.vocab, a.vocab, d_model=a.d_model, n_heads=a.heads, n_encoder_layers=a.layers,
                          n_decoder_layers=a.layers, d_ff=a.d_ff, dropout=0.1, max_len=max(a.src_len, a.tgt_len),
                          norm_first=True, final_norm=True)
    models = {"torch_handle.Transformer": Transformer(c).to(device), "torch.nn.Transformer": TorchReference(c).to(device)}
    counts = {name: count_parameters(m) for name, m in models.items()}
    assert len(set(counts.values())) == 1, f"sizes differ: {counts}"
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}
    batch = [t.to(device) for t in make_batch(c, a.batch, a.src_len, a.tgt_len, torch.Generator().manual_seed(0))]
    flops_per_step = a.batch * c.training_flops(a.src_len, a.tgt_len)
    tokens_per_step = a.batch * a.tgt_len

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, {a.dtype}; {counts[next(iter(counts))]:,} parameters "
          f"each; batch {a.batch} × (src {a.src_len}, tgt {a.tgt_len}); {flops_per_step / 1e9:.2f} GFLOP per step")
    for name, m in models.items():                                   # warm-up: allocator, AdamW state
        m.train(); time_steps(m, opts[name], batch, 2, dtype)
    ceilings, times = [], {name: [] for name in models}
    for r in range(a.rounds):
        ceilings.append(matmul_ceiling(device, dtype, ceiling_n))
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            times[name].append(time_steps(models[name], opts[name], batch, a.steps, dtype))
    ceiling = statistics.median(ceilings)

    print(f"matmul ceiling ({ceiling_n}² {a.dtype}, median of {a.rounds} rounds): {ceiling / 1e9:.1f} GFLOP/s\n")
    print(f"{'model':26} {'step ms':>9} {'tgt tok/s':>10} {'GFLOP/s':>8} {'MFU':>6}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:26} {t * 1e3:9.1f} {tokens_per_step / t:10.0f} {flops_per_step / t / 1e9:8.1f} "
              f"{flops_per_step / t / ceiling:6.1%}")
    ratios = sorted(theirs / ours for ours, theirs in zip(*times.values()))
    print(f"\nthroughput ratio torch_handle / nn.Transformer (paired by round): median {statistics.median(ratios):.3f}, "
          f"range {ratios[0]:.3f}–{ratios[-1]:.3f} over {a.rounds} rounds; target ≥ 1.0")


if __name__ == "__main__":
    main()
