#!/usr/bin/env bash
# Builds the course environment in .venv/ from the pins (called by scripts/env.sh when needed).
set -euo pipefail
TORCH_VERSION=2.13.0
DEEPSPEED_VERSION=0.19.8
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOG="$ROOT/.venv-setup.log"

py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
echo "[env] building .venv with $($py --version) (first run only, a few minutes; log: $LOG)" >&2
rm -rf "$VENV"; : >"$LOG"
step() {  # run quietly into the log; on failure show its end
  "$@" >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; echo "error: environment step failed: $*" >&2; exit 1; }
}
pip() { step "$VENV/bin/python" -m pip install --disable-pip-version-check "$@"; }
step "$py" -m venv "$VENV"
pip --upgrade pip setuptools wheel
# The CPU wheel where one is offered locally (these machines); a CUDA build elsewhere.
pip "torch==$TORCH_VERSION"
pip -r "$ROOT/scripts/requirements.txt"
# deepspeed imports torch in its setup: install after torch, without build isolation.
DS_BUILD_OPS=0 pip --no-build-isolation "deepspeed==$DEEPSPEED_VERSION"
pip --no-deps --no-build-isolation -e "$ROOT"
# On CPU, DeepSpeed's communication backend JIT-builds its shared-memory op on first use (~60 s): build it now,
# into the environment (env.sh points TORCH_EXTENSIONS_DIR there), so no chapter run compiles anything. PATH as
# env.sh leaves it: with another PATH the build commands differ and the first run would rebuild the op.
if [[ "${DS_ACCELERATOR:-}" == cpu ]]; then                    # env.sh sets it where the machine has no GPU
  step env PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV" DS_ACCELERATOR=cpu TORCH_EXTENSIONS_DIR="$VENV/torch_extensions" \
    "$VENV/bin/python" -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder; ShareMemCommBuilder().load()"
fi
step "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (torch-handle)"
cat "$ROOT/scripts/requirements.txt" "$ROOT/scripts/setup_env.sh" | sha256sum > "$VENV/.stamp"
echo "[env] ready: $VENV" >&2
