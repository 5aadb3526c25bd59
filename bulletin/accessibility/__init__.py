"""The accessibility gate beside the EU-notice gate: every rendered output must be usable
by every reader, in every client, in light and dark mode.

    rules    the static rules over one HTML output (no browser): lang, alt, layout tables,
             heading order, link text, contrast, color-scheme, preview text
    scan     the one pass over an output's HTML (libxml2) that the rules read
    colours  CSS colours, WCAG contrast, the few stylesheet rules the static rules read
    gate     the rules over every output, with the site's reasoned downgrades to warnings
    browser  axe-core in a real Chromium, light and dark, phone and desktop; screenshots

The gate is imported when first named: a process that only reads pages for a build
(pipeline.gates) needs the rules, not the configuration the gate reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bulletin.accessibility.rules import RULES

if TYPE_CHECKING:
    from bulletin.accessibility.gate import Verdict, check_accessibility

__all__ = ["RULES", "Verdict", "check_accessibility"]


def __getattr__(name: str) -> Any:
    if name in ("Verdict", "check_accessibility"):
        from bulletin.accessibility import gate

        return getattr(gate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
