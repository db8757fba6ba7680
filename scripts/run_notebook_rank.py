"""Execute a notebook as one rank of a distributed job (started by torchrun or the deepspeed launcher).

Each rank runs papermill on its own kernel, which inherits RANK, WORLD_SIZE, MASTER_ADDR/PORT. The kernel talks
to papermill over IPC sockets in a private directory (TCP kernels race for ports when many start at once) and gets
a private TMPDIR. The rank writes NAME.rank{r}.ipynb and status.rank{r}.json (which cell failed, and why) into
the run folder. When the launcher stops this rank (SIGTERM, because another rank failed), the kernel's whole
process group is killed first, so nothing is left behind.

    python scripts/run_notebook_rank.py --notebook nbs/06_ddp.ipynb --out runs/06_ddp/T --cwd nbs
        [--timeout SECONDS] [--param KEY VALUE ...]
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

LIVE_KERNELS: list[AsyncKernelManager] = []


class IPCKernelManager(AsyncKernelManager):
    "A kernel manager whose sockets are IPC files under this rank's private directory."
    ipc_prefix = ""

    def __init__(self, **kwargs):
        super().__init__(transport="ipc", ip=self.ipc_prefix, **kwargs)
        LIVE_KERNELS.append(self)


def kill_kernels() -> None:
    "SIGKILL every kernel this rank started, with its children (each kernel leads its own process group)."
    for km in LIVE_KERNELS:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
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


def parse_value(text: str):
    "A parameter's value: JSON when it parses (numbers, true/false, lists), else the string itself."
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--notebook", required=True)
    p.add_argument("--out", required=True, help="the run folder")
    p.add_argument("--cwd", required=True, help="working directory of the kernel")
    p.add_argument("--timeout", type=float, default=None, help="seconds one cell may run before the rank fails")
    p.add_argument("--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    p.add_argument("--local_rank", type=int, help=argparse.SUPPRESS)    # added by the deepspeed launcher; env has it
    a = p.parse_args()

    rank = int(os.environ.get("RANK", "0"))
    out, name = Path(a.out), Path(a.notebook).stem
    status_file = out / f"status.rank{rank}.json"
    private = Path(tempfile.mkdtemp(prefix=f"th-rank{rank}-"))       # short path: IPC socket names are limited
    (private / "tmp").mkdir()
    os.environ["TMPDIR"] = str(private / "tmp")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(private / "runtime")
    os.environ["TORCH_HANDLE_RUN_DIR"] = str(out.resolve())          # where a chapter writes its metrics
    IPCKernelManager.ipc_prefix = str(private / "kernel")
    start = time.time()

    def write_status(**fields):
        status_file.write_text(json.dumps({"rank": rank, "seconds": round(time.time() - start, 1), **fields}))

    def on_signal(signum, _frame):
        kill_kernels()
        write_status(ok=False, error=f"stopped by signal {signal.Signals(signum).name} (another rank failed or the job was cancelled)")
        shutil.rmtree(private, ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        papermill.execute_notebook(
            a.notebook, str(out / f"{name}.rank{rank}.ipynb"), parameters={k: parse_value(v) for k, v in a.param},
            cwd=a.cwd, kernel_name="python3", progress_bar=False, log_output=False,
            execution_timeout=a.timeout, kernel_manager_class=IPCKernelManager)
        write_status(ok=True)
        return 0
    except PapermillExecutionError as e:
        write_status(ok=False, cell=e.exec_count, ename=e.ename, error=f"{e.ename}: {e.evalue}")
        print(f"rank {rank}: cell [{e.exec_count}] raised {e.ename}: {e.evalue}", file=sys.stderr)
        return 1
    except Exception as e:  # a timeout, a dead kernel, a bad notebook: still one clear line
        message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        write_status(ok=False, cell=running_cell(out / f"{name}.rank{rank}.ipynb"), error=message)
        print(f"rank {rank}: {message}", file=sys.stderr)
        return 1
    finally:
        kill_kernels()
        shutil.rmtree(private, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
