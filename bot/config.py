"""Settings file -> typed settings.

The packaged defaults live in config/settings.toml (every key commented there). A user file only needs
the keys it changes; an unknown key or a value of the wrong kind is a `ConfigError` naming it.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import RollcallError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # a checkout's root; an installed wheel has none of its folders
# a checkout's top-level folder -> its copy inside the installed package
_IN_A_WHEEL = {"models": "models", "config": "settings", "demo": "demo_files"}


def shipped(relative: str | Path) -> Path:
    """A file rollcall ships (`models/...`, `config/...`, `demo/...`): the installed package's copy
    (bot/models, bot/settings, bot/demo_files in a wheel), else the checkout's own folder."""
    first, *rest = Path(relative).parts
    if first in _IN_A_WHEEL:
        packaged = PACKAGE_DIR.joinpath(_IN_A_WHEEL[first], *rest)
        if packaged.exists():
            return packaged
    return PROJECT_DIR / relative


DEFAULTS_FILE = shipped("config/settings.toml")


class ConfigError(RollcallError, ValueError):
    """A bad settings file or value; str() is the one line shown to the user."""


@dataclass(frozen=True)
class CaptureSettings:
    every_s: float = 10.0
    monitor: int = 1
    region: tuple[int, ...] = ()


@dataclass(frozen=True)
class TileSettings:
    min_tile_px: int = 60


@dataclass(frozen=True)
class NameSettings:
    fuzzy_min: float = 85
    fuzzy_lead: float = 5
    reread_every: int = 30


@dataclass(frozen=True)
class FaceSettings:
    min_face_px: int = 36
    blur_min: float = 15.0
    min_in_view: float = 0.8
    flag_in_view: float = 0.95
    full_pass_every: int = 6


@dataclass(frozen=True)
class RecognitionSettings:
    model: str = "models/face_embed.tflite"
    thresholds: str = "models/thresholds.json"
    t_verify: float = -1.0
    margin: float = -1.0
    same_face: float = 0.70
    verifier_refresh: int = 60
    verifier_budget_ms: float = 250.0
    capture_budget_ms: float = 800.0
    vector_refresh: int = 4

    def model_path(self) -> Path:
        return _project_path(self.model)

    def identity(self):
        """The identity stage's settings (bot/identity.py IdentitySettings)."""
        from .identity import IdentitySettings
        return IdentitySettings(self.same_face, self.verifier_refresh, self.verifier_budget_ms,
                                self.capture_budget_ms)

    def thresholds_path(self) -> Path:
        return _project_path(self.thresholds)


@dataclass(frozen=True)
class TrackingSettings:
    confirm_n: int = 3
    window_m: int = 5


@dataclass(frozen=True)
class DesktopSettings:
    timeout_s: int = 10


@dataclass(frozen=True)
class WebhookSettings:
    url_env: str = "ROLLCALL_WEBHOOK_URL"
    format: str = "json"


@dataclass(frozen=True)
class EmailSettings:
    host: str = "localhost"
    port: int = 465
    security: str = "ssl"
    user_env: str = "ROLLCALL_SMTP_USER"
    password_env: str = "ROLLCALL_SMTP_PASSWORD"
    sender: str = "rollcall@localhost"
    to: tuple[str, ...] = ()
    digest_min: float = 0


