"""Library versions and environment facts recorded in every manifest and report."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["LIBRARIES", "git_commit", "library_versions"]

LIBRARIES = (
    "domainllm",
    "torch",
    "transformers",
    "peft",
    "trl",
    "bitsandbytes",
    "accelerate",
    "datasets",
    "sentence-transformers",
    "langchain",
    "langchain-core",
    "langchain-huggingface",
    "langchain-chroma",
    "chromadb",
    "gguf",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions (None when absent), plus Python and the platform."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: str | Path = ".") -> str | None:
    """The commit of the git checkout at ``path`` (with "-dirty" when it has changes), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head
