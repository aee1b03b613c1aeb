"""Which base model an adapter was trained on, and whether it is the one configured now.

An adapter only works on the base it was trained on; loading it on another silently gives garbage.
The run's manifest and the adapter's own config record the base (as a hub id, a local folder or
both); these rules decide whether two references name the same model, so serving, merging and a
multi-run comparison refuse a mismatch with both names instead of answering wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domainllm.errors import ModelError, RunDirError

__all__ = ["check_base_matches", "same_model", "trained_base_names"]


def _is_local_path(ref: str) -> bool:
    """Whether a model reference is a folder (here, or spelled like a path) rather than a hub id.

    Spelling follows :func:`domainllm.defaults.resolve_model`: ``./x``, ``/x``, ``~/x`` and ``a/b/c`` are
    paths, ``org/name`` and ``name`` are hub ids unless such a folder exists here.
    """
    if Path(ref).expanduser().exists():
        return True
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref  # Windows paths too


def _is_hub_id_with_org(ref: str) -> bool:
    return bool(ref) and not _is_local_path(ref) and ref.count("/") == 1


def _recorded_hub_ids(ref: str) -> set[str]:
    """The ``org/name`` hub ids a local folder says it came from (lower case): a hub cache snapshot's
    repository (``models--org--name/snapshots/<hash>``) and config.json's ``_name_or_path``.

    A bare name carries no organisation, so it is not recorded here (it could be anyone's copy).
    """
    ids: set[str] = set()
    path = Path(ref).expanduser()
    for part in path.parts:
        if part.startswith("models--") and part.count("--") >= 2:
            ids.add(part[len("models--") :].replace("--", "/", 1).lower())
    try:
        recorded = json.loads((path / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if isinstance(recorded, str) and _is_hub_id_with_org(recorded):
        ids.add(recorded.lower())
    return ids


def same_model(a: str, b: str, a_ids: Sequence[str] = (), b_ids: Sequence[str] = ()) -> bool:
    """Whether two model references name the same model.

    Equal strings, or two existing folders that are the same folder. Otherwise, when both sides are
    known by an ``org/name`` hub id (their own, one recorded by a local folder, or ``a_ids``/``b_ids``:
    what the caller knows the reference came from, such as the run manifest's configured id), the ids
    must match: ``orgA/X`` and ``orgB/X`` are different models that happen to share a name. Only when
    one side has no such id (a local copy, a bare legacy id like ``gpt2``) do names decide, so a run
    trained on ``HuggingFaceTB/SmolLM2-135M-Instruct`` can be served from a local copy named
    ``SmolLM2-135M-Instruct``, and a run trained on the embedded default on another machine (its cache
    path recorded) from this machine's copy.
    """
    if not a or not b:
        return True
    a, b = a.rstrip("/"), b.rstrip("/")
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()

    def hub_ids(ref: str, known: Sequence[str]) -> set[str]:
        if not _is_local_path(ref):
            return {ref.lower()} if "/" in ref else set()
        return _recorded_hub_ids(ref) | {k.lower() for k in known if _is_hub_id_with_org(k)}

    ids_a, ids_b = hub_ids(a, a_ids), hub_ids(b, b_ids)
    if ids_a and ids_b:
        return bool(ids_a & ids_b)
    return pa.name.lower() == pb.name.lower()


def trained_base_names(run: Any, adapter_dir: Path) -> list[str]:
    """What the run says its base model was: adapter_config.json and the manifest's base model."""
    names: list[str] = []
    cfg_file = adapter_dir / "adapter_config.json"
    try:
        base = json.loads(cfg_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"The adapter config '{cfg_file}' cannot be read ({exc}). Train again with --overwrite."
        raise RunDirError(msg) from exc
    if base:
        names.append(str(base))
    if run is not None:
        manifest_base = run.read_manifest().get("base_model")
        if isinstance(manifest_base, dict):
            for key in ("path", "resolved_path", "name_or_path", "name"):
                value = manifest_base.get(key)
                if isinstance(value, str) and value and value != "default":
                    names.append(value)
        elif isinstance(manifest_base, str) and manifest_base and manifest_base != "default":
            names.append(manifest_base)
    return names


def check_base_matches(trained: list[str], configured: str, resolved: str, where: str) -> None:
    if not trained:
        return
    # Hub ids the run recorded (adapter config, manifest) say where its local paths came from; the
    # configured id says where the resolved folder came from.
    trained_ids = [t for t in trained if _is_hub_id_with_org(t)]
    configured_ids = [configured] if _is_hub_id_with_org(configured) else []
    if any(same_model(t, c, trained_ids, configured_ids) for t in trained for c in (configured, resolved)):
        return
    msg = (
        f"The adapter in '{where}' was trained on base model '{trained[0]}', but the configured base model "
        f"(model.name_or_path) is '{configured}' ({resolved}). An adapter only works on the base it was "
        f"trained on: serve the run with its own config (omit --config), or set model.name_or_path to "
        f"'{trained[0]}'."
    )
    raise ModelError(msg)
