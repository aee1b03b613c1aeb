"""``domainllm bench``: the CPU mode runs end to end through the real CLI and prints one honest table.

Not timed tests: they check that every variant ran (one row each, positive numbers, real tokens
never above computed ones, the ratio column), that a GPU-sized shape is refused on CPU with a
clear message, and what the upcast count and the length files give.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

NUMBER = r"([\d,]+(?:\.\d+)?)"


def _cli(args: str) -> subprocess.CompletedProcess:
    """``python -m domainllm bench ARGS`` (the real CLI, in a subprocess)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "domainllm", "bench", *args.split()]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("variant", "decoding") and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells
    return rows


def _num(cell: str) -> float:
    return float(re.fullmatch(NUMBER + "x?", cell).group(1).replace(",", ""))


def test_bench_train_cpu_mode_measures_domainllm_beside_the_trl_peers():
    done = _cli("train --shape tiny --lengths qa --seq 256 --batch 4 --steps 2 --warmup 1")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(done.stdout)
    assert list(rows) == ["trl-defaults", "trl-packing", "domainllm"], done.stdout
    for name, (_, _plan, tokens, real, peak, ratio) in rows.items():
        assert _num(tokens) > 0 and 0 < _num(real) <= _num(tokens) and _num(peak) >= 0, (name, done.stdout)
        assert ratio.endswith("x") and _num(ratio) > 0
    assert rows["trl-defaults"][5] == "1.00x"
    assert _num(rows["trl-defaults"][3]) < _num(rows["trl-defaults"][2])  # padded: real tokens below computed
    assert "batches flattened" in rows["domainllm"][1] and "kept-logits" in rows["domainllm"][1]
    assert "transformers" in done.stdout and "UTC" in done.stdout  # versions and date come with the table
    assert "bench train: domainllm" in done.stderr  # progress on stderr, the table alone on stdout


def test_a_gpu_shape_on_cpu_is_refused_with_what_to_do_instead():
    done = _cli("train --shape llama-8b --device cpu")
    assert done.returncode == 2
    assert "needs a GPU" in done.stderr and "--shape tiny" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_bench_generate_cpu_mode_gives_eager_and_static_tokens_that_agree():
    done = _cli("generate --shape tiny --prompts 4 --prompt-tokens 16 --new-tokens 6 --batch 2")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(done.stdout)
    assert list(rows) == ["eager", "static"]
    for _, tokens, ratio, same, _warm in rows.values():
        assert _num(tokens) > 0 and _num(ratio) > 0 and same == "4/4"


def test_the_upcast_report_counts_what_prepare_model_for_kbit_training_casts():
    from domainllm.bench.train import upcast_report

    rows = _rows(upcast_report())
    assert rows["llama-8b"][1:] == ["1.958 GiB", "3.915 GiB", "+1.958 GiB"]
    assert rows["llama-1b"][3] == "+0.489 GiB"


def test_length_files_and_the_qa_mix(tmp_path):
    from domainllm.bench.shapes import example_lengths
    from domainllm.errors import ConfigError

    qa = example_lengths("qa", 4000, 512)
    mean = sum(qa) / len(qa)
    p95 = sorted(qa)[int(0.95 * len(qa))]
    assert 150 < mean < 175 and 290 < p95 < 345 and max(qa) <= 512
    lengths = tmp_path / "lengths.txt"
    lengths.write_text('12\n\n{"input_ids": [1, 2, 3]}\n700\n')
    assert sorted(set(example_lengths(str(lengths), 6, 512))) == [3, 12, 512]
    lengths.write_text("12\nmany\n")
    with pytest.raises(ConfigError, match="line 2"):
        example_lengths(str(lengths), 2, 512)
