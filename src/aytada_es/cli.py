"""The `aytada-es` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .backup.commands import add_commands as add_backup_commands
from .domain.errors import AytadaError, ConfigError
from .pack.commands import SUBCOMMANDS as PACK_COMMANDS
from .roles import ROLES

if TYPE_CHECKING:  # each command imports what it runs when it runs: `--help` stays quick
    from .adapters.sql import SQLStore
    from .bootstrap import System
    from .config import Settings
    from .console import DemoLogin
    from .projections import ReadModels, ReadModelStatus

DEMO_USER = "demo"
DEMO_CREDITS = 5000
DEFAULT_PORT = 8000
# How long a token command waits for the running service's projections to apply its change.
READ_MODEL_WAIT_S = 10.0


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

    stages = commands.add_parser(
        "stages",
        help="every registered stage: name, version, the events it reacts to, where it comes"
        " from, and its consumer group's lag",
    )
    stages.add_argument("--json", action="store_true", help="a machine-readable list")

    broker = commands.add_parser("broker", help="run the bundled Kafka-protocol broker alone")
    broker.add_argument("--port", type=int, default=9092)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True
    )
    add = users.add_parser("add", help="create a user; prints its token on the last line")
    add.add_argument("name")
    add.add_argument("--role", default="user", choices=["user", "auditor", "support"])
    add.add_argument("--credits", type=int, default=0)
    add.add_argument("--expires-in", type=int, metavar="DAYS", help="the token expires then")
    rotate = users.add_parser(
        "rotate-token",
        help="give a user a new token (the old one stops working, a disabled user is enabled);"
        " prints it on the last line",
    )
    rotate.add_argument("name")
    rotate.add_argument("--expires-in", type=int, metavar="DAYS", help="the token expires then")
    disable = users.add_parser(
        "disable", help="stop a user's token and sessions working (rotate-token enables it)"
    )
    disable.add_argument("name")
    erase = users.add_parser(
        "erase",
        help="erase a user's titles, briefs, ideas, scripts, scenes and asset files for good"
        " (their key is destroyed; audits and statements still reconcile)",
    )
    erase.add_argument("name")
    erase.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")

    credits = commands.add_parser("credits", help="settle credit disputes").add_subparsers(
        dest="credits_command", required=True
    )
    adjust = credits.add_parser(
        "adjust",
        help="settle a dispute: give credits back (AMOUNT > 0) or take them (AMOUNT < 0),"
        " as an audited movement of the account",
    )
    adjust.add_argument("name", metavar="USER")
    adjust.add_argument("amount", metavar="AMOUNT", type=_whole, help="credits, signed")
    adjust.add_argument("--reason", required=True, metavar="TEXT")
    adjust.add_argument("--ticket", required=True, metavar="ID")

    projections = commands.add_parser("projections", help="read models").add_subparsers(
        dest="projections_command", required=True
    )
    rebuild = projections.add_parser(
        "rebuild",
        help="rebuild every read model from the event store; exit 1 naming any that stopped",
    )
    rebuild.add_argument(
        "--live",
        action="store_true",
        help="while the service runs: build a new generation beside the serving one, then switch",
    )
    status = projections.add_parser(
        "status",
        help="each read model's position, lag and error, read only; exit 1 when one is stopped"
        " or lags more than 30 s",
    )
    status.add_argument("--json", action="store_true", help="a machine-readable report")

    audit = commands.add_parser(
        "audit",
        help="replay a project's history (deleted ones too) or an account's credit movements;"
        " exit 1 when its credits do not reconcile, its hash chain is broken or differs from"
        " its anchors, or it has findings. `audit export|verify|key --help`: dispute packs",
    )
    audit.add_argument("project_id", nargs="?", metavar="PROJECT_ID")
    audit.add_argument("--account", metavar="USER", help="the user's credit statement instead")
    audit.add_argument(
        "--at-version", type=int, metavar="N", help="the project as it was after version N"
    )
    audit.add_argument(
        "--at",
        type=_moment,
        metavar="TIME",
        help="the account as it stood at TIME (ISO 8601, e.g. 2026-01-31T12:00:00Z)",
    )
    audit.add_argument(
        "--diff",
        type=int,
        nargs=2,
        metavar=("A", "B"),
        help="what changed in the project from version A to version B",
    )
    audit.add_argument("--json", action="store_true", help="a machine-readable report")
    audit.set_defaults(usage=audit)
    add_backup_commands(commands)
    return parser


def _check_audit(args: argparse.Namespace) -> None:
    """Exit 2 with the audit command's usage when its arguments do not go together."""
    usage: argparse.ArgumentParser = args.usage
    if (args.project_id is None) == (args.account is None):
        usage.error("give either a PROJECT_ID or --account USER")
    if args.account is not None and args.at_version is not None:
        usage.error("--at-version applies to a project, not to --account")
    if args.account is not None and args.diff is not None:
        usage.error("--diff applies to a project, not to --account")
    if args.account is None and args.at is not None:
        usage.error("--at applies to --account; a project takes --at-version")
    if args.diff is not None and args.at_version is not None:
        usage.error("give either --diff or --at-version")


