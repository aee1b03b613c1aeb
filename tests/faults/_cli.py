"""Run the real CLI in a process of its own, fast: the fault suite's harness.

Every fault case is one ``domainllm ...`` command in its own process, checked from outside: its exit
code, its stderr and the files it leaves. A fresh ``python -m domainllm`` spends ~7 s importing torch,
transformers and peft on this project's 2-core machine before it can even refuse a bad adapter, so
the suite would cost minutes of imports alone. Instead one **command server** imports those libraries
once and forks a child per command; the child sets up its own working directory, standard streams
(files), ``sys.argv`` and signal dispositions and runs ``python -m domainllm``'s own entry point
(``runpy.run_module("domainllm", run_name="__main__")``), so it is that command in a process of its
own, as a shell would start it, minus the imports. Nothing in domainllm is replaced or mocked.

``DOMAINLLM_FAULTS_SUBPROCESS=1`` runs every case as a plain ``python -m domainllm`` subprocess
instead (slower; for checking that the server changes nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",
    "OMP_NUM_THREADS": "1",
    "WANDB_MODE": "disabled",
    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    "COLUMNS": "120",
    # Extra arms must be skipped for the same reason everywhere: no API key, whatever the machine has.
    "OPENAI_API_KEY": "",
    "ANTHROPIC_API_KEY": "",
}

__all__ = [
    "ENV",
    "REPO",
    "Result",
    "changes",
    "cli",
    "close_server",
    "error_line",
    "snapshot",
    "temp_leftovers",
]

# The server: import what the commands import, then fork one child per request (one JSON line on
# stdin); replies go to the descriptor named in argv[1]: {"pid": ...} at the start, {"rc": ...} at the end.
_SERVER = r"""
import json, os, runpy, signal, sys, traceback
for name in ("torch", "transformers", "peft", "trl", "safetensors", "accelerate", "datasets",
             "sentence_transformers", "chromadb", "langchain_core", "langchain_huggingface", "langchain_chroma",
             "langchain_text_splitters", "matplotlib.pyplot", "domainllm.cli"):
    try:
        __import__(name)
    except Exception:
        pass
reply = int(sys.argv[1])
os.write(reply, b'{"ready": true}\n')
for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reply)
            os.chdir(req["cwd"])
            os.environ.update(req["env"])
            for fd, path, mode in ((0, req["stdin"], os.O_RDONLY),
                                   (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                   (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                f = os.open(path, mode, 0o644)
                os.dup2(f, fd)
                os.close(f)
            sys.stdin = open(0, "r", closefd=False)
            sys.stdout = open(1, "w", buffering=1, closefd=False)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            sys.argv = ["domainllm", *req["argv"]]
            try:
                runpy.run_module("domainllm", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except KeyboardInterrupt:  # as Python does for an uncaught Ctrl-C: die of SIGINT
                sys.stderr.flush()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGINT)
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    os.write(reply, (json.dumps({"pid": pid}) + "\n").encode())
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    os.write(reply, (json.dumps({"rc": rc}) + "\n").encode())
"""


@dataclass
class Result:
    """One finished command: what a shell would see."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return f"domainllm {' '.join(self.argv)} -> exit {self.returncode}\n--- stderr ---\n{self.stderr[-4000:]}"


class _Server:
    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env={**os.environ, **ENV},
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r")
        self._expect("ready", timeout=300)

    def _expect(self, key: str, timeout: float) -> object:
        import select

        ready, _, _ = select.select([self.replies], [], [], timeout)
        if not ready:
            msg = f"the command server sent no '{key}' within {timeout} s"
            raise TimeoutError(msg)
        line = self.replies.readline()
        if not line:
            msg = f"the command server ended (exit {self.proc.poll()})"
            raise RuntimeError(msg)
        return json.loads(line)[key]

    def start(self, argv: Sequence[str], cwd: Path, stdin: Path, out: Path, err: Path) -> int:
        request = {
            "argv": list(argv),
            "cwd": str(cwd),
            "env": {},
            "stdin": str(stdin),
            "stdout": str(out),
            "stderr": str(err),
        }
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return int(self._expect("pid", timeout=30))  # type: ignore[arg-type]

    def wait(self, timeout: float) -> int:
        return int(self._expect("rc", timeout=timeout))  # type: ignore[arg-type]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.replies.close()


_server: _Server | None = None


def _get_server() -> _Server:
    global _server
    if _server is None or _server.proc.poll() is not None:
        _server = _Server()
    return _server


def close_server() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


def cli(
    *argv: str | Path,
    cwd: Path = REPO,
    stdin: str = "",
    timeout: float = 240,
    while_running: Callable[[int], None] | None = None,
) -> Result:
    """Run ``domainllm *argv`` in a process of its own and wait for it.

    ``while_running(pid)`` is called once the process started (to signal it); the command still runs
    to its end afterwards, or is killed at ``timeout``.
    """
    args = [str(a) for a in argv]
    with tempfile.TemporaryDirectory(prefix="domainllm-fault-") as tmp:
        inp, out, err = Path(tmp, "stdin"), Path(tmp, "stdout"), Path(tmp, "stderr")
        inp.write_text(stdin, encoding="utf-8")
        start = time.perf_counter()
        if os.environ.get("DOMAINLLM_FAULTS_SUBPROCESS") == "1":
            with inp.open("rb") as i, out.open("wb") as o, err.open("wb") as e:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "domainllm", *args], stdin=i, stdout=o, stderr=e, cwd=cwd,
                    env={**os.environ, **ENV},
                )  # fmt: skip
                if while_running:
                    while_running(proc.pid)
                try:
                    rc = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise
        else:
            server = _get_server()
            pid = server.start(args, cwd, inp, out, err)
            try:
                if while_running:
                    while_running(pid)
                rc = server.wait(timeout)
            except BaseException:
                with _suppress():
                    os.kill(pid, signal.SIGKILL)
                close_server()
                raise
        return Result(
            args,
            rc,
            out.read_text(encoding="utf-8", errors="replace"),
            err.read_text(encoding="utf-8", errors="replace"),
            round(time.perf_counter() - start, 2),
        )


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# --------------------------------------------------------------------------------------------------
# What a case checks


def error_line(result: Result, prefix: str = "error: ") -> str:
    """The command's last word on stderr: one line (one paragraph) starting with ``prefix``, no traceback."""
    assert "Traceback" not in result.stderr, str(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr: {result}"
    last = lines[-1]
    assert last.startswith(prefix), f"the last stderr line is not an '{prefix}' paragraph: {last!r}\n{result}"
    assert sum(line.startswith(prefix) for line in lines) == 1, f"more than one '{prefix}' line\n{result}"
    return last


def snapshot(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``roots``: SHA-256 (``dir`` for folders) and mode, by path.

    Equal snapshots mean nothing was changed, deleted or added, not even an empty folder.
    """
    entries: dict[str, tuple[str, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o777
            if path.is_dir():
                entries[str(path)] = ("dir", mode)
            elif path.is_file():
                entries[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), mode)
    return entries


def changes(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]) -> dict[str, list[str]]:
    """What differs between two snapshots: added, removed and changed paths (empty lists: nothing)."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k]),
    }


def temp_leftovers(*roots: Path) -> list[str]:
    """Temporary files or folders of fsio (``.name.XXXX``) or of a half-finished merge/convert left behind."""
    found = []
    for root in roots:
        for path in root.rglob(".*") if root.is_dir() else []:
            name = path.name
            if name.startswith(".") and ("-" in name or name.count(".") >= 2) and not name.startswith(".git"):
                found.append(str(path))
    return found
