"""What the benchmarks measure, measured one way: step times, tokens per step, peak memory, the machine.

* Step times: a Trainer callback around every optimizer step (``torch.cuda.synchronize`` on both
  sides on a GPU, so the time is the step's, not its launch's).
* Tokens: the collator is wrapped and counts, per micro-batch, the tokens the model computes on
  (padding included) and the real ones (padding excluded).
* Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (what the peers report); on CPU the
  process's resident memory sampled every 10 ms, above what it was before the model was loaded
  (each variant runs in its own process, so nothing of another variant's memory is counted).
"""

from __future__ import annotations

import os
import platform
import threading
import time
from datetime import datetime, timezone
from typing import Any

__all__ = ["PeakMemory", "TokenCounter", "environment", "step_timer", "throughput"]


def step_timer(cuda: bool) -> Any:
    """A ``transformers.TrainerCallback`` whose ``times`` holds the wall time of every optimizer step."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self._start = time.perf_counter()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


class TokenCounter:
    """Wraps a data collator; counts computed and real tokens of every micro-batch it builds."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator
        self.computed: list[int] = []
        self.real: list[int] = []

    def __call__(self, examples: list[dict[str, Any]]) -> Any:
        batch = self.collator(examples)
        ids = batch["input_ids"]
        self.computed.append(int(ids.numel()))
        mask = batch.get("attention_mask")
        self.real.append(int(mask.sum()) if mask is not None else sum(len(e["input_ids"]) for e in examples))
        return batch


def throughput(times: list[float], counter: TokenCounter, accumulation: int, warmup: int) -> dict[str, float]:
    """Tokens/s and real tokens/s over the steps after ``warmup``, and the median step time."""
    timed = times[warmup:]
    if not timed:
        msg = f"only {len(times)} steps ran; need more than the {warmup} warm-up steps"
        raise ValueError(msg)
    first, last = warmup * accumulation, len(times) * accumulation
    seconds = sum(timed)
    ordered = sorted(timed)
    return {
        "tokens_per_s": sum(counter.computed[first:last]) / seconds,
        "real_tokens_per_s": sum(counter.real[first:last]) / seconds,
        "step_s_median": ordered[len(ordered) // 2],
        "steps_timed": len(timed),
    }


class PeakMemory:
    """Peak memory of a block: CUDA allocated bytes, or sampled RSS above the starting RSS on CPU."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = 0

    def start(self) -> PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        process = psutil.Process(os.getpid())
        self._base = process.memory_info().rss

        def sample() -> None:
            while not self._stop.wait(0.01):
                self.peak_bytes = max(self.peak_bytes, process.memory_info().rss - self._base)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """The peak in GiB."""
        if self.cuda:
            import torch

            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
        return self.peak_bytes / 2**30


def environment(device: str) -> dict[str, Any]:
    """The facts a benchmark table must carry: device, library versions, date."""
    import torch

    from domainllm.versions import library_versions

    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        where = f"{name} ({memory:.0f} GiB)"
    else:
        where = f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    versions = library_versions()
    keep = ("torch", "transformers", "peft", "trl", "bitsandbytes")
    return {
        "device": where,
        "versions": {k: versions.get(k) for k in keep} | {"liger-kernel": _version("liger-kernel")},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
