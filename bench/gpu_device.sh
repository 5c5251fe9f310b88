#!/usr/bin/env bash
# The GPU check, ready to run on a CUDA machine from the repository root:
#   bash bench/gpu_device.sh [install|test|bench|all|carried] [extra bench.gpu options]
# Stages can run as separate calls (each fits in 10 minutes on an H100/H200 with a
# package index mirror); they share $VENV, $OUT and $WORK.
#   carried: on a machine with NO package index, after the carry kit's parts arrived
#            (README "GPU machine without a package index"): installs the kit offline,
#            builds the demo model's architecture with random weights from the carried
#            config, then bench/gpu.py (/solve vs raw `vllm serve` first, the engine
#            alone next) and the CUDA test subset, each step under what is left of
#            $BUDGET_S seconds, writing $OUT/carried.json after every step.
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

# --- carried: no package index, the kit of bench/gpu_carry received into $CARRY ---------
CARRY=${CARRY:-/tmp/carry}
BUDGET_S=${BUDGET_S:-570}  # one command may run 600 s; leave time to copy $OUT back
STARTED=$SECONDS

left() { echo $((BUDGET_S - (SECONDS - STARTED))); }

# Run one step under what is left of the budget, keeping `reserve` seconds for later
# steps: its output goes to $WORK/NAME.log (last lines to $OUT/NAME.txt), its outcome
# to $OUT/carried.json. timeout signals the whole process group, servers included.
step() {
    local name=$1 reserve=$2
    shift 2
    local budget=$(($(left) - reserve)) begun=$SECONDS rc
    if ((budget < 30)); then
        log "$name: skipped, ${budget}s left"
        rc=skipped
    else
        log "$name: start, ${budget}s at most, $(date -u +%T)"
        timeout "$budget" "$@" >"$WORK/$name.log" 2>&1
        rc=$?
        tail -60 "$WORK/$name.log" | tee "$OUT/$name.txt"
        log "$name: rc=$rc after $((SECONDS - begun))s"
    fi
    python3 - "$OUT/carried.json" "$name" "$rc" "$((SECONDS - begun))" <<'PY'
import json, sys
from pathlib import Path
path, name, rc, seconds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
done = json.loads(path.read_text()) if path.exists() else {"steps": []}
done["steps"].append({"step": name, "rc": int(rc) if rc.lstrip("-").isdigit() else rc,
                      "seconds": seconds})
path.write_text(json.dumps(done, indent=2))
PY
    [[ "$rc" == 0 ]]
}

carried() {
    rm -f "$OUT/carried.json"
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi failed (no driver?)"
    # The image's python3 holds the CUDA torch; the kit goes before it on the path.
    PY=python3
    export PYTHONPATH="$CARRY/site:$PWD" TRANSFORMERS_OFFLINE=1
    # flashinfer is not carried (bench/gpu_carry/resolve.py LEFT_OUT): sample in PyTorch.
    export VLLM_USE_FLASHINFER_SAMPLER=0
    step install 0 "$PY" -m bench.gpu_carry install "$CARRY" --target "$CARRY/site" || return 1
    "$PY" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, 'cuda', torch.version.cuda)" \
        2>&1 | tee "$OUT/versions.txt"
    local model="$WORK/demo-random"
    step random-model 0 "$PY" -m bench.gpu_carry random-model "$CARRY/model" --out "$model" || return 1
    # The issue's figure first: /solve against raw `vllm serve`; the engine alone next
    # (bench.gpu keeps earlier phases of the same model in $OUT/gpu.json).
    local bench=("$PY" -m bench.gpu --model "$model" --out "$OUT/gpu.json" --work "$WORK"
        --max-tokens 128 --latency-requests 12)
    step bench-raw-solve 60 "${bench[@]}" --phases raw,solve "$@"
    step bench-engine 60 "${bench[@]}" --phases engine "$@"
    for f in "$WORK"/*.log; do [[ -f "$f" ]] && tail -80 "$f" >"$OUT/$(basename "$f").tail.txt"; done
    local files=(tests/workers/engines tests/adapters/test_registry.py tests/workers/strategies
        tests/routers/test_solve.py tests/routers/test_strategy_contract.py)
    # Tests of few-shot paths whose packages are not carried (SCISERVE_NOT_SERVING in
    # bench/gpu_carry/resolve.py); none of them needs the GPU.
    local -A left_out=(
        [tests/workers/strategies/test_stages.py::test_few_shot_prepends_the_most_similar_examples]="the MiniLM retriever's model package is not carried"
        [tests/workers/strategies/test_stages.py::test_the_default_bank_never_serves_the_questions_own_template]="reasoning-gym is not carried"
        ["tests/routers/test_solve.py::test_each_strategy_end_to_end[strategy7-first_stages7-1]"]="few_shot with the default bank needs reasoning-gym, not carried"
    )
    local deselect=() id
    : >"$OUT/pytest-left-out.txt"
    for id in "${!left_out[@]}"; do
        deselect+=(--deselect "$id")
        echo "$id: ${left_out[$id]}" >>"$OUT/pytest-left-out.txt"
    done
    if start_redis; then
        files+=(tests/workers/test_engine_metrics.py tests/adapters/test_pool.py)
    else
        echo "tests/workers/test_engine_metrics.py tests/adapters/test_pool.py: no redis-server on this machine" \
            >>"$OUT/pytest-left-out.txt"
    fi
    step test 10 env SCISERVE_TEST_DEVICE=cuda SCISERVE_REQUIRE_VLLM=1 "$PY" -m pytest "${files[@]}" \
        "${deselect[@]}" -q -rs -p no:cacheprovider --junitxml "$OUT/pytest.xml"
    log "carried: done in $((SECONDS - STARTED))s"
}

case "$STAGE" in
install) install ;;
test) run_tests ;;
bench) run_bench "$@" ;;
all) install && run_tests && run_bench "$@" ;;
carried) carried "$@" ;;
*) echo "usage: $0 [install|test|bench|all|carried] [bench.gpu options]" >&2; exit 2 ;;
esac
