"""The full single-process baseline of chapter 05b: train the translation model from model_config.yaml within a
time budget, then greedy-decode the whole test split and report exact match, chrF and piece-level BLEU.
Course target: >= 95% exact match on the test split within 5 minutes of training on a 2-core CPU.
The run itself is the training entry's (`torch_handle.main.train`, mode single); this script adds the verdict.

    source scripts/env.sh && python bench/translation_baseline.py [--config PATH] [--time-budget 300]
"""
import argparse

import torch

from torch_handle.main import train


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="a model_config.yaml (default: the packaged one)")
    p.add_argument("--time-budget", type=float, default=300.0, help="seconds of training at most")
    a = p.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    m = train("single", a.config, time_budget=a.time_budget)
    print(f"\ntrained {m['steps']} steps in {m['train_seconds']:.0f} s; valid loss by step: "
          + ", ".join(f"{s}: {l:.3f}" for s, l in m["valid_loss_by_step"].items()))
    print(f"test split ({m['test_pairs']} pairs, greedy): exact match {m['exact_match']:.2%}, chrF {m['chrf']:.2f}, "
          f"piece-level BLEU {m['bleu']:.2f}")
    met = m["exact_match"] >= 0.95 and m["train_seconds"] <= a.time_budget + 5   # the loop ends at the first step past it
    print(f"target: >= 95% exact match within {a.time_budget:.0f} s of training -> {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
