"""Learner copies of the chapters: nbs/NAME.ipynb → lab/NAME.ipynb without solutions (scripts/lab.sh runs this).

usage: python scripts/make_learner_copies.py [LAB_FOLDER]     (default: lab/ beside nbs/)
A copy that exists already is kept: it holds the learner's work. Delete or rename one to get a fresh copy.
Kept copies whose chapter changed after they were made are named."""
import sys
from pathlib import Path

from torch_handle.utils.exercises import make_learner_copies

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(f"error: takes at most one argument, a folder; {__doc__.split(chr(10) * 2)[1].splitlines()[0]}",
              file=sys.stderr)
        return 2
    lab = Path(argv[0]) if argv else ROOT / "lab"
    if lab.exists() and not lab.is_dir():
        print(f"error: {lab} exists and is not a folder", file=sys.stderr)
        return 2
    made, kept, stale = make_learner_copies(ROOT / "nbs", lab)
    print(f"{lab}: {len(made)} learner cop{'y' if len(made) == 1 else 'ies'} made"
          + (f", {len(kept)} kept (yours: delete one to start its exercises again)" if kept else ""))
    if stale:
        print(f"changed since your copy was made: {', '.join(stale)} (see nbs/ for the new version)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
