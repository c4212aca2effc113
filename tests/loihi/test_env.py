"""Locating the Lava worker's interpreter."""

from __future__ import annotations

import pytest

from femsnn.loihi import env


def test_missing_configured_interpreter_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv(env.ENV_VAR, str(tmp_path / "nowhere" / "python"))
    with pytest.raises(env.LavaEnvironmentError, match="make lava-venv") as info:
        env.lava_python()
    assert env.ENV_VAR in str(info.value)


def test_missing_default_interpreter_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv(env.ENV_VAR, raising=False)
    monkeypatch.setattr(env, "DEFAULT_PYTHON", tmp_path / ".venv-lava" / "bin" / "python")
    with pytest.raises(env.LavaEnvironmentError, match="make lava-venv"):
        env.lava_python()


def test_worker_sees_only_the_worker_package(monkeypatch, tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    monkeypatch.setenv(env.ENV_VAR, str(python))
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    assert env.worker_command() == [str(python), "-m", "lava_worker"]
    assert env.worker_environment()["PYTHONPATH"] == str(env.WORKER_ROOT)
    assert (env.WORKER_ROOT / "lava_worker" / "__main__.py").is_file()
