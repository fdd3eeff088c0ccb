"""The `commonwatt` command: serve, worker, import, export, users, jobs, db upgrade."""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bundles.errors import BundleError, BundleRefused, CommunityExists
from handlers.datadir import DataDirectoryHeld
from handlers.serving import StartRefused
from handlers.settings import Settings
from storage.errors import StorageError

DEMO_ADMIN_EMAIL = "admin@demo.commonwatt.local"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "bundles" / "examples"
PROGRESS_THRESHOLD_BYTES = 1024 * 1024
EXIT_REFUSED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure to report on stderr with an exit code, never a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _read_with_progress(path: Path, stream: IO[str]) -> bytes:
    """A file's bytes, with a progress bar on stderr for large files."""
    size = path.stat().st_size
    show = size >= PROGRESS_THRESHOLD_BYTES
    chunks: list[bytes] = []
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            chunks.append(chunk)
            done += len(chunk)
            if show and stream.isatty():
                filled = int(30 * done / size)
                stream.write(f"\r{path.name} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{done * 100 // size:3d}%")
                stream.flush()
    if show:
        stream.write(("\r" if stream.isatty() else "") +
                     f"{path.name}: read {size / 1_048_576:.1f} MiB\n")
    return b"".join(chunks)


def _phase(stream: IO[str], text: str) -> None:
    stream.write(f"{text}\n")
    stream.flush()


class BundleFile:
    """The documents read from one file, and where they start among all files' documents."""

    def __init__(self, name: str, first: int, documents: list[dict[str, Any]]) -> None:
        self.name = name
        self.first = first
        self.documents = documents


def _read_bundle_file(settings: Settings, name: str, first: int) -> BundleFile:
    """A YAML or JSON bundle file's documents; errors name the file."""
    from bundles.parse import parse_json_bundle, parse_yaml_documents

    path = Path(name)
    if path.is_dir():
        raise CliError(f"{name} is a directory: name the bundle files in it", EXIT_USAGE)
    if not path.exists():
        raise CliError(f"{name}: no such file", EXIT_USAGE)
    data = _read_with_progress(path, sys.stderr)
    try:
        if path.suffix.lower() == ".json":
            try:
                decoded = json.loads(data)
            except ValueError as error:
                raise CliError(f"{name}: not valid JSON: {error}") from None
            items = decoded if isinstance(decoded, list) else [decoded]
            documents = [parse_json_bundle(item, max_depth=settings.yaml_max_depth)
                         for item in items]
        else:
            documents = parse_yaml_documents(data, max_nodes=settings.yaml_max_nodes,
                                             max_depth=settings.yaml_max_depth)
    except BundleError as error:
        detail = error.detail.replace("the JSON body", "the file").replace("the body", "the file")
        raise CliError(f"{name}: [{error.code}] {detail}") from None
    return BundleFile(name, first, documents)


def _where(files: list[BundleFile], document: int) -> str:
    """`FILE, document N` for an index among all files' documents (N counts within FILE)."""
    for bundle_file in reversed(files):
        if document >= bundle_file.first:
            return f"{bundle_file.name}, document {document - bundle_file.first + 1}"
    return f"document {document + 1}"


def command_import(settings: Settings, args: argparse.Namespace) -> int:
    from bundles.importer import import_bundles
    from handlers.app import create_runtime

    files: list[BundleFile] = []
    for name in args.files:
        files.append(_read_bundle_file(settings, name, sum(len(f.documents) for f in files)))
    documents = [document for bundle_file in files for document in bundle_file.documents]
    _say_data_dir_if_new(settings)
    _phase(sys.stderr, f"importing {len(documents)} community document(s)...")
    runtime = create_runtime(settings)
    try:
        with runtime.session() as session:
            report = import_bundles(session, documents, dry_run=args.dry_run, force=args.force)
    except BundleRefused as error:
        count = len(error.refusals)
        lines = [f"the import was refused ({count} problem{'s' if count != 1 else ''}); "
                 "nothing was written"]
        lines += [f"  {_where(files, refusal.document)}, {refusal.pointer or '/'}: "
                  f"[{refusal.code}] {refusal.message}" for refusal in error.refusals]
        raise CliError("\n".join(lines)) from None
    except CommunityExists as error:
        keys = ", ".join(error.community_keys)
        raise CliError(f"already registered: {keys}; nothing was written. Pass --force to "
                       "replace, or --dry-run to see what would change") from None
    finally:
        runtime.engine.dispose()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _registry_place(settings: Settings) -> str:
    """Where the registry is, as a user would look for it."""
    from sqlalchemy.engine import make_url

    if settings.database_url:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        return f"the database {url}"
    return f"the data directory {settings.data_dir.resolve()}"


