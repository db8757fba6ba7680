import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_script():
    "Run a bash script of the project; returns the CompletedProcess (never raises on non-zero exit)."
    def run(*args, env=None, timeout=300):
        return subprocess.run(["bash", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    return run
