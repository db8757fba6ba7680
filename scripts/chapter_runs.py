"""What the two modes of scripts/run_chapter.py share: a parameter typed as papermill's `-p` types it, and the ranks'
status files (written by scripts/run_notebook_rank.py; read by the launcher and by scripts/build_site.py).

Run as a program, it executes a single-process chapter in one kernel, logging every cell's output:

    python scripts/chapter_runs.py NOTEBOOK OUT --cwd DIR [--timeout SECONDS] [--param=KEY=VALUE ...]
"""
import argparse
import json
import logging
import sys
from pathlib import Path

STATUS = "status.rank{rank}.json"


def typed(value: str):
    "A parameter's value as papermill's `-p` types it: True, False, None, an int, a float, else the string."
    constants = {"True": True, "False": False, "None": None}
    if value in constants:
        return constants[value]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_param(text: str) -> tuple[str, object]:
    "`KEY=VALUE`, the value `typed`."
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, typed(value)


def rank_statuses(run: Path) -> list[dict]:
    "The status of every rank that reported in the run folder `run` (each rank writes its own, atomically)."
    statuses = []
    for path in Path(run).glob(STATUS.format(rank="*")):
        try:
            statuses.append(json.loads(path.read_text()))
        except ValueError:
            pass
    return statuses


def failure_line(run: Path) -> str:
    "One line naming the first rank to fail on its own (the others were stopped because of it)."
    failed = sorted((s for s in rank_statuses(run) if not s["ok"]), key=lambda s: (s.get("stopped", False), s["finished_at"]))
    if not failed:
        return "error: the launcher failed before any rank of this node reported (see launcher.log)"
    s = failed[0]
    where = f" in cell [{s['cell']}]" if s.get("cell") is not None else ""
    return f"error: rank {s['rank']} failed{where} after {s['seconds']} s: {s['error']}"


def main() -> int:
    import papermill                                                 # here: the launcher and the site need none of it
    from papermill.exceptions import PapermillExecutionError

    p = argparse.ArgumentParser(description="Execute a notebook in one kernel, logging every cell's output.")
    p.add_argument("notebook")
    p.add_argument("out", help="the executed notebook")
    p.add_argument("--cwd", required=True, help="working directory of the kernel")
    p.add_argument("--timeout", type=float, default=None, help="seconds one cell may run")
    p.add_argument("--param", type=parse_param, action="append", default=[], metavar="KEY=VALUE",
                   help="give as --param=KEY=VALUE (one token, so values may start with '-')")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")       # papermill logs the cells' output
    try:
        papermill.execute_notebook(a.notebook, a.out, parameters=dict(a.param), cwd=a.cwd, progress_bar=False,
                                   log_output=True, execution_timeout=a.timeout)
    except PapermillExecutionError as e:
        print(f"cell [{e.exec_count}] raised {e.ename}: {e.evalue}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
