"""Execute a notebook as one rank of a distributed job (started by torchrun or the deepspeed launcher).

Each rank runs papermill on its own kernel, which inherits RANK, WORLD_SIZE, MASTER_ADDR/PORT. The kernel talks
to papermill over IPC sockets in a private directory (TCP kernels race for ports when many start at once) and gets
a private TMPDIR. The rank writes NAME.rank{r}.ipynb and status.rank{r}.json (which cell failed, and why) into
the run folder. When the launcher stops this rank (SIGTERM, because another rank failed), the kernel's whole
process group is killed first, so nothing is left behind.

    python scripts/run_notebook_rank.py --notebook nbs/06_ddp.ipynb --out runs/06_ddp/T --cwd nbs
        [--timeout SECONDS] [--param=KEY=VALUE ...]
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError

from chapter_runs import STATUS, parse_param

LIVE_KERNELS: list[AsyncKernelManager] = []


class IPCKernelManager(AsyncKernelManager):
    "A kernel manager whose sockets are IPC files under this rank's private directory."
    ipc_prefix = ""

    def __init__(self, **kwargs):
        super().__init__(transport="ipc", ip=self.ipc_prefix, **kwargs)
        LIVE_KERNELS.append(self)


def kill_kernels() -> None:
    "SIGKILL the process group of every kernel this rank started: the kernel and whatever its cells started."
    for km in LIVE_KERNELS:
        pgid = getattr(getattr(km, "provisioner", None), "pgid", None)   # kept after the kernel exits
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def running_cell(notebook: Path) -> int | None:
    "Execution count of the last cell papermill started (its notebook is saved after every cell)."
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    started = [c for c in cells if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return started[-1].get("execution_count") if started else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--notebook", required=True)
    p.add_argument("--out", required=True, help="the run folder")
    p.add_argument("--cwd", required=True, help="working directory of the kernel")
    p.add_argument("--timeout", type=float, default=None, help="seconds one cell may run before the rank fails")
    p.add_argument("--param", type=parse_param, action="append", default=[], metavar="KEY=VALUE",
                   help="give as --param=KEY=VALUE (one token, so values may start with '-')")
    p.add_argument("--local_rank", type=int, help=argparse.SUPPRESS)    # added by the deepspeed launcher; env has it
    a = p.parse_args()

    rank = int(os.environ.get("RANK", "0"))
    out, name = Path(a.out), Path(a.notebook).stem
    status_file = out / STATUS.format(rank=rank)
    private = Path(tempfile.mkdtemp(prefix=f"th-rank{rank}-"))       # short path: IPC socket names are limited
    (private / "tmp").mkdir()
    os.environ["TMPDIR"] = str(private / "tmp")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(private / "runtime")
    os.environ["TORCH_HANDLE_RUN_DIR"] = str(out.resolve())          # where a chapter writes its metrics
    IPCKernelManager.ipc_prefix = str(private / "kernel")
    start = time.time()

    finished = False

    def write_status(**fields):
        tmp = status_file.with_suffix(".tmp")                             # atomic: never a half-written file
        tmp.write_text(json.dumps({"rank": rank, "seconds": round(time.time() - start, 1),
                                   "finished_at": time.time(), **fields}))
        tmp.replace(status_file)

    def on_signal(signum, _frame):
        try:
            kill_kernels()
            if not finished:
                write_status(ok=False, stopped=True,
                             error=f"stopped by {signal.Signals(signum).name} (another rank failed or the job was cancelled)")
            shutil.rmtree(private, ignore_errors=True)
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        papermill.execute_notebook(
            a.notebook, str(out / f"{name}.rank{rank}.ipynb"), parameters=dict(a.param),
            cwd=a.cwd, kernel_name="python3", progress_bar=False, log_output=False,
            execution_timeout=a.timeout, kernel_manager_class=IPCKernelManager)
        finished = True
        write_status(ok=True)
        return 0
    except PapermillExecutionError as e:
        finished = True
        write_status(ok=False, cell=e.exec_count, ename=e.ename, error=f"{e.ename}: {e.evalue}")
        print(f"rank {rank}: cell [{e.exec_count}] raised {e.ename}: {e.evalue}", file=sys.stderr)
        return 1
    except Exception as e:  # a timeout, a dead kernel, a bad notebook: still one clear line
        finished = True
        message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        write_status(ok=False, cell=running_cell(out / f"{name}.rank{rank}.ipynb"), error=message)
        print(f"rank {rank}: {message}", file=sys.stderr)
        return 1
    finally:
        kill_kernels()
        shutil.rmtree(private, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
