# Sourced by the training scripts: activates the environment, then sets `nproc`, the ranks on this node: every
# visible GPU, else NPROC CPU ranks (default: $cpu_ranks, else 2), each CPU rank with its share of the cores.
# shellcheck source=scripts/env.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"
gpus=$(python -c 'from torch_handle.utils.launch import visible_gpus; print(visible_gpus())')
nproc=${NPROC:-$([[ "$gpus" -gt 0 ]] && echo "$gpus" || echo "${cpu_ranks:-2}")}
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || { echo "error: NPROC must be a positive integer, got '$nproc'" >&2; exit 2; }
[[ "$gpus" -gt 0 ]] || export OMP_NUM_THREADS=$(python -c "from torch_handle.utils.launch import threads_per_rank; print(threads_per_rank($nproc))")
