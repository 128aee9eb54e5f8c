"""docs/configuration.md's key table is the one the settings dataclasses generate, and every key says what it does."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from drimbox.config import Settings, load_settings
from drimbox.config.reference import BEGIN, END, StaleReference, generated_block, render, with_block

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"


def _leaves(cls: type, prefix: str):
    for field in dataclasses.fields(cls):
        section = field.metadata.get("section")
        key = f"{prefix}.{''.join(p[:1].upper() + p[1:] for p in field.name.split('_'))}"
        if section is not None:
            yield from _leaves(section, key)
        else:
            yield key, field


def test_the_committed_reference_is_the_generated_one():
    assert generated_block(DOC.read_text()) == render(Settings), (
        "docs/configuration.md is stale: run drimbox config reference --write docs/configuration.md")


def test_every_key_has_a_one_line_description_in_its_field():
    missing = [key for key, field in _leaves(Settings, "DRIMbox") if not field.metadata.get("doc", "").strip()]
    assert missing == []


def test_every_key_of_the_schema_appears_once_with_its_default():
    table = render(Settings)
    defaults = load_settings({})
    for key, field in _leaves(Settings, "DRIMbox"):
        rows = [line for line in table.splitlines() if line.startswith(f"| `{key}` |")]
        assert len(rows) == 1, key
        value = defaults
        for part in key.split(".")[1:]:
            value = getattr(value, next(f.name for f in dataclasses.fields(value)
                                        if f.name.replace("_", "") == part.lower()))
        assert field.metadata["doc"].split()[0] in rows[0]
        if isinstance(value, bool):
            assert f"| `{str(value).lower()}` |" in rows[0]
        elif isinstance(value, (int, float)):
            assert f"| `{value}` |" in rows[0]


def test_a_changed_description_makes_the_committed_doc_stale(monkeypatch):
    field = next(f for f in dataclasses.fields(Settings) if f.name == "orthanc_url")
    monkeypatch.setattr(field, "metadata", {"doc": "something else"})
    assert generated_block(DOC.read_text()) != render(Settings)


def test_with_block_keeps_the_prose_around_it():
    document = f"# Title\n\nprose before\n\n{BEGIN}\nold table\n{END}\n\nprose after\n"
    updated = with_block(document, "new table")
    assert updated == f"# Title\n\nprose before\n\n{BEGIN}\nnew table\n{END}\n\nprose after\n"
    with pytest.raises(StaleReference):
        generated_block("# no markers here\n")


def test_the_command_checks_and_rewrites_a_document(tmp_path):
    doc = tmp_path / "configuration.md"
    doc.write_text(f"intro\n{BEGIN}\n| stale |\n{END}\noutro\n")
    command = [str(Path(sys.executable).parent / "drimbox"), "config", "reference"]
    stale = subprocess.run([*command, "--check", str(doc)], capture_output=True, text=True)
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert subprocess.run([*command, "--write", str(doc)], capture_output=True).returncode == 0
    assert subprocess.run([*command, "--check", str(doc)], capture_output=True).returncode == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "`DRIMbox.Hl7.Port`" in text
