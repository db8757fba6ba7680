"""The full single-process baseline of chapter 05b: train the translation model from model_config.yaml within a
time budget, then greedy-decode the whole test split and report exact match, chrF and piece-level BLEU.
Course target: >= 95% exact match on the test split within 5 minutes of training on a 2-core CPU.

    source scripts/env.sh && python bench/translation_baseline.py [--config PATH] [--time-budget 300]
"""
import argparse
import tempfile
import time

import torch

from torch_handle.model import Transformer
from torch_handle.train.baseline import (Trainer, build_number_data, bucketed_loader, load_config, translate,
                                         translation_scores, warmup_cosine)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="a model_config.yaml (default: the packaged one)")
    p.add_argument("--time-budget", type=float, default=300.0, help="seconds of training at most")
    a = p.parse_args()

    cfg = load_config(a.config)
    t = cfg.training
    torch.manual_seed(t.seed)
    with tempfile.TemporaryDirectory() as workdir:
        data = build_number_data(cfg.data, cfg.model.max_len, workdir)
    model = Transformer(cfg.transformer_config(len(data.src_vocab), len(data.tgt_vocab)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, betas=(0.9, 0.98))
    trainer = Trainer(model, bucketed_loader(data.train, t.batch_size, seed=t.seed), optimizer,
                      warmup_cosine(optimizer, t.warmup_steps, t.max_steps), t.label_smoothing, t.clip_grad_norm)
    valid = bucketed_loader(data.valid, 256, shuffle=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {sum(p.numel() for p in model.parameters()):,} "
          f"parameters; train {len(data.train)}, valid {len(data.valid)}, test {len(data.test)} pairs")

    start = time.time()
    history = trainer.fit(t.max_steps, eval_loader=valid, eval_every=t.eval_every, time_budget_s=a.time_budget)
    train_s = time.time() - start
    start = time.time()
    hyps = translate(model, [s for s, _ in data.test.pairs], data)
    scores = translation_scores(hyps, [r for _, r in data.test.pairs], data.tgt_tokenizer)
    print(f"\ntrained {trainer.step} steps ({trainer.step * t.batch_size / len(data.train):.1f} epochs) in {train_s:.0f} s; "
          f"valid loss by step: " + ", ".join(f"{s}: {l:.3f}" for s, l in zip(history["eval_step"], history["eval_loss"])))
    print(f"test split ({len(hyps)} pairs, greedy, decoded in {time.time() - start:.0f} s): "
          f"exact match {scores['exact_match']:.2%}, chrF {scores['chrf']:.2f}, piece-level BLEU {scores['bleu']:.2f}")
    print(f"target: >= 95% exact match within 300 s of training -> "
          f"{'met' if scores['exact_match'] >= 0.95 and train_s <= 300 else 'NOT met'}")


if __name__ == "__main__":
    main()
