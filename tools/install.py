"""Install packages into the running Python's environment with uv where it can, else with pip.
`make setup` runs it in the fresh .venv:

    .venv/bin/python tools/install.py -e ".[test]"

Why uv: it unpacks wheels in parallel. The 5.5 GB of torch, torchvision and their CUDA libraries
install in 18 s on the project's 2-core machine, uv's own install included, against pip's 67 s
(benchmarks/install.py, README Speed).

uv reads neither pip.conf nor the PIP_* variables, so the settings that choose where packages
come from (index-url, extra-index-url, find-links, constraint, no-index) are read with
`pip config list`, which shows what pip itself would use, and handed to uv as flags. Both tools
then install from the same places and under the same caps. `--index-strategy unsafe-best-match`
makes uv pick the best version across all indexes, as pip does. Where uv cannot be installed or
its install fails, pip installs everything.

Nothing here prints an index address: such an address may carry a token.

Stdlib only: it runs before anything is installed.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

# pip's setting -> uv pip install's flag; the settings that hold a list take several values
SOURCE_FLAGS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
                "find-links": "--find-links", "constraint": "--constraint"}
LISTS = ("extra-index-url", "find-links", "constraint")


def pip_settings(python: str = sys.executable) -> dict[str, list[str]]:
    """{setting: values} from `pip config list`, for the settings uv needs. The environment
    (PIP_FIND_LINKS, shown as `:env:.find-links`) overrides the config files, as in pip."""
    listing = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    from_files: dict[str, list[str]] = {}
    from_env: dict[str, list[str]] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        scope, _, name = key.rpartition(".")
        if not sep or name not in (*SOURCE_FLAGS, "no-index"):
            continue
        try:
            value = str(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        target = from_env if scope == ":env:" else from_files
        target.setdefault(name, []).extend(value.split())
    return {**from_files, **from_env}


def uv_flags(settings: dict[str, list[str]]) -> list[str]:
    """`uv pip install` flags for pip's settings."""
    flags = ["--index-strategy", "unsafe-best-match"]
    for name, flag in SOURCE_FLAGS.items():
        values = settings.get(name, [])
        for value in (values if name in LISTS else values[-1:]):
            flags += [flag, value]
    if settings.get("no-index", ["false"])[-1].lower() in ("1", "true", "yes", "on"):
        flags.append("--no-index")
    return flags


def run(command: list[str]) -> bool:
    return subprocess.run(command).returncode == 0


def install(requirements: list[str], python: str = sys.executable) -> str:
    """Install `requirements` (pip install's arguments) into `python`'s environment; returns
    the tool that did it, "uv" or "pip"."""
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    venv_bin = str(Path(python).parent)
    if shutil.which("uv", path=venv_bin) is None:
        run([*pip, "uv"])  # may fail (offline, no uv on the indexes): pip then installs everything
    uv = shutil.which("uv", path=venv_bin)
    if uv is not None:
        if run([uv, "pip", "install", "--quiet", "--python", python, *uv_flags(pip_settings(python)), *requirements]):
            return "uv"
        print("install.py: uv could not install the requirements; installing them with pip", file=sys.stderr)
    else:
        print("install.py: uv is not available here; installing with pip", file=sys.stderr)
    if not run([*pip, *requirements]):
        raise SystemExit("install.py: pip could not install the requirements either (its messages are above)")
    return "pip"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(f"installed with {install(sys.argv[1:])}")