def _say_data_dir_if_new(settings: Settings) -> None:
    """Tell which data directory a writing command uses when its registry is new or empty."""
    from handlers.datadir import make_private, registry_state

    make_private(settings.data_dir, create=False)
    state = registry_state(settings)
    if state != "ready":
        what = "a new registry" if state == "missing" else "an empty registry"
        print(f"Using {what} in {_registry_place(settings)}", file=sys.stderr)


def _open_existing_registry(settings: Settings) -> Any:
    """The runtime of a registry that holds something; a CliError (never a new file) if none."""
    from handlers.app import create_runtime
    from handlers.datadir import registry_state

    state = registry_state(settings)
    if state != "ready":
        what = "no registry" if state == "missing" else "an empty registry"
        raise CliError(f"there is {what} in {_registry_place(settings)}: set "
                       "COMMONWATT_DATA_DIR (or COMMONWATT_DATABASE_URL) as for the server, "
                       "or run the command where the server runs")
    return create_runtime(settings, migrate=False)


def command_export(settings: Settings, args: argparse.Namespace) -> int:
    from bundles.exporter import export_communities

    runtime = _open_existing_registry(settings)
    try:
        with runtime.session(read_only=True) as session:
            text = export_communities(session, community_keys=args.community or None)
    finally:
        runtime.engine.dispose()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat: "):
            raise CliError("the two passwords differ", EXIT_USAGE)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("no password given: type it at the prompt, or pipe it on stdin "
                       "(echo \"$PASSWORD\" | commonwatt users create ...)", EXIT_USAGE)
    return password


