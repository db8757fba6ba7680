#!/usr/bin/env bash
# Run one chapter of the course, top to bottom, and keep the executed notebook(s).
#
#   bash scripts/run_chapter.sh NAME [--gpus N] [--nproc N] [--launcher torchrun|deepspeed]
#        [--nnodes N --node-rank R --master-addr A --master-port P] [--timeout S] [-p KEY VALUE ...]
#
# NAME is a notebook in nbs/, with or without .ipynb (e.g. 04_transformer, 06_ddp).
# Single-process chapters run in one kernel. Distributed chapters (notebook metadata
# "torch_handle": {"distributed": true}) run on every rank under torchrun (or the deepspeed
# launcher), each rank executing the notebook through papermill:
#   --gpus N     N ranks on N GPUs with NCCL; default: every visible GPU, or CPU ranks with gloo
#   --gpus 0     force CPU ranks; --nproc N sets their number (default 2)
#   --timeout S  a cell running longer than S seconds fails its rank (default 540: under NCCL's
#                10-minute watchdog, so the hung rank is the one named; TORCH_HANDLE_CELL_TIMEOUT)
#   --nnodes/--node-rank/--master-addr/--master-port: one launch per node, static rendezvous
#                (node 0 holds global rank 0 and its notebook); torchrun only
#   -p KEY VALUE a papermill parameter for the notebook's `parameters` cell
# Outputs go to runs/NAME/<timestamp>/ (TORCH_HANDLE_RUNS overrides runs/): NAME.ipynb, or
# NAME.rank{r}.ipynb with per-rank logs and status; a chapter may add metrics.json there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NBS="${TORCH_HANDLE_NBS:-$ROOT/nbs}"

