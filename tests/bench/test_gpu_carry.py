"""The carry kit (bench/gpu_carry/) on the CPU, with synthetic files and wheels built here.

Nothing is downloaded: pip runs for real, against a local folder of wheels written by
these tests (`--no-index --find-links`), and installs into a scratch target.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from typer.testing import CliRunner

from bench.gpu_carry.__main__ import app
from bench.gpu_carry.install import check_imports, install
from bench.gpu_carry.parts import (
    MANIFEST,
    CarryError,
    Manifest,
    SourceFile,
    assemble,
    missing_parts,
    plan_parts,
    receive,
    working_tree_bytes,
    write_parts,
)
from bench.gpu_carry.resolve import LEFT_OUT, pip_fetch, resolve, sciserve_requirements
from workers.models.tiny import TinyModel

REPO = Path(__file__).resolve().parents[2]
LIMIT = 64 * 1024  # a part: 64 KiB here, so a 200 KiB file spans four parts


def _files(folder: Path) -> list[SourceFile]:
    """A file larger than three parts, small ones, and an empty one."""
    rng = random.Random(7)
    folder.mkdir()
    sizes = {"big.whl": 200_000, "a.whl": 1_000, "b.whl": 70_000, "empty.txt": 0, "c.json": 5}
    sources = []
    for name, size in sizes.items():
        path = folder / name
        path.write_bytes(rng.randbytes(size))
        sources.append(SourceFile(name.split(".")[0], "1.0", "wheel", path))
    return sources


def _kit(tmp_path: Path) -> tuple[list[SourceFile], Path]:
    sources = _files(tmp_path / "src")
    manifest = plan_parts(sources, LIMIT)
    write_parts(manifest, {s.path.name: s.path for s in sources}, tmp_path / "kit")
    return sources, tmp_path / "kit"


def _parts(kit: Path) -> list[Path]:
    return sorted(kit.glob("part-*"))


def test_parts_stay_within_the_limit_and_a_big_file_spans_several(tmp_path: Path) -> None:
    sources, kit = _kit(tmp_path)
    parts = _parts(kit)
    assert len(parts) == -(-sum(s.path.stat().st_size for s in sources) // LIMIT)  # the least
    for part in parts:
        payload = sum(p.stat().st_size for p in part.iterdir() if p.name != MANIFEST)
        assert payload <= LIMIT
        assert (part / MANIFEST).read_text() == (kit / MANIFEST).read_text()
    big = [p.name for part in parts for p in part.iterdir() if p.name.startswith("big.whl")]
    assert len(big) == 4 and all(".chunk-" in name for name in big)


@pytest.mark.parametrize("order", ["forward", "reversed", "shuffled"])
def test_parts_reassemble_byte_identical_in_any_order(tmp_path: Path, order: str) -> None:
    sources, kit = _kit(tmp_path)
    parts = _parts(kit)
    if order == "reversed":
        parts.reverse()
    elif order == "shuffled":
        random.Random(3).shuffle(parts)
    into = tmp_path / "carry"
    for part in parts:
        receive(part, into)
    manifest, paths = assemble(into)
    assert [f.filename for f in manifest.files] == [s.path.name for s in sources]
    for source, path in zip(sources, paths, strict=True):
        assert path.read_bytes() == source.path.read_bytes()


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(folder)): (
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_receiving_a_part_twice_changes_nothing(tmp_path: Path) -> None:
    _, kit = _kit(tmp_path)
    into = tmp_path / "carry"
    first = receive(_parts(kit)[1], into)
    before = _snapshot(into)
    again = receive(_parts(kit)[1], into)
    assert first.stored > 0 and first.kept == 0
    assert again.stored == 0 and again.kept == first.stored
    assert _snapshot(into) == before
    assert 2 not in again.missing_parts and 1 in again.missing_parts


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    _, kit = _kit(tmp_path)
    into = tmp_path / "carry"
    for part in _parts(kit):
        if part.name != "part-03":
            receive(part, into)
    with pytest.raises(CarryError, match=r"part 3: chunk \S+ is missing.*receive part-03 again"):
        assemble(into)


def test_a_corrupt_part_is_refused_on_arrival_naming_it(tmp_path: Path) -> None:
    _, kit = _kit(tmp_path)
    part = _parts(kit)[1]
    chunk = next(p for p in part.iterdir() if p.name != MANIFEST)
    data = bytearray(chunk.read_bytes())
    data[0] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CarryError, match=rf"Part 2: chunk {chunk.name} is corrupt.*part-02"):
        receive(part, tmp_path / "carry")


def test_a_chunk_corrupted_after_arrival_is_named_at_assembly(tmp_path: Path) -> None:
    _, kit = _kit(tmp_path)
    into = tmp_path / "carry"
    for part in _parts(kit):
        receive(part, into)
    stored = into / "chunks" / "b.whl.chunk-02"
    stored.write_bytes(b"x" * stored.stat().st_size)
    with pytest.raises(CarryError, match=r"chunk b\.whl\.chunk-02 is corrupt.*part-0\d again"):
        assemble(into)
    assert missing_parts(into, Manifest.from_json((into / MANIFEST).read_text())) == []


def test_parts_of_another_kit_are_refused(tmp_path: Path) -> None:
    _, kit = _kit(tmp_path)
    into = tmp_path / "carry"
    receive(_parts(kit)[0], into)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.whl").write_bytes(b"another kit")
    write_parts(plan_parts([SourceFile("x", "1", "wheel", other / "x.whl")], LIMIT),
                {"x.whl": other / "x.whl"}, tmp_path / "kit2")  # fmt: skip
    with pytest.raises(CarryError, match="holds parts of kit"):
        receive(tmp_path / "kit2" / "part-01", into)


def test_the_cli_reports_a_corrupt_part_and_fails(tmp_path: Path) -> None:
    _, kit = _kit(tmp_path)
    part = _parts(kit)[0]
    chunk = next(p for p in part.iterdir() if p.name != MANIFEST)
    chunk.write_bytes(b"\0" * chunk.stat().st_size)
    result = CliRunner().invoke(app, ["receive", str(part), "--into", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "Part 1" in result.output and "corrupt" in result.output


# --- wheels built here -------------------------------------------------------------------


WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(
    folder: Path, name: str, version: str, requires: Sequence[str] = (), extras: Sequence[str] = ()
) -> Path:
    """A pure-Python wheel with one module `name` (VALUE = version) and its metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires]
    files = {
        f"{module}/__init__.py": f"VALUE = {version!r}\n".encode(),
        f"{info}/METADATA": ("\n".join(meta) + "\n").encode(),
        f"{info}/WHEEL": WHEEL,
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def test_install_into_a_scratch_target_imports_the_carried_module(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "src", "carrytiny", "1.2.3")
    config = tmp_path / "src" / "config.json"
    config.write_text('{"model_type": "tiny"}')
    sources = [SourceFile("carrytiny", "1.2.3", "wheel", wheel),
               SourceFile("demo", "tokenizer+config", "model", config)]  # fmt: skip
    limit = wheel.stat().st_size // 2 + 1  # the wheel travels in two chunks
    write_parts(plan_parts(sources, limit), {p.path.name: p.path for p in sources},
                tmp_path / "kit")  # fmt: skip
    into, target = tmp_path / "carry", tmp_path / "site"
    for part in reversed(_parts(tmp_path / "kit")):
        receive(part, into)

    done = install(into, target)
    check_imports(target, ("carrytiny",))
    value = subprocess.run(
        [sys.executable, "-c", "import carrytiny; print(carrytiny.__file__, carrytiny.VALUE)"],
        env={**os.environ, "PYTHONPATH": str(target)}, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    assert value == [str(target / "carrytiny" / "__init__.py"), "1.2.3"]
    assert done.wheels == 1 and not done.skipped
    assert (
        done.model_dir is not None
        and (done.model_dir / "config.json").read_text() == config.read_text()
    )
    assert install(into, target).skipped  # the same kit is not installed twice
    with pytest.raises(CarryError, match="does not import"):
        check_imports(target, ("carrytiny_is_not_there",))


def test_resolve_walks_requirements_for_the_gpu_machine(tmp_path: Path) -> None:
    """Markers for CPython 3.12 on x86_64 Linux, extras, the image's packages, the
    left-out list, and a step back when a pin conflicts (as with apache-tvm-ffi)."""
    house = tmp_path / "house"
    build_wheel(house, "engine", "0.26.0", [
        "lib>=1", "pin==0.1", "cuda-only; platform_machine == 'x86_64'",
        "old-python; python_version < '3.12'", "image-pkg>=1", "image-old>=2",
        "kernels", "web[standard]",
    ])  # fmt: skip
    build_wheel(house, "lib", "1.0", ["pin>=0.1"])
    build_wheel(house, "lib", "2.0", ["pin>=0.2"])  # newest lib needs a pin engine forbids
    build_wheel(house, "pin", "0.1")
    build_wheel(house, "pin", "0.2")
    build_wheel(house, "cuda-only", "1.0")
    build_wheel(house, "image-old", "2.0")
    build_wheel(house, "web", "1.0", ["server; extra == 'standard'"], extras=["standard"])
    build_wheel(house, "server", "1.0")
    have: dict[str, Version | None] = {"image-pkg": None, "image-old": Version("1.0")}
    fetch = partial(pip_fetch, index_args=["--no-index", "--find-links", str(house)])

    found = resolve([Requirement("engine==0.26.0")], have, tmp_path / "wheels", fetch=fetch,
                    left_out={"kernels": "optional kernels"})  # fmt: skip

    chosen = {w.name: str(w.version) for w in found.wheels}
    assert chosen == {"engine": "0.26.0", "lib": "1.0", "pin": "0.1", "cuda-only": "1.0",
                      "image-old": "2.0", "web": "1.0", "server": "1.0"}  # fmt: skip
    assert found.in_image == {"image-pkg": "image-pkg>=1"}
    assert found.left_out == {"kernels": "optional kernels"}


def test_sciserve_carries_its_serving_requirements_not_training_or_tool_servers() -> None:
    names = {r.name for r in sciserve_requirements(REPO / "pyproject.toml")}
    assert {"fastapi", "uvicorn", "pydantic", "pydantic-settings", "typer", "redis",
            "sse-starlette", "pytest-asyncio"} <= names  # fmt: skip
    assert not {"trl", "datasets", "mujoco", "restrictedpython", "fair"} & names


def test_the_working_tree_weight_counts_what_travels(tmp_path: Path) -> None:
    git = partial(subprocess.run, check=True, cwd=tmp_path, capture_output=True)
    git(["git", "init", "-q"])
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "tracked.py").write_bytes(b"a" * 1000)
    git(["git", "add", ".gitignore", "tracked.py"])
    (tmp_path / "untracked.py").write_bytes(b"b" * 300)
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "big.bin").write_bytes(b"c" * 100_000)
    assert working_tree_bytes(tmp_path) == 1000 + 300 + len("ignored/\n")