def command_users_create(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.app import create_runtime
    from storage.users import create_user

    password = _read_password(args)
    _say_data_dir_if_new(settings)
    runtime = create_runtime(settings)
    try:
        with runtime.session() as session:
            user = create_user(session, email=args.email, password=password, role=args.role)
            print(f"created {user.role} {user.email}")
    finally:
        runtime.engine.dispose()
    return 0


def command_users_list(settings: Settings, args: argparse.Namespace) -> int:
    from sqlmodel import select

    from storage.models import User

    runtime = _open_existing_registry(settings)
    try:
        with runtime.session(read_only=True) as session:
            for user in session.exec(select(User).order_by(User.email)):
                print(f"{user.email}\t{user.role}")
    finally:
        runtime.engine.dispose()
    return 0


def command_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.app import create_runtime
    from storage.db import database_status

    _say_data_dir_if_new(settings)
    runtime = create_runtime(settings)
    print(f"database at revision {database_status(runtime.engine).get('revision')}")
    runtime.engine.dispose()
    return 0


def command_mqtt_sync(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.mqtt_broker import sync_broker

    if settings.mqtt_broker_dir is None:
        raise CliError("set COMMONWATT_MQTT_BROKER_DIR: where Mosquitto's files are written",
                       exit_code=EXIT_USAGE)
    runtime = _open_existing_registry(settings)
    try:
        devices, reloaded = sync_broker(settings, runtime.engine)
    finally:
        runtime.engine.dispose()
    directory = settings.mqtt_broker_dir.resolve()
    print(f"wrote {directory / 'passwd'} ({devices} devices), {directory / 'acl'} and "
          f"{directory / 'mosquitto.conf'}; broker "
          + ("reloaded" if reloaded else "not reloaded (no COMMONWATT_MQTT_BROKER_PID_FILE, "
                                         "or no broker running)"))
    return 0


def command_jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    from storage import jobs as job_store

    runtime = _open_existing_registry(settings)
    try:
        with runtime.session(read_only=True) as session:
            cursor = None
            while True:
                page = job_store.list_jobs(session, scope=job_store.JobScope(everything=True),
                                           status=args.status, kind=args.kind,
                                           community_key=args.community, cursor=cursor,
                                           limit=500)
                for job in page.items:
                    print("\t".join([str(job.id), job.kind, job.status, f"{job.progress}%",
                                     job.community_key or "-", job.requested_by or "-",
                                     job.created_at.isoformat(), job.progress_message or ""]))
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    finally:
        runtime.engine.dispose()
    return 0


def command_jobs_show(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.jobs import present_job
    from storage import jobs as job_store

    runtime = _open_existing_registry(settings)
    try:
        with runtime.session(read_only=True) as session:
            job = job_store.get_job(session, job_id=args.job_id,
                                    scope=job_store.JobScope(everything=True))
            json.dump(present_job(job), sys.stdout, indent=2)
            sys.stdout.write("\n")
    finally:
        runtime.engine.dispose()
    return 0


def command_jobs_cancel(settings: Settings, args: argparse.Namespace) -> int:
    from storage import jobs as job_store

    runtime = _open_existing_registry(settings)
    try:
        with runtime.session() as session:
            job = job_store.request_cancel(session, job_id=args.job_id,
                                           scope=job_store.JobScope(everything=True))
            status = job.status
    finally:
        runtime.engine.dispose()
    print(f"job {args.job_id} cancelled" if status == "cancelled"
          else f"job {args.job_id} asked to stop (it is {status})")
    return 0


def command_worker(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from sqlalchemy.engine import make_url

    from handlers.app import create_runtime

    if not settings.broker_url:
        raise CliError("a worker process needs a broker: set COMMONWATT_BROKER_URL "
                       "(redis://... or amqp://...) as for the server; without one, the "
                       "server runs the jobs itself", EXIT_USAGE)
    runtime = create_runtime(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        runtime.start_jobs(server=False)
        broker = make_url(settings.broker_url).render_as_string(hide_password=True)
        print(f"Worker running bundle imports from {broker} "
              f"({settings.worker_threads} threads)", flush=True)
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
    return 0


def _demo_preparation(reset: bool) -> Any:
    """What `serve --demo` does once the server may start: see prepare_demo."""

    def prepare(settings: Settings) -> None:
        password = prepare_demo(settings, reset=reset)
        print(f"Demo admin: {DEMO_ADMIN_EMAIL}  password: {password}", flush=True)

    return prepare


def prepare_demo(settings: Settings, *, reset: bool) -> str:
    """Give the demo admin a new password and import the sample bundles; the password.

    A sample community the user changed is kept (and said so) unless `reset`.
    """
    from bundles.importer import import_bundles
    from bundles.parse import parse_yaml_documents
    from handlers.app import create_runtime
    from storage.users import create_user, set_password

    runtime = create_runtime(settings)
    password = secrets.token_urlsafe(12)
    documents = [document for path in sorted(EXAMPLES_DIR.glob("*.yaml"))
                 for document in parse_yaml_documents(path.read_bytes())]
    try:
        with runtime.session() as session:
            try:
                with session.begin_nested():
                    create_user(session, email=DEMO_ADMIN_EMAIL, password=password,
                                role="admin")
            except StorageError:
                set_password(session, email=DEMO_ADMIN_EMAIL, password=password)
            plan = import_bundles(session, documents, dry_run=True, force=True)
            actions = {item["community_key"]: item["action"] for item in plan["reports"]}
            changed = sorted(key for key, action in actions.items() if action == "replaced")
            chosen = [document for document in documents
                      if reset or actions[document["community"]["id"]] == "created"]
            if chosen:
                import_bundles(session, chosen, dry_run=False, force=True)
    finally:
        runtime.engine.dispose()
    created = sorted(key for key, action in actions.items() if action == "created")
    if created:
        print(f"Demo communities imported from {EXAMPLES_DIR}: {', '.join(created)}.")
    if changed and reset:
        print(f"Demo communities reset to the samples: {', '.join(changed)}.")
    elif changed:
        print(f"Kept your changes to {', '.join(changed)} "
              "(`commonwatt serve --demo --reset` restores the samples).")
    return password


def command_serve(settings: Settings, args: argparse.Namespace) -> int:
    import logging

    from handlers.serving import serve

    if args.reset and not args.demo:
        raise CliError("--reset goes with --demo", EXIT_USAGE)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return serve(settings, host=args.host, port=args.port,
                 prepare=_demo_preparation(args.reset) if args.demo else None)


ENVIRONMENT_HELP = """\
data directory:
  The registry (registry.sqlite3), the telemetry store (telemetry.duckdb) and the generated
  signing key live in COMMONWATT_DATA_DIR (default: ./var, relative to where the command
  runs). Run every command with the same COMMONWATT_DATA_DIR as the server.

environment:
  Every setting is an environment variable with the prefix COMMONWATT_, e.g.
  COMMONWATT_DATA_DIR, COMMONWATT_DATABASE_URL (PostgreSQL instead of SQLite),
  COMMONWATT_LOG_LEVEL, COMMONWATT_TRUSTED_PROXIES; README.md lists them all.
"""


def _command(commands: Any, name: str, help_text: str, **options: Any) -> argparse.ArgumentParser:
    """A subcommand whose help shows defaults and the data directory and environment notes."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter, **options)
    parser.set_defaults(parser=parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commonwatt", description="CommonWatt: the energy-community platform API",
        epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(parser=parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(commands, "serve", "run the API server (migrations are applied at start)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: %(default)s; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000,
                       help="port to listen on (default: %(default)s; 0 picks a free one)")
    serve.add_argument("--demo", action="store_true",
                       help="give the demo admin a new password and print it; import the "
                       "sample bundles, keeping sample communities you changed")
    serve.add_argument("--reset", action="store_true",
                       help="with --demo: also put changed sample communities back as shipped")
    serve.set_defaults(run=command_serve)

    importer = _command(commands, "import",
                        "import YAML or JSON bundle files in one transaction")
    importer.add_argument("files", nargs="+", metavar="FILE",
                          help="a bundle file: YAML (one community per document) or JSON "
                          "(.json: one bundle, or an array of them)")
    importer.add_argument("--force", action="store_true", help="replace existing communities")
    importer.add_argument("--dry-run", action="store_true",
                          help="report what would change, write nothing")
    importer.set_defaults(run=command_import)

    exporter = _command(commands, "export", "export communities as multi-document YAML")
    exporter.add_argument("--community", action="append", metavar="KEY",
                          help="a community to export (repeatable; default: all)")
    exporter.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    exporter.set_defaults(run=command_export)

    users = _command(commands, "users", "manage accounts")
    users_commands = users.add_subparsers(dest="users_command", required=True,
                                          metavar="COMMAND")
    create = _command(users_commands, "create",
                      "create an account; the password is asked for at a terminal, else "
                      "read from stdin")
    create.add_argument("email", metavar="EMAIL", help="the account's email address")
    create.add_argument("--role", choices=["user", "admin", "overseer"], default="user",
                        help="platform role (default: %(default)s)")
    create.set_defaults(run=command_users_create)
    listing = _command(users_commands, "list", "list the accounts: email and role")
    listing.set_defaults(run=command_users_list)

    worker = _command(commands, "worker",
                      "run bundle-import jobs from the broker of COMMONWATT_BROKER_URL "
                      "(telemetry jobs run in the server only)")
    worker.set_defaults(run=command_worker)

    jobs = _command(commands, "jobs", "background jobs: list, show, cancel")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    jobs_list = _command(jobs_commands, "list",
                         "list jobs, oldest first: id, kind, status, progress, community, "
                         "who asked, created, last message")
    jobs_list.add_argument("--status", choices=["queued", "running", "succeeded", "failed",
                                                "cancelled"], help="only jobs with this status")
    jobs_list.add_argument("--kind", choices=["bundle_import", "telemetry_export",
                                              "telemetry_compaction"],
                           help="only jobs of this kind")
    jobs_list.add_argument("--community", metavar="KEY", help="only this community's jobs")
    jobs_list.set_defaults(run=command_jobs_list)
    jobs_show = _command(jobs_commands, "show", "print one job as JSON")
    jobs_show.add_argument("job_id", type=int, metavar="ID", help="the job's id")
    jobs_show.set_defaults(run=command_jobs_show)
    jobs_cancel = _command(jobs_commands, "cancel",
                           "cancel a queued job, or ask a running one to stop")
    jobs_cancel.add_argument("job_id", type=int, metavar="ID", help="the job's id")
    jobs_cancel.set_defaults(run=command_jobs_cancel)

    broker = _command(commands, "mqtt", "the MQTT broker's files")
    broker_commands = broker.add_subparsers(dest="mqtt_command", required=True,
                                            metavar="COMMAND")
    sync = _command(broker_commands, "sync",
                    "write Mosquitto's password file (hashes of the sensors' ingest keys), ACL "
                    "and mosquitto.conf into COMMONWATT_MQTT_BROKER_DIR, then send SIGHUP to "
                    "the broker of COMMONWATT_MQTT_BROKER_PID_FILE")
    sync.set_defaults(run=command_mqtt_sync)

    database = _command(commands, "db", "database maintenance")
    database_commands = database.add_subparsers(dest="db_command", required=True,
                                                metavar="COMMAND")
    upgrade = _command(database_commands, "upgrade", "apply the schema migrations")
    upgrade.set_defaults(run=command_db_upgrade)
    return parser


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line; an unknown option is reported with its subcommand's usage."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    # Connexion imports Starlette's test client, which warns about its HTTP client on every
    # start; it says nothing about the server an operator runs.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    args = parse_arguments(argv)
    try:
        settings = Settings()
        exit_code: int = args.run(settings, args)
        return exit_code
    except (StartRefused, DataDirectoryHeld) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except (BundleError, StorageError) as error:
        print(f"error: [{error.code}] {error.detail}", file=sys.stderr)
        return EXIT_REFUSED
    except ValidationError as error:
        problems = "; ".join(f"COMMONWATT_{'_'.join(map(str, item['loc'])).upper()}: {item['msg']}"
                             for item in error.errors())
        print(f"error: invalid configuration: {problems}", file=sys.stderr)
        return EXIT_USAGE
    except SQLAlchemyError as error:
        print(f"error: the database refused the operation: {type(error).__name__}: "
              f"{str(error).splitlines()[0][:300]}", file=sys.stderr)
        return EXIT_REFUSED
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        print(f"error: {getattr(error, 'filename', '') or ''}: {error.strerror or error}",
              file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
