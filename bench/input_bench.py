"""Reading entries safely: what the bounded front matter loader and the capped read cost.

Called by bench/run.py (`python bench/run.py --only input [--quick]`). Each figure is
beside a baseline from the same run on the same text:

- front matter: `parse_front_matter` (libyaml's compose, a walk of the nodes refusing
  aliases, depth, size and repeated keys, then construct) against one plain libyaml parse
  (compose and construct), what bulletin did before;
- entry read: `read_entry_text` (regular file, inside the site, at most 1 MB) against
  `Path.read_bytes` and a decode.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

Row = tuple[str, str, str, str, str]
FRONT = """title: Interdisciplinary workshop on firearms and drug trafficking
date: 2019-11-12
end_date: 2019-11-13
location: Sofia, Bulgaria
summary: Police and customs experts from all member states met in Sofia to study links.
language: en
tags: [firearms, drugs, SIRAS]
funding: eu
status: approved
publish_at: 2019-11-20T09:00:00+02:00
send_not_after: 2019-12-20T00:00:00+02:00
approved_by: "Press Office"
approved_at: 2019-11-19T16:02:11+02:00
approval: sha256:23db428e5efc01bcd8b8a1f87ed4306eb27ee4ef3c2997ba38385cccd4fc1736
"""
SIZES = {"quick": (5, 200), "full": (15, 2000)}  # rounds, calls per round


def _plain_libyaml(text: str) -> object:
    loader = yaml.CSafeLoader(text)
    try:
        node = loader.get_single_node()
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _per_call(runs: list[Callable[[], object]], rounds: int, block: int) -> list[float]:
    """Median seconds per call of each function; they take turns in every round."""
    measured: list[list[float]] = [[] for _ in runs]
    for _ in range(rounds):
        for fn, times in zip(runs, measured, strict=True):
            start = time.perf_counter()
            for _ in range(block):
                fn()
            times.append((time.perf_counter() - start) / block)
    return [statistics.median(times) for times in measured]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def input_limits(quick: bool) -> list[Row]:
    from bulletin.content.frontmatter import parse_front_matter, read_entry_text

    rounds, block = SIZES["quick" if quick else "full"]
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        root = Path(tmp)
        path = root / "entry.md"
        path.write_text(f"---\n{FRONT}---\n" + "A paragraph of the body. " * 400, "utf-8")
        bounded, plain, read, read_plain = _per_call(
            [
                lambda: parse_front_matter(FRONT),
                lambda: _plain_libyaml(FRONT),
                lambda: read_entry_text(path, "entry.md", root),
                lambda: path.read_bytes().decode("utf-8"),
            ],
            rounds,
            block,
        )
    return [
        ("front matter, bounded loader", _us(bounded), "one libyaml parse", _us(plain),
         f"{bounded / plain:.2f}x"),
        ("entry read, capped, in site", _us(read), "Path.read_bytes", _us(read_plain),
         f"{read / read_plain:.2f}x"),
    ]  # fmt: skip
