"""bulletin.toml checked once is kept: the next command takes the checked values from the
user's cache folder, and any change to the file (or to where it lives) is checked again;
what the file names outside itself (the emblem, the DKIM key) is checked every time."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from bulletin.config import Config, cache, load_config
from bulletin.config.base import Section, checks, table
from bulletin.config.model import Site, Smtp
from bulletin.errors import ConfigError


@pytest.fixture(autouse=True)
def cache_folder(tmp_path, monkeypatch):
    """A cache folder of the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tables() -> list[type[Section]]:
    found, todo = [], [Config]
    while todo:
        table = todo.pop()
        if table in found:
            continue
        found.append(table)
        for hint in typing.get_type_hints(table).values():
            parts = [hint, *typing.get_args(hint)]
            todo += [p for p in parts if isinstance(p, type) and issubclass(p, Section)]
    return found


def test_a_kept_configuration_is_the_one_checked(site):
    checked = load_config(site)
    assert cache._record(site).is_file()
    kept = load_config(site)
    assert kept == checked
    assert kept.model_dump_json() == checked.model_dump_json()
    assert kept.site.tz == checked.site.tz


def test_a_kept_configuration_is_used_and_an_edit_checked_again(site):
    load_config(site)
    toml = site / "bulletin.toml"
    record = cache._record(site)
    key = record.read_bytes()[:32]
    fake = dataclasses.replace(load_config(site), site=Site(title="Kept", url="https://k.org/"))
    cache.keep(site, key, fake)
    assert load_config(site).site.title == "Kept"  # read from the record, not checked again
    toml.write_text(toml.read_text().replace('title = "Fixture News"', 'title = "Fixture Newz"'))
    assert load_config(site).site.title == "Fixture Newz"


def test_a_record_of_another_folder_is_not_used(site, tmp_path):
    load_config(site)
    other = tmp_path / "other"
    site.rename(other)
    assert load_config(other).root == other


def test_an_invalid_file_is_never_kept_and_always_told(site):
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text().replace('timezone = "Europe/Bucharest"', 'timezone = "Mars"'))
    for _ in range(2):
        with pytest.raises(ConfigError) as raised:
            load_config(site)
        assert [p.code for p in raised.value.problems] == ["config-invalid"]
    assert not cache._record(site).exists()


def test_a_site_loads_without_writing_into_its_folder(site):
    before = sorted(site.rglob("*"))
    load_config(site)
    load_config(site)
    assert sorted(site.rglob("*")) == before


def test_what_the_file_names_outside_itself_is_checked_every_time(site):
    load_config(site)
    (site / "static" / "eu-emblem.png").unlink()
    with pytest.raises(ConfigError) as raised:
        load_config(site)
    assert [p.code for p in raised.value.problems] == ["emblem-missing"]


@pytest.mark.parametrize("damage", [b"", b"x" * 40, b"\0" * 32 + b"not a pickle"])
def test_a_damaged_record_is_checked_again_and_replaced(site, damage):
    checked = load_config(site)
    record = cache._record(site)
    key = record.read_bytes()[:32]
    record.write_bytes(key + damage[32:] if damage.startswith(b"\0") else damage)
    assert load_config(site) == checked
    assert record.read_bytes()[:32] == key and len(record.read_bytes()) > 40


def test_a_configuration_loads_without_a_cache_folder_that_can_be_written(site, cache_folder):
    cache_folder.mkdir()
    (cache_folder / "bulletin").write_text("a file where the folder would be")
    assert load_config(site).site.title == "Fixture News"
    assert load_config(site).site.title == "Fixture News"


def test_each_table_is_checked_with_exactly_its_own_keys():
    from bulletin.config.validation import model_of

    for kind in _tables():
        model = model_of(kind)
        fields = {f.name: f for f in dataclasses.fields(kind)}
        assert set(model.model_fields) == set(fields), kind
        for name, info in model.model_fields.items():
            assert info.alias == fields[name].metadata.get("alias"), (kind, name)
            assert info.is_required() == (
                fields[name].default is dataclasses.MISSING
                and fields[name].default_factory is dataclasses.MISSING
            ), (kind, name)


def test_a_table_is_a_frozen_dataclass_made_with_keywords():
    smtp = Smtp(host="mail.example.org", port=587)
    assert smtp == Smtp(host="mail.example.org", port=587) != Smtp()
    assert hash(smtp) == hash(Smtp(host="mail.example.org", port=587))
    assert dataclasses.replace(smtp, port=25) == Smtp(host="mail.example.org")
    assert repr(Smtp(port=2)).startswith("Smtp(host='127.0.0.1', port=2, security='none'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        smtp.port = 25  # type: ignore[misc]
    with pytest.raises(TypeError, match="'url'"):
        Site(title="No address")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'colour'"):
        Site(title="T", url="https://t.org/", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Smtp("mail.example.org")  # type: ignore[misc]


def test_a_check_that_would_not_run_is_refused_when_its_table_is_made():
    def unchecked(value: str) -> str:
        return value

    for check in (checks("name")(unchecked), staticmethod(checks("nmae")(unchecked))):
        with pytest.raises(TypeError, match="a check is a staticmethod"):
            table(type("Broken", (Section,), {"__annotations__": {"name": "str"}, "_c": check}))
