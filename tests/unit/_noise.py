"""Real library noise for the stdout-is-for-results tests: a ``sitecustomize.py`` that, when the CLI
imports a given module (inside the command, after logging is set up), makes noise the four ways
libraries do: a log record, a Python warning, a ``print()`` and a raw write to file descriptor 1."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["NOISE", "noisy_env"]

# One marker per way; short, so that rich's line wrapping on stderr cannot split them.
NOISE = ("NOISE-LOG", "NOISE-WARNING", "NOISE-PRINT", "NOISE-FD1")

_SITECUSTOMIZE = """
import logging, os, sys, warnings

def _noise(event, args):
    if event == "import" and args[0] == {module!r} and not getattr(sys, "_domainllm_noise", False):
        sys._domainllm_noise = True
        # A library logger that propagates to the root handler, as bitsandbytes' did in the real incident
        # (the CLI sets bitsandbytes' own logger to ERROR without -v, hence a neutral name here).
        logging.getLogger("somelibrary.backends").warning("NOISE-LOG from a library logger")
        warnings.warn("NOISE-WARNING from a library", UserWarning, stacklevel=1)
        print("NOISE-PRINT", flush=True)
        os.write(1, b"NOISE-FD1\\n")

sys.addaudithook(_noise)
"""


def noisy_env(folder: Path, module: str) -> dict[str, str]:
    """Environment for a subprocess whose first import of ``module`` makes the noise."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(module=module), encoding="utf-8")
    repo = Path(__file__).resolve().parents[2]
    path = [str(folder), str(repo), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}
