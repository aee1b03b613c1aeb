"""Building a :class:`DomainConfig` from YAML plus ``--set`` overrides, with type checks that name the key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

from domainllm.config.compare import CompareConfig
from domainllm.config.sections import (
    DataConfig,
    GenerationConfig,
    LoraConfig,
    ModelConfig,
    QuantizationConfig,
    RetrievalConfig,
)
from domainllm.config.training import TrainingConfig
from domainllm.errors import ConfigError

__all__ = [
    "NOT_IN_FINGERPRINT",
    "DomainConfig",
    "apply_overrides",
    "config_fingerprint",
    "config_from_dict",
    "config_to_dict",
    "fingerprint_data",
    "load_config",
    "save_config",
]


@dataclass(frozen=True)
class DomainConfig:
    """The whole configuration of a domain: one YAML file."""

    section: ClassVar[str] = ""

    model: ModelConfig = field(default_factory=ModelConfig)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    # Folder the config file was read from: relative data paths resolve against it. Not a YAML key.
    base_dir: str = field(default=".", compare=False, repr=False)

    def replace(self, **sections: Any) -> DomainConfig:
        """A copy with whole sections swapped, e.g. ``cfg.replace(training=new_training)``."""
        return dataclasses.replace(self, **sections)


# ---------------------------------------------------------------------------------------------------
# Building from plain data, with type checks that name the dotted key.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``key`` and the expected type."""
    if tp is Any:  # free-form values (a recipe's overrides), checked where they are applied
        return value
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads a bare `no` / `off` as false (eval_strategy: no)
            value = next((a for a in (("yes", "on") if value else ("no", "off")) if a in allowed), value)
        if value in allowed and not isinstance(value, bool):
            return value
        msg = f"Config key '{key}' is {value!r}; allowed values: {', '.join(map(str, allowed))}."
        raise ConfigError(msg)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        msg = f"Config key '{key}' is {value!r}; expected {_type_name(tp)}."
        raise ConfigError(msg)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and item_tp is str:
            value = [str(value)]  # `--set lora.target_modules=q_proj` means a one-item list
        if not isinstance(value, list | tuple):
            msg = f"Config key '{key}' is {value!r}; expected {_type_name(tp)}."
            raise ConfigError(msg)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:  # `recipe:` with nothing after it means an empty mapping
            return {}
        if not isinstance(value, Mapping):
            msg = f"Config key '{key}' is {value!r}; expected a mapping like {{question: query}}."
            raise ConfigError(msg)
        value_tp = typing.get_args(tp)[1] if typing.get_args(tp) else str
        if value_tp is str:
            return {str(k): str(v) for k, v in value.items()}
        return {str(k): _coerce(v, value_tp, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "2e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    msg = f"Config key '{key}' is {value!r} ({type(value).__name__}); expected {_type_name(tp)}."
    raise ConfigError(msg)


# Names other tools use for our keys: an unknown key that matches one gets a "did you mean".
_SYNONYMS = {
    "rank": "r",
    "lora_r": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "lr": "learning_rate",
    "epochs": "num_epochs",
    "num_train_epochs": "num_epochs",
    "batch_size": "per_device_batch_size",
    "per_device_train_batch_size": "per_device_batch_size",
    "max_length": "max_seq_length",
    "lr_scheduler_type": "lr_scheduler",
    "optim": "optimizer",
    "model_name": "name_or_path",
    "model": "name_or_path",
    "top_k": "k",
}


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = f"'{prefix}'" if prefix else "the top level"
        msg = f"Config section {where} must be a mapping of keys to values, got {data!r}."
        raise ConfigError(msg)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "base_dir"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        import difflib

        close = [_SYNONYMS[unknown[0]]] if _SYNONYMS.get(unknown[0]) in fields else []
        close = close or difflib.get_close_matches(unknown[0], list(fields), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        msg = f"Unknown config key '{key}'.{hint} Allowed keys here: {', '.join(sorted(fields))}."
        raise ConfigError(msg)
    kwargs = {
        name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name)
        for name, value in data.items()
    }
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any] | None, base_dir: str | Path = ".") -> DomainConfig:
    """Build and validate a DomainConfig from nested plain data (a parsed YAML file)."""
    from domainllm.config.recipes import check_recipes

    cfg = dataclasses.replace(_build(DomainConfig, dict(data or {}), ""), base_dir=str(base_dir))
    check_recipes(cfg)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested data for YAML/JSON, without the non-key ``base_dir``."""
    data = dataclasses.asdict(cfg)
    data.pop("base_dir", None)
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to nested data; values are parsed as YAML (``true``, ``2e-4``, ``[a, b]``)."""
    import yaml

    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        if "=" not in item:
            msg = f"Override '{item}' is not of the form key=value, e.g. --set training.learning_rate=1e-4."
            raise ConfigError(msg)
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            msg = f"Override key '{key}' is malformed; write it as section.key, e.g. lora.r=8."
            raise ConfigError(msg)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            msg = f"Override '{item}': the value is not valid YAML ({exc.__class__.__name__}). Quote it."
            raise ConfigError(msg) from exc
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                msg = f"Override '{item}': '{part}' is a value, not a section."
                raise ConfigError(msg)
            node = child
        node[parts[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DomainConfig:
    """Read a YAML config (None = the shipped dental default), apply overrides, validate.

    Relative data paths in the file resolve against the file's folder, so a config and its data can
    move together.
    """
    from domainllm.resources import resource_path

    if path is None:
        path = resource_path("configs") / "dental.yaml"
        if not path.is_file():
            return config_from_dict(apply_overrides({}, overrides))
    path = Path(path)
    data = _read_config_file(path)
    base_dir = path.resolve().parent
    try:
        return config_from_dict(apply_overrides(data, overrides), base_dir=base_dir)
    except ConfigError as exc:
        msg = f"{exc} ({_blame(exc, data, overrides, path)})"
        raise ConfigError(msg) from None


def _read_config_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a missing file, a folder, bad YAML or an empty file is a ConfigError.

    An empty file (or one with only comments) is refused rather than read as "all defaults": the
    library defaults are not a domain (they would train the built-in data with 3 epochs, not what the
    shipped dental.yaml says), and an empty file is far more often a mistake than a choice.
    """
    import yaml

    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.y*ml"))[:5]
        inside = f" (it holds {', '.join(found)})" if found else ""
        msg = (
            f"Config file '{path}' is a directory{inside}. Pass a YAML file with --config, e.g. "
            f"--config {path / (found[0] if found else 'config.yaml')}."
        )
        raise ConfigError(msg)
    if not path.is_file():
        msg = f"Config file '{path}' does not exist. Pass an existing YAML file, or omit --config for the default."
        raise ConfigError(msg)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        msg = f"Config file '{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}."
        raise ConfigError(msg) from exc
    if data is None:
        msg = (
            f"Config file '{path}' is empty (nothing but whitespace or comments), so it names no model, data or "
            "training settings. Copy a shipped config (configs/dental.yaml) and edit it, or omit --config to use "
            "the shipped dental default."
        )
        raise ConfigError(msg)
    if not isinstance(data, dict):
        msg = f"Config file '{path}' must hold a mapping of sections (model:, lora:, training:, ...)."
        raise ConfigError(msg)
    return data


def _blame(exc: ConfigError, data: dict[str, Any], overrides: Sequence[str], path: Path) -> str:
    """Where a config error comes from: ``in FILE``, or ``from --set a.b=1, applied to FILE``.

    The file is validated on its own: when it passes (or fails differently), an override caused the
    error; the overrides whose key the message names are the ones blamed, else all of them.
    """
    message = str(exc)
    if overrides:
        try:
            config_from_dict(data)
            from_file = None
        except ConfigError as file_exc:
            from_file = str(file_exc)
        if from_file != message:
            return f"{_blame_overrides(message, overrides)}, applied to {path}"
    return f"in {path}"


def _blame_overrides(message: str, overrides: Sequence[str]) -> str:
    """``from --set a.b=1``: the overrides whose key the error names, else all of them."""

    def names(item: str) -> bool:
        key = item.split("=", 1)[0].strip()
        return any(f"'{key}{end}" in message for end in ("'", ".", "["))

    named = [o for o in overrides if names(o)]
    return "from " + ", ".join(f"--set {o}" for o in (named or overrides))


def save_config(cfg: DomainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML: what a run actually used, every default spelled out."""
    import yaml

    from domainllm.fsio import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


# Training keys that say where a run goes and who hears about it, not what it learns: changing them
# must not make a finished run look stale.
NOT_IN_FINGERPRINT = (
    "training.output_dir",
    "training.push_to_hub",
    "training.hub_model_id",
    "training.hub_strategy",
    "training.report_to",
    "training.logging_steps",
    "training.dataloader_num_workers",
    # How the run computes, not what it learns (the same loss and gradients, to float rounding):
    # changing them must not make a finished run look stale either.
    "training.padding_free",
    "training.memory_budget_gib",
    "training.liger_kernel",
    "training.compile",
)


def fingerprint_data(
    cfg: DomainConfig, sections: Sequence[str] = ("model", "quantization", "lora", "training", "data")
) -> dict[str, Any]:
    """The config values that determine a trained adapter, as nested data (what the fingerprint hashes)."""
    data = config_to_dict(cfg)
    picked = {name: data[name] for name in sections}
    for key in NOT_IN_FINGERPRINT:
        section, name = key.split(".")
        picked.get(section, {}).pop(name, None)
    return picked


def config_fingerprint(
    cfg: DomainConfig, sections: Sequence[str] = ("model", "quantization", "lora", "training", "data")
) -> str:
    """A stable hash of the sections that determine a trained adapter (used to reuse a previous run)."""
    blob = json.dumps(fingerprint_data(cfg, sections), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
