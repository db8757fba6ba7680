#!/usr/bin/env bash
# Run one chapter of the course, top to bottom, and keep the executed notebook(s): scripts/run_chapter.py in the
# course's environment. Usage (and `bash scripts/run_chapter.sh` alone lists the chapters):
#   bash scripts/run_chapter.sh NAME [--gpus N] [--nproc N] [--launcher torchrun|deepspeed]
#        [--nnodes N --node-rank R --master-addr A --master-port P] [--timeout S] [-p KEY VALUE ...]
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec python "$(dirname "${BASH_SOURCE[0]}")/run_chapter.py" "$@"