def _whole(text: str) -> int:
    """A signed whole number for argparse (exit 2 otherwise)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _moment(text: str) -> datetime:
    """An ISO 8601 time for argparse; one without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601, e.g. 2026-01-31T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["audit"] and given[1:2] and given[1] in PACK_COMMANDS:
        from .pack.commands import main as pack_main  # dispute packs: no store to load for verify

        return pack_main(given[1:])
    args = _parser().parse_args(argv)
    if args.command == "audit":
        _check_audit(args)
    from .console import configure_logging

    try:
        configure_logging(os.environ)
        return _run(args)
    except AytadaError as e:
        print(f"aytada-es: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command in ("backup", "restore"):
        from .backup.commands import run as backup_run  # verify needs no store nor settings

        return backup_run(args)
    from .config import Settings

    if args.command == "broker":
        return _broker(args.port)
    settings = Settings.from_env(os.environ)
    if args.command == "users":
        return _users(settings, args)
    if args.command == "projections" and args.projections_command == "status":
        return _projections_status(settings, as_json=args.json)
    if args.command == "projections" and args.live:
        return _rebuild_live(settings)
    if args.command == "projections":
        return _rebuild(settings)
    if args.command == "audit":
        return _audit(settings, args)
    if args.command == "credits":
        return _adjust(settings, args)
    if args.command == "stages":
        return _stages(settings, as_json=args.json)
    import asyncio

    roles = (*ROLES, "web") if args.command == "serve" else (args.role,)
    secret_key = os.environ.get("AYTADA_SECRET_KEY") or None
    asyncio.run(_serve(settings, roles, host=args.host, port=args.port, secret_key=secret_key))
    return 0


def _users(settings: Settings, args: argparse.Namespace) -> int:
    if args.users_command == "erase" and not args.yes:
        print(
            f"aytada-es: erasing {args.name!r} cannot be undone; run again with --yes",
            file=sys.stderr,
        )
        return 2
    from .bootstrap import bootstrap

    system = bootstrap(settings)
    try:
        if args.users_command == "add":
            account, token = system.studio.open_account(
                args.name, role=args.role, credits=args.credits, expires_in_days=args.expires_in
            )
            print(
                f"created {args.role} {args.name!r} with {args.credits} credits "
                f"(id {account.id}; {_expiry(account.token_expires_at)})"
            )
            print(token)
        elif args.users_command == "rotate-token":
            new = system.studio.rotate_token(args.name, expires_in_days=args.expires_in)
            _until_applied(system, new.position)
            print(
                f"new token for {args.name!r}: the old one no longer works "
                f"({_expiry(new.account.token_expires_at)})"
            )
            print(new.token)
        elif args.users_command == "erase":
            return _erase(system, args.name)
        else:
            position = system.studio.disable_account(args.name)
            if position is None:
                print(f"{args.name!r} is disabled already")
            else:
                _until_applied(system, position)
                print(
                    f"disabled {args.name!r}: its token and sessions no longer work; "
                    f"`aytada-es users rotate-token {args.name}` enables it with a new token"
                )
    finally:
        system.close()
    return 0


def _erase(system: System, name: str) -> int:
    from .erasure import erase_user  # only this command needs it

    # Not waiting for the accounts read model as `disable` does: the key is gone at once, and
    # the token stops once a running service applies AccountErased.
    done = erase_user(system.studio, system.read_models, system.assets, name)
    print(
        f"erased {name!r}: the text of {done.projects} project(s) reads [erased]; "
        f"{done.assets_deleted} asset file(s) deleted"
        + (
            f", {done.assets_shared} kept (another user's project holds them)"
            if done.assets_shared
            else ""
        )
    )
    if not done.compacted:
        print(
            "aytada-es: another process was using the database, so it is not compacted yet and "
            "may still hold the old text in free pages; run the erase again with it stopped",
            file=sys.stderr,
        )
    if done.plaintext_events:
        print(
            f"aytada-es: {done.plaintext_events} event(s) of {name!r} were stored before text "
            "was sealed (release 1) and still hold it: the hash chain forbids rewriting them "
            "(docs/auditing.md, Erasure)",
            file=sys.stderr,
        )
        return 1
    return 0


def _expiry(expires_at: datetime | None) -> str:
    if expires_at is None:
        return "the token never expires"
    return f"the token expires {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _until_applied(system: System, position: int) -> None:
    """Wait until the running service's accounts read model has applied the event at `position`.

    Tokens are looked up there, so only then has the change taken effect. The CLI does not
    apply events itself: that is the projections' job, and there may be none running.
    """
    import time

    accounts = system.read_models.accounts
    deadline = time.monotonic() + READ_MODEL_WAIT_S
    while accounts.position() < position:
        if time.monotonic() >= deadline:
            print(
                f"aytada-es: no projections applied the change within {READ_MODEL_WAIT_S:g} s "
                "(is the service running?); it takes effect when they next run",
                file=sys.stderr,
            )
            return
        time.sleep(0.02)


def _bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
    sys.stderr.flush()


def _rebuild(settings: Settings) -> int:
    from .bootstrap import bootstrap, tune_collector
    from .projections import ProjectionFailed

    system = bootstrap(settings)
    tune_collector()  # a rebuild makes millions of objects that die young
    try:
        applied = system.read_models.rebuild(progress=_bar)
    except ProjectionFailed as failed:
        sys.stderr.write("\n")
        for stopped in failed.stopped:
            print(f"aytada-es: {stopped.describe()}", file=sys.stderr)
        names = ", ".join(s.name for s in failed.stopped)
        print(f"rebuilt every read model but {names}; fix the cause and run it again")
        return 1
    finally:
        system.close()
    sys.stderr.write("\n")
    print(f"rebuilt every read model from {applied} events")
    return 0


def _rebuild_live(settings: Settings) -> int:
    """Rebuild beside the serving read models and switch over; the service keeps running."""
    from .application import Studio
    from .bootstrap import tune_collector
    from .projections import ProjectionFailed, ReadModels
    from .projections.live import SwitchFailed, rebuild_live

    studio = Studio(settings.database().eventsourcing_env())
    tune_collector()  # as the rebuild without --live

    def runner_of(store: SQLStore, generation: int) -> ReadModels:
        return ReadModels(studio, store, prepare=False, generation=generation)

    try:
        done = rebuild_live(studio, runner_of, progress=_bar)
    except ProjectionFailed as failed:
        sys.stderr.write("\n")
        for stopped in failed.stopped:
            print(f"aytada-es: {stopped.describe()}", file=sys.stderr)
        names = ", ".join(s.name for s in failed.stopped)
        print(f"nothing switched: {names} stopped; fix the cause and run it again")
        return 1
    except SwitchFailed as failed:
        sys.stderr.write("\n")
        print(f"aytada-es: nothing switched: {failed}", file=sys.stderr)
        return 1
    finally:
        studio.close()
    sys.stderr.write("\n")
    print(
        f"rebuilt every read model from {done.replayed} events beside the serving ones in "
        f"{done.seconds:.2f} s and switched at position {done.position}: epoch {done.epoch}"
    )
    return 0


def _projections_status(settings: Settings, *, as_json: bool) -> int:
    """Print each read model's state without applying anything; 0 when all are healthy."""
    import json

    from .application import Studio
    from .projections import ReadModels

    studio = Studio(settings.database().eventsourcing_env())
    try:
        statuses = ReadModels(studio, prepare=False).statuses()
    finally:
        studio.close()
    healthy = all(s.healthy for s in statuses)
    if as_json:
        report = {"healthy": healthy, "read_models": [s.as_json() for s in statuses]}
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_status_lines(statuses)))
    return 0 if healthy else 1


