"""axe-core in Debian's Chromium over every rendered output of the fixture site, in light
and dark mode at 375 and 1,200 px; and the screenshots the confirmation gate attaches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from bulletin.accessibility.browser import axe_check, chromium, html_names, screenshots, staged
from bulletin.config import load_config
from bulletin.pipeline.planning import check_entries
from tests.conftest import run_cli
from tests.test_accessibility import email_grey_on_grey


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    if chromium() is None:
        reason = "no Chromium; scripts/test installs Debian's"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI runs the browser tests: {reason}")
        pytest.skip(reason)


def _rendered(site: Path) -> tuple[object, dict[str, bytes]]:
    config = load_config(site)
    files: dict[str, bytes] = {}
    check_entries(config, files=files)
    return config, files


def test_check_browser_finds_no_serious_violation_in_the_built_in_templates(site: Path) -> None:
    result = run_cli("check", "--browser", "--json", site=site)
    report = json.loads(result.stdout)
    assert report["problems"] == [], "\n".join(p["message"] for p in report["problems"])
    assert result.returncode == 0


def test_axe_refuses_grey_on_grey_in_the_email(site: Path) -> None:
    email_grey_on_grey(site)
    config, files = _rendered(site)
    previews = [n for n in html_names(files) if n.startswith("preview/news/")]
    assert "preview/news/email.html" in previews  # and one per language variant
    names = ["preview/news/email.html"]
    with staged(config, files) as public:
        found = axe_check(public, names)
    contrast = [v for v in found if v.rule == "color-contrast"]
    assert contrast, found
    assert {v.output for v in contrast} == {"public/preview/news/email.html"}
    assert {(v.scheme, v.width) for v in contrast} >= {("light", 375), ("light", 1200)}
    assert any("#a0a0a0" in v.element for v in contrast)


def test_screenshots_light_and_dark_at_phone_and_desktop_widths(site: Path, tmp_path) -> None:
    config, files = _rendered(site)
    with staged(config, files) as public:
        shots = screenshots(public, ["preview/news/email.html", "index.html"], tmp_path)
    assert sorted(p.name for p in shots) == sorted(
        f"{stem}-{scheme}-{width}.png"
        for stem in ("preview-news-email", "index")
        for scheme in ("light", "dark")
        for width in (375, 1200)
    )
    for shot in shots:
        with Image.open(shot) as image:
            assert image.format == "PNG"
            assert image.width in (375, 1200)
    for stem in ("preview-news-email", "index"):
        light, dark = (_brightness(tmp_path / f"{stem}-{s}-375.png") for s in ("light", "dark"))
        assert dark < light - 60, f"{stem}: dark mode is not dark ({dark:.0f} vs {light:.0f})"


def _brightness(path: Path) -> float:
    with Image.open(path) as image:
        return float(ImageStat.Stat(image.convert("L")).mean[0])
