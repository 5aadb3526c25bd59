"""Writes rendered files into public/: the only place bulletin writes the web archive."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from bulletin.config.model import Config
from bulletin.files import write_if_changed


def write_public(config: Config, files: Mapping[str, bytes]) -> list[str]:
    """Write `files` (paths relative to public/) and the site's static/ folder and emblems.

    Unchanged files are left alone; every write is atomic, so a reader (or `serve`) never
    sees half a page. Returns the paths written, relative to the site.
    """
    public = config.public_dir
    written = []
    for name, data in sorted(files.items()):
        path = public / name
        if write_if_changed(path, data, mode=0o644):
            written.append(path)
    assets = (
        {p for p in (config.root / "static").rglob("*") if p.is_file()}
        if (config.root / "static").is_dir()
        else set()
    )
    assets |= {config.root / f.emblem for f in config.funding.values()}
    for source in sorted(assets):
        target = public / source.relative_to(config.root)
        if write_if_changed(target, source.read_bytes(), mode=0o644):
            written.append(target)
    return [p.relative_to(config.root).as_posix() for p in written]


def clear_previews(config: Config) -> None:
    shutil.rmtree(config.public_dir / "preview", ignore_errors=True)
