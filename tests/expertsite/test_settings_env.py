from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from expertsite.settings.env import envbool, envchoice, envint, envlist, envsecret, load_env_file


def test_envbool_reads_common_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "Yes")
    assert envbool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "off")
    assert envbool("X_FLAG", True) is False


def test_envbool_rejects_garbage_with_the_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        envbool("X_FLAG", False)


def test_envint_enforces_its_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        envint("X_N", 5, minimum=1)
    monkeypatch.setenv("X_N", "abc")
    with pytest.raises(ImproperlyConfigured, match="integer"):
        envint("X_N", 5)


def test_envlist_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_L", "a, b,,c")
    assert envlist("X_L", []) == ["a", "b", "c"]
    monkeypatch.delenv("X_S", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_S"):
        envsecret("X_S", required=True)


def test_env_file_never_overrides_the_real_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "services.env"
    env.write_text("# comment\nX_FROM_FILE=file\nX_GIVEN=file\n")
    monkeypatch.setenv("X_GIVEN", "real")
    monkeypatch.delenv("X_FROM_FILE", raising=False)
    load_env_file(env)
    import os

    assert os.environ["X_FROM_FILE"] == "file"
    assert os.environ["X_GIVEN"] == "real"
    monkeypatch.delenv("X_FROM_FILE")


def test_envchoice_names_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert envchoice("X_QUANT", "", ("", "q8_0")) == ""
    monkeypatch.setenv("X_QUANT", "q8_0")
    assert envchoice("X_QUANT", "", ("", "q8_0")) == "q8_0"
    monkeypatch.setenv("X_QUANT", "q3")
    with pytest.raises(ImproperlyConfigured, match="X_QUANT must be one of '', 'q8_0'"):
        envchoice("X_QUANT", "", ("", "q8_0"))