def _status_lines(statuses: Sequence[ReadModelStatus]) -> list[str]:
    """The read models' states as a table, one line each, and a verdict."""
    from .projections import LAG_LIMIT_S
    from .projections.stopped import utc

    lines = [f"{'read model':<10} {'position':>9} {'lag':>9} {'lag (s)':>9}  state"]
    for s in statuses:
        lag_s = "?" if s.lag_s is None else f"{s.lag_s:.1f}"
        if s.stopped is not None:
            stop = s.stopped
            state = (
                f"STOPPED at event {stop.position} since {utc(stop.since)},"
                f" {stop.attempts} attempts, next {utc(stop.next_retry)}: {stop.error}"
            )
        elif not s.healthy:
            state = f"LAGGING more than {LAG_LIMIT_S:.0f} s"
        else:
            state = "ok"
        lines.append(f"{s.name:<10} {s.position:>9} {s.lag_events:>9} {lag_s:>9}  {state}")
    down = [s.name for s in statuses if not s.healthy]
    lines.append(f"needs attention: {', '.join(down)}" if down else "every read model is healthy")
    return lines


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report; 0 when it passed, 1 when it did not (2, by `main`, on bad input)."""
    from uuid import UUID

    from .adapters.anchors import AnchorLog
    from .application import Studio
    from .audit.account import account_audit
    from .audit.project import project_audit, version_diff
    from .audit.reports import AccountAudit, AuditTrail, VersionDiff
    from .audit.text import diff_lines, statement, timeline
    from .domain.errors import ProjectNotFound
    from .projections.audited import read_side_of

    studio = Studio(settings.database().eventsourcing_env())
    anchors = AnchorLog(settings.anchors_dir)
    report: AuditTrail | AccountAudit | VersionDiff
    try:
        if args.account is not None:
            report = account_audit(studio, args.account, args.at, read_side_of(studio), anchors)
            lines = statement(report)
        else:
            try:
                project_id = UUID(args.project_id)
            except ValueError:
                raise ProjectNotFound(args.project_id) from None
            if args.diff is not None:
                report = version_diff(studio, project_id, *args.diff)
                lines = diff_lines(report)
            else:
                report = project_audit(
                    studio, project_id, args.at_version, read_side_of(studio), anchors
                )
                lines = timeline(report)
    finally:
        studio.close()
    print(report.model_dump_json(indent=2) if args.json else "\n".join(lines))
    return 0 if isinstance(report, VersionDiff) or report.passed else 1


def _adjust(settings: Settings, args: argparse.Namespace) -> int:
    """Record an adjustment of a user's credits; print the balance it leaves."""
    from .application import Studio

    studio = Studio(settings.database().eventsourcing_env())
    try:
        position = studio.adjust_credits(
            args.name, args.amount, reason=args.reason, ticket=args.ticket, actor="cli"
        )
        account = studio.account_named(args.name)
    finally:
        studio.close()
    print(
        f"adjusted {args.name!r} by {args.amount:+d} (ticket {args.ticket!r}, position {position}):"
        f" balance {account.balance}, reserved {account.reserved}"
    )
    return 0


