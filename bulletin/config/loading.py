"""Reads bulletin.toml once into a `Config`, naming the key and line of every problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bulletin.config.cache import keep, kept, record_key
from bulletin.config.model import Config
from bulletin.errors import ConfigError, Problem
from bulletin.files import ReadRefused, inside, read_capped

if TYPE_CHECKING:
    import tomllib

    from pydantic_core import ErrorDetails

CONFIG_FILE = "bulletin.toml"
MAX_CONFIG_BYTES = 1024 * 1024
#: A list's or partner's name: it becomes a folder or file name.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def load_config(root: Path) -> Config:
    """Read and validate `root/bulletin.toml`; raise ConfigError listing every problem."""
    path = root / CONFIG_FILE
    if not path.exists():
        raise ConfigError(
            f"{path}: no {CONFIG_FILE} here; run bulletin in a site folder or pass --site DIR"
        )
    try:
        data = read_capped(path, MAX_CONFIG_BYTES)
        text = data.decode("utf-8")
    except ReadRefused as exc:
        raise ConfigError(f"{path}: bulletin will not read it: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from exc
    key = record_key(root, data)
    config = kept(root, key)
    if config is None or not _zone_known(config):
        config = _checked(root, text)
        keep(root, key, config)
    problems = _cross_checks(config, text)
    if problems:
        raise ConfigError(f"{CONFIG_FILE}: {len(problems)} problem(s)", problems)
    return config


def _checked(root: Path, text: str) -> Config:
    """bulletin.toml's text parsed and its values checked; ConfigError listing every
    problem of the text itself (the checks that look outside it are `_cross_checks`)."""
    import tomllib

    from pydantic import ValidationError

    from bulletin.config.validation import validated

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(exc)
        problem = Problem(CONFIG_FILE, "config-syntax", f"not valid TOML: {exc}", line, "config")
        raise ConfigError(str(problem), [problem]) from exc
    problems = _key_problems(data, text)
    try:
        config = validated({**data, "root": root})
    except ValidationError as exc:
        problems += [_problem(error, text) for error in exc.errors()]
        raise ConfigError(f"{CONFIG_FILE}: {len(problems)} problem(s)", problems) from exc
    if problems:
        problems += _cross_checks(config, text)
        raise ConfigError(f"{CONFIG_FILE}: {len(problems)} problem(s)", problems)
    return config


def _zone_known(config: Config) -> bool:
    """Whether the site's time zone is still one this machine knows (its check looks at
    the system's time zone data, which is not part of a kept record's key)."""
    try:
        ZoneInfo(config.site.timezone)
    except (LookupError, ValueError):
        return False
    return True


def _key_problems(data: dict[str, Any], text: str) -> list[Problem]:
    """List and partner names become folder and file names (outbox/partners/NAME/, the
    ledger): only a safe pattern is accepted, so that none can lead out of its folder."""
    problems = []
    for table in ("lists", "partners"):
        names = data.get(table)
        for name in names if isinstance(names, dict) else ():
            if not SAFE_NAME.fullmatch(name):
                shown = name if len(name) <= 40 else name[:39] + "…"
                problems.append(
                    Problem(
                        CONFIG_FILE,
                        "config-name-invalid",
                        f"[{table}.{shown!r}]: a name may hold only letters, digits, '-' and '_' "
                        f"(at most 64, starting with a letter or digit); rename it",
                        _line_of(text, (table, name)),
                        "config",
                    )
                )
    return problems


def _emblem_problem(config: Config, emblem: str) -> tuple[str, str] | None:
    """Why the emblem file cannot be used (code, message), or None: it must be a file
    inside the site, since it is copied into public/ and served from there."""
    path = config.root / emblem
    if Path(emblem).is_absolute() or ".." in Path(emblem).parts:
        where = f"{emblem!r} must be a path inside the site folder, such as static/eu-emblem.png"
        return "emblem-outside", where
    if not path.is_file():
        create = f"create it with `python -m bulletin.emblem {emblem}`"
        return "emblem-missing", f"file {emblem!r} not found; {create}"
    if not inside(path, config.root):
        link = f"{emblem!r} is a symbolic link leading outside the site; copy the file in"
        return "emblem-outside", link
    return None


def _cross_checks(config: Config, text: str) -> list[Problem]:
    problems: list[Problem] = []

    def add(code: str, message: str, *loc: str) -> None:
        problems.append(Problem(CONFIG_FILE, code, message, _line_of(text, loc), "config"))

    if config.site.default_funding not in config.funding:
        add(
            "funding-unknown",
            f"site.default_funding = {config.site.default_funding!r} but there is no "
            f"[funding.{config.site.default_funding}] table; add it",
            "site",
            "default_funding",
        )
    for name, funding in config.funding.items():
        emblem = _emblem_problem(config, funding.emblem)
        if emblem:
            code, message = emblem
            add(code, f"funding.{name}.emblem: {message}", f"funding.{name}", "emblem")
        if not funding.text:
            add(
                "funding-text-missing",
                f"[funding.{name}] has no texts; add [funding.{name}.text.{config.site.language}]"
                " with statement and disclaimer",
                f"funding.{name}",
            )
        for language, texts in funding.text.items():
            for field in ("statement", "disclaimer"):
                if not getattr(texts, field).strip():
                    add(
                        "funding-text-empty",
                        f"funding.{name}.text.{language}.{field} is empty; give the wording of "
                        "your grant agreement",
                        f"funding.{name}.text.{language}",
                        field,
                    )
    for name, mailing_list in config.lists.items():
        if mailing_list.address and "@" not in mailing_list.address:
            add("address-invalid", f"lists.{name}.address is not an email address", f"lists.{name}")
    for name, partner in config.partners.items():
        if not partner.webhook and not partner.email:
            add(
                "partner-channel-missing",
                f"partners.{name} has neither webhook nor email; give one of them",
                f"partners.{name}",
            )
        if partner.webhook and partner.email:
            add(
                "partner-channel-both",
                f"partners.{name} has both webhook and email; keep one (make two partners "
                "to get both)",
                f"partners.{name}",
            )
        if partner.webhook and not (partner.secret_env or partner.secret_block):
            add(
                "partner-secret-missing",
                f"partners.{name} has a webhook but no secret_env naming the variable that "
                "holds its signing secret (or secret_block naming a Prefect Secret block)",
                f"partners.{name}",
            )
        if partner.secret_env and partner.secret_block:
            add(
                "partner-secret-source",
                f"partners.{name} has both secret_env and secret_block; keep one",
                f"partners.{name}",
            )
    if config.delivery.dask_address and config.delivery.task_runner != "dask":
        add(
            "dask-address-unused",
            'delivery.dask_address is set but delivery.task_runner is not "dask"; set '
            'task_runner = "dask" or remove dask_address',
            "delivery",
            "dask_address",
        )
    dkim = config.delivery.dkim
    if dkim is not None:
        key = "private_key_env" if dkim.private_key_env else "private_key_file"
        if (dkim.private_key_env is None) == (dkim.private_key_file is None):
            add(
                "dkim-key-source",
                "delivery.dkim needs exactly one of private_key_env (the environment variable "
                "holding the PEM key) or private_key_file (a path in the site folder)",
                "delivery.dkim",
            )
        else:
            from bulletin.config.secrets import dkim_private_key

            try:
                dkim_private_key(dkim, config.root)
            except ConfigError as exc:  # its message names the key's source, never the key
                add("dkim-key", str(exc), "delivery.dkim", key)
    return problems


def _problem(error: ErrorDetails, text: str) -> Problem:
    loc = tuple(str(part) for part in error["loc"] if part != "from_")
    if error["loc"] and error["loc"][-1] == "from_":
        loc = (*loc, "from")
    dotted = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        section = ".".join(loc[:-1]) or "top level"
        message = f"unknown key {loc[-1]!r} in [{section}]; remove it or check its spelling"
        code = "config-unknown-key"
    elif kind == "missing":
        message = f"{dotted} is required; add it"
        code = "config-missing"
    else:
        message = f"{dotted}: {error['msg'].removeprefix('Value error, ')}"
        code = "config-invalid"
    return Problem(CONFIG_FILE, code, message, _line_of(text, loc), "config")


def _line_of(text: str, loc: tuple[str, ...] | list[str]) -> int | None:
    """Best-effort line number of a dotted key in TOML text, for error messages."""
    lines = text.splitlines()
    parts = list(loc)
    for split in range(len(parts), -1, -1):
        table, keys = parts[:split], parts[split:]
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(_key_re, table)) + r"\s*\]")
        start = 0
        if table:
            found = [i for i, line in enumerate(lines) if header.match(line)]
            if not found:
                continue
            start = found[0]
            if not keys:
                return start + 1
        key = keys[0] if keys else None
        for i in range(start + (1 if table else 0), len(lines)):
            if table and lines[i].lstrip().startswith("[") and i != start:
                break
            if not table and lines[i].lstrip().startswith("["):
                break
            if key and re.match(r"^\s*" + _key_re(key) + r"\s*=", lines[i]):
                return i + 1
        if table:
            return start + 1
    return None


def _key_re(key: str) -> str:
    return r"[\"']?" + re.escape(key) + r"[\"']?"


def _decode_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else None
