"""`python -m bench.gpu_carry`: prepare a kit here, receive, install and use it there."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from bench.gpu_carry.parts import MIB, CarryError, missing_parts, part_dir_name

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)  # whole lines in logs
REPO = Path(__file__).resolve().parents[2]
COMMAND_LIMIT_MIB = 64  # files one command may take along, the working tree included


@app.command()
def prepare(
    out: Path = typer.Option(Path(".gpu"), help="Where part-NN/ folders and the manifest go."),
    have: Path | None = typer.Option(
        None, help="The machine's package list (`pip freeze` there); default: the image's."
    ),
    cache: Path | None = typer.Option(None, help="Download folder; default OUT/wheels."),
    limit_mib: int = typer.Option(COMMAND_LIMIT_MIB, help="MiB one command may take along."),
    margin_mib: float = typer.Option(4.0, help="Room kept for the working tree to grow."),
    tree_bytes: int | None = typer.Option(
        None, help="The working tree's weight; default: measured with git."
    ),
    demo_model: str | None = typer.Option(
        None, help="Carry this demo model's tokenizer and config; default: the configured."
    ),
    model: bool = typer.Option(True, help="Carry the demo model's tokenizer and config."),
    tests: bool = typer.Option(True, help="Carry what the CUDA test subset needs."),
    platform: list[str] = typer.Option(
        [], help="Wheel platform tags the machine takes (repeat); default: manylinux <= 2_35."
    ),
    wheelhouse: Path | None = typer.Option(
        None, help="Take wheels from this folder only, not from an index (an offline mirror)."
    ),
) -> None:
    """Download vLLM and the serving set for the GPU machine and cut it into parts."""
    from packaging.requirements import Requirement

    from bench.gpu_carry.parts import SourceFile, plan_parts, working_tree_bytes, write_parts
    from bench.gpu_carry.resolve import (
        IMAGE_LIST,
        PLATFORMS,
        PYTHON,
        VLLM,
        pip_fetch,
        read_image,
        resolve,
        sciserve_requirements,
    )

    image = read_image(have or IMAGE_LIST)
    platforms = tuple(platform) or PLATFORMS
    roots = [Requirement(VLLM), *sciserve_requirements(REPO / "pyproject.toml", tests=tests)]
    with console.status("downloading wheels for the GPU machine (pip, --no-deps) ..."):
        index = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
        fetch = partial(pip_fetch, platforms=platforms, index_args=index)
        resolution = resolve(roots, image, cache or out / "wheels", fetch=fetch)
    vllm_first = sorted(resolution.wheels, key=lambda w: (w.name != "vllm", w.name.lower()))
    sources = [SourceFile(w.name, str(w.version), "wheel", w.path) for w in vllm_first]
    model_name = None
    if model:
        model_name, files = _demo_model_files(demo_model)
        sources += [SourceFile(model_name, "tokenizer+config", "model", p) for p in files]
    weight = working_tree_bytes(REPO) if tree_bytes is None else tree_bytes
    limit = int(limit_mib * MIB - weight - margin_mib * MIB)
    if limit < 8 * MIB:
        _fail(
            CarryError(
                f"The working tree weighs {weight / MIB:.1f} MiB: with a "
                f"{margin_mib} MiB margin, parts would be {limit / MIB:.1f} MiB."
            )
        )
    with console.status("hashing and cutting into parts ..."):
        manifest = plan_parts(sources, limit)
        manifest.meta.update(
            {
                "python": PYTHON,
                "platforms": list(platforms),
                "command_limit_mib": limit_mib,
                "working_tree_bytes": weight,
                "margin_mib": margin_mib,
                "demo_model": model_name,
                "in_image": resolution.in_image,
                "left_out": resolution.left_out,
            }
        )
        write_parts(manifest, {s.path.name: s.path for s in sources}, out)
    _report(manifest, out)


def _demo_model_files(name: str | None) -> tuple[str, list[Path]]:
    """The demo model's tokenizer and config, from its prepared folder (prepared now,
    once, with `sciserve model prepare`'s code, when it is not)."""
    from bench.gpu_carry.random_model import skeleton_files
    from contract.settings import Settings
    from workers.models.demo import prepare_demo_model

    settings = Settings() if name is None else Settings.model_validate({"demo_model": name})
    with console.status(f"preparing the demo model {settings.demo_model} ..."):
        folder = prepare_demo_model(settings)
    return settings.demo_model, skeleton_files(folder)


