"""Config loading, overrides and validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from domainllm.config import (
    DomainConfig,
    apply_overrides,
    config_fingerprint,
    config_from_dict,
    load_config,
    save_config,
)
from domainllm.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_and_alpha_defaults_to_twice_r():
    cfg = config_from_dict({"lora": {"r": 8}})
    assert isinstance(cfg, DomainConfig)
    assert cfg.lora.alpha == 16
    assert config_from_dict({"lora": {"r": 8, "alpha": 4}}).lora.alpha == 4


def test_shipped_configs_load():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        if path.name.startswith("accelerate"):
            continue
        cfg = load_config(path)
        assert cfg.model.name_or_path


def test_default_config_is_the_dental_cpu_config():
    cfg = load_config()
    assert cfg.data.name == "dental"
    assert cfg.model.name_or_path == "default"


def test_overrides_are_parsed_as_yaml(tmp_path):
    cfg = load_config(
        None, ["training.learning_rate=1e-3", "lora.target_modules=[q_proj, v_proj]", "training.packing=true"]
    )
    assert cfg.training.learning_rate == pytest.approx(1e-3)
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.training.packing is True


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(None, ["lora.r=4", "compare.limit=7"])
    path = save_config(cfg, tmp_path / "config.yaml")
    again = load_config(path)
    assert again == cfg
    assert config_fingerprint(again) == config_fingerprint(cfg)
    assert config_fingerprint(load_config(None, ["lora.r=8"])) != config_fingerprint(cfg)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"lora": {"rank": 8}}, "Unknown config key 'lora.rank'. Did you mean 'r'?"),
        ({"lorra": {}}, "Unknown config key 'lorra'"),
        ({"lora": {"r": "eight"}}, "'lora.r' is 'eight' (str); expected int"),
        ({"training": {"lr_scheduler": "cosine_restarts"}}, "allowed values: cosine, linear, constant"),
        (
            {"quantization": {"mode": "3bit"}},
            "'quantization.mode' is '3bit'; allowed values: auto, 4bit, 8bit, none",
        ),
        ({"lora": {"dropout": 1.5}}, "'lora.dropout' is 1.5"),
        (
            {"training": {"early_stopping_patience": 2, "eval_strategy": "no"}},
            "Early stopping needs eval loss",
        ),
        ({"lora": {"target_modules": "everything"}}, "'attention', 'all-linear', or a list"),
        ({"compare": {"extra_arms": ["gpt4"]}}, "provider:model"),
        ({"training": "fast"}, "must be a mapping"),
    ],
)
def test_bad_values_name_the_key(data, needle):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert needle in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lora:\n  r: [1, 2\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(bad)


def test_error_in_file_names_the_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("training:\n  epochs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "training.epochs" in str(info.value) and str(path) in str(info.value)


def test_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["training.learning_rate"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"lora": 3}, ["lora.r=4"])
