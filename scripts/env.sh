# Source me (scripts/*.sh do): builds .venv/ on first use, or when the pins in
# scripts/requirements.txt or scripts/setup_env.sh change, then activates it.
# TORCH_HANDLE_ACTIVE_ENV=1 uses the python3 already on PATH instead (a cluster's own PyTorch build,
# with the packages of scripts/requirements.txt and deepspeed installed, and this folder on PYTHONPATH).
_th_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# No GPU in this machine: DeepSpeed must use its CPU accelerator (scripts/setup_env.sh reads this too). The one check
# in bash; Python asks torch_handle.utils.launch.visible_gpus, which honours CUDA_VISIBLE_DEVICES.
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then export DS_ACCELERATOR=cpu; fi
if [[ -n "${TORCH_HANDLE_ACTIVE_ENV:-}" ]]; then
  export PYTHONPATH="$_th_root${PYTHONPATH:+:$PYTHONPATH}"
else
  if [[ "$(cat "$_th_root/.venv/.stamp" 2>/dev/null)" != \
        "$(cat "$_th_root/scripts/requirements.txt" "$_th_root/scripts/setup_env.sh" | sha256sum)" ]]; then
    bash "$_th_root/scripts/setup_env.sh" || { echo "error: building the environment failed" >&2; return 1; }
  fi
  # shellcheck disable=SC1091
  source "$_th_root/.venv/bin/activate"
  # JIT-built DeepSpeed ops are cached inside the environment: built once.
  export TORCH_EXTENSIONS_DIR="$_th_root/.venv/torch_extensions"
fi
# torch.profiler's tracer (kineto) prints two lines per trace at its highest log level, into every profiled
# notebook (chapter 09): silence its own log. Set KINETO_LOG_LEVEL=0 to see it.
export KINETO_LOG_LEVEL="${KINETO_LOG_LEVEL:-6}"
unset _th_root
# DeepSpeed calls torch.distributed's collectives by their deprecated names on every step, and torch warns about
# each call into the chapters' outputs (dozens of lines per ZeRO run): DeepSpeed's code, not the reader's. Only that
# warning is silenced.
_th_filter="ignore::FutureWarning:torch.distributed.c10d_logger"
[[ ",${PYTHONWARNINGS:-}," == *",$_th_filter,"* ]] || export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}$_th_filter"
unset _th_filter
