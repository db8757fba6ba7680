"""The course end to end: train the translation model of model_config.yaml with each mode of the training entry,
started as a user starts it (the launch scripts for DDP, DeepSpeed and FSDP2), in each precision asked for, then print
the final metrics side by side against chapter 05's quality target (>= 95% exact match on the whole test split, greedy
decoding), and each bf16 run's valid loss against the fp32 run of its mode.

    source scripts/env.sh && python bench/end_to_end.py [--modes single,ddp,deepspeed,fsdp2] [--precisions fp32,bf16]
                                                        [--grad_accum 1] [--max_steps N] [--zero_stage 2] [--out runs/e2e]

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


MODES = ("single", "ddp", "deepspeed", "fsdp2")
SCRIPTS = {"ddp": "train_ddp_single_node.sh", "deepspeed": "train_deepspeed.sh", "fsdp2": "train_fsdp2.sh"}


def command(mode: str, a: argparse.Namespace, precision: str, out: Path) -> list[str]:
    args = ["--out", str(out), "--precision", precision, "--grad_accum", str(a.grad_accum)]
    args += ["--max_steps", str(a.max_steps)] if a.max_steps else []
    if mode == "single":
        return [sys.executable, "-m", "torch_handle.main", "--mode", "single", *args]
    if mode == "deepspeed":
        args += ["--zero_stage", str(a.zero_stage)]
    return ["bash", str(ROOT / "scripts" / SCRIPTS[mode]), *args]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--precisions", default="fp32", help="comma-separated: fp32, bf16")
    p.add_argument("--grad_accum", type=int, default=1, help="micro-batches per update, in every mode")
    p.add_argument("--max_steps", type=int, default=None, help="default: the configuration's training.max_steps")
    p.add_argument("--zero_stage", type=int, default=2, help="ZeRO stage of the deepspeed mode")
    p.add_argument("--out", default=str(ROOT / "runs" / "e2e" / time.strftime("%Y%m%d-%H%M%S")))
    a = p.parse_args()
    modes, precisions = a.modes.split(","), a.precisions.split(",")
    if unknown := [m for m in modes if m not in MODES]:
        sys.exit(f"error: unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    if unknown := [p for p in precisions if p not in ("fp32", "bf16")]:
        sys.exit(f"error: unknown precision {unknown[0]!r}; choose from fp32, bf16")
    out = Path(a.out)
    if out.exists():
        sys.exit(f"error: {out} exists; choose another --out (nothing is overwritten)")

    results = {}
    for mode in modes:
        for precision in precisions:
            run = out / f"{mode}-{precision}"
            run.mkdir(parents=True)
            start = time.time()
            with open(run / "log.txt", "w") as log:
                rc = subprocess.run(command(mode, a, precision, run), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
            if rc:
                sys.exit(f"error: {mode} ({precision}) failed with exit code {rc}; see {run / 'log.txt'}")
            results[mode, precision] = {**json.loads((run / "metrics.json").read_text()), "wall_seconds": time.time() - start}
            print(f"{mode} ({precision}) done in {results[mode, precision]['wall_seconds']:.0f} s", flush=True)

    print(f"\n{'mode':>10} {'prec':>4} {'ranks':>5} {'steps':>5} {'train s':>7} {'valid loss':>10} {'vs fp32':>8} "
          f"{'exact match':>11} {'BLEU':>6} {'chrF':>6}  target (>= {TARGET:.0%} exact match)")
    for (mode, precision), m in results.items():
        name = f"zero{m['zero_stage']}" if mode == "deepspeed" else mode
        fp32 = results.get((mode, "fp32"))
        versus = f"{m['valid_loss'] / fp32['valid_loss'] - 1:+8.2%}" if fp32 and precision != "fp32" else f"{'':>8}"
        print(f"{name:>10} {precision:>4} {m['world_size']:5d} {m['steps']:5d} {m['train_seconds']:7.0f} "
              f"{m['valid_loss']:10.4f} {versus} {m['exact_match']:11.2%} {m['bleu']:6.2f} {m['chrf']:6.2f}  "
              f"{'met' if m['exact_match'] >= TARGET else 'NOT met'}")
    print(f"\nmetrics.json and logs: {out}")


if __name__ == "__main__":
    main()
