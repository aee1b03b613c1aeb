"""Typed configuration: YAML plus ``--set key=value`` overrides, validated once at load.

Every stage takes a :class:`DomainConfig` (or one of its sections). Values are checked when the
config is built, so a typo fails in the first second with the dotted key and the allowed values,
not an hour into training. Sections are frozen dataclasses, each field documented where it is
declared (the README's config reference is generated from these comments).
"""

from domainllm.config.compare import CompareConfig
from domainllm.config.loading import (
    NOT_IN_FINGERPRINT,
    DomainConfig,
    apply_overrides,
    config_fingerprint,
    config_from_dict,
    config_to_dict,
    fingerprint_data,
    load_config,
    save_config,
)
from domainllm.config.sections import (
    DataConfig,
    GenerationConfig,
    LoraConfig,
    ModelConfig,
    QuantizationConfig,
    RetrievalConfig,
)
from domainllm.config.training import TrainingConfig

__all__ = [
    "NOT_IN_FINGERPRINT",
    "CompareConfig",
    "DataConfig",
    "DomainConfig",
    "GenerationConfig",
    "LoraConfig",
    "ModelConfig",
    "QuantizationConfig",
    "RetrievalConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_fingerprint",
    "config_from_dict",
    "config_to_dict",
    "fingerprint_data",
    "load_config",
    "save_config",
]
