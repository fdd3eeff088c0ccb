"""The `commonwatt` command: serve, import, export, users create, db upgrade."""

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


def command_import(settings: Settings, args: argparse.Namespace) -> int:
    from bundles.importer import import_bundles
    from bundles.parse import parse_yaml_documents
    from handlers.app import create_runtime

    documents: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise CliError(f"no such file: {name}", EXIT_USAGE)
        documents.extend(parse_yaml_documents(
            _read_with_progress(path, sys.stderr),
            max_nodes=settings.yaml_max_nodes, max_depth=settings.yaml_max_depth))
    _phase(sys.stderr, f"importing {len(documents)} community document(s)...")
    runtime = create_runtime(settings)
    with runtime.session() as session:
        report = import_bundles(session, documents, dry_run=args.dry_run, force=args.force)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def command_export(settings: Settings, args: argparse.Namespace) -> int:
    from bundles.exporter import export_communities
    from handlers.app import create_runtime

    runtime = create_runtime(settings)
    with runtime.session() as session:
        text = export_communities(session, community_keys=args.community or None)
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
        return password
    return sys.stdin.readline().rstrip("\r\n")


def command_users_create(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.app import create_runtime
    from storage.users import create_user

    password = _read_password(args)
    runtime = create_runtime(settings)
    with runtime.session() as session:
        user = create_user(session, email=args.email, password=password, role=args.role)
        print(f"created {user.role} {user.email}")
    return 0


def command_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.app import create_runtime
    from storage.db import database_status

    runtime = create_runtime(settings)
    print(f"database at revision {database_status(runtime.engine).get('revision')}")
    return 0


def _prepare_demo(settings: Settings) -> str:
    """Create (or reset) the demo admin and import the example bundles; the password."""
    from bundles.importer import import_bundles
    from bundles.parse import parse_yaml_documents
    from handlers.app import create_runtime
    from storage.users import create_user, set_password

    runtime = create_runtime(settings)
    password = secrets.token_urlsafe(12)
    with runtime.session() as session:
        try:
            create_user(session, email=DEMO_ADMIN_EMAIL, password=password, role="admin")
        except StorageError:
            set_password(session, email=DEMO_ADMIN_EMAIL, password=password)
        documents = [document for path in sorted(EXAMPLES_DIR.glob("*.yaml"))
                     for document in parse_yaml_documents(path.read_bytes())]
        import_bundles(session, documents, dry_run=False, force=True)
    runtime.engine.dispose()
    return password


def command_serve(settings: Settings, args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from handlers.app import create_app

    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.demo:
        password = _prepare_demo(settings)
        print(f"Demo data imported from {EXAMPLES_DIR}.")
        print(f"Demo admin: {DEMO_ADMIN_EMAIL}  password: {password}")
    print(f"Serving on http://{args.host}:{args.port}/api  (Swagger UI: /api/ui/)", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port,
                log_level=settings.log_level.lower())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="commonwatt",
                                     description="CommonWatt: the energy-community platform API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true",
                       help="create a demo admin, print its credentials, import the sample bundles")
    serve.set_defaults(run=command_serve)

    importer = commands.add_parser("import", help="import YAML bundle files in one transaction")
    importer.add_argument("files", nargs="+", metavar="FILE")
    importer.add_argument("--force", action="store_true", help="replace existing communities")
    importer.add_argument("--dry-run", action="store_true", help="report, write nothing")
    importer.set_defaults(run=command_import)

    exporter = commands.add_parser("export", help="export communities as multi-document YAML")
    exporter.add_argument("--community", action="append", metavar="KEY",
                          help="a community to export (repeatable; default: all)")
    exporter.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    exporter.set_defaults(run=command_export)

    users = commands.add_parser("users", help="manage accounts")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    create = users_commands.add_parser(
        "create", help="create an account; the password is read from stdin when not a terminal")
    create.add_argument("email")
    create.add_argument("--role", choices=["user", "admin", "overseer"], default="user")
    create.set_defaults(run=command_users_create)

    database = commands.add_parser("db", help="database maintenance")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    upgrade = database_commands.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(run=command_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Connexion imports Starlette's test client, which warns about its HTTP client on every
    # start; it says nothing about the server an operator runs.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        exit_code: int = args.run(settings, args)
        return exit_code
    except BundleRefused as error:
        print(f"error: {error.detail}", file=sys.stderr)
        for refusal in error.refusals:
            print(f"  document {refusal.document} {refusal.pointer or '/'}: "
                  f"[{refusal.code}] {refusal.message}", file=sys.stderr)
        return EXIT_REFUSED
    except CommunityExists as error:
        print(f"error: {error.detail}", file=sys.stderr)
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
        print(f"error: {error.strerror or error}: {getattr(error, 'filename', '') or ''}",
              file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
