import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from torch_handle.utils.checkpoint import LATEST, checkpoint_step

def training_command(mode: str, nproc: int = 2, *args: str) -> list[str]:
    "The command that trains with `torch_handle.main` on `nproc` CPU ranks under torchrun (one process for `single`)."
    entry = ["-m", "torch_handle.main", "--mode", mode, *args]
    if mode == "single":
        return [sys.executable, *entry]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "--max-restarts", "0", *entry]

def _cpu_env() -> dict:
    "CPU ranks with gloo, one thread each (2 cores), DeepSpeed on its CPU accelerator."
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
            "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}

def rank_pid(launcher: psutil.Process, rank: int, timeout: float = 60) -> int:
    "The pid of global rank `rank` among the launcher's descendants (read from each process's RANK)."
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in launcher.children(recursive=True):
            try:
                if p.environ().get("RANK") == str(rank):
                    return p.pid
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        time.sleep(0.1)
    raise TimeoutError(f"no process with RANK={rank} under pid {launcher.pid}")

def run_training(mode: str, out: str | Path, *args: str, nproc: int = 2, kill_rank: int | None = None,
                 kill_after: int | None = None, checkpoint_dir: str | Path | None = None, timeout: float = 300) -> dict:
    """Run `torch_handle.main` (torchrun, `nproc` CPU ranks) writing to `out`; return its exit code and, when it
    finished, its metrics. With `kill_rank`, SIGKILL that rank once `checkpoint_dir/latest` names step >= `kill_after`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = training_command(mode, nproc, "--out", str(out), *args)
    with open(out / "log.txt", "a") as log:
        job = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_cpu_env(), start_new_session=True)
        killed = None
        try:
            if kill_rank is not None:
                latest = Path(checkpoint_dir) / LATEST
                while job.poll() is None:
                    step = checkpoint_step(latest.read_text().strip()) if latest.exists() else None
                    if step is not None and step >= kill_after:
                        pid = job.pid if mode == "single" else rank_pid(psutil.Process(job.pid), kill_rank)
                        os.kill(pid, signal.SIGKILL)
                        killed = {"rank": kill_rank, "pid": pid, "after_checkpoint": step}
                        break
                    time.sleep(0.02)
            code = job.wait(timeout=timeout)
        finally:
            if job.poll() is None:                              # never leave a job behind
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
    metrics = out / "metrics.json"
    return {"returncode": code, "killed": killed,
            "metrics": json.loads(metrics.read_text()) if code == 0 and metrics.exists() else None}

def kill_and_resume(mode: str, workdir: str | Path, *args: str, max_steps: int = 40, every: int = 10,
                    kill_after: int = 20, nproc: int = 2) -> dict:
    """The lab: an uninterrupted run, then the same run with rank `nproc - 1` SIGKILLed after checkpoint
    `kill_after`, then `--resume auto`. Returns the three results."""
    workdir = Path(workdir)
    common = ("--max_steps", str(max_steps), *args)
    ckpt = workdir / "checkpoints"
    with_ckpt = (*common, "--checkpoint_dir", str(ckpt), "--checkpoint_every", str(every))
    reference = run_training(mode, workdir / "reference", *common, nproc=nproc)
    killed = run_training(mode, workdir / "killed", *with_ckpt, nproc=nproc, kill_rank=nproc - 1,
                          kill_after=kill_after, checkpoint_dir=ckpt)
    resumed = run_training(mode, workdir / "resumed", *with_ckpt, "--resume", "auto", nproc=nproc)
    return {"reference": reference, "killed": killed, "resumed": resumed}
