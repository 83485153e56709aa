"""Configuration: ``config.toml`` read with tomllib into frozen dataclasses.

Every key has an embedded default, so a missing file means "defaults". A bad file is
refused with one ``ConfigError`` listing every problem by key path. No globals: the
loaded ``Config`` is passed to whoever needs it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

from agent_assist.core.events import LANGUAGES, LanguageChoice
from agent_assist.core.scoring import ITEM_TITLES, ItemSpec, Scorecard
from agent_assist.errors import ConfigError
from agent_assist.telephony.config import PLATFORM_SECTIONS, TelephonyConfig, check_telephony


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    max_frame_bytes: int = 65536
    queue_size: int = 1000
    tls_cert: str = ""
    tls_key: str = ""
    max_connections: int = 500
    max_calls: int = 64
    """Live calls at once; ``call.start`` beyond it is refused (code ``call.limit``)."""
    refuse_lag_ms: int = 3000
    """Refuse new calls while the oldest queued final has waited this long (0: never)."""
    refuse_level: int = 0
    """Refuse new calls while the degradation ladder is at this level or deeper (0: never)."""
    max_ingest_speed: float = 4.0
    source_grace_s: float = 10.0


@dataclass(frozen=True)
class StoreConfig:
    path: str = "var/agent-assist.sqlite3"
    url: str = ""
    """``postgresql://...`` stores everything in PostgreSQL instead of ``path``."""


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = "models"


@dataclass(frozen=True)
class LanguageAsrConfig:
    model: str = "base"
    beam_size: int = 5
    partial_beam_size: int = 1
    window_s: float = 0.0
    """Encoder window: 0 fits it to the utterance (+ ``window_pad_s``); else a fixed length."""
    window_pad_s: float = 1.0
    vocabulary: tuple[str, ...] = ()
    """Product and plan names given to Whisper as a prompt, so it spells them right."""
    model_dir: str = ""
    """A site's own CTranslate2 Whisper folder (with ``manifest.sha256``) instead of ``model``."""
    fallback_model: str = ""
    """A cheaper model from the manifest, used at the ladder's ``fallback_model`` step."""


@dataclass(frozen=True)
class AsrConfig:
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 2
    default_language: LanguageChoice = "auto"
    workers: int = 1
    """Decoding threads sharing the model; each uses ``cpu_threads`` cores."""
    batch_size: int = 1
    """Most utterances of one language decoded together; 1 turns batching off."""
    max_lag_s: float = 5.0
    """Queue wait of the oldest utterance above which the engine reports falling behind."""
    early_final: bool = True
    """Start decoding after ``vad.pause_ms`` of silence, before the endpoint is sure."""
    catalog_vocabulary: bool = False
    """The catalogue's product names join each language's Whisper prompt (costs decode time)."""
    languages: dict[str, LanguageAsrConfig] = field(
        default_factory=lambda: {
            "en": LanguageAsrConfig(model="tiny.en", window_s=20.0),
            "ja": LanguageAsrConfig(model="base"),
        }
    )


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    min_silence_ms: int = 500
    """Silence that always closes an utterance."""
    sentence_end_ms: int = 300
    """A shorter silence that closes it once its early final is decoded and ends a sentence
    (0: off); only for utterances of at least ``sentence_end_min_ms``."""
    sentence_end_min_ms: int = 0
    speech_pad_ms: int = 200
    pause_ms: int = 64
    """Silence after which the early final starts (the pad's rest decoded as silence)."""
    min_speech_ms: int = 250
    max_utterance_s: float = 20.0


@dataclass(frozen=True)
class PartialsConfig:
    """Interim text on the open utterance: cheap, rate-limited, dropped first under load."""

    enabled: bool = True
    interval_ms: int = 1000
    min_audio_ms: int = 800
    max_lag_ms: int = 1000
    """Skip partials while the oldest queued final has waited longer than this."""


