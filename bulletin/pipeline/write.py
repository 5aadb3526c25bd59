"""Writes rendered files into public/: the only place bulletin writes the web archive."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from bulletin.config.model import Config
from bulletin.errors import ContentError
from bulletin.files import ReadRefused, inside, read_capped, write_if_changed

#: The largest file of static/ copied into public/ (an image, a PDF); larger ones are an
#: error, not a silent truncation.
MAX_ASSET_BYTES = 50 * 1024 * 1024


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
    static = config.root / "static"
    assets = {p for p in static.rglob("*") if p.is_file()} if static.is_dir() else set()
    assets |= {config.root / f.emblem for f in config.funding.values()}
    for source in sorted(assets):
        # A link in static/ leading out of the site (a key, a password file) is not
        # published; the emblem's path was checked with the configuration.
        if not inside(source, config.root):
            continue
        shown = source.relative_to(config.root)
        try:
            data = read_capped(source, MAX_ASSET_BYTES)
        except ReadRefused as exc:
            raise ContentError(f"{shown.as_posix()}: bulletin will not publish it: {exc}") from exc
        target = public / shown
        if write_if_changed(target, data, mode=0o644):
            written.append(target)
    return [p.relative_to(config.root).as_posix() for p in written]


def clear_previews(config: Config) -> None:
    shutil.rmtree(config.public_dir / "preview", ignore_errors=True)
