"""requirements.lock: the exact versions the suite last passed with, and the checks that keep it honest.

Why a lock: pyproject.toml says what the code needs (``transformers>=5.0,<6``); a fresh install from
ranges resolves to whatever the registry serves that day, so the tests and the published numbers drift
by themselves. ``make install`` installs with ``pip install -c requirements.lock``; ``make upgrade``
re-resolves into a throwaway environment and rewrites the lock from it.

    python tools/lock.py preflight   # make install, before the venv: is this the lock's Python?
    python tools/lock.py check       # make install, make lint: pyproject vs lock, environment vs lock
    python tools/lock.py write       # make upgrade: the running environment's versions -> the lock

Standard library plus ``packaging`` (pip's vendored copy when the environment has none yet), so it
runs with any interpreter; ``preflight`` needs the standard library only. Exit codes: 0 agree,
1 disagree (each problem names the package, both versions and the fix), 2 unreadable input.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
PYPROJECT = REPO / "pyproject.toml"
PROJECT = "domainllm"
# The lock covers the dependencies and this extra (what `make install` installs); other extras
# (wandb, mlflow, ...) are the user's choice and stay unpinned.
LOCKED_EXTRAS = ("test",)
# torch is pinned by release, not by build (`torch==2.13.0`, not `+cpu`), so a CUDA build of the same
# release satisfies the lock. The CUDA runtime such a build brings is the build's, not the lock's:
# never written into the lock, and tolerated in an environment.
TORCH_BUILD_RUNTIME = re.compile(r"^(nvidia-.*|triton|pytorch-triton(-.*)?|cuda-.*)$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")

HEADER = """\
# requirements.lock: the exact versions `make test` last passed with (pip constraints format).
# `make install` installs with `pip install -c requirements.lock`; `make upgrade` re-resolves the
# newest versions pyproject.toml allows and rewrites this file; `make lint` (tools/lock.py check)
# fails when it disagrees with pyproject.toml or with the installed environment. Do not edit by hand.
# torch is pinned by release, not build: a CUDA build of the same release satisfies it, and the CUDA
# runtime such a build brings (nvidia-*, triton) is not pinned here.
"""


class LockError(Exception):
    """Input that cannot be read (exit 2): the message names the file and line."""


def canonical(name: str) -> str:
    """The PEP 503 form of a distribution name: ``Jinja2``, ``jinja_2`` -> ``jinja2``, ``jinja-2``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _packaging():
    """``packaging``'s requirements and versions; pip's vendored copy in a bare environment."""
    try:
        from packaging.requirements import Requirement
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version
    except ImportError:  # pragma: no cover - a fresh venv has pip but not packaging yet
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.specifiers import SpecifierSet
        from pip._vendor.packaging.version import Version
    return Requirement, SpecifierSet, Version


@dataclass(frozen=True)
class Pin:
    name: str  # as written
    version: str
    line: int


@dataclass
class Lock:
    pins: dict[str, Pin] = field(default_factory=dict)  # canonical name -> pin
    python: str | None = None  # "3.11"
    platform: str | None = None  # "linux-x86_64"
    path: str = "requirements.lock"


def parse_lock(text: str, path: str = "requirements.lock") -> Lock:
    """Read ``name==version`` lines and the ``# python:`` / ``# platform:`` header lines."""
    lock = Lock(path=path)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(":")
            if key in ("python", "platform") and value.strip():
                setattr(lock, key, value.strip())
            continue
        if not line:
            continue
        match = _PIN.match(line)
        if not match:
            raise LockError(
                f"{path}:{number}: {line!r} is not a 'name==version' pin. "
                "Fix: regenerate the file with `make upgrade`."
            )
        name, version = match.groups()
        key = canonical(name)
        if key in lock.pins:
            raise LockError(
                f"{path}:{number}: {name} is pinned twice (also on line {lock.pins[key].line}). "
                "Fix: keep one pin, or regenerate with `make upgrade`."
            )
        lock.pins[key] = Pin(name, version, number)
    return lock


def parse_freeze(text: str) -> dict[str, tuple[str, str]]:
    """``pip freeze`` output -> canonical name -> (name, version). Editable installs are skipped; a
    package installed from a URL or a path cannot be locked, which is an error naming it."""
    installed = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-e ")):
            continue
        match = _PIN.match(line)
        if not match:
            raise LockError(
                f"pip freeze: {line!r} is not installed from the package index, so it cannot be locked. "
                "Fix: install a released version of it (or uninstall it) and run again."
            )
        installed[canonical(match.group(1))] = match.groups()
    return installed


def freeze(python: str = sys.executable) -> dict[str, tuple[str, str]]:
    """What ``python``'s environment holds, pip and setuptools included (torch and tensorboard need
    setuptools at run time; pip is the installer `make install` pins first)."""
    proc = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude-editable", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LockError(f"`{python} -m pip freeze` failed: {proc.stderr.strip()}")
    return parse_freeze(proc.stdout)


def render_lock(installed: dict[str, tuple[str, str]], python: str, platform_tag: str) -> str:
    """The lock text for an environment: sorted, build labels dropped (``2.13.0+cpu`` -> ``2.13.0``),
    without the project itself and without a CUDA build's runtime."""
    _, _, Version = _packaging()
    lines = [HEADER, f"# python: {python}\n", f"# platform: {platform_tag}\n"]
    for key in sorted(installed):
        name, version = installed[key]
        if key == PROJECT or TORCH_BUILD_RUNTIME.match(key):
            continue
        lines.append(f"{name}=={Version(version).public}\n")
    return "".join(lines)