def _report(manifest: object, out: Path) -> None:
    from bench.gpu_carry.parts import Manifest

    assert isinstance(manifest, Manifest)
    table = Table(title=f"carry kit {manifest.kit_id} in {out}")
    table.add_column("part")
    table.add_column("MiB", justify="right")
    table.add_column("chunks", justify="right")
    for n, size in enumerate(manifest.parts, start=1):
        table.add_row(part_dir_name(n), f"{size / MIB:.1f}", str(len(manifest.chunks_of(n))))
    Console().print(table)
    total = sum(f.size for f in manifest.files)
    wheels = sum(f.kind == "wheel" for f in manifest.files)
    meta = manifest.meta
    console.print(
        f"{len(manifest.files)} files ({wheels} wheels), {total / MIB:.1f} MiB in "
        f"{len(manifest.parts)} parts of at most {manifest.part_limit / MIB:.1f} MiB "
        f"(command limit {meta.get('command_limit_mib')} MiB - working tree "
        f"{meta.get('working_tree_bytes', 0) / MIB:.1f} MiB - margin "
        f"{meta.get('margin_mib')} MiB); "
        f"left out: {', '.join(sorted(meta.get('left_out', {}))) or 'none'}"
    )


@app.command()
def receive(
    part_dir: Path = typer.Argument(..., help="A part-NN folder of the kit."),
    into: Path = typer.Option(Path("/tmp/carry"), help="Where received parts are stored."),
) -> None:
    """Check one part's SHA-256s and store it (receiving a part twice changes nothing)."""
    from bench.gpu_carry.parts import receive as store_part

    try:
        got = store_part(part_dir, into)
    except CarryError as exc:
        _fail(exc)
    waiting = ", ".join(part_dir_name(p) for p in got.missing_parts) or "none: install now"
    console.print(
        f"{part_dir_name(got.part)}: {got.stored} chunks stored, {got.kept} already "
        f"there; still missing: {waiting}"
    )


@app.command()
def install(
    into: Path = typer.Argument(Path("/tmp/carry"), help="The folder parts were received into."),
    target: Path = typer.Option(Path("/tmp/carry/site"), help="pip --target folder."),
    module: list[str] = typer.Option(
        [], help="Import this as the first check (repeat); default: the serving path."
    ),
    check: bool = typer.Option(True, help="Import the serving path after installing."),
    force: bool = typer.Option(False, help="Install again even if this kit is there."),
) -> None:
    """Reassemble, verify, pip-install offline, then import the serving path."""
    from bench.gpu_carry.install import (
        SERVING_IMPORTS,
        check_imports,
        python_path,
        unmet_requirements,
    )
    from bench.gpu_carry.install import install as install_kit
    from bench.gpu_carry.parts import Manifest

    try:
        done = install_kit(into, target, force=force)
        console.print(
            f"{done.wheels} wheels {'already ' if done.skipped else ''}installed in "
            f"{target}; model files in {done.model_dir}"
        )
        manifest = Manifest.from_json((into / "manifest.json").read_text())
        for line in unmet_requirements(manifest, target):
            console.print(f"unmet: {line}")
        if check:
            modules = tuple(module) or SERVING_IMPORTS
            check_imports(target, modules)
            console.print(f"imports: {', '.join(modules)}: ok")
    except CarryError as exc:
        _fail(exc)
    print(f"PYTHONPATH={python_path(target)}")


@app.command()
def status(into: Path = typer.Argument(Path("/tmp/carry"))) -> None:
    """Which parts are stored and which are still missing."""
    from bench.gpu_carry.parts import Manifest

    path = into / "manifest.json"
    if not path.is_file():
        _fail(CarryError(f"{into} holds no received part yet."))
    manifest = Manifest.from_json(path.read_text())
    missing = missing_parts(into, manifest)
    print(
        json.dumps(
            {
                "kit_id": manifest.kit_id,
                "parts": len(manifest.parts),
                "missing": [part_dir_name(p) for p in missing],
            }
        )
    )


@app.command("random-model")
def random_model(
    skeleton: Path = typer.Argument(..., help="Tokenizer and config of a model."),
    out: Path = typer.Option(..., help="Where the model with random weights goes."),
    dtype: str = typer.Option("bfloat16"),
    seed: int = typer.Option(0),
) -> None:
    """Build the model's architecture with random weights (no download)."""
    from bench.gpu_carry.random_model import build_random_model

    print(build_random_model(skeleton, out, dtype=dtype, seed=seed))


def _fail(exc: Exception) -> NoReturn:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


if __name__ == "__main__":
    app(prog_name=f"{Path(sys.executable).name} -m bench.gpu_carry")
