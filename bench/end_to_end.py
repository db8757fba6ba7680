"""The course end to end: train the translation model of model_config.yaml with each mode of the training entry,
started as a user starts it (the launch scripts for DDP and DeepSpeed), then print the final metrics side by side
against chapter 05's quality target (>= 95% exact match on the whole test split, greedy decoding).

    source scripts/env.sh && python bench/end_to_end.py [--modes single,ddp,deepspeed] [--zero_stage 2] [--out runs/e2e]

CPU ranks: NPROC (default 2) with gloo; on a GPU machine the scripts take every visible GPU.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.95


def command(mode: str, zero_stage: int, out: Path) -> list[str]:
    args = ["--out", str(out)]
    if mode == "single":
        return [sys.executable, "-m", "torch_handle.main", "--mode", "single", *args]
    if mode == "ddp":
        return ["bash", str(ROOT / "scripts/train_ddp_single_node.sh"), *args]
    return ["bash", str(ROOT / "scripts/train_deepspeed.sh"), "--zero_stage", str(zero_stage), *args]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", default="single,ddp,deepspeed")
    p.add_argument("--zero_stage", type=int, default=2, help="ZeRO stage of the deepspeed mode")
    p.add_argument("--out", default=str(ROOT / "runs" / "e2e" / time.strftime("%Y%m%d-%H%M%S")))
    a = p.parse_args()
    modes = a.modes.split(",")
    if unknown := [m for m in modes if m not in ("single", "ddp", "deepspeed")]:
        sys.exit(f"error: unknown mode {unknown[0]!r}; choose from single, ddp, deepspeed")
    out = Path(a.out)
    if out.exists():
        sys.exit(f"error: {out} exists; choose another --out (nothing is overwritten)")

    results = {}
    for mode in modes:
        run = out / mode
        run.mkdir(parents=True)
        start = time.time()
        with open(run / "log.txt", "w") as log:
            rc = subprocess.run(command(mode, a.zero_stage, run), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc:
            sys.exit(f"error: {mode} failed with exit code {rc}; see {run / 'log.txt'}")
        results[mode] = {**json.loads((run / "metrics.json").read_text()), "wall_seconds": time.time() - start}
        print(f"{mode} done in {results[mode]['wall_seconds']:.0f} s", flush=True)

    print(f"\n{'mode':>10} {'ranks':>5} {'steps':>5} {'train s':>7} {'valid loss':>10} {'exact match':>11} {'BLEU':>6} "
          f"{'chrF':>6}  target (>= {TARGET:.0%} exact match)")
    for mode, m in results.items():
        name = f"zero{m['zero_stage']}" if mode == "deepspeed" else mode
        print(f"{name:>10} {m['world_size']:5d} {m['steps']:5d} {m['train_seconds']:7.0f} {m['valid_loss']:10.4f} "
              f"{m['exact_match']:11.2%} {m['bleu']:6.2f} {m['chrf']:6.2f}  {'met' if m['exact_match'] >= TARGET else 'NOT met'}")
    print(f"\nmetrics.json and logs: {out}")


if __name__ == "__main__":
    main()
