"""The accessibility gate: the static rules over every rendered output, as problems that
stop a check, build or publish — or, for a rule the site downgraded with a written
reason in [accessibility.warnings], as warnings the report shows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass

from bulletin.accessibility.rules import RULES, Scan, scan_html
from bulletin.accessibility.scan import Finding
from bulletin.compliance import Output
from bulletin.config.model import Config
from bulletin.content.markup import normalise_space
from bulletin.errors import Problem
from bulletin.htmlscan import Page

MIN_REASON = 20  # characters: a reason, not a placeholder


@dataclass(frozen=True)
class Verdict:
    """What the gate found: problems refuse the outputs, warnings are only reported."""

    problems: list[Problem]
    warnings: list[str]


def check_accessibility(
    config: Config,
    outputs: Iterable[Output],
    pages: MutableMapping[str, Page] | None = None,
    scans: Mapping[tuple[str, bool], Scan] | None = None,
) -> Verdict:
    """Every accessibility problem in the HTML outputs (and the email text parts).
    `pages`: where to keep what the EU-notice gate reads of each HTML output (by its
    content), read in the same pass, for `compliance.check_outputs`. `scans`: outputs
    already read (`scan_html`), by their content and whether they are an email's part."""
    downgraded, problems = _downgrades(config)
    outputs = list(outputs)
    texts = {o.name: o for o in outputs if o.email and not o.html}
    found: dict[tuple[str, Finding], list[str]] = {}
    scanned: dict[tuple[str, bool], tuple[list[Finding], list[str]]] = {}
    for output in outputs:
        if not output.html:
            continue
        key = (output.content, output.email)  # lists that get the same email: scan once
        if key not in scanned:
            known = scans.get(key) if scans else None
            findings, hrefs, page = known or scan_html(output.content, email=output.email)
            scanned[key] = findings, hrefs
            if pages is not None:
                pages[output.content] = page
        findings, hrefs = scanned[key]
        findings = list(findings)
        for finding in findings:
            found.setdefault((output.template or output.name, finding), []).append(output.name)
        text = texts.get(output.name.replace("(HTML part)", "(text part)"))
        if output.email and text is not None:
            for finding in _text_part(output, hrefs, text.content):
                found.setdefault((text.template or text.name, finding), []).append(text.name)
    warnings = []
    for (path, finding), names in found.items():
        where = names[0] + (f" and {len(names) - 1} other output(s)" if len(names) > 1 else "")
        message = f"{where}: {finding.element} {finding.message}"
        reason = downgraded.get(finding.rule)
        if reason is not None:
            warnings.append(f"{path}: {message} [a11y-{finding.rule}; a warning: {reason}]")
        else:
            problems.append(Problem(path, f"a11y-{finding.rule}", message))
    return Verdict(problems, warnings)


_URL = re.compile(r"https?://[^\s<>\"']+")


def _text_part(output: Output, hrefs: list[str], text: str) -> list[Finding]:
    flat = normalise_space(text)
    # A link counts as a whole address: the entry's page is not "in" its calendar file's.
    written = {u.rstrip(".,;:!?)]>") for u in _URL.findall(text)}
    found = [
        Finding("text-part", f"the link {href}", "is in the HTML part but not in the text part")
        for href in dict.fromkeys(hrefs)
        if href not in written and not (not _URL.match(href) and href in text)
    ]
    found += [
        Finding(
            "text-part", f"the entry {e.title!r}", "is in the HTML part but not in the text part"
        )
        for e in output.entries
        if normalise_space(e.title) not in flat
    ]
    return found


def _downgrades(config: Config) -> tuple[dict[str, str], list[Problem]]:
    downgraded: dict[str, str] = {}
    problems = []
    for rule, reason in config.accessibility.warnings.items():
        if rule not in RULES:
            problems.append(
                Problem(
                    "bulletin.toml",
                    "config",
                    f"[accessibility.warnings] names {rule!r}, which is no accessibility "
                    f"rule; the rules are {', '.join(RULES)}",
                    kind="config",
                )
            )
        elif len(reason.strip()) < MIN_REASON:
            problems.append(
                Problem(
                    "bulletin.toml",
                    "config",
                    f"[accessibility.warnings] {rule} needs a written reason (at least "
                    f"{MIN_REASON} characters) saying why readers are not harmed; it stays "
                    "an error until then",
                    kind="config",
                )
            )
        else:
            downgraded[rule] = reason.strip()
    return downgraded, problems
