#!/usr/bin/env bash
# Runs a command under another CPU code path than the caller's, for the portability run of the notebooks.
#
# torch picks its CPU kernels' vector instructions at start-up (AVX-512, AVX2, ... or none), and
# ATEN_CPU_CAPABILITY overrides the choice. Other instructions add numbers in another order, which is what
# changes the last digits of a trained model from one processor to another. So:
#   - if the caller already runs with ATEN_CPU_CAPABILITY=default, drop it (the machine's own code path);
#   - else, on an AVX-512 machine, use AVX2: what most other x86-64 processors (and many CI runners) run,
#     and as fast as AVX-512 for these small models, so the two runs side by side cost one run's time;
#   - else use "default" (no vector instructions: a different order again, about twice as slow).
# Trained models are cached per code path (see ssmax_lite.train.cache_key); a cache folder of its own
# lets this run go side by side with the first one.
set -euo pipefail
PY="${PY:-.venv/bin/python}"
if [ "${ATEN_CPU_CAPABILITY:-}" = "default" ]; then
    unset ATEN_CPU_CAPABILITY
elif [ -z "${ATEN_CPU_CAPABILITY:-}" ] && \
     [ "$("$PY" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())' 2>/dev/null)" = "AVX512" ]; then
    export ATEN_CPU_CAPABILITY=avx2
else
    export ATEN_CPU_CAPABILITY=default
fi
export SSMAX_LITE_CACHE="${SSMAX_LITE_CACHE:-$PWD/_build/train_cache}-other-cpu"
capability="${ATEN_CPU_CAPABILITY:-unset, the best this CPU has}"
echo "notebooks under ATEN_CPU_CAPABILITY=$capability, cache $SSMAX_LITE_CACHE"
exec "$@"