@dataclass(frozen=True)
class DegradeConfig:
    """When finals wait, give up quality in steps (``agent_assist.asr.degrade``)."""

    enabled: bool = True
    steps: tuple[str, ...] = ("partials", "early_finals", "greedy_finals", "fallback_model")
    step_down_ms: int = 700
    """A final that waited this long moves the ladder one step down..."""
    hold_s: float = 2.0
    """...at most once in this many seconds."""
    step_up_ms: int = 250
    """One step back up after ``recover_s`` in which every final waited less than this."""
    recover_s: float = 10.0


@dataclass(frozen=True)
class PolicyConfig:
    file: str = ""
    catalog: str = ""
    customers: str = ""


@dataclass(frozen=True)
class NlpConfig:
    """The signal classifier's second opinion (encoder + head) beside the rules."""

    second_opinion: bool = True
    encoder: str = "use-multilingual"  # a model in models/manifest.toml
    head: str = "signal_head.onnx"  # inside the models folder; trained by scripts/
    threads: int = 1


@dataclass(frozen=True)
class DemoConfig:
    calls: tuple[str, ...] = ("en", "ja")


@dataclass(frozen=True)
class AuthConfig:
    enabled: bool = True
    session_hours: int = 12
    link_minutes: int = 60
    source_token: str = ""
    allowed_origins: tuple[str, ...] = ()
    secure_cookies: bool = False
    trust_proxy: bool = False
    recheck_s: float = 5.0
    max_login_failures: int = 5
    login_lockout_minutes: int = 15


@dataclass(frozen=True)
class ArchiveConfig:
    enabled: bool = True
    dir: str = ""


@dataclass(frozen=True)
class PricingConfig:
    file: str = ""


@dataclass(frozen=True)
class ClusterConfig:
    """Recognition workers and event fan-out over Redis; empty ``redis_url``: one process."""

    redis_url: str = ""
    prefix: str = "agent-assist"
    """Start of every Redis key, so several deployments can share one Redis."""
    node: str = ""
    """This gateway's or worker's name in the cluster; empty: host name and process id."""
    inflight: int = 8
    """Decode jobs one gateway keeps on the workers at once."""
    claim_timeout_s: float = 30.0
    """A job held this long by a silent worker is taken over by another worker."""
    resubmit_s: float = 60.0
    """A final with no answer this long is put on the stream again (decoded once)."""
    heartbeat_s: float = 2.0
    """How often each node reports its load; a node silent 3 beats is gone."""
    worker_batch: int = 1
    """Most jobs of one language a worker takes and decodes together (across calls and
    gateways). 1 on CPU: a batch made each final wait for the whole batch and kept jobs
    from idle workers (bench/scale_out.md); raise it on a GPU."""
    worker_languages: tuple[str, ...] = ()
    """Languages a worker serves; empty: every configured language."""
    worker_calls: int = 6
    """Live audio calls one worker decodes in time (measure its machine with ``make
    bench``); the cluster admits as many audio calls as its live workers report."""
    lost_call_grace_s: float = 10.0
    """A call open in the store that no live gateway holds for this long (its gateway
    died) is ended with reason ``gateway_lost``; within it, its source may resume it."""


@dataclass(frozen=True)
class Config:
    root: Path = Path(".")
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    models: ModelsConfig = ModelsConfig()
    asr: AsrConfig = AsrConfig()
    vad: VadConfig = VadConfig()
    partials: PartialsConfig = PartialsConfig()
    degrade: DegradeConfig = DegradeConfig()
    policy: PolicyConfig = PolicyConfig()
    demo: DemoConfig = DemoConfig()
    auth: AuthConfig = AuthConfig()
    archive: ArchiveConfig = ArchiveConfig()
    pricing: PricingConfig = PricingConfig()
    scorecard: Scorecard = field(default_factory=Scorecard)
    nlp: NlpConfig = NlpConfig()
    cluster: ClusterConfig = ClusterConfig()
    telephony: TelephonyConfig = field(default_factory=TelephonyConfig)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "store": StoreConfig,
    "models": ModelsConfig,
    "vad": VadConfig,
    "partials": PartialsConfig,
    "degrade": DegradeConfig,
    "policy": PolicyConfig,
    "demo": DemoConfig,
    "auth": AuthConfig,
    "archive": ArchiveConfig,
    "pricing": PricingConfig,
    "nlp": NlpConfig,
    "cluster": ClusterConfig,
}


