"""Starts one of bulletin's modules as a process of its own (`python -m module`), which
imports bulletin as this process found it, however that was (installed, or a checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def module_process(module: str, *args: str, **options: Any) -> subprocess.Popen[bytes]:
    """`python -m module args...`, with `options` as `subprocess.Popen` takes them."""
    found = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [found, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, "PYTHONPATH": path},
        **options,
    )
