"""The README documents every setting and every command (datasette's habit),
and settings come from the environment and ragchat.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import cli
from app.errors import ConfigError
from app.settings import Settings, load_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_its_description(name):
    field = Settings.model_fields[name]
    assert field.description, f"setting {name} has no description"
    row = re.search(rf"^\|\s*`RAGCHAT_{name.upper()}`.*$", README, re.M)
    assert row, f"README has no table row for RAGCHAT_{name.upper()}"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_documented(command):
    assert f"ragchat {command}" in README


def test_settings_from_environment_and_toml(monkeypatch, tmp_path):
    Path("ragchat.toml").write_text('top_k = 7\ncollection = "from-toml"\n')
    monkeypatch.setenv("RAGCHAT_COLLECTION", "from-env")
    s = load_settings()
    assert s.top_k == 7 and s.collection == "from-env"
    assert load_settings(collection="from-flag").collection == "from-flag"


def test_bad_settings_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("RAGCHAT_LLM", "gpt-9")
    with pytest.raises(ConfigError, match=r"^bad setting llm: "):
        load_settings()
    monkeypatch.delenv("RAGCHAT_LLM")
    with pytest.raises(ConfigError, match="collection"):
        load_settings(collection="ab")  # Chroma needs 3 to 512 characters
    Path("ragchat.toml").write_text("top_k = 3\nunknown_thing = 1\n")
    with pytest.raises(ConfigError, match="unknown_thing"):
        load_settings()