def load_config(path: Path | None) -> Config:
    """Load ``path`` (or defaults when None / missing); raise ConfigError on problems."""
    if path is None or not path.exists():
        root = path.parent if path is not None else Path(".")
        return Config(root=root.resolve())
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    return parse_config(doc, str(path), path.parent.resolve())


def parse_config(doc: dict[str, Any], source: str, root: Path) -> Config:
    problems: list[str] = []
    cfg = Config(root=root)
    known = {*_SECTIONS, "asr", "scorecard", "telephony"}
    problems += [f"{k}: unknown section" for k in doc if k not in known]
    for name, cls in _SECTIONS.items():
        raw = doc.get(name, {})
        cfg = replace(cfg, **{name: _section(cls, raw, name, problems)})
    asr_raw = dict(doc.get("asr", {}))
    langs_raw = asr_raw.pop("languages", None)
    asr = _section(AsrConfig, asr_raw, "asr", problems)
    if langs_raw is not None:
        if not isinstance(langs_raw, dict):
            problems.append("asr.languages: must be a table of languages")
        else:
            langs = {
                lang: _section(LanguageAsrConfig, raw, f"asr.languages.{lang}", problems)
                for lang, raw in langs_raw.items()
            }
            asr = replace(asr, languages={**asr.languages, **langs})
    cfg = replace(cfg, asr=asr)
    if "scorecard" in doc:
        cfg = replace(cfg, scorecard=_scorecard(doc["scorecard"], problems))
    if "telephony" in doc:
        cfg = replace(cfg, telephony=_telephony(doc["telephony"], problems))
    _check_values(cfg, problems)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def _section(cls: type[Any], raw: object, where: str, problems: list[str]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return cls()
    defaults = cls()
    values: dict[str, Any] = {}
    names = {f.name for f in fields(cls)}
    for key, value in raw.items():
        if key not in names:
            problems.append(f"{where}.{key}: unknown key")
            continue
        expected = getattr(defaults, key)
        if isinstance(expected, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(expected, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(expected):
            problems.append(
                f"{where}.{key}: expected {type(expected).__name__}, got {type(value).__name__}"
            )
            continue
        values[key] = value
    return cls(**values)


def _telephony(raw: object, problems: list[str]) -> TelephonyConfig:
    """``[telephony]`` (grace window) and one ``[telephony.<platform>]`` table per platform."""
    if not isinstance(raw, dict):
        problems.append("telephony: must be a table")
        return TelephonyConfig()
    top = {k: v for k, v in raw.items() if k not in PLATFORM_SECTIONS}
    cfg = _section(TelephonyConfig, top, "telephony", problems)
    for name, cls in PLATFORM_SECTIONS.items():
        if name in raw:
            cfg = replace(cfg, **{name: _section(cls, raw[name], f"telephony.{name}", problems)})
    check_telephony(cfg, problems)
    return cast(TelephonyConfig, cfg)


def _scorecard(raw: object, problems: list[str]) -> Scorecard:
    """``[scorecard]``: thresholds, and ``[scorecard.items.<id>]`` weight / auto_fail."""
    if not isinstance(raw, dict):
        problems.append("scorecard: must be a table")
        return Scorecard()
    raw = dict(raw)
    items_raw = raw.pop("items", None)
    card = Scorecard()
    if "fail_severities" in raw:
        sev = raw.pop("fail_severities")
        if not isinstance(sev, list) or not set(sev) <= {"low", "medium", "high"}:
            problems.append("scorecard.fail_severities: a list of 'low', 'medium', 'high'")
        else:
            card = replace(card, fail_severities=frozenset(sev))
    for key, value in raw.items():
        expected = getattr(card, key, None)
        if expected is None or key == "items":
            problems.append(f"scorecard.{key}: unknown key")
        elif isinstance(expected, float) and isinstance(value, int | float):
            card = replace(card, **cast(dict[str, Any], {key: float(value)}))
        elif type(value) is not type(expected):
            problems.append(f"scorecard.{key}: expected {type(expected).__name__}")
        else:
            card = replace(card, **cast(dict[str, Any], {key: value}))
    if items_raw is None:
        return card
    if not isinstance(items_raw, dict) or not items_raw:
        problems.append("scorecard.items: must be a table of items")
        return card
    items: dict[str, ItemSpec] = {}
    for item_id, spec in items_raw.items():
        where = f"scorecard.items.{item_id}"
        if item_id not in ITEM_TITLES:
            problems.append(f"{where}: unknown item (known: {', '.join(ITEM_TITLES)})")
            continue
        if not isinstance(spec, dict) or set(spec) - {"weight", "auto_fail"}:
            problems.append(f"{where}: must be {{ weight = N, auto_fail = true|false }}")
            continue
        weight, auto_fail = spec.get("weight", 10), spec.get("auto_fail", False)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            problems.append(f"{where}.weight: must be a number >= 0")
            continue
        if not isinstance(auto_fail, bool):
            problems.append(f"{where}.auto_fail: must be true or false")
            continue
        items[item_id] = ItemSpec(float(weight), auto_fail)
    return replace(card, items=items)


def _check_values(cfg: Config, problems: list[str]) -> None:
    if not 0 <= cfg.server.port <= 65535:
        problems.append("server.port: must be 0..65535 (0 picks a free port)")
    if cfg.server.max_frame_bytes < 1024:
        problems.append("server.max_frame_bytes: must be at least 1024")
    if cfg.server.queue_size < 10:
        problems.append("server.queue_size: must be at least 10")
    if bool(cfg.server.tls_cert) != bool(cfg.server.tls_key):
        problems.append("server.tls_cert, server.tls_key: give both (PEM files) or neither")
    for key in ("max_connections", "max_calls"):
        if getattr(cfg.server, key) < 1:
            problems.append(f"server.{key}: must be at least 1")
    if cfg.server.max_ingest_speed < 0:
        problems.append("server.max_ingest_speed: must be >= 0 (0: no limit)")
    if cfg.server.source_grace_s < 0:
        problems.append("server.source_grace_s: must be >= 0 (0: a lost source ends its call)")
    if cfg.auth.recheck_s <= 0:
        problems.append("auth.recheck_s: must be > 0")
    if cfg.auth.max_login_failures < 1 or cfg.auth.login_lockout_minutes < 1:
        problems.append("auth.max_login_failures, auth.login_lockout_minutes: must be >= 1")
    if cfg.asr.default_language not in (*LANGUAGES, "auto"):
        problems.append("asr.default_language: must be 'ja', 'en' or 'auto'")
    if cfg.asr.compute_type not in ("int8", "int8_float32", "float32", "float16", "int8_float16"):
        problems.append("asr.compute_type: must be a ctranslate2 compute type such as 'int8'")
    if cfg.asr.cpu_threads < 1:
        problems.append("asr.cpu_threads: must be at least 1")
    if not 1 <= cfg.asr.workers <= 16:
        problems.append("asr.workers: must be 1..16")
    if not 1 <= cfg.asr.batch_size <= 32:
        problems.append("asr.batch_size: must be 1..32")
    if cfg.asr.max_lag_s <= 0:
        problems.append("asr.max_lag_s: must be > 0")
    if cfg.server.refuse_lag_ms < 0 or cfg.server.refuse_level < 0:
        problems.append("server.refuse_lag_ms, server.refuse_level: must be >= 0 (0: off)")
    known_steps = ("partials", "early_finals", "greedy_finals", "fallback_model")
    unknown = [s for s in cfg.degrade.steps if s not in known_steps]
    if unknown or len(set(cfg.degrade.steps)) != len(cfg.degrade.steps):
        problems.append(f"degrade.steps: each once, from {', '.join(known_steps)}")
    if cfg.server.refuse_level > len(cfg.degrade.steps):
        problems.append("server.refuse_level: deeper than degrade.steps goes")
    if cfg.degrade.step_up_ms >= cfg.degrade.step_down_ms:
        problems.append("degrade.step_up_ms: must be below degrade.step_down_ms (hysteresis)")
    if cfg.degrade.hold_s < 0 or cfg.degrade.recover_s < 0:
        problems.append("degrade.hold_s, degrade.recover_s: must be >= 0")
    if cfg.partials.interval_ms < 200:
        problems.append("partials.interval_ms: must be at least 200")
    for lang, lc in cfg.asr.languages.items():
        if lang not in LANGUAGES:
            problems.append(f"asr.languages.{lang}: only 'ja' and 'en' are supported")
        if not 1 <= lc.beam_size <= 10:
            problems.append(f"asr.languages.{lang}.beam_size: must be 1..10")
        if not 1 <= lc.partial_beam_size <= 10:
            problems.append(f"asr.languages.{lang}.partial_beam_size: must be 1..10")
        if lc.window_s != 0 and not 5 <= lc.window_s <= 30:
            problems.append(f"asr.languages.{lang}.window_s: 0 (fit) or 5..30 seconds")
        if not 0 <= lc.window_pad_s <= 10:
            problems.append(f"asr.languages.{lang}.window_pad_s: must be 0..10 seconds")
    if not 0.05 <= cfg.vad.threshold <= 0.95:
        problems.append("vad.threshold: must be between 0.05 and 0.95")
    if cfg.vad.min_silence_ms < 100:
        problems.append("vad.min_silence_ms: must be at least 100")
    end = cfg.vad.sentence_end_ms
    if end and not cfg.vad.speech_pad_ms <= end <= cfg.vad.min_silence_ms:
        problems.append("vad.sentence_end_ms: 0 (off) or from speech_pad_ms to min_silence_ms")
    if not 32 <= cfg.vad.pause_ms <= max(32, cfg.vad.speech_pad_ms):
        problems.append("vad.pause_ms: from 32 ms (one VAD window) to speech_pad_ms")
    if not 2 <= cfg.vad.max_utterance_s <= 30:
        problems.append("vad.max_utterance_s: must be 2..30 (Whisper windows are 30 s)")
    if cfg.auth.session_hours < 1 or cfg.auth.link_minutes < 1:
        problems.append("auth.session_hours / auth.link_minutes: must be at least 1")
    if cfg.scorecard.silence_ms < 500 or cfg.scorecard.overlap_ms < 100:
        problems.append("scorecard.silence_ms / overlap_ms: at least 500 / 100 ms")
    _check_cluster(cfg, problems)
    if not 1 <= cfg.nlp.threads <= 8:
        problems.append("nlp.threads: must be 1..8")
    problems.extend(
        f"demo.calls: unknown sample call {c!r} (have 'en', 'ja')"
        for c in cfg.demo.calls
        if c not in ("en", "ja")
    )


def _check_cluster(cfg: Config, problems: list[str]) -> None:
    cl = cfg.cluster
    if cl.redis_url and not cl.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problems.append("cluster.redis_url: must start with redis://, rediss:// or unix://")
    if cfg.store.url and not cfg.store.url.startswith(("postgresql://", "postgres://")):
        problems.append("store.url: must be empty (SQLite) or start with postgresql://")
    if not 1 <= cl.inflight <= 64:
        problems.append("cluster.inflight: must be 1..64")
    if not 1 <= cl.worker_batch <= 32:
        problems.append("cluster.worker_batch: must be 1..32")
    if cl.claim_timeout_s < 1 or cl.resubmit_s < cl.claim_timeout_s:
        problems.append("cluster.claim_timeout_s: at least 1 s, and resubmit_s at least that")
    if cl.heartbeat_s <= 0:
        problems.append("cluster.heartbeat_s: must be > 0")
    if not 1 <= cl.worker_calls <= 10000:
        problems.append("cluster.worker_calls: must be 1..10000")
    if cl.lost_call_grace_s < 0:
        problems.append("cluster.lost_call_grace_s: must be >= 0")
    problems.extend(
        f"cluster.worker_languages: {lang!r} is not in asr.languages"
        for lang in cl.worker_languages
        if lang not in cfg.asr.languages
    )
