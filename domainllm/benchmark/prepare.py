"""What the arms need before they run: the fine-tuned run, the knowledge base, the model.

The rule for runs: ``compare`` never replaces or deletes a finished run. A run at
``training.output_dir`` trained with the same config and data is reused; one trained differently is
kept as it is, and this comparison trains into a sibling folder named by its config fingerprint
(``runs/dental-<fingerprint>``), which a later ``compare`` with the same config reuses. An unfinished
run of the same config is resumed from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domainllm.config import DomainConfig, config_fingerprint, config_to_dict
from domainllm.data.records import QADataset, documents_sha256, records_sha256
from domainllm.errors import EvalError
from domainllm.rundir import STATUS_COMPLETE, RunDir

__all__ = [
    "RunInfo",
    "RunSource",
    "open_given_run",
    "plan_runs",
    "prepare_run",
    "prepare_runs",
    "prepare_store",
    "stale_reason",
]

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """A fine-tuned run as the comparison uses it."""

    name: str
    path: Path
    reused: bool
    note: str
    manifest: dict[str, Any] = field(default_factory=dict)
    # The recipe's overrides (compare.recipes) when this comparison trained or reused it as a recipe.
    recipe: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """What results.json records about the run (training facts, not the whole manifest)."""
        keys = (
            "wall_time_s",
            "train_runtime_s",
            "tokens_per_second",
            "global_step",
            "eval_loss_before",
            "eval_loss_after",
        )
        return {
            "run_dir": str(self.path),
            "reused": self.reused,
            "note": self.note,
            "fingerprint": self.manifest.get("fingerprint"),
            "training": {k: self.manifest[k] for k in keys if k in self.manifest},
            **({"recipe": self.recipe} if self.recipe is not None else {}),
        }


@dataclass
class RunSource:
    """Where one run of the comparison comes from: a finished run given to it, or a config to train."""

    name: str
    given: RunDir | None = None
    cfg: DomainConfig | None = None  # the recipe's (or the comparison's) config, when it trains
    data: QADataset | None = None  # that config's data, loaded once by the check phase
    recipe: dict[str, Any] | None = None


def stale_reason(manifest: dict[str, Any], cfg: DomainConfig, data: QADataset) -> str | None:
    """Why a run does not match the current config and data, or None if it does."""
    current = config_fingerprint(cfg)
    if manifest.get("fingerprint") != current:
        return f"it was trained with another config (fingerprint {manifest.get('fingerprint')}, this config is {current})"
    recorded = manifest.get("data") or {}
    for split in ("train", "val"):
        if (recorded.get(split) or {}).get("sha256") != records_sha256(data.split(split)):
            return f"its {split} split differs from the current data (sha256 mismatch)"
    if cfg.training.train_on != "qa" and recorded.get("documents_sha256") != documents_sha256(data.documents):
        return "its documents differ from the current documents"
    return None


def open_given_run(run_dir: str | Path) -> RunDir:
    """The run given with ``--run``, checked before anything else happens (a broken run fails at once)."""
    return RunDir.open(Path(run_dir).expanduser().resolve())  # absolute: the report names it from anywhere


def _reuse(name: str, run: RunDir, note: str) -> RunInfo:
    log.info("%s", note)
    return RunInfo(name, run.path, True, note, run.read_manifest())


def _state(path: Path) -> tuple[str | None, dict[str, Any]] | None:
    """None for a free folder (absent or empty); else (status, manifest) — status None for a non-run folder."""
    if not path.exists():
        return None
    if path.is_dir() and not any(path.iterdir()):
        return None
    run = RunDir(path)
    try:
        manifest = run.read_manifest()
    except Exception:  # an unreadable manifest: not ours to touch
        return (None, {})
    return (manifest.get("status"), manifest)


def prepare_run(cfg: DomainConfig, data: QADataset, given: RunDir | None, name: str = "default") -> RunInfo:
    """The run the fine-tuned arms use: the given one, a matching earlier one, a resumed one, or a new one."""
    from domainllm.data.preferences import with_default_preferences

    cfg = with_default_preferences(cfg)  # as training fills it in, so the fingerprints agree
    if given is not None:
        stale = stale_reason(given.read_manifest(), cfg, data)
        note = f"reusing run {given.path} (given with --run)"
        if stale:
            note += f"; note: {stale}"
            log.warning("The run given with --run was trained differently: %s.", stale)
        return _reuse(name, given, note)
    from domainllm.training import last_checkpoint, train

    primary = Path(cfg.training.output_dir).expanduser().resolve()
    alternate = primary.with_name(f"{primary.name}-{config_fingerprint(cfg)[:8]}")
    passed: list[str] = []
    for path in (primary, alternate):
        state = _state(path)
        if state is None:
            note = "; ".join([*passed, f"trained run {path}"])
            if passed:
                log.warning("%s.", note)
            trained = Path(train(cfg, output_dir=path))
            manifest = RunDir(trained).read_manifest()
            return RunInfo(name, trained, False, f"{note} ({manifest.get('wall_time_s', '?')} s)", manifest)
        status, manifest = state
        stale = (
            stale_reason(manifest, cfg, data) if status is not None else "it is not a domainllm run directory"
        )
        run = RunDir(path)
        if (
            status == STATUS_COMPLETE
            and stale is None
            and (run.adapter_dir / "adapter_config.json").is_file()
        ):
            return _reuse(name, run, f"reusing run {path} (config fingerprint and dataset hashes match)")
        if status not in (None, STATUS_COMPLETE) and stale is None and last_checkpoint(run.checkpoints_dir):
            log.warning("Resuming the unfinished run %s (same config and data).", path)
            trained = Path(train(cfg, output_dir=path, resume=True))
            manifest = RunDir(trained).read_manifest()
            return RunInfo(name, trained, False, f"resumed and finished run {path}", manifest)
        what = f"a {status} run" if status else "files that are not a finished run of this config"
        passed.append(f"{path} holds {what} ({stale or 'no checkpoint to resume'}) and was left as it is")
    msg = (
        f"No free run directory for this config: {'; '.join(passed)}. domainllm never replaces a run it did "
        "not make for this config: set training.output_dir to a new folder, pass --run RUN_DIR to reuse a "
        "finished run, or remove one of those folders yourself."
    )
    raise EvalError(msg)


def plan_runs(
    cfg: DomainConfig,
    data: QADataset,
    run_dir: str | Path | None,
    runs: Mapping[str, str | Path],
    needed: bool,
) -> dict[str, RunSource]:
    """Every run the adapter arms use, checked before anything is trained or loaded, in order.

    Given runs first (``run_dir`` is the one called "default"; ``compare.runs`` then ``runs``, the
    latter winning for a name both give), then ``compare.recipes``; with none of these and adapter
    arms to run (``needed``), the comparison's own config as the "default" run. Opens every given
    run (a broken one fails here), loads each recipe's data when it differs from the comparison's,
    and refuses runs on another base model when several runs share it.
    """
    from domainllm.config.recipes import recipe_config, recipe_order
    from domainllm.resources import resolve_path

    given: dict[str, str | Path] = {}
    if run_dir is not None:
        given["default"] = run_dir
    for name, path in cfg.compare.runs.items():
        given[name] = resolve_path(path, cfg.base_dir, f"compare.runs.{name}")
    given.update(runs)
    clash = sorted(set(given) & set(cfg.compare.recipes))
    if clash:
        msg = (
            f"The run name '{clash[0]}' is given as a finished run (--run / compare.runs) and as a recipe "
            "(compare.recipes). Give each run one name."
        )
        raise EvalError(msg)
    sources = {name: RunSource(name, given=open_given_run(path)) for name, path in given.items()}
    base = config_to_dict(cfg)["data"]
    for name in recipe_order(cfg):  # a recipe that starts from another one trains after it
        rcfg = recipe_config(cfg, name)
        if config_to_dict(rcfg)["data"] == base:
            rdata = data
        else:
            from domainllm.data import load_domain

            rdata = load_domain(rcfg.data, rcfg.base_dir)
        sources[name] = RunSource(name, cfg=rcfg, data=rdata, recipe=dict(cfg.compare.recipes[name]))
    if not sources and needed:
        sources["default"] = RunSource("default", cfg=cfg, data=data)
    named_given = {n: s.given.path for n, s in sources.items() if s.given is not None}
    if named_given and (len(sources) > 1 or "default" not in named_given):
        from domainllm.serve.adapters import check_same_base

        check_same_base(named_given, cfg)  # one base in memory for every run
    return sources


def prepare_runs(cfg: DomainConfig, data: QADataset, sources: Mapping[str, RunSource]) -> dict[str, RunInfo]:
    """Each planned run reused (given), or trained / resumed / reused by fingerprint (a recipe)."""
    runs: dict[str, RunInfo] = {}
    for name, source in sources.items():
        if source.given is not None and name != "default":
            runs[name] = _reuse(name, source.given, f"reusing run {source.given.path} (given as '{name}')")
        elif source.given is not None:
            runs[name] = prepare_run(cfg, data, source.given, name)
        else:
            assert source.cfg is not None and source.data is not None
            info = prepare_run(_from_recipe(source.cfg, runs), source.data, None, name)
            runs[name] = dataclasses.replace(info, recipe=source.recipe)
    return runs


def _from_recipe(cfg: DomainConfig, runs: Mapping[str, RunInfo]) -> DomainConfig:
    """``training.from_run: recipe:<name>`` replaced by that recipe's run directory (trained before)."""
    start = cfg.training.from_run
    if start is None or not start.startswith("recipe:"):
        return cfg
    run = runs[start[len("recipe:") :]]  # recipe_order put it first; check_recipes checked the name
    return cfg.replace(training=dataclasses.replace(cfg.training, from_run=str(run.path)))


def prepare_store(cfg: DomainConfig, data: QADataset) -> tuple[Any, dict[str, Any]]:
    """Bring the Chroma store up to date with the domain's documents (cheap when unchanged) and open it."""
    from domainllm.rag import default_store_dir, index_documents, open_store

    store_dir = default_store_dir(cfg)
    stats = index_documents(data.documents, store_dir, cfg.retrieval, source=data.source)
    log.info("%s", stats.summary())
    info = {
        "store_dir": str(store_dir),
        "summary": stats.summary(),
        "documents_sha256": documents_sha256(data.documents),
        "stats": dataclasses.asdict(stats),
    }
    return open_store(store_dir, cfg.retrieval), info
