"""Chapter 07a (FSDP2) on 3 CPU ranks, where shards are uneven and sums over ranks are not one addition: its asserts
(DTensor shards, parity with DDP, all-gathers per step, memory beside DDP and ZeRO-3, exercises) and its metrics."""
import json


def test_chapter_07a_on_three_ranks(chapter_on_cpu_ranks):
    run = chapter_on_cpu_ranks("07a_fsdp2", 3)
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == 3 and m["steps"] == 40 and m["valid_loss"] < 3.0, m
    assert m["fsdp2_vs_ddp_max_relative"] <= 1e-6, m
    assert m["gathers_per_step"] == {"True": 14, "False": 7}, m          # 6 blocks + the root; twice when resharding
