"""A comparison that survives interruption: each arm's predictions on disk as it ends, and ``--resume``.

Layout of an output folder::

    OUT/
      arms/<arm>.json     one finished arm (answers, prompts, sources, timings, option log-likelihoods)
      predictions.jsonl   every question x arm, with scores (written after the arms)
      chart.png, report.md
      results.json        status: running | interrupted | failed | complete (written first and last)

An arm file carries a key: a hash of everything its answers depend on (the model, decoding and
retrieval settings, the chain spec, the questions, the fine-tuned run's adapter, the documents). With
``--resume`` an arm whose saved key equals the current one is read back instead of run again; any
other saved arm runs again. Nothing of a finished comparison is replaced unless ``--resume`` or
``--overwrite`` says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from domainllm.errors import EvalError
from domainllm.eval.predictions import ArmRun
from domainllm.fsio import atomic_write_json

__all__ = ["ARMS_DIR", "ArmStore", "arm_key", "check_output_dir", "clear_output_dir", "file_digest"]

log = logging.getLogger(__name__)

ARMS_DIR = "arms"
_OUTPUT_FILES = ("report.md", "results.json", "predictions.jsonl", "chart.png")


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file (an adapter's weights), or None if it is absent."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def arm_key(parts: dict[str, Any]) -> str:
    """A stable hash of what an arm's answers depend on."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _read_status(out: Path) -> dict[str, Any] | None:
    path = out / "results.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"status": "unreadable"}


def check_output_dir(out: Path, resume: bool, overwrite: bool, resume_command: str) -> None:
    """Refuse, before anything is written, an output folder that would lose a comparison's work.

    A folder holding a comparison (finished or not) is refused unless ``resume`` (reuse its arms) or
    ``overwrite`` (replace it) says what to do with it; ``resume`` on an empty or absent folder simply
    runs everything, so ``compare --resume`` is safe to repeat (``make compare`` uses it).
    """
    if resume and overwrite:
        msg = "--resume continues a comparison and --overwrite replaces it; pass only one of them."
        raise EvalError(msg)
    if out.exists() and not out.is_dir():
        msg = f"The comparison's output folder '{out}' is a file. Pass a folder with -o/--output-dir (or compare.output_dir)."
        raise EvalError(msg)
    previous = _read_status(out) if out.is_dir() else None
    has_arms = (out / ARMS_DIR).is_dir() and any((out / ARMS_DIR).glob("*.json"))
    if previous is None and not has_arms:
        if resume:  # like `make`: nothing done yet, so everything runs (nothing can be lost)
            log.info("Nothing to resume in %s: every arm runs.", out)
        return
    if resume or overwrite:
        return
    status = (previous or {}).get("status", "unfinished")
    if status == "complete":
        msg = (
            f"'{out}' already holds a finished comparison ({previous.get('created_at', 'date unknown')}). Pass "
            "--resume to reuse its arms (re-scored and re-rendered; arms whose config changed run again), "
            "--overwrite to replace it, or -o another folder."
        )
    else:
        msg = (
            f"'{out}' holds an unfinished comparison (status: {status}). Continue it with `{resume_command}` "
            "(finished arms are not run again), pass --overwrite to start over, or -o another folder."
        )
    raise EvalError(msg)


def clear_output_dir(out: Path) -> None:
    """Remove what a previous comparison wrote in ``out`` (only with --overwrite, after every check passed)."""
    for name in _OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / ARMS_DIR, ignore_errors=True)


def _file_name(arm: str) -> str:
    """A file name for an arm name (``openai:gpt-4o``, ``finetuned@raft``) that stays readable."""
    safe = re.sub(r"[^A-Za-z0-9_.@-]+", "_", arm)
    if safe != arm:
        safe += "-" + hashlib.sha256(arm.encode()).hexdigest()[:6]
    return safe + ".json"


class ArmStore:
    """The finished arms of one comparison, one JSON file each under ``OUT/arms/``."""

    def __init__(self, out: Path) -> None:
        self.dir = Path(out) / ARMS_DIR

    def path(self, arm: str) -> Path:
        return self.dir / _file_name(arm)

    def save(self, run: ArmRun) -> Path:
        """Write one finished arm atomically (a kill mid-write leaves the previous file or none)."""
        return atomic_write_json(self.path(run.name), run.to_dict(), indent=None)

    def load(self, arm: str, key: str) -> ArmRun | None:
        """The saved arm if it finished (ok) with this key; None (with the reason logged) otherwise."""
        path = self.path(arm)
        if not path.is_file():
            return None
        try:
            run = ArmRun.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("Saved arm %s is unreadable (%s); it runs again.", path, exc)
            return None
        if run.name != arm or run.key != key:
            log.warning(
                "Saved arm '%s' was made with other settings (key %s, now %s); it runs again.",
                arm,
                run.key,
                key,
            )
            return None
        if not run.ok:
            return None
        return run

    def saved(self) -> list[str]:
        return sorted(p.name for p in self.dir.glob("*.json")) if self.dir.is_dir() else []
