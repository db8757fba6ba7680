"""Run one chapter of the course, top to bottom, and keep the executed notebook(s).

usage: bash scripts/run_chapter.sh NAME [--gpus N] [--nproc N] [--launcher torchrun|deepspeed]
       [--nnodes N --node-rank R --master-addr A --master-port P] [--timeout S] [-p KEY VALUE ...]

NAME is a notebook in nbs/, with or without .ipynb (e.g. 04_transformer, 06_ddp).
Single-process chapters run in one kernel. Distributed chapters (notebook metadata
"torch_handle": {"distributed": true}) run on every rank under torchrun (or the deepspeed
launcher), each rank executing the notebook through papermill:
  --gpus N     N ranks on N GPUs with NCCL; default: every visible GPU, or CPU ranks with gloo
  --gpus 0     force CPU ranks; --nproc N sets their number (default 2)
  --timeout S  a cell running longer than S seconds fails its rank (default 540: under NCCL's
               10-minute watchdog, so the hung rank is the one named; TORCH_HANDLE_CELL_TIMEOUT)
  --nnodes/--node-rank/--master-addr/--master-port: one launch per node, static rendezvous
               (node 0 holds global rank 0 and its notebook); torchrun only
  -p KEY VALUE a papermill parameter for the notebook's `parameters` cell
Outputs go to runs/NAME/<timestamp>/ (TORCH_HANDLE_RUNS overrides runs/): NAME.ipynb with NAME.log,
or NAME.rank{r}.ipynb with per-rank logs and status; a chapter may add metrics.json there.
Stopping the launcher (Ctrl-C, SIGTERM, SIGHUP) stops every process the run started, and nothing is left.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from chapter_runs import failure_line
from torch_handle.utils.launch import become_subreaper, cpu_ranks_env, free_port, stop_process_tree, visible_gpus

ROOT = Path(__file__).resolve().parent.parent
NBS = Path(os.environ.get("TORCH_HANDLE_NBS", ROOT / "nbs"))
DISTRIBUTED_ONLY = ("--gpus", "--nproc", "--launcher", "--nnodes", "--node-rank", "--master-addr", "--master-port")


def fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def usage(error: str | None = None):
    "The usage lines and the chapters, on stderr; exit 2."
    chapters = sorted(p.stem for p in NBS.glob("[0-9][0-9]*.ipynb"))
    lines = ([f"error: {error}"] if error else []) + __doc__.split("\n\n")[1].splitlines() + ["chapters:"]
    print("\n".join(lines + [f"  {c}" for c in chapters]), file=sys.stderr)
    sys.exit(2)


def count(lowest: int, highest: int | None = None, what: str | None = None):
    "An argparse type: a whole number in [lowest, highest], refused in one line otherwise."
    what = what or ("a positive integer" if lowest else "a non-negative integer")

    def parse(text: str) -> int:
        if not (re.fullmatch(r"[0-9]+", text) and lowest <= int(text) and (highest is None or int(text) <= highest)):
            raise argparse.ArgumentTypeError(f"needs {what}, got '{text}'")
        return int(text)
    return parse


def launcher_name(text: str) -> str:
    if text not in ("torchrun", "deepspeed"):
        raise argparse.ArgumentTypeError(f"is torchrun or deepspeed, got '{text}'")
    return text


def parse(argv: list[str]) -> argparse.Namespace:
    "The options after NAME; every mistake is one line and exit 2 (an unknown argument adds the usage)."
    rest, params = [], []
    while argv:                           # `-p KEY VALUE` first: argparse would take a VALUE like '-hi' for an option
        if argv[0] == "-p":
            if len(argv) < 3:
                fail("-p needs KEY and VALUE")
            params.append((argv[1], argv[2]))
            argv = argv[3:]
        else:
            rest.append(argv.pop(0))
    p = argparse.ArgumentParser(prog="bash scripts/run_chapter.sh NAME", add_help=False, allow_abbrev=False,
                                exit_on_error=False)
    p.add_argument("--gpus", type=count(0))
    p.add_argument("--nproc", type=count(1))
    p.add_argument("--launcher", type=launcher_name, default="torchrun")
    p.add_argument("--nnodes", type=count(1), default=1)
    p.add_argument("--node-rank", type=count(0), default=0)
    p.add_argument("--master-addr")
    p.add_argument("--master-port", type=count(1, 65535, "a port number in 1-65535"))
    p.add_argument("--timeout", type=count(1), default=540)
    try:
        a, unknown = p.parse_known_args(rest)
    except argparse.ArgumentError as e:
        fail(f"{e.argument_name} needs a value" if e.message.startswith("expected") else f"{e.argument_name} {e.message}")
    if unknown:
        usage(f"unknown argument '{unknown[0]}'")
    a.params = params
    given = [t.split("=")[0] for t in rest if t.split("=")[0] in DISTRIBUTED_ONLY]
    a.distributed_options = [o for o in given if o != "--gpus" or a.gpus != 0]     # --gpus 0 is any chapter's default
    return a


def on_signal(signum, _frame):
    "Stop everything this run started, then exit 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)                              # a second Ctrl-C does not cut the stop short
    stop_process_tree(os.getpid())
    print(f"[run] stopped by {signal.Signals(signum).name}", file=sys.stderr)
    sys.exit(128 + signum)


def run_folder(name: str) -> Path:
    "A new runs/NAME/<timestamp>[-n] folder: a run never reuses one."
    base = Path(os.environ.get("TORCH_HANDLE_RUNS", ROOT / "runs")) / name / time.strftime("%Y%m%d-%H%M%S")
    base.parent.mkdir(parents=True, exist_ok=True)
    out, n = base, 1
    while True:
        try:
            out.mkdir()
            return out
        except FileExistsError:
            out, n = Path(f"{base}-{n}"), n + 1


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def single_process(name: str, a: argparse.Namespace, out: Path) -> int:
    "One kernel, through scripts/chapter_runs.py; its log is NAME.log."
    print(f"[run] {name} (single process) → {out}", file=sys.stderr)
    log = out / f"{name}.log"
    with open(log, "w") as f:
        rc = subprocess.run([sys.executable, str(ROOT / "scripts" / "chapter_runs.py"), str(NBS / f"{name}.ipynb"),
                             str(out / f"{name}.ipynb"), "--cwd", str(NBS), "--timeout", str(a.timeout),
                             *(f"--param={k}={v}" for k, v in a.params)], stdout=f, stderr=subprocess.STDOUT).returncode
    if rc:
        print(tail(log), file=sys.stderr)
        print(f"error: {name} failed; full log: {log}", file=sys.stderr)
        return 1
    print(f"executed notebook: {out / f'{name}.ipynb'}")
    return 0


def distributed(name: str, a: argparse.Namespace, gpus: int, out: Path) -> int:
    "Every rank runs scripts/run_notebook_rank.py under torchrun or the deepspeed launcher."
    if gpus:
        nproc, env = gpus, {**os.environ, "TORCH_HANDLE_BACKEND": "nccl"}
    else:                                                              # --gpus 0 on a GPU machine: really the CPU
        nproc = a.nproc or 2
        env = cpu_ranks_env(nproc)
        if "TQDM_DISABLE" not in os.environ:
            del env["TQDM_DISABLE"]                                    # rank 0's notebook keeps its progress bar
    env["TORCHINDUCTOR_CACHE_DIR"] = str(ROOT / ".venv" / "inductor_cache")   # shared: ranks' TMPDIRs are private
    runner = [str(ROOT / "scripts" / "run_notebook_rank.py"), "--notebook", str(NBS / f"{name}.ipynb"),
              "--out", str(out), "--cwd", str(NBS), "--timeout", str(a.timeout),
              *(f"--param={k}={v}" for k, v in a.params)]
    if a.launcher == "deepspeed":
        cmd = ["deepspeed", "--num_gpus", str(nproc), "--master_port", str(a.master_port or free_port()),
               "--enable_each_rank_log", str(out / "logs"), *runner]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--log-dir",
               str(out / "logs"), "--tee", "3", "--max-restarts", "0"]
        if a.nnodes == 1 and not a.master_addr:
            cmd.append("--standalone")
        else:
            cmd += ["--nnodes", str(a.nnodes), "--node-rank", str(a.node_rank), "--master-addr", a.master_addr,
                    "--master-port", str(a.master_port or 29500)]
        cmd += runner
    print(f"[run] {name} on {nproc} {env['TORCH_HANDLE_BACKEND']} rank(s) per node ({a.launcher}) → {out}", file=sys.stderr)
    with open(out / "launcher.log", "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc:
        print(failure_line(out), file=sys.stderr)
        print(f"error: {name} failed (exit {rc}); logs: {out}/launcher.log, {out}/logs/", file=sys.stderr)
        return 1
    if (out / f"{name}.rank0.ipynb").exists():
        print(f"executed notebook (rank 0): {out / f'{name}.rank0.ipynb'}")
    else:
        print(f"executed this node's ranks in {out} (rank 0's notebook is on node 0)")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        usage()
    name = argv[0].removesuffix(".ipynb")
    if "/" in name or not (NBS / f"{name}.ipynb").is_file():
        usage(f"no chapter named '{name}'")
    a = parse(argv[1:])
    if a.node_rank >= a.nnodes:
        fail(f"--node-rank {a.node_rank} is outside --nnodes {a.nnodes}")
    if a.nnodes > 1 and not a.master_addr:
        fail(f"--nnodes {a.nnodes} needs --master-addr (and --master-port)")
    if a.launcher == "deepspeed" and (a.nnodes > 1 or a.master_addr):
        fail("--launcher deepspeed runs on one node here; use torchrun for --nnodes/--master-addr")
    is_distributed = json.loads((NBS / f"{name}.ipynb").read_text()).get("metadata", {}).get(
        "torch_handle", {}).get("distributed", False)
    if not is_distributed and a.distributed_options:
        fail(f"{name} is a single-process chapter; {a.distributed_options[0]} applies to distributed chapters only")
    visible = visible_gpus() if is_distributed and a.gpus != 0 else 0
    if a.gpus is not None and a.gpus > visible:
        fail(f"asked for --gpus {a.gpus} but {visible} GPU(s) are visible")
    gpus = visible if a.gpus is None else a.gpus
    if gpus and a.nproc and a.nproc != gpus:
        fail(f"--nproc {a.nproc} contradicts --gpus {gpus} (one rank per GPU)")

    become_subreaper()                        # orphans (a dead kernel's jobs) stay below this process: stoppable
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    os.environ["TORCH_HANDLE_CELL_TIMEOUT"] = str(a.timeout)
    out = run_folder(name)
    try:
        return distributed(name, a, gpus, out) if is_distributed else single_process(name, a, out)
    finally:
        stop_process_tree(os.getpid())        # whatever the run left behind (a job a cell started and never stopped)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
