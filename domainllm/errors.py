"""Errors a user can act on.

Every error the library raises on purpose is a :class:`DomainLLMError`: its message is one paragraph
that names the key, file or path at fault and says how to fix it. The CLI prints that paragraph
(no traceback unless ``--debug``) and exits with :attr:`DomainLLMError.exit_code`.

An interrupt (Ctrl-C, or SIGTERM, which the CLI turns into the same ``KeyboardInterrupt``) is not an
error: a command that was stopped records what it kept and raises :class:`Interrupted`, which says
where and how to continue.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DomainLLMError",
    "EvalError",
    "Interrupted",
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


class Interrupted(KeyboardInterrupt):
    """A command stopped by Ctrl-C or SIGTERM after recording its state: the message names what was
    kept and the exact command that continues it.

    A ``KeyboardInterrupt``, so ``except KeyboardInterrupt`` (and Python's own exit on Ctrl-C) still
    treats it as the interrupt it is; the CLI prints the message and exits 128 + the signal number.
    """
