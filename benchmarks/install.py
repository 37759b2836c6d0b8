"""How long `make setup`'s install takes with tools/install.py (uv) against plain pip, in the same run.

    python3.11 benchmarks/install.py            # the package with its test extras, as make setup
    python3.11 benchmarks/install.py --rounds 2

Each round makes two fresh virtual environments in a temporary folder and installs this checkout
(`-e ".[test]"`) into them: once with `pip install` (a current pip, as make setup had it until
2026-12-05) and once with tools/install.py, which installs uv and hands it pip's sources. uv gets
an empty cache of its own each round (UV_CACHE_DIR), so neither tool is helped by an earlier
download; both read the same wheels, so the disk cache is warm for both after the first round.
Prints seconds per tool and round, and the ratio. Run it with the Python that make uses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--target", default=".[test]", help="what to install (pip install -e's argument)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; installing -e {args.target!r} into fresh venvs")
    times = {"pip": [], "tools/install.py": []}
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="sat2scape-install-") as tmp:
            for tool in times:
                venv = Path(tmp) / tool.replace("/", "_")
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                py = str(venv / "bin" / "python")
                if tool == "pip":
                    subprocess.run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
                    seconds = timed([py, "-m", "pip", "install", "--quiet", "-e", args.target])
                else:
                    env = {**os.environ, "UV_CACHE_DIR": str(Path(tmp) / "uv-cache")}
                    seconds = timed([py, str(ROOT / "tools" / "install.py"), "-e", args.target], env)
                times[tool].append(seconds)
                print(f"round {r + 1}: {tool:18s} {seconds:6.1f} s")
    pip_s, ours_s = min(times["pip"]), min(times["tools/install.py"])
    print(f"best of {args.rounds}: pip {pip_s:.1f} s, tools/install.py {ours_s:.1f} s: {pip_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
