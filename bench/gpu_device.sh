#!/usr/bin/env bash
# The GPU check, ready to run on a CUDA machine from the repository root:
#   bash bench/gpu_device.sh [install|test|bench|all] [extra bench.gpu options]
# Stages can run as separate calls (each fits in 10 minutes on an H100/H200 with a
# package index mirror); they share $VENV, $OUT and $WORK.
#   install: a venv that reuses a preinstalled CUDA torch (--system-site-packages), then
#            the `gpu` extra (vLLM 0.26.0 + torch 2.11.0, README "GPU") and `dev`;
#   test:    SCISERVE_TEST_DEVICE=cuda pytest on the engine, LoRA, pipeline and strategy
#            tests (bfloat16, LoRA on CUDA); Redis-backed tests run when redis-server exists;
#            every left-out file is listed in $OUT/pytest-left-out.txt, never skipped quietly;
#   bench:   prepares the demo model and runs bench/gpu.py (raw `vllm serve` vs /solve vs
#            the engine alone at 256 and 512 concurrent, overhead at 1, LoRA vs base,
#            n=8 vs n=1, start times) into $OUT/gpu.json.
set -uo pipefail

STAGE=${1:-all}
shift || true
OUT=${OUT:-bench/results/gpu-device}
VENV=${VENV:-.venv-gpu}
WORK=${WORK:-bench/results/gpu-work}  # adapters and server logs, kept out of $OUT (size)
PY="$VENV/bin/python"
mkdir -p "$OUT" "$WORK"
export HF_HUB_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

log() { echo "[gpu_device] $*" | tee -a "$OUT/steps.txt"; }

install() {
    log "install: start $(date -u +%T)"
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (no driver?)"
    python3 -m venv --system-site-packages "$VENV"
    local constraint=()
    local torch_version
    torch_version=$(python3 -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null || true)
    if [[ "$torch_version" == "2.11.0" ]]; then
        # Keep the machine's CUDA torch: pip must not fetch a second one.
        echo "torch==$torch_version" >"$WORK/constraints.txt"
        constraint=(-c "$WORK/constraints.txt")
        log "install: reusing the preinstalled torch $torch_version"
    else
        log "install: preinstalled torch is '${torch_version:-none}'; the gpu extra brings 2.11.0"
    fi
    "$PY" -m pip install -q "${constraint[@]}" -e '.[gpu,dev]' 2>&1 | tail -20 | tee "$OUT/pip.txt"
    "$PY" -m pip check >>"$OUT/pip.txt" 2>&1 || true
    "$PY" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, 'cuda', torch.version.cuda)" \
        2>&1 | tee "$OUT/versions.txt"
    "$PY" -c "from vllm.platforms import current_platform as p; assert p.is_cuda_alike(), p; print('platform', p.device_name)" \
        2>&1 | tee -a "$OUT/versions.txt"
    log "install: done $(date -u +%T)"
}

start_redis() {
    if command -v redis-server >/dev/null; then
        redis-cli -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --port 6379 --save "" --appendonly no
        return 0
    fi
    return 1
}

run_tests() {
    log "test: start $(date -u +%T)"
    local files=(tests/workers/engines tests/adapters/test_registry.py tests/workers/strategies
        tests/routers/test_solve.py tests/routers/test_strategy_contract.py)
    : >"$OUT/pytest-left-out.txt"
    if start_redis; then
        files+=(tests/workers/test_engine_metrics.py tests/adapters/test_pool.py)
    else
        echo "tests/workers/test_engine_metrics.py tests/adapters/test_pool.py: no redis-server on this machine" \
            >>"$OUT/pytest-left-out.txt"
    fi
    SCISERVE_TEST_DEVICE=cuda SCISERVE_REQUIRE_VLLM=1 timeout 560 "$PY" -m pytest "${files[@]}" \
        -q -rs -p no:cacheprovider --junitxml "$OUT/pytest.xml" 2>&1 | tail -60 | tee "$OUT/pytest.txt"
    log "test: rc=${PIPESTATUS[0]} $(date -u +%T)"
}

run_bench() {
    log "bench: start $(date -u +%T)"
    "$PY" -m entrypoints.cli model prepare 2>&1 | tail -3 | tee "$OUT/prepare.txt"
    timeout 580 "$PY" -m bench.gpu --out "$OUT/gpu.json" --work "$WORK" \
        --max-tokens 128 --latency-requests 12 "$@" 2>&1 | tail -60 | tee "$OUT/bench.txt"
    log "bench: rc=${PIPESTATUS[0]} $(date -u +%T)"
    for f in "$WORK"/*.log; do [[ -f "$f" ]] && tail -80 "$f" >"$OUT/$(basename "$f").tail.txt"; done
}

case "$STAGE" in
install) install ;;
test) run_tests ;;
bench) run_bench "$@" ;;
all) install && run_tests && run_bench "$@" ;;
*) echo "usage: $0 [install|test|bench|all] [bench.gpu options]" >&2; exit 2 ;;
esac
