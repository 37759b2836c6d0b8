"""tools/install.py hands uv the package sources pip's own configuration names."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "install.py"
spec = importlib.util.spec_from_file_location("install_tool", SCRIPT)
install_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_tool)


@pytest.fixture
def pip_env(monkeypatch):
    """No PIP_* variables but the ones a test sets."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_flags_from_the_environment_and_a_config_file(pip_env, tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://files.example/simple\nfind-links = /wheels/a\n"
                    "extra-index-url =\n    file:///mirror/one\n    file:///mirror/two\n"
                    "constraint = /etc/caps.txt\ntimeout = 60\n")
    pip_env.setenv("PIP_CONFIG_FILE", str(conf))
    pip_env.setenv("PIP_INDEX_URL", "https://user:secret@env.example/simple")  # the environment wins
    pip_env.setenv("PIP_FIND_LINKS", "/wheels/b")
    settings = install_tool.pip_settings(sys.executable)
    flags = install_tool.uv_flags(settings)
    pairs = list(zip(flags[::2], flags[1::2]))
    assert ("--index-url", "https://user:secret@env.example/simple") in pairs
    assert ("--index-url", "https://files.example/simple") not in pairs
    assert ("--extra-index-url", "file:///mirror/one") in pairs and ("--extra-index-url", "file:///mirror/two") in pairs
    assert ("--find-links", "/wheels/b") in pairs and ("--constraint", "/etc/caps.txt") in pairs
    assert flags[:2] == ["--index-strategy", "unsafe-best-match"]  # pip's choice: the best version of all indexes
    assert "60" not in flags  # settings that do not choose sources stay out


def test_no_index_and_single_valued_settings():
    flags = install_tool.uv_flags({"index-url": ["https://a/simple", "https://b/simple"], "no-index": ["true"],
                                   "find-links": ["/w1", "/w2"]})
    assert flags == ["--index-strategy", "unsafe-best-match", "--index-url", "https://b/simple",
                     "--find-links", "/w1", "--find-links", "/w2", "--no-index"]
    assert install_tool.uv_flags({}) == ["--index-strategy", "unsafe-best-match"]


def test_pip_installs_where_uv_cannot_be_had_and_no_index_token_is_printed(pip_env, tmp_path):
    """Offline with no uv anywhere: pip installs the requirement, from a local wheel."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    meta = "tinypkg-0.1.dist-info"
    files = {"tinypkg/__init__.py": "ANSWER = 42\n",
             f"{meta}/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
             f"{meta}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    with zipfile.ZipFile(wheels / "tinypkg-0.1-py3-none-any.whl", "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
        whl.writestr(f"{meta}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{meta}/RECORD"]))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip_env.setenv("PIP_CONFIG_FILE", os.devnull)
    pip_env.setenv("PIP_NO_INDEX", "1")
    pip_env.setenv("PIP_FIND_LINKS", str(wheels))
    pip_env.setenv("PIP_INDEX_URL", "https://user:s3cret@127.0.0.1:9/simple")
    pip_env.setenv("PATH", str(venv / "bin"))  # no uv on the PATH either
    done = subprocess.run([str(venv / "bin" / "python"), str(SCRIPT), "tinypkg"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "installed with pip" in done.stdout and "uv is not available here" in done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    answer = subprocess.run([str(venv / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.ANSWER)"],
                            capture_output=True, text=True)
    assert answer.stdout.strip() == "42"
