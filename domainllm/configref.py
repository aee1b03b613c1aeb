"""The README's config reference, generated from the comments above each field in the config sections (domainllm/config/).

One source of truth: the comment that documents a field in code is the text users read, and a test
fails when the README falls out of step (regenerate with ``python -m domainllm.configref``).
"""

from __future__ import annotations

import dataclasses
import inspect
import re

from domainllm import config as config_module

__all__ = ["config_reference_markdown"]

SECTIONS = ("model", "quantization", "lora", "training", "data", "retrieval", "generation", "compare")


def _field_comments(cls: type) -> dict[str, str]:
    """Map field name -> the comment lines directly above its declaration."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("# ").strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and pending:
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def _default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    return "null" if value is None else str(value).replace("|", "\\|")


def config_reference_markdown() -> str:
    """A Markdown table per config section: key, default, meaning."""
    root_hints = {f.name: f.type for f in dataclasses.fields(config_module.DomainConfig)}
    out: list[str] = []
    for section in SECTIONS:
        cls = getattr(config_module, str(root_hints[section]).split(".")[-1].strip("'\""))
        comments = _field_comments(cls)
        out.append(f"#### `{section}`: {(cls.__doc__ or '').strip().splitlines()[0]}")
        out.append("")
        out.append("| key | default | meaning |")
        out.append("|---|---|---|")
        for field in dataclasses.fields(cls):
            meaning = comments.get(field.name, "").replace("|", "\\|")
            out.append(f"| `{section}.{field.name}` | `{_default_text(field)}` | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(config_reference_markdown(), end="")
