"""A build into a site without public/ writes each file as it is rendered, into a folder
of the site's state that becomes public/ in one rename: the same bytes as a build into
public/ in place, and nothing at all when the gates refuse an output."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.errors import ContentError
from bulletin.pipeline.planning import plan, preview_files
from bulletin.pipeline.staging import PREFIX
from bulletin.pipeline.write import write_public
from bulletin.render.templates import DEFAULT_TEMPLATES
from bulletin.store.database import connect
from tests.conftest import run_cli


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Each file under `folder`: its bytes and permissions."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _in_place(site: Path, tmp_path: Path) -> dict[str, tuple[bytes, int]]:
    """What a build writes into a public/ that is there already (empty), file by file."""
    other = tmp_path / "in-place"
    shutil.copytree(site, other)
    (other / "public").mkdir()
    result = run_cli("build", site=other)
    assert result.returncode == 0, result.stderr
    assert not list((other / ".bulletin").glob(PREFIX + "*"))
    return _tree(other / "public")


def _staging(site: Path) -> list[Path]:
    return list((site / ".bulletin").glob(PREFIX + "*"))


def test_a_build_without_public_writes_what_a_build_in_place_does(
    site: Path, tmp_path: Path
) -> None:
    expected = _in_place(site, tmp_path)
    assert not (site / "public").exists()
    result = run_cli("build", site=site)
    assert result.returncode == 0, result.stderr
    assert f"({len(expected)} files changed)" in result.stdout
    built = _tree(site / "public")
    assert built.keys() == expected.keys()
    assert [name for name in built if built[name] != expected[name]] == []
    assert {mode for _, mode in built.values()} == {0o644}
    assert _staging(site) == []


def test_public_appears_whole_from_the_staging_folder_at_the_end(site: Path) -> None:
    config = load_config(site)
    edition = plan(config, connect(config.database_url), record=False, stage=True)
    staged = edition.staged
    assert staged is not None
    assert not (site / "public").exists()  # nobody sees a part of it
    assert staged.folder.is_dir() and staged.folder.parent == site / ".bulletin"
    files = {**edition.files, **preview_files(edition)}
    written = write_public(config, files, edition.inputs, staged)
    public = _tree(site / "public")
    assert {name: data for name, (data, _) in public.items() if name in files} == files
    assert sorted(written) == sorted(f"public/{name}" for name in public)
    assert _staging(site) == []


def test_a_build_the_gate_refuses_leaves_no_public_and_no_staging(site: Path) -> None:
    result = core.publish(site)  # entries published: their pages must carry the notice
    assert result.ended is core.Ended.COMPLETED, result.message
    shutil.rmtree(site / "public")
    base = (DEFAULT_TEMPLATES / "base.html.j2").read_text(encoding="utf-8")
    (site / "templates").mkdir()
    (site / "templates" / "base.html.j2").write_text(
        base.replace("{{ notice.disclaimer }}", ""), encoding="utf-8"
    )
    config = load_config(site)
    with pytest.raises(ContentError) as refused:
        plan(config, connect(config.database_url), record=False, stage=True)
    assert any("disclaimer" in str(p).lower() for p in refused.value.problems)
    assert not (site / "public").exists()
    assert _staging(site) == []
    result = run_cli("build", site=site)
    assert result.returncode != 0
    assert not (site / "public").exists()
    assert _staging(site) == []


def test_a_build_that_was_killed_leaves_a_folder_the_next_one_removes(site: Path) -> None:
    gone = site / ".bulletin" / f"{PREFIX}{2**22 + 1}"  # above any process id Linux gives
    (gone / "entries").mkdir(parents=True)
    (gone / "entries" / "index.html").write_bytes(b"half a build")
    result = run_cli("build", site=site)
    assert result.returncode == 0, result.stderr
    assert not gone.exists()
    assert (site / "public" / "index.html").is_file()
    (gone / "entries").mkdir(parents=True)  # a publish, which writes public/ in place, too
    result = core.publish(site)
    assert result.ended is core.Ended.COMPLETED, result.message
    assert not gone.exists()


def test_public_made_meanwhile_is_written_in_place_and_kept(site: Path, tmp_path: Path) -> None:
    config = load_config(site)
    edition = plan(config, connect(config.database_url), record=False, stage=True)
    assert edition.staged is not None
    (site / "public").mkdir()
    (site / "public" / "robots.txt").write_bytes(b"User-agent: *\n")
    files = {**edition.files, **preview_files(edition)}
    write_public(config, files, edition.inputs, edition.staged)
    public = _tree(site / "public")
    assert public.pop("robots.txt")[0] == b"User-agent: *\n"
    assert {name: data for name, (data, _) in public.items() if name in files} == files
    assert _staging(site) == []


def test_a_writer_that_stopped_costs_time_not_files(site: Path) -> None:
    config = load_config(site)
    edition = plan(config, connect(config.database_url), record=False, stage=True)
    assert edition.staged is not None
    edition.staged._writer.kill()
    edition.staged._writer.wait()
    files = {**edition.files, **preview_files(edition)}
    write_public(config, files, edition.inputs, edition.staged)
    public = _tree(site / "public")
    assert {name: data for name, (data, _) in public.items() if name in files} == files
    assert _staging(site) == []


def test_a_site_with_public_is_not_staged(site: Path) -> None:
    (site / "public").mkdir()
    config = load_config(site)
    edition = plan(config, connect(config.database_url), record=False, stage=True)
    assert edition.staged is None
    assert os.listdir(site / "public") == []  # nothing is written before write_public
