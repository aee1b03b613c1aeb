"""Errors a user can act on.

Every error the library raises on purpose is a :class:`DomainLLMError`: its message is one paragraph
that names the key, file or path at fault and says how to fix it. The CLI prints that paragraph
(no traceback unless ``--debug``) and exits with :attr:`DomainLLMError.exit_code`.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DomainLLMError",
    "EvalError",
    "MissingDependencyError",
    "ModelError",
    "RunDirError",
    "StoreError",
    "TrainingError",
]


class DomainLLMError(Exception):
    """Base class: a problem in the user's input or environment, not a bug in domainllm."""

    exit_code = 2


class ConfigError(DomainLLMError, ValueError):
    """A config key is unknown, has the wrong type, or holds a value outside the allowed set."""


class DataError(DomainLLMError, ValueError):
    """A dataset or document folder is malformed; the message names file, line and field."""


class ModelError(DomainLLMError):
    """A model or adapter cannot be found or loaded (offline hub id, mismatched base, ...)."""


class MissingDependencyError(DomainLLMError, ImportError):
    """An optional package is needed for what was asked; the message has the install command."""


class RunDirError(DomainLLMError):
    """A run directory is missing, incomplete, or would be overwritten."""


class TrainingError(DomainLLMError):
    """Training cannot start or failed for a reason the user can fix."""


class StoreError(DomainLLMError):
    """A vector store is missing or was built with another embedding model."""


class EvalError(DomainLLMError):
    """An evaluation input is unusable (empty split, unknown answer type, unknown arm)."""