@dataclass(frozen=True)
class AlertSettings:
    channels: tuple[str, ...] = ("console",)
    rate_limit_per_min: int = 6
    retries: int = 3
    desktop: DesktopSettings = field(default_factory=DesktopSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    email: EmailSettings = field(default_factory=EmailSettings)


@dataclass(frozen=True)
class RetentionSettings:
    days: int = 180
    evidence: bool = True
    reference_faces: bool = False


@dataclass(frozen=True)
class Settings:
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    tiles: TileSettings = field(default_factory=TileSettings)
    names: NameSettings = field(default_factory=NameSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    recognition: RecognitionSettings = field(default_factory=RecognitionSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)


CHANNELS = ("console", "desktop", "webhook", "email")
MAX_EVERY_S = 3600.0   # an hour between captures: beyond it a lecture is not watched at all
MAX_DAYS = 36500.0     # a century: past it a cutoff date is not a date
_CHOICES = {
    "alerts.webhook.format": ("json", "slack", "discord", "teams"),
    "alerts.email.security": ("ssl", "starttls", "none"),
}


def _project_path(p: str) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else shipped(path)


def _coerce(key: str, value, default):
    """Check `value` against the type of `default`; return it in that type."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{key}: unsupported value {value!r}")


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: expected a [section], got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in known:
            raise ConfigError(f"{full}: unknown setting")
        default = known[key].default
        if default is dataclasses.MISSING:  # a nested section
            sub_cls = known[key].default_factory().__class__
            kwargs[key] = _build(sub_cls, value, full)
        else:
            kwargs[key] = _coerce(full, value, default)
    return cls(**kwargs)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _validate(s: Settings) -> None:
    def check(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {why}")

    for key, value in _numbers(s):
        check(math.isfinite(value), key, f"must be a finite number, got {value}")
    check(0 < s.capture.every_s <= MAX_EVERY_S, "capture.every_s", f"must be > 0 and at most {MAX_EVERY_S} s")
    check(s.capture.monitor >= 0, "capture.monitor", "must be >= 0")
    check(len(s.capture.region) in (0, 4) and all(isinstance(v, int) for v in s.capture.region),
          "capture.region", "must be [] or [x, y, w, h] in whole pixels")
    check(not s.capture.region or (s.capture.region[2] > 0 and s.capture.region[3] > 0),
          "capture.region", "width and height must be > 0")
    check(s.tiles.min_tile_px > 0, "tiles.min_tile_px", "must be > 0")
    check(0 <= s.names.fuzzy_min <= 100, "names.fuzzy_min", "must be 0-100")
    check(0 <= s.names.fuzzy_lead <= 100, "names.fuzzy_lead", "must be 0-100")
    check(s.names.reread_every >= 1, "names.reread_every", "must be >= 1 capture")
    check(s.faces.min_face_px > 0, "faces.min_face_px", "must be > 0")
    check(s.faces.blur_min >= 0, "faces.blur_min", "must be >= 0")
    check(s.faces.full_pass_every >= 1, "faces.full_pass_every", "must be >= 1 capture")
    check(0 <= s.faces.min_in_view <= 1, "faces.min_in_view", "must be between 0 and 1")
    check(s.faces.min_in_view <= s.faces.flag_in_view <= 1, "faces.flag_in_view",
          "must be between faces.min_in_view and 1")
    check(s.recognition.t_verify == -1 or -1 <= s.recognition.t_verify <= 1,
          "recognition.t_verify", "must be a cosine in [-1, 1] (or -1 for the calibrated value)")
    check(s.recognition.margin == -1 or 0 <= s.recognition.margin <= 10,
          "recognition.margin", "must be in [0, 10] (or -1 for the calibrated value)")
    check(0 < s.recognition.same_face <= 1, "recognition.same_face", "must be a cosine in (0, 1]")
    check(s.recognition.verifier_refresh >= 1, "recognition.verifier_refresh", "must be >= 1 capture")
    check(s.recognition.verifier_budget_ms >= 0, "recognition.verifier_budget_ms", "must be >= 0")
    check(s.recognition.capture_budget_ms >= 0, "recognition.capture_budget_ms", "must be >= 0")
    check(s.recognition.vector_refresh >= 1, "recognition.vector_refresh", "must be >= 1 capture")
    check(1 <= s.tracking.confirm_n <= s.tracking.window_m, "tracking.confirm_n",
          "must be between 1 and tracking.window_m")
    for ch in s.alerts.channels:
        check(ch in CHANNELS, "alerts.channels", f"unknown channel {ch!r} (known: {', '.join(CHANNELS)})")
    check(s.alerts.rate_limit_per_min > 0, "alerts.rate_limit_per_min", "must be > 0")
    check(s.alerts.retries >= 0, "alerts.retries", "must be >= 0")
    for key, choices in _CHOICES.items():
        section, sub, name = key.split(".")
        value = getattr(getattr(getattr(s, section), sub), name)
        check(value in choices, key, f"{value!r} is not one of {', '.join(choices)}")
    check(0 < s.alerts.email.port < 65536, "alerts.email.port", "must be a TCP port")
    check(s.alerts.email.digest_min >= 0, "alerts.email.digest_min", "must be >= 0")
    check(0 < s.retention.days <= MAX_DAYS, "retention.days", f"must be > 0 and at most {MAX_DAYS}")


def _numbers(obj, prefix: str = ""):
    """(dotted key, value) of every float setting, nested sections included."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _numbers(value, key + ".")
        elif isinstance(value, float):
            yield key, value


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save the settings as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None


def load_settings(path: Path | None = None) -> Settings:
    """Packaged defaults, overlaid with `path` when given."""
    data = _read_toml(DEFAULTS_FILE) if DEFAULTS_FILE.exists() else {}
    if path is not None:
        try:
            data = _merge(data, _read_toml(Path(path)))
            settings = _build(Settings, data, "")
        except ConfigError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    else:
        settings = _build(Settings, data, "")
    _validate_named(settings, path)
    return settings


def _validate_named(settings: Settings, path: Path | None) -> None:
    try:
        _validate(settings)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None
