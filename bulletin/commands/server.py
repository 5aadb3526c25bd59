"""`bulletin server status|stop`: the local Prefect server that publishes run against when
PREFECT_API_URL names none (started in the background on first use, then reused)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bulletin.commands import print_json
from bulletin.errors import EXIT_OK


def register(commands: Any) -> None:
    server = commands.add_parser(
        "server", help="the local Prefect server kept running in the background"
    )
    actions = server.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="whether it runs, and where its UI is")
    status.add_argument("--json", action="store_true")
    stop = actions.add_parser("stop", help="stop it; the next publish starts it again")
    stop.add_argument("--json", action="store_true")
    server.set_defaults(run=cmd_server)


def cmd_server(root: Path, args: argparse.Namespace) -> int:
    from bulletin import local_server
    from bulletin.orchestration import configured_api_url, prefect_version

    home = local_server.prefect_home()
    if args.action == "stop":
        stopped = local_server.stop(home)
        if args.json:
            print_json({"stopped": stopped is not None, "pid": getattr(stopped, "pid", None)})
        elif stopped is not None:
            print(f"stopped the Prefect server at {stopped.ui} (process {stopped.pid})")
        else:
            print("no background Prefect server was running")
        return EXIT_OK
    server, sentence = local_server.status(home, prefect_version())
    external = configured_api_url()
    if args.json:
        print_json(
            {"running": server is not None, "url": getattr(server, "ui", None),
             "pid": getattr(server, "pid", None), "home": str(home),
             "prefect_api_url": external}
        )  # fmt: skip
        return EXIT_OK
    print(f"{sentence} (Prefect home {home})")
    if external:
        print(f"PREFECT_API_URL is set ({external}): publish uses that server, not this one")
    return EXIT_OK
