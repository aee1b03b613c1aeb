"""Validation helpers every config section uses: one wording for every config error."""

from __future__ import annotations

import typing

from domainllm.errors import ConfigError

__all__ = ["check_range", "fail"]


def fail(section: str, name: str, problem: str, fix: str) -> typing.NoReturn:
    msg = f"Config key '{section}.{name}' {problem}. {fix}"
    raise ConfigError(msg)


def check_range(section: str, name: str, value: float, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        fail(section, name, f"is {value!r}", f"Use a value {bounds}.")
