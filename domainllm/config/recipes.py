"""Recipes: the runs one comparison trains, each the comparison's config with a few keys changed.

``compare.recipes`` maps a run name to overrides of ``training``/``lora``/``data`` keys, e.g.::

    compare:
      recipes:
        sft: {}                                    # the config as it is
        raft: {training.train_on: raft}            # the same, trained RAFT-style

:func:`recipe_config` builds one recipe's config: the comparison's config with those keys applied
and ``training.output_dir`` set to ``<training.output_dir>-<name>`` (unless the recipe sets it), so
each recipe trains into, and is reused from, its own folder. The recipe list itself is not part of
a recipe's config (a run's config.yaml describes that run only). Every recipe is built once when
the config loads, so a mistyped key fails there, named ``compare.recipes.<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domainllm.errors import ConfigError

if TYPE_CHECKING:
    from domainllm.config.loading import DomainConfig

__all__ = ["check_recipes", "recipe_config"]


def recipe_config(cfg: DomainConfig, name: str) -> DomainConfig:
    """The config recipe ``name`` of ``cfg.compare.recipes`` trains with (validated)."""
    from domainllm.config.loading import config_from_dict, config_to_dict

    if name not in cfg.compare.recipes:
        known = ", ".join(cfg.compare.recipes) or "none"
        msg = f"No recipe named '{name}' in compare.recipes (recipes: {known})."
        raise ConfigError(msg)
    data = config_to_dict(cfg)
    data["compare"] = {**data["compare"], "recipes": {}, "runs": {}}
    data["training"]["output_dir"] = f"{cfg.training.output_dir}-{name}"
    for dotted, value in cfg.compare.recipes[name].items():
        section, key = dotted.split(".", 1)
        if key not in data[section]:
            fields = ", ".join(sorted(data[section]))
            msg = (
                f"Config key 'compare.recipes.{name}' sets '{dotted}', which is not a key of the "
                f"{section} section. Allowed keys there: {fields}."
            )
            raise ConfigError(msg)
        data[section][key] = value
    try:
        return config_from_dict(data, base_dir=cfg.base_dir)
    except ConfigError as exc:
        msg = f"Config key 'compare.recipes.{name}': {exc}"
        raise ConfigError(msg) from None


def check_recipes(cfg: DomainConfig) -> None:
    """Build every recipe's config once, so a bad override fails when the config loads."""
    for name in cfg.compare.recipes:
        recipe_config(cfg, name)
