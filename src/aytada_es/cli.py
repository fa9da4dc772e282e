"""The `aytada-es` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from uuid import UUID

from .application import Studio
from .audit import account_audit, project_audit, statement, timeline
from .bootstrap import ROLES, System, bootstrap, tune_collector
from .config import Settings
from .domain.errors import AccountExists, AytadaError, ProjectNotFound
from .kafka.broker import BundledBroker
from .repeats import quiet_loop_errors
from .web import create_app
from .web.probes import probes_app
from .web.quota import descriptor_budget
from .web.serving import WebServer

DEMO_USER = "demo"
DEMO_CREDITS = 5000
DEFAULT_PORT = 8000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aytada-es", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run everything in one process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)

    worker = commands.add_parser("worker", help="run one role")
    worker.add_argument("role", choices=[*ROLES, "web"])
    worker.add_argument("--host", default="127.0.0.1")
    worker.add_argument(
        "--port",
        type=int,
        help="web: the app's port (default 8000); relay, stages, projections: "
        "serve /healthz and /metrics on this port (not served without it)",
    )

    broker = commands.add_parser("broker", help="run the bundled Kafka-protocol broker alone")
    broker.add_argument("--port", type=int, default=9092)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="create a user; prints its token on the last line")
    add.add_argument("name")
    add.add_argument("--role", default="user", choices=["user", "auditor", "support"])
    add.add_argument("--credits", type=int, default=0)

    projections = commands.add_parser("projections", help="read models").add_subparsers(
        dest="projections_command", required=True
    )
    projections.add_parser("rebuild", help="rebuild every read model from the event store")

    audit = commands.add_parser(
        "audit",
        help="replay a project's history (deleted ones too) or an account's credit movements;"
        " exit 1 when its credits do not reconcile or its hash chain is broken",
    )
    audit.add_argument("project_id", nargs="?", metavar="PROJECT_ID")
    audit.add_argument("--account", metavar="USER", help="the user's credit statement instead")
    audit.add_argument(
        "--at-version", type=int, metavar="N", help="the project as it was after version N"
    )
    audit.add_argument("--json", action="store_true", help="a machine-readable report")
    audit.set_defaults(usage=audit)
    return parser


def _check_audit(args: argparse.Namespace) -> None:
    """Exit 2 with the audit command's usage when its arguments do not go together."""
    usage: argparse.ArgumentParser = args.usage
    if (args.project_id is None) == (args.account is None):
        usage.error("give either a PROJECT_ID or --account USER")
    if args.account is not None and args.at_version is not None:
        usage.error("--at-version applies to a project, not to --account")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "audit":
        _check_audit(args)
    logging.basicConfig(
        level=os.environ.get("AYTADA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _run(args)
    except AytadaError as e:
        print(f"aytada-es: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "broker":
        return _broker(args.port)
    settings = Settings.from_env(os.environ)
    if args.command == "users":
        return _users_add(settings, args.name, args.role, args.credits)
    if args.command == "projections":
        return _rebuild(settings)
    if args.command == "audit":
        return _audit(settings, args)
    roles = (*ROLES, "web") if args.command == "serve" else (args.role,)
    secret_key = os.environ.get("AYTADA_SECRET_KEY") or None
    asyncio.run(_serve(settings, roles, host=args.host, port=args.port, secret_key=secret_key))
    return 0


def _users_add(settings: Settings, name: str, role: str, credits: int) -> int:
    system = bootstrap(settings)
    try:
        account, token = system.studio.open_account(name, role=role, credits=credits)
        print(f"created {role} {name!r} with {credits} credits (id {account.id})")
        print(token)
    finally:
        system.close()
    return 0


def _rebuild(settings: Settings) -> int:
    system = bootstrap(settings)

    def bar(done: int, total: int) -> None:
        width = 40
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
        sys.stderr.flush()

    try:
        applied = system.read_models.rebuild(progress=bar)
        sys.stderr.write("\n")
        print(f"rebuilt every read model from {applied} events")
    finally:
        system.close()
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report; 0 when it passed, 1 when it did not (2, by `main`, on bad input)."""
    studio = Studio(settings.database().eventsourcing_env())
    try:
        if args.account is not None:
            report = account_audit(studio, args.account)
            lines = statement(report)
        else:
            try:
                project_id = UUID(args.project_id)
            except ValueError:
                raise ProjectNotFound(args.project_id) from None
            report = project_audit(studio, project_id, args.at_version)
            lines = timeline(report)
    finally:
        studio.close()
    print(json.dumps(report, indent=2) if args.json else "\n".join(lines))
    return 0 if report["passed"] else 1


def _broker(port: int) -> int:
    broker = BundledBroker(port=port)
    print(f"bundled broker on {broker.start()} (memory storage); Ctrl-C stops it", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        broker.stop()
    return 0


async def _serve(
    settings: Settings,
    roles: tuple[str, ...],
    *,
    host: str,
    port: int | None,
    secret_key: str | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    quiet_loop_errors(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    system = bootstrap(settings, roles=tuple(r for r in roles if r in ROLES))
    try:
        async with contextlib.AsyncExitStack() as running:
            if system.roles:
                await running.enter_async_context(system.running())
            if "web" in roles:
                app = create_app(system, secret_key=secret_key)
                port = DEFAULT_PORT if port is None else port
                server = WebServer(
                    app,
                    host=host,
                    port=port,
                    access_log=True,
                    log_level="info",
                    limit_concurrency=descriptor_budget().connections,
                )
                await running.enter_async_context(server)
                print(f"aytada-es web on {server.url}/dashboard/videos", flush=True)
                if system.roles:
                    print(await asyncio.to_thread(_demo_login, system), flush=True)
            elif port is not None:  # a worker without the web app: its probes only
                server = WebServer(probes_app(system), host=host, port=port)
                await running.enter_async_context(server)
                print(
                    f"aytada-es health and metrics on {server.url} (/healthz, /metrics)", flush=True
                )
            tune_collector()
            print(
                f"aytada-es running {', '.join(roles)} "
                f"(broker {system.bootstrap_servers or 'not used'}, data in {settings.data_dir}); "
                "Ctrl-C stops",
                flush=True,
            )
            await stop.wait()
            print("stopping...", flush=True)
    finally:
        system.close()


def _demo_login(system: System) -> str:
    """Open the demo account on the first start and show its token, which is shown only once."""
    try:
        _, token = system.studio.open_account(DEMO_USER, credits=DEMO_CREDITS, actor="cli:serve")
    except AccountExists:
        return (
            f"demo login: user {DEMO_USER!r} exists (its token was shown when it was made); "
            "make a new login with `aytada-es users add NAME --credits 1000`"
        )
    return f"demo login: user {DEMO_USER!r}, token {token} (shown once: keep it)"