def test_random_model_from_a_carried_config_and_tokenizer(
    tmp_path: Path, tiny_model: TinyModel
) -> None:
    from safetensors import safe_open

    from bench.gpu_carry.random_model import build_random_model, skeleton_files

    skeleton = tmp_path / "skeleton"
    skeleton.mkdir()
    files = skeleton_files(tiny_model.model_dir)
    assert not any(p.suffix == ".safetensors" for p in files)
    for path in files:
        shutil.copy2(path, skeleton / path.name)

    out = build_random_model(skeleton, tmp_path / "random", dtype="bfloat16")

    with (
        safe_open(str(out / "model.safetensors"), "pt") as built,
        safe_open(str(tiny_model.model_dir / "model.safetensors"), "pt") as original,
    ):
        assert set(built.keys()) == set(original.keys())
        for key in itertools.islice(sorted(built.keys()), 4):
            assert built.get_tensor(key).shape == original.get_tensor(key).shape
            assert str(built.get_tensor(key).dtype) == "torch.bfloat16"
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out).chat_template is not None
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert build_random_model(skeleton, out, dtype="bfloat16") == out  # reused, not rebuilt
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_prepare_cuts_a_kit_from_a_wheelhouse(tmp_path: Path) -> None:
    """The whole `prepare` command, offline: vLLM stands in as a small wheel of the same
    name and version, and the image list holds every requirement of sciserve's."""
    house = tmp_path / "house"
    build_wheel(house, "vllm", "0.26.0", ["cbor2", "flashinfer-python==0.6.14", "torch==2.11.0"])
    build_wheel(house, "cbor2", "5.0")
    image = tmp_path / "image.txt"
    names = [r.name for r in sciserve_requirements(REPO / "pyproject.toml")]
    image.write_text("\n".join([*names, "torch==2.11.0"]) + "\n")
    out = tmp_path / ".gpu"

    result = CliRunner().invoke(app, [
        "prepare", "--out", str(out), "--have", str(image), "--wheelhouse", str(house),
        "--no-model", "--tree-bytes", "0", "--limit-mib", "9", "--margin-mib", "1",
    ])  # fmt: skip

    assert result.exit_code == 0, result.output
    manifest = Manifest.from_json((out / MANIFEST).read_text())
    assert [(f.name, f.version) for f in manifest.files] == [("vllm", "0.26.0"), ("cbor2", "5.0")]
    assert manifest.part_limit == 8 * 1024 * 1024 and len(manifest.parts) == 1
    assert manifest.meta["left_out"] == {"flashinfer-python": LEFT_OUT["flashinfer-python"]}
    assert manifest.meta["in_image"]["torch"] == "torch==2.11.0"
    assert sorted(p.name for p in (out / "part-01").iterdir()) == sorted(
        [MANIFEST, *(f.filename for f in manifest.files)]
    )