def _stages(settings: Settings, *, as_json: bool) -> int:
    """List the stages `serve` would run, with their groups' lag when a broker answers."""
    import asyncio
    import json
    import logging

    from .consumers.registry import installed, registered
    from .kafka.address import announced_address
    from .kafka.lag import group_lags
    from .kafka.topics import PROJECT_EVENTS

    stages = registered(plugins=installed(settings.runs_plugin))
    broker = settings.kafka_bootstrap or announced_address(settings.data_dir)
    groups = {r.stage.name: settings.stage_group(r.stage.name) for r in stages}
    lags = None
    if broker is not None:
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # we say it when none answers
        lags = asyncio.run(group_lags(broker, settings.topic(PROJECT_EVENTS), groups.values()))

    def lag(name: str) -> int | None:
        return None if lags is None else lags[groups[name]]

    if as_json:
        rows = [
            {
                "name": r.stage.name,
                "version": r.stage.version,
                "reacts_to": sorted(r.stage.reacts_to),
                "source": r.source,
                "records": dict(r.stage.records),
                "lag": lag(r.stage.name),
            }
            for r in stages
        ]
        print(
            json.dumps({"broker": broker if lags is not None else None, "stages": rows}, indent=2)
        )
        return 0
    lines = [f"{'stage':<14} {'version':<10} {'reacts to':<22} {'source':<20} {'lag':>7}"]
    for r in stages:
        found = lag(r.stage.name)
        lines.append(
            f"{r.stage.name:<14} {r.stage.version:<10} {', '.join(sorted(r.stage.reacts_to)):<22}"
            f" {r.source:<20} {'unknown' if found is None else found:>7}"
        )
    if lags is not None:
        lines.append(f"lag: the messages each stage's group has not handled yet, at {broker}")
    elif broker is None:
        lines.append(
            "lag unknown: no serve announced its broker here; AYTADA_KAFKA_BOOTSTRAP unset"
        )
    else:
        lines.append(f"lag unknown: no broker answered at {broker}")
    print("\n".join(lines))
    return 0


