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

A recipe may start from another one: ``dpo: {training.method: dpo, training.from_run: recipe:sft}``
trains after ``sft``, from its run (:func:`recipe_order`, :func:`recipe_dependency`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domainllm.errors import ConfigError

if TYPE_CHECKING:
    from domainllm.config.loading import DomainConfig

__all__ = ["check_recipes", "recipe_config", "recipe_dependency", "recipe_order"]


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


def recipe_dependency(cfg: DomainConfig, name: str) -> str | None:
    """The recipe that recipe ``name`` starts from (``training.from_run: recipe:<other>``), or None."""
    start = recipe_config(cfg, name).training.from_run
    if start is None or not start.startswith("recipe:"):
        return None
    other = start[len("recipe:") :]
    if other == name or other not in cfg.compare.recipes:
        known = ", ".join(n for n in cfg.compare.recipes if n != name) or "none"
        msg = (
            f"Config key 'compare.recipes.{name}' sets training.from_run to {start!r}, but "
            f"{'a recipe cannot start from itself' if other == name else f'there is no recipe {other!r}'}. "
            f"Name another recipe of this comparison (recipes: {known}), or give an SFT run directory."
        )
        raise ConfigError(msg)
    if recipe_dependency(cfg, other) is not None:
        msg = (
            f"Config key 'compare.recipes.{name}' starts from recipe {other!r}, which itself starts from another "
            "recipe; chains are not supported. Start from a recipe trained from the base."
        )
        raise ConfigError(msg)
    return other


def recipe_order(cfg: DomainConfig) -> list[str]:
    """Recipe names in training order: each recipe after the one it starts from (else as written)."""
    first = [n for n in cfg.compare.recipes if recipe_dependency(cfg, n) is None]
    return first + [n for n in cfg.compare.recipes if n not in first]


def check_recipes(cfg: DomainConfig) -> None:
    """Build every recipe's config once, so a bad override fails when the config loads."""
    for name in cfg.compare.recipes:
        recipe_config(cfg, name)
        recipe_dependency(cfg, name)
