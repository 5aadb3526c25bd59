"""Command families of the `bulletin` command line beyond the core ones in `bulletin.cli`.

Each module here has `register(commands)`, which adds its subparsers to the command line's
and sets `run` to a function `(root, args) -> exit status`; `bulletin.cli` calls every
module's `register` and maps their `BulletinError`s to exit codes as for the core commands.
The helpers below are the ones every command shares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulletin.config.model import Config


def load_site_config(root: Path) -> Config:
    """The site's configuration (`bulletin.toml`), loaded and checked."""
    from bulletin.config.loading import load_config

    return load_config(root)


def site_path(root: Path, name: str) -> Path:
    """A path as given, or else inside the site: `--site DIR approve content/x.md` works."""
    path = Path(name)
    if not path.exists() and not path.is_absolute() and (root / path).exists():
        return root / path
    return path


def print_json(data: Any) -> None:
    """One JSON document on stdout, non-ASCII kept readable."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