def _broker(port: int) -> int:
    import signal

    from .kafka.broker import BundledBroker

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
    import asyncio
    import contextlib
    import signal

    from .bootstrap import bootstrap, tune_collector
    from .console import banner
    from .kafka.address import announced
    from .repeats import quiet_loop_errors
    from .web import create_app
    from .web.probes import probes_app
    from .web.quota import descriptor_budget
    from .web.serving import WebServer, listening_socket

    sock = None
    if "web" in roles:
        # Bound first: a port in use fails before anything starts, and `--port 0` gets its
        # number, which the public URL (signed asset links, allowed hosts) follows.
        port = DEFAULT_PORT if port is None else port
        try:
            sock = listening_socket(host, port)
        except OSError as e:
            raise ConfigError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
        settings = settings.served_at(host, sock.getsockname()[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    quiet_loop_errors(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Plug-ins too: the stages role runs them, the others need their asset kinds' labels.
    try:
        system = bootstrap(settings, roles=tuple(r for r in roles if r in ROLES), plugins=True)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    try:
        async with contextlib.AsyncExitStack() as running:
            if system.roles:
                await running.enter_async_context(system.running())
                if system.broker is not None:  # for `aytada-es stages` to find it
                    running.enter_context(announced(settings.data_dir, system.bootstrap_servers))
            web_url: str | None = None
            demo: DemoLogin | None = None
            if sock is not None:
                app = create_app(system.service(), secret_key=secret_key)
                server = WebServer(
                    app,
                    host=host,
                    port=sock.getsockname()[1],
                    sock=sock,
                    access_log=True,
                    log_level="info",
                    limit_concurrency=descriptor_budget().connections,
                )
                await running.enter_async_context(server)
                web_url = server.url
                if system.roles:
                    demo = await asyncio.to_thread(_demo_login, system)
            elif port is not None:  # a worker without the web app: its probes only
                server = WebServer(probes_app(system.service()), host=host, port=port)
                await running.enter_async_context(server)
                print(
                    f"aytada-es health and metrics on {server.url} (/healthz, /metrics)", flush=True
                )
            tune_collector()
            shown = banner(
                settings,
                roles=roles,
                web_url=web_url,
                demo_login=demo,
                bootstrap_servers=system.bootstrap_servers,
                bundled_broker=system.broker is not None,
            )
            print(shown, flush=True)
            await stop.wait()
            print("stopping...", flush=True)
    finally:
        if sock is not None:
            sock.close()
        system.close()


def _demo_login(system: System) -> DemoLogin:
    """Open the demo account on the first start; its token is shown then, and only then."""
    from .console import DemoLogin
    from .domain.errors import AccountExists

    try:
        _, token = system.studio.open_account(DEMO_USER, credits=DEMO_CREDITS, actor="cli:serve")
    except AccountExists:
        return DemoLogin(DEMO_USER, None)
    return DemoLogin(DEMO_USER, token)