def _pyproject_requirements(text: str) -> list[tuple[str, int]]:
    """Each requirement string of [project].dependencies and the locked extras, with its line."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        from pip._vendor import tomli as tomllib
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"pyproject.toml is not valid TOML: {exc}") from None
    specs = list(project.get("dependencies", []))
    for extra in LOCKED_EXTRAS:
        specs += project.get("optional-dependencies", {}).get(extra, [])
    lines = text.splitlines()

    def line_of(spec: str) -> int:
        return next((n for n, line in enumerate(lines, 1) if f'"{spec}"' in line or f"'{spec}'" in line), 0)

    return [(spec, line_of(spec)) for spec in specs]


def check_pyproject(pyproject_text: str, lock: Lock, pyproject_path: str = "pyproject.toml") -> list[str]:
    """Every dependency pyproject names (for this platform) is pinned, at a version it allows."""
    Requirement, _, Version = _packaging()
    problems = []
    for spec, line in _pyproject_requirements(pyproject_text):
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # not for this platform (bitsandbytes on macOS)
        where = f"{pyproject_path}:{line}" if line else pyproject_path
        pin = lock.pins.get(canonical(req.name))
        if pin is None:
            problems.append(
                f"{where}: '{spec}' is not pinned in {lock.path}. "
                "Fix: run `make upgrade` to resolve it into the lock."
            )
        elif not req.specifier.contains(Version(pin.version), prereleases=True):
            problems.append(
                f"{where}: '{spec}' does not allow {pin.name}=={pin.version} pinned in "
                f"{lock.path}:{pin.line} (pyproject wants '{req.specifier}', the lock has {pin.version}). "
                "Fix: run `make upgrade` (or correct the specifier in pyproject.toml)."
            )
    return problems


def check_environment(lock: Lock, installed: dict[str, tuple[str, str]], where: str) -> list[str]:
    """The environment holds exactly the lock's versions (a build label such as ``+cpu`` aside)."""
    _, SpecifierSet, _ = _packaging()
    fix = "Fix: `make install` installs from the lock (`rm -rf .venv && make install` for an exact copy)."
    problems = []
    for key, pin in lock.pins.items():
        if key not in installed:
            problems.append(
                f"{where}: {pin.name}=={pin.version} ({lock.path}:{pin.line}) is not installed. {fix}"
            )
        elif not SpecifierSet(f"=={pin.version}").contains(installed[key][1], prereleases=True):
            problems.append(
                f"{where}: {pin.name} {installed[key][1]} is installed, {lock.path}:{pin.line} pins "
                f"{pin.version}. {fix}"
            )
    for key, (name, version) in sorted(installed.items()):
        if key not in lock.pins and key != PROJECT and not TORCH_BUILD_RUNTIME.match(key):
            problems.append(
                f"{where}: {name} {version} is installed but not in {lock.path}. Fix: uninstall it, or, "
                "if the project now needs it, add it to pyproject.toml and run `make upgrade`."
            )
    return problems


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def platform_tag() -> str:
    return sysconfig.get_platform()


def preflight(lock: Lock) -> list[str]:
    """Before `make install` builds the venv: the lock was resolved for this Python (numpy, scipy and
    pandas releases drop old Pythons, so a 3.11 lock cannot install on 3.10)."""
    problems = []
    if lock.python and lock.python != python_tag():
        problems.append(
            f"{lock.path} was resolved for {platform.python_implementation()} {lock.python}; this is "
            f"{python_tag()} ({sys.executable}). Fix: `make install PYTHON=python{lock.python}`, or "
            "`make upgrade` to resolve a lock for this Python (then `make test`)."
        )
    return problems


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockError(f"cannot read {path}: {exc.strerror}") from None


def _write(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPO))
    from domainllm.fsio import atomic_write_text

    installed = freeze()
    text = render_lock(installed, python_tag(), platform_tag())
    new = parse_lock(text, args.lock.name)
    old = parse_lock(_read(args.lock), args.lock.name) if args.lock.exists() else Lock()
    problems = check_pyproject(_read(args.pyproject), new, args.pyproject.name)
    if problems:  # the environment does not satisfy pyproject: do not write a lock that fails lint
        raise LockError("the environment disagrees with pyproject.toml:\n" + "\n".join(problems))
    atomic_write_text(args.lock, text)
    changed = [
        f"  {pin.name}: {old.pins[k].version if k in old.pins else '(new)'} -> {pin.version}"
        for k, pin in sorted(new.pins.items())
        if k not in old.pins or old.pins[k].version != pin.version
    ]
    changed += [
        f"  {pin.name}: {pin.version} -> (removed)"
        for k, pin in sorted(old.pins.items())
        if k not in new.pins
    ]
    print(f"{args.lock}: {len(new.pins)} pins, {len(changed)} changed")
    if old.pins:  # a first lock lists nothing: every pin is new
        print("\n".join(changed) if changed else "  (the same versions as before)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/lock.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "write", "preflight"))
    parser.add_argument("--lock", type=Path, default=LOCK, help="default: requirements.lock")
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT, help="default: pyproject.toml")
    parser.add_argument(
        "--no-env", action="store_true", help="check: pyproject vs lock only, not the environment"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            return _write(args)
        lock = parse_lock(_read(args.lock), args.lock.name)
        if args.command == "preflight":
            problems = preflight(lock)
        else:
            problems = check_pyproject(_read(args.pyproject), lock, args.pyproject.name)
            if not args.no_env:
                problems += check_environment(lock, freeze(), f"environment ({sys.executable})")
    except LockError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    if args.command == "check":
        scope = "pyproject.toml" + ("" if args.no_env else " and the installed environment")
        print(f"{args.lock.name}: {len(lock.pins)} pins agree with {scope}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
