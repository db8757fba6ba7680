"""Chapter 07a (FSDP2) on 3 CPU ranks. tests/test_exercises.py runs the chapter's learner copy on 2 ranks; this adds
N = 3, where a sum over the ranks is more than one addition and the 61-row output layer splits 21/21/19: parity with
DDP, gradient shards against DDP's rows, all-gathers per step, FSDP1's flat shards, and the exercises' checks against
this run's measurements. A smaller data set (`n_pairs`) keeps it lean."""
import json


def test_chapter_07a_on_three_ranks(run_script, tmp_path):
    r = run_script("scripts/run_chapter.sh", "07a_fsdp2", "--gpus", "0", "--nproc", "3", "-p", "n_pairs", "1500", env={"TORCH_HANDLE_RUNS": str(tmp_path)}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "07a_fsdp2").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    assert m["world_size"] == 3 and m["steps"] == 40, m
    assert m["fsdp2_vs_ddp_max_relative"] <= 1e-6, m
    assert m["gathers_per_step"] == {"None": 13, "True": 14, "False": 7}, m    # 6 blocks + the root
