"""axe-core in a real Chromium over the rendered outputs, in light and dark colour schemes
at phone and desktop widths; and the screenshots of the same, for people to look at.

Playwright drives the Chromium the system has (Debian's `chromium`); it never downloads
one. axe-core comes from the axe-playwright-python package. Both are optional: `bulletin
check --browser` says how to install them when they are missing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulletin.config.model import Config
from bulletin.errors import ConfigError, Problem

SCHEMES = ("light", "dark")
WIDTHS = (375, 1200)
REFUSED = ("serious", "critical")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Violation:
    """One axe rule broken by one element of one output, in one scheme and width."""

    output: str  # "public/index.html"
    scheme: str
    width: int
    rule: str  # axe's id: "color-contrast"
    impact: str
    element: str  # axe's CSS target and the element's HTML
    help: str


def chromium() -> Path | None:
    """The system's Chromium, if it has one."""
    found = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    return Path(found) if found else None


@contextmanager
def staged(config: Config, files: Mapping[str, bytes]) -> Iterator[Path]:
    """`files` (paths under public/) written to a temporary folder with the site's static
    files and emblems, so that pages and email previews load their images."""
    with tempfile.TemporaryDirectory(prefix="bulletin-a11y-") as folder:
        public = Path(folder)
        for name, data in files.items():
            (public / name).parent.mkdir(parents=True, exist_ok=True)
            (public / name).write_bytes(data)
        static = config.root / "static"
        assets = {p for p in static.rglob("*") if p.is_file()} if static.is_dir() else set()
        assets |= {config.root / f.emblem for f in config.funding.values()}
        for source in assets:
            if source.is_file():
                target = public / source.relative_to(config.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        yield public


@contextmanager
def _browser() -> Iterator[Any]:
    executable = chromium()
    if executable is None:
        raise ConfigError(
            "the browser check needs Chromium (apt-get install chromium); none was found"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ConfigError(
            "the browser check needs Playwright and axe-core: pip install 'bulletin[browser]'"
        ) from exc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable))
        try:
            yield browser
        finally:
            browser.close()


def _axe_script() -> str:
    try:
        from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError(
            "the browser check needs axe-core: pip install 'bulletin[browser]'"
        ) from exc
    script: str = Axe().axe_script
    return script


def _views(public: Path, names: list[str]) -> Iterator[tuple[Any, str, str, int]]:
    """(page, output, scheme, width) for every output in every scheme and width."""
    with _browser() as browser:
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 900})
            for scheme in SCHEMES:
                page.emulate_media(color_scheme=scheme)
                for name in names:
                    page.goto((public / name).as_uri())
                    page.wait_for_load_state("load")
                    yield page, name, scheme, width
            page.close()


def axe_check(public: Path, names: list[str]) -> list[Violation]:
    """axe-core's serious and critical violations on each of `names` (HTML files under
    `public`), in light and dark mode at 375 and 1,200 px."""
    script = _axe_script()
    found: list[Violation] = []
    for page, name, scheme, width in _views(public, names):
        page.evaluate(script)
        results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for violation in results["violations"]:
            if violation.get("impact") not in REFUSED:
                continue
            for node in violation["nodes"]:
                target = " > ".join(str(node.get("target", [""])[-1]).split(" > ")[-2:])
                found.append(
                    Violation(
                        f"public/{name}",
                        scheme,
                        width,
                        violation["id"],
                        violation["impact"],
                        f"{target} {node.get('html', '')[:120]}",
                        violation["help"],
                    )
                )
    return found


def axe_problems(violations: list[Violation]) -> list[Problem]:
    """One problem per output, rule and element, naming the views it was found in."""
    views: dict[tuple[str, str, str, str, str], list[str]] = {}
    for v in violations:
        key = (v.output, v.rule, v.element, v.help, v.impact)
        views.setdefault(key, []).append(f"{v.scheme} {v.width} px")
    return [
        Problem(
            output,
            f"a11y-axe-{rule}",
            f"{element} — {help_} ({impact}; axe-core in Chromium, {', '.join(seen)})",
        )
        for (output, rule, element, help_, impact), seen in views.items()
    ]


def screenshots(public: Path, names: list[str], folder: Path) -> list[Path]:
    """Full-page PNGs of each of `names`, light and dark, at 375 and 1,200 px, into
    `folder` as <name>-<scheme>-<width>.png; the confirmation gate attaches these."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    for page, name, scheme, width in _views(public, names):
        stem = name.removesuffix("/index.html").removesuffix(".html").replace("/", "-")
        path = folder / f"{stem or 'index'}-{scheme}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    return shots


def edition_screenshots(config: Config, files: Mapping[str, bytes], folder: Path) -> list[Path]:
    """The confirmation gate's hook: light and dark PNGs at 375 and 1,200 px of each email
    preview and web page among `files` (an edition's public/ files and email previews, as
    `planning.email_previews` adds them), written to `folder` for the flow to attach."""
    with staged(config, files) as public:
        return screenshots(public, html_names(files), folder)


def html_names(files: Mapping[str, bytes]) -> list[str]:
    """The HTML outputs among `files`: pages and email previews."""
    return sorted(n for n in files if n.endswith(".html"))