chapters() { (cd "$NBS" && ls [0-9][0-9]*.ipynb | sed 's/\.ipynb$//'); }
usage() {
  sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# */usage: /;2s/usage: /       /' >&2
  echo "chapters:" >&2; chapters | sed 's/^/  /' >&2; exit 2
}
fail() { echo "error: $*" >&2; exit 2; }
int() { [[ "$2" =~ ^[0-9]+$ ]] || fail "$1 needs a non-negative integer, got '$2'"; }
positive() { [[ "$2" =~ ^[0-9]+$ ]] && (( 10#$2 > 0 )) || fail "$1 needs a positive integer, got '$2'"; }

[[ $# -ge 1 && "$1" != -* ]] || usage
name="${1%.ipynb}"; shift
[[ "$name" != */* && -f "$NBS/$name.ipynb" ]] || { echo "error: no chapter named '$name'" >&2; usage; }
gpus="" nproc="" launcher=torchrun nnodes=1 node_rank=0 master_addr="" master_port="" timeout=540 params=()
dist_opts=()                                              # the options that only a distributed chapter takes
while [[ $# -gt 0 ]]; do
  case "$1" in
    -p) [[ $# -ge 3 ]] || fail "-p needs KEY and VALUE"; params+=("$2" "$3"); shift 3; continue ;;
    --gpus|--node-rank) [[ $# -ge 2 ]] || fail "$1 needs a value"; int "$1" "$2" ;;
    --nproc|--nnodes|--master-port|--timeout) [[ $# -ge 2 ]] || fail "$1 needs a value"; positive "$1" "$2" ;;
    --launcher|--master-addr) [[ $# -ge 2 ]] || fail "$1 needs a value" ;;
    *) echo "error: unknown argument '$1'" >&2; usage ;;
  esac
  [[ "$1" == --timeout || ( "$1" == --gpus && "$2" =~ ^0+$ ) ]] || dist_opts+=("$1")
  case "$1" in
    --gpus) gpus=$((10#$2)) ;; --nproc) nproc=$((10#$2)) ;; --nnodes) nnodes=$((10#$2)) ;;
    --node-rank) node_rank=$((10#$2)) ;; --master-port) master_port=$((10#$2)) ;; --timeout) timeout=$((10#$2)) ;;
    --master-addr) master_addr=$2 ;;
    --launcher) [[ "$2" == torchrun || "$2" == deepspeed ]] || fail "--launcher is torchrun or deepspeed, got '$2'"
                launcher=$2 ;;
  esac
  shift 2
done
[[ "$node_rank" -lt "$nnodes" ]] || fail "--node-rank $node_rank is outside --nnodes $nnodes"
[[ "$nnodes" -eq 1 || -n "$master_addr" ]] || fail "--nnodes $nnodes needs --master-addr (and --master-port)"
[[ "$launcher" == torchrun || ( "$nnodes" -eq 1 && -z "$master_addr" ) ]] \
  || fail "--launcher deepspeed runs on one node here; use torchrun for --nnodes/--master-addr"
distributed=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])).get("metadata",{}); print(int(bool(m.get("torch_handle",{}).get("distributed"))))' "$NBS/$name.ipynb")
[[ "$distributed" == 1 || ${#dist_opts[@]} -eq 0 ]] || fail "$name is a single-process chapter; ${dist_opts[0]} applies to distributed chapters only"

# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
# GPUs this process may use (CUDA_VISIBLE_DEVICES respected), counted only when they matter.
visible=0
if [[ "$distributed" == 1 && "${gpus:-}" != 0 ]] && command -v nvidia-smi >/dev/null; then
  visible=$(python -c 'import torch; print(torch.cuda.device_count())')
fi
if [[ -n "$gpus" && "$gpus" -gt "$visible" ]]; then
  fail "asked for --gpus $gpus but $visible GPU(s) are visible"
fi
gpus=${gpus:-$visible}
[[ "$gpus" -eq 0 || -z "$nproc" || "$nproc" -eq "$gpus" ]] || fail "--nproc $nproc contradicts --gpus $gpus (one rank per GPU)"
export TORCH_HANDLE_CELL_TIMEOUT=$timeout

# Stopping this script stops what it started (a CI cancel, a timeout, Ctrl-C).
child=""
trap '[[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null; wait; exit 143' TERM INT HUP
run() { "$@" & child=$!; wait "$child"; }
base="${TORCH_HANDLE_RUNS:-$ROOT/runs}/$name/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$(dirname "$base")"
out="$base"; n=1
while ! mkdir "$out" 2>/dev/null; do                       # never reuse a run folder
  [[ -e "$out" ]] || fail "cannot create $out"
  out="$base-$((n++))"
done

if [[ "$distributed" == 0 ]]; then
  echo "[run] $name (single process) → $out" >&2
  pm_params=(); for ((i = 0; i < ${#params[@]}; i += 2)); do pm_params+=(-p "${params[i]}" "${params[i+1]}"); done
  run papermill --cwd "$NBS" --log-output --no-progress-bar --execution-timeout "$timeout" ${pm_params[@]+"${pm_params[@]}"} \
    "$NBS/$name.ipynb" "$out/$name.ipynb" >"$out/$name.log" 2>&1 \
    || { tail -n 30 "$out/$name.log" >&2; echo "error: $name failed; full log: $out/$name.log" >&2; exit 1; }
  echo "executed notebook: $out/$name.ipynb"
  exit 0
fi

if [[ "$gpus" -gt 0 ]]; then
  nproc=$gpus; export TORCH_HANDLE_BACKEND=nccl
else
  nproc=${nproc:-2}; export TORCH_HANDLE_BACKEND=gloo
  export CUDA_VISIBLE_DEVICES="" DS_ACCELERATOR=cpu        # --gpus 0 on a GPU machine: really the CPU
  export OMP_NUM_THREADS=$(( $(nproc) / nproc > 0 ? $(nproc) / nproc : 1 ))   # two 2-thread ranks on 2 cores thrash
fi
rank_args=(--notebook "$NBS/$name.ipynb" --out "$out" --cwd "$NBS" --timeout "$timeout")
for ((i = 0; i < ${#params[@]}; i += 2)); do rank_args+=("--param=${params[i]}=${params[i+1]}"); done
export TORCHINDUCTOR_CACHE_DIR="$ROOT/.venv/inductor_cache"    # shared: ranks' TMPDIRs are private
runner="$ROOT/scripts/run_notebook_rank.py"
if [[ "$launcher" == deepspeed ]]; then
  free_port=$(python -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
  cmd=(deepspeed --num_gpus "$nproc" --master_port "${master_port:-$free_port}")
  cmd+=(--enable_each_rank_log "$out/logs" "$runner" "${rank_args[@]}")
else
  cmd=(torchrun --nproc-per-node "$nproc" --log-dir "$out/logs" --tee 3 --max-restarts 0)
  if [[ "$nnodes" -eq 1 && -z "$master_addr" ]]; then cmd+=(--standalone)
  else cmd+=(--nnodes "$nnodes" --node-rank "$node_rank" --master-addr "$master_addr"
             --master-port "${master_port:-29500}"); fi
  cmd+=("$runner" "${rank_args[@]}")
fi
echo "[run] $name on $nproc ${TORCH_HANDLE_BACKEND} rank(s) per node ($launcher) → $out" >&2
set +e
run "${cmd[@]}" >"$out/launcher.log" 2>&1
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  python - "$out" >&2 <<'EOF'
import json, sys
from pathlib import Path
statuses = []
for p in Path(sys.argv[1]).glob("status.rank*.json"):
    try: statuses.append(json.loads(p.read_text()))
    except ValueError: pass
failed = sorted((s for s in statuses if not s["ok"]), key=lambda s: (s.get("stopped", False), s["finished_at"]))
if failed:   # the first rank to fail on its own; the others were stopped because of it
    s = failed[0]
    where = f" in cell [{s['cell']}]" if s.get("cell") is not None else ""
    print(f"error: rank {s['rank']} failed{where} after {s['seconds']} s: {s['error']}")
else:
    print("error: the launcher failed before any rank of this node reported (see launcher.log)")
EOF
  echo "error: $name failed (exit $rc); logs: $out/launcher.log, $out/logs/" >&2
  exit 1
fi
if [[ -f "$out/$name.rank0.ipynb" ]]; then echo "executed notebook (rank 0): $out/$name.rank0.ipynb"
else echo "executed this node's ranks in $out (rank 0's notebook is on node 0)"; fi
