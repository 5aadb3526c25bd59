"""One run at a time per site, across deployments: a Prefect global concurrency limit.

publish, weekly-digest, timed-entries and resend each occupy the site's one slot for the
whole run, so a run that starts while another is planning or sending waits for it in the
Prefect UI rather than plan beside it. The site's run lock (bulletin.store.locks) does the
same against runs from the command line.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from prefect import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists


def limit_name(site: str) -> str:
    """The site's global concurrency limit: its folder's name and a digest of its path."""
    path = Path(site).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in path.name)[:40]
    return f"bulletin-site-{readable}-{digest}"


@contextlib.contextmanager
def one_run_per_site(site: str) -> Iterator[None]:
    """Hold the site's slot (a limit of 1, made when missing) for the body's run."""
    name = limit_name(site)
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
    # A publish may pause for confirmation for an hour: the lease is renewed meanwhile.
    with concurrency(name, occupy=1, strict=True):
        yield
