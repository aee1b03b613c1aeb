"""Phase timing for ``compare``: each phase's wall time goes into the report, and a line to stderr as it ends."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PhaseTimer"]

log = logging.getLogger(__name__)


class PhaseTimer:
    """Times each phase and reports it as it ends (a line under the progress bars, on stderr)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("phase: %s", name)
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = time.perf_counter() - t0
            self.phases[name] = round(self.phases.get(name, 0.0) + seconds, 2)
            from tqdm.auto import tqdm

            tqdm.write(f"compare | {name}: {seconds:.1f} s{'' if ok else ' (failed)'}", file=sys.stderr)
