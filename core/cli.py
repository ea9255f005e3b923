"""`layerdeck <verb>`: the same core as the window, in a terminal, speaking docker's dialect.

With no verb it opens the desktop app. Global options come before the verb, as in docker:
`layerdeck --engine unix:///run/docker.sock images -a`. Without --engine or --store the
first Docker engine that answers is used, else the built-in store.

Imports stay lazy: `layerdeck images` must start about as fast as `docker images`, so the
docker SDK, requests and Qt load only when a verb needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from core.errors import Cancelled, InvalidArgument, LayerdeckError, NotFound

if TYPE_CHECKING:
    from core.backend import Backend
    from core.models import ImageSummary

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# How long a cancelled operation may take to wind down before the CLI stops waiting for it.
CANCEL_GRACE_SECONDS = 10.0
# core.models.NETWORK_MODES, spelled out: importing core.models would slow `layerdeck images`
# (tests/unit checks that the two agree).
NETWORK_CHOICES = ("default", "none", "host")


class Terminal:
    """The two text streams a verb writes to; tests pass StringIO objects instead."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr

    def print(self, text: str = "") -> None:
        """Write one line to the output stream."""
        self.out.write(text + "\n")

    def error(self, text: str) -> None:
        """Write one line to the error stream."""
        self.err.write(text + "\n")
        self.err.flush()


# ---------------------------------------------------------------------------------------
# The command line


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb, with docker's option names."""
    parser = argparse.ArgumentParser(
        prog="layerdeck",
        description="Container images on a Docker engine or the built-in layer store. "
        "Without a command, opens the desktop app.",
    )
    parser.add_argument("--engine", metavar="URL", help="Docker engine API, e.g. unix:///x.sock")
    parser.add_argument("--store", metavar="PATH", help="use the built-in layer store at PATH")
    parser.add_argument(
        "-c",
        "--context",
        # Not `context`: that is the build verb's CONTEXT directory in the same namespace.
        dest="docker_context",
        metavar="NAME",
        help="the Docker context to use (`docker context ls`)",
    )
    parser.add_argument(
        "--format", dest="global_format", choices=("table", "json"), help="output format"
    )
    parser.add_argument("--debug", action="store_true", help="log what happens, with tracebacks")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add Layerdeck to the desktop's application menu (~/.local/share) and exit",
    )
    parser.add_argument(
        "--uninstall-desktop-entry",
        action="store_true",
        help="remove what --install-desktop-entry added and exit",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")

    def verb(name: str, help_text: str, formats: bool = True) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        if formats:
            sub.add_argument("--format", choices=("table", "json"), help="output format")
        return sub

    images = verb("images", "List images")
    images.add_argument("-a", "--all", action="store_true", help="show intermediate images too")
    images.add_argument("--digests", action="store_true", help="show digests")
    images.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    images.add_argument(
        "-f", "--filter", action="append", default=[], help="dangling=true|false, reference=PAT"
    )
    images.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")

    inspect = verb("inspect", "Show the low-level information of images")
    inspect.add_argument("refs", nargs="+", metavar="IMAGE")

    history = verb("history", "Show the history of an image")
    history.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    history.add_argument("-q", "--quiet", action="store_true", help="only show layer IDs")
    history.add_argument("ref", metavar="IMAGE")

    pull = verb("pull", "Download an image from a registry")
    pull.add_argument("--platform", help="os/arch[/variant] to pull from a multi-platform image")
    pull.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")

    rmi = verb("rmi", "Remove one or more images")
    rmi.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    rmi.add_argument("refs", nargs="+", metavar="IMAGE")

    tag = verb("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", formats=False)
    tag.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    tag.add_argument("target", metavar="TARGET_IMAGE[:TAG]")

    ps = verb("ps", "List containers")
    ps.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="only show container IDs")
    ps.add_argument("--no-trunc", action="store_true", help="do not truncate output")

    commit = verb("commit", "Create a new image from a container's changes")
    commit.add_argument("-m", "--message", help="commit message")
    commit.add_argument("-a", "--author", help='author, e.g. "Jane Doe <jane@example.com>"')
    commit.add_argument(
        "-c", "--change", action="append", default=[], help="apply a Dockerfile instruction"
    )
    commit.add_argument(
        "-p",
        "--pause",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pause the container while committing (--pause=false to not)",
    )
    commit.add_argument("container", metavar="CONTAINER")
    commit.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")

    build = verb("build", "Build an image from a Dockerfile")
    build.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image")
    build.add_argument("-f", "--file", help="the Dockerfile (default: CONTEXT/Dockerfile)")
    build.add_argument(
        "--build-arg", action="append", default=[], metavar="KEY=VALUE", help="build-time value"
    )
    build.add_argument("--target", help="the build stage to stop at")
    build.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    build.add_argument("--pull", action="store_true", help="always pull newer base images")
    build.add_argument(
        "--network",
        choices=NETWORK_CHOICES,
        default="default",
        help="RUN network (default: the engine's; the built-in store's is the host's)",
    )
    build.add_argument(
        "--check", action="store_true", help="only check the Dockerfile and list its mistakes"
    )
    build.add_argument("context", metavar="CONTEXT")

    push = verb("push", "Upload an image to a registry")
    push.add_argument("ref", metavar="NAME[:TAG]")

    login = verb("login", "Log in to a registry (default: Docker Hub)", formats=False)
    login.add_argument("-u", "--username", help="user name")
    login.add_argument("-p", "--password", help="password (visible to other users; prefer stdin)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    login.add_argument("server", nargs="?", metavar="SERVER")

    logout = verb("logout", "Log out from a registry (default: Docker Hub)", formats=False)
    logout.add_argument("server", nargs="?", metavar="SERVER")

    copy = verb("copy", "Copy images to another source: engine[:URL], store[:PATH] or URL")
    copy.add_argument(
        "--to",
        required=True,
        metavar="TARGET",
        help="engine (DOCKER_HOST), engine:URL, store (the default store), store:PATH, or a URL",
    )
    copy.add_argument("refs", nargs="+", metavar="IMAGE")

    search = verb("search", "Search a registry for images")
    search.add_argument("--limit", type=int, default=25, help="at most this many results")
    search.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    search.add_argument("term", metavar="TERM")

    save = verb("save", "Save images to a tar archive (docker-archive)", formats=False)
    save.add_argument("-o", "--output", help="write to this file, not standard output")
    save.add_argument("refs", nargs="+", metavar="IMAGE")

    load = verb("load", "Load images from a tar archive (docker-archive)")
    load.add_argument("-i", "--input", help="read from this file, not standard input")

    prune = verb("prune", "Remove unused images")
    prune.add_argument("-a", "--all", action="store_true", help="all unused, not just dangling")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")

    run = verb("run", "Create and run a container from an image", formats=False)
    run.add_argument("--rm", action="store_true", help="remove the container when it exits")
    run.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("-w", "--workdir", help="working directory inside the container")
    run.add_argument("-u", "--user", help="user name or UID[:GID]")
    run.add_argument("--network", choices=NETWORK_CHOICES, default="default")
    run.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    run.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    run.add_argument("--name", help="a name for the container")
    run.add_argument("image", metavar="IMAGE")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")

    rm = verb("rm", "Remove one or more containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")

    fsck = verb("fsck", "Check the built-in store; with --repair, repair what it can")
    fsck.add_argument("--repair", action="store_true", help="repair what can be repaired")
    return parser


def _docker_booleans(argv: Sequence[str]) -> list[str]:
    """Accept docker's `commit --pause=false` spelling as well as --no-pause."""
    words = list(argv)
    verb_at = _verb_position(words)
    if verb_at is None or words[verb_at] != "commit":
        return words
    for index in range(verb_at + 1, len(words)):
        name, sep, value = words[index].partition("=")
        if sep and name in ("-p", "--pause") and value.lower() in ("true", "false", "1", "0"):
            words[index] = "--pause" if value.lower() in ("true", "1") else "--no-pause"
    return words


def _verb_position(words: Sequence[str]) -> int | None:
    """Where the verb is: the first word that is neither a global option nor its value."""
    skip_value = False
    for index, word in enumerate(words):
        if skip_value:
            skip_value = False
        elif word in ("--engine", "--store", "--format", "--context", "-c"):
            skip_value = True
        elif not word.startswith("-"):
            return index
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (console scripts pass it to sys.exit)."""
    return run_cli(sys.argv[1:] if argv is None else argv, Terminal())


def _desktop_entry(install: bool, terminal: Terminal) -> int:
    """Install or remove the .desktop file and icons; they live with the GUI, loaded lazily."""
    # core never imports gui at module level (import-linter); this verb is the GUI's own.
    import importlib

    desktop_entry = importlib.import_module("gui.desktop_entry")
    try:
        action = (
            desktop_entry.install_desktop_entry
            if install
            else desktop_entry.uninstall_desktop_entry
        )
        paths = action()
    except LayerdeckError as exc:
        terminal.error(f"Error: {exc}")
        return EXIT_FAILED
    verb = "Installed" if install else "Removed"
    for path in paths:
        terminal.print(f"{verb}: {path}")
    if not paths:
        terminal.print("Nothing to remove." if not install else "Nothing was installed.")
    return EXIT_OK


def run_cli(argv: Sequence[str], terminal: Terminal) -> int:
    """Parse argv and run the verb, writing to terminal; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(_docker_booleans(argv))
    except SystemExit as exc:
        # argparse exits 2 on a usage error and 0 for --help; hand that back as the status.
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.debug:
        # Only --debug configures logging: importing it costs a quick listing a few per cent,
        # and without a handler Python still prints warnings and errors to stderr.
        import logging

        logging.basicConfig(
            level=logging.DEBUG,
            format="%(levelname)s %(name)s: %(message)s",
            stream=terminal.err,
        )
    if args.version:
        terminal.print(f"layerdeck {_version()}")
        return EXIT_OK
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        return _desktop_entry(install=args.install_desktop_entry, terminal=terminal)
    if args.verb is None:
        return _open_window(args, terminal)
    args.format = getattr(args, "format", None) or args.global_format or "table"
    try:
        return _dispatch(args, terminal)
    except Cancelled:
        terminal.error("Cancelled.")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except LayerdeckError as exc:
        terminal.error(f"Error: {exc}")
        return EXIT_FAILED
    except BrokenPipeError:
        # `layerdeck images | head`: the reader left; that is not an error of ours.
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        terminal.error(f"Error: unexpected failure: {exc!r} (run with --debug for details)")
        return EXIT_FAILED
    finally:
        try:
            terminal.out.flush()
        except (BrokenPipeError, ValueError):
            _silence_stdout()


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("layerdeck")
    except PackageNotFoundError:
        return "unknown"


def _open_window(args: argparse.Namespace, terminal: Terminal) -> int:
    """No verb: start the desktop app (Qt is loaded only now) on the source asked for."""
    # Imported by name, not by an import statement: core must not depend on the GUI package
    # (the import contract forbids it), and a machine without Qt still has the command line.
    import importlib

    try:
        app = importlib.import_module("gui.app")
    except ImportError as exc:
        terminal.error(
            f"Error: the desktop app cannot start: {exc}. The command line works without it: "
            "run `layerdeck --help`."
        )
        return EXIT_FAILED
    window_args = []
    if args.docker_context:
        window_args += ["--context", args.docker_context]
    elif args.engine:
        window_args += ["--engine", args.engine]
    elif args.store:
        window_args += ["--store", args.store]
    return int(app.main(window_args))


def _open(args: argparse.Namespace) -> Backend:
    from core.backend import open_backend

    store = Path(args.store).expanduser() if args.store else None
    return open_backend(engine=args.engine, store=store, context=args.docker_context)


def _dispatch(args: argparse.Namespace, terminal: Terminal) -> int:
    if args.verb in REGISTRY_VERBS:
        # A login or logout talks to a registry and the docker config: no back end needed.
        return REGISTRY_VERBS[args.verb](args, terminal)
    verb: Callable[[Backend, argparse.Namespace, Terminal], int] = VERBS[args.verb]
    if args.verb == "build" and args.check:
        # The check reads only the Dockerfile: no back end has to answer for it.
        return check_dockerfile(args, terminal)
    if args.verb == "images":
        # The common case answers from the engine's socket directly; see core.cli_listing.
        status = quick_images(args, terminal)
        if status is not None:
            return status
    backend = _open(args)
    try:
        return verb(backend, args, terminal)
    finally:
        backend.close()


def run_cancellable(operation: Callable[[Any], T]) -> T:
    """Run a long operation in a worker thread so Ctrl+C can cancel its CancelToken.

    The main thread only waits; on Ctrl+C it cancels the token and waits a little for the
    operation to stop cleanly (it raises Cancelled), then gives up on it.
    """
    from core.models import CancelToken

    cancel = CancelToken()
    done = threading.Event()
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(operation(cancel))
        except BaseException as exc:  # handed to the main thread, which re-raises it
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work, name="layerdeck-operation", daemon=True)
    try:
        worker.start()
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        cancel.cancel()
        # A second Ctrl+C stops the wait for a clean stop; the worker is a daemon thread.
        with contextlib.suppress(KeyboardInterrupt):
            done.wait(CANCEL_GRACE_SECONDS)
        raise Cancelled() from None
    if failure:
        raise failure[0]
    return outcome[0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------
# Verbs


def cmd_images(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`images`: one row per tag, as `docker images` prints them."""
    return show_images(backend.list_images(all=args.all), args, terminal)


def quick_images(args: argparse.Namespace, terminal: Terminal) -> int | None:
    """`images` from an engine's socket without the SDK; None when the back end must answer."""
    from core import cli_listing

    if args.store or args.docker_context:
        # A context may need TLS or ssh, which only the back end speaks.
        return None
    if not args.engine and not os.environ.get("DOCKER_HOST"):
        from core.engine.contexts import DEFAULT_CONTEXT, current_context

        if current_context() != DEFAULT_CONTEXT:
            return None
    url = args.engine or cli_listing.engine_url_from_environment()
    if url is None:
        return None
    listed = cli_listing.list_images(url, all=args.all)
    if listed is None:
        return None
    return show_images(listed, args, terminal)


def show_images(listed: list[ImageSummary], args: argparse.Namespace, terminal: Terminal) -> int:
    """Filter, sort and print image rows as the images verb asked."""
    from datetime import UTC, datetime

    from core.cli_render import NONE, write_json, write_table
    from core.units import human_since, human_size

    rows = filter_images(listed, args.filter, args.repository)
    rows.sort(key=lambda row: (-row.created.timestamp(), row.repository or "", row.tag or ""))
    if args.quiet:
        for row in rows:
            terminal.print(row.short_id)
        return EXIT_OK
    if args.format == "json":
        write_json(terminal.out, rows)
        return EXIT_OK
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID"]
    headers += ["CREATED", "SIZE"]
    now = datetime.now(UTC)
    # Tags of one image share its age and size: word each once, not once per row.
    ages: dict[datetime, str] = {}
    sizes: dict[int, str] = {}
    table = []
    for row in rows:
        cells = [row.repository or NONE, row.tag or NONE]
        if args.digests:
            cells.append(row.digest or NONE)
        age = ages.get(row.created)
        if age is None:
            age = ages[row.created] = human_since(row.created, now)
        size = sizes.get(row.size)
        if size is None:
            size = sizes[row.size] = human_size(row.size)
        cells += [row.short_id, age, size]
        table.append(cells)
    write_table(terminal.out, headers, table)
    return EXIT_OK


def filter_images(
    rows: list[ImageSummary], filters: Sequence[str], repository: str | None
) -> list[ImageSummary]:
    """The rows that pass `-f dangling=...`, `-f reference=...` and the REPOSITORY argument."""
    import fnmatch

    kept = list(rows)
    for text in filters:
        key, sep, value = text.partition("=")
        key = key.strip().lower()
        if not sep:
            raise InvalidArgument(f"bad filter {text!r}: expected KEY=VALUE, e.g. dangling=true")
        if key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(
                    f"invalid filter 'dangling={value}': the value must be true or false"
                )
            wanted = value.lower() in ("true", "1")
            kept = [row for row in kept if row.dangling == wanted]
        elif key == "reference":
            kept = [row for row in kept if _matches_reference(row, value, fnmatch.fnmatchcase)]
        else:
            raise InvalidArgument(
                f"invalid filter {key!r}: this command knows dangling=true|false and "
                "reference=PATTERN"
            )
    if repository:
        kept = [row for row in kept if _matches_reference(row, repository, fnmatch.fnmatchcase)]
    return kept


def _matches_reference(row: ImageSummary, pattern: str, match: Callable[[str, str], bool]) -> bool:
    """Docker's reference filter: `name` matches every tag, `name:tag` one, globs allowed."""
    if row.repository is None:
        return False
    name, tag = _split_pattern(pattern)
    if any(ch in name for ch in "*?["):
        name_ok = match(row.repository, name)
    else:
        from core.reference import parse_reference

        name_ok = (
            parse_reference(name, default_tag=None).familiar_name
            == parse_reference(row.repository, default_tag=None).familiar_name
        )
    if not name_ok:
        return False
    return tag is None or (row.tag is not None and match(row.tag, tag))


def _split_pattern(pattern: str) -> tuple[str, str | None]:
    colon = pattern.rfind(":")
    if colon > pattern.rfind("/"):
        return pattern[:colon], pattern[colon + 1 :]
    return pattern, None


def cmd_inspect(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`inspect`: Docker's inspect documents as a JSON array; missing ones are reported."""
    from core.cli_render import write_json

    documents = []
    status = EXIT_OK
    for ref in args.refs:
        try:
            documents.append(backend.inspect_image(ref))
        except NotFound as exc:
            terminal.error(f"Error: {exc}")
            status = EXIT_FAILED
    write_json(terminal.out, documents, indent=4)
    return status


def cmd_history(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`history`: one row per layer, newest first."""
    from core.cli_render import ellipsis, write_json, write_table
    from core.units import human_since, human_size

    entries = backend.history(args.ref)
    if args.format == "json":
        write_json(terminal.out, entries)
        return EXIT_OK
    if args.quiet:
        for entry in entries:
            terminal.print(_history_id(entry.id, args.no_trunc))
        return EXIT_OK
    rows = []
    for entry in entries:
        created_by = entry.created_by.replace("\t", " ")
        rows.append(
            [
                _history_id(entry.id, args.no_trunc),
                human_since(entry.created) if entry.created else "N/A",
                created_by if args.no_trunc else ellipsis(created_by, 45),
                human_size(entry.size),
                entry.comment,
            ]
        )
    write_table(terminal.out, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return EXIT_OK


def _history_id(image_id: str | None, no_trunc: bool) -> str:
    if not image_id:
        return "<missing>"
    return image_id if no_trunc else image_id.removeprefix("sha256:")[:12]


def cmd_pull(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`pull`: download an image with docker's progress lines."""
    from core.cli_render import EventPrinter, write_json
    from core.models import Event, Notice
    from core.reference import parse_reference

    reference = parse_reference(args.ref)
    printer = EventPrinter(terminal.out, terminal.err, as_json=args.format == "json")
    wanted = reference.tag if reference.digest is None else reference.digest
    header = [f"{wanted}: Pulling from {reference.familiar_name}"]

    def on_event(event: Event) -> None:
        # dockerd says "TAG: Pulling from NAME" itself; say it only for a back end that does not.
        if header and not printer.as_json:
            if not (isinstance(event, Notice) and ": Pulling from " in event.text):
                printer.line(header[0])
            header.clear()
        printer(event)

    image_id = pull_with_progress(backend, args.ref, on_event, args.platform)
    if printer.as_json:
        write_json(terminal.out, {"id": image_id, "reference": str(reference)}, indent=None)
    else:
        terminal.print(str(reference))
    return EXIT_OK


def pull_with_progress(
    backend: Backend, ref: str, printer: Callable[[Any], None], platform: str | None = None
) -> str:
    """Pull ref, rendering events through printer; Ctrl+C cancels. Returns the image ID."""
    return run_cancellable(lambda cancel: backend.pull(ref, printer, cancel, platform=platform))


def cmd_push(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`push`: upload an image with docker's progress lines; prints the pushed digest."""
    from core.cli_render import EventPrinter, write_json
    from core.reference import parse_reference

    reference = parse_reference(args.ref)
    printer = EventPrinter(terminal.out, terminal.err, as_json=args.format == "json")
    digest = run_cancellable(lambda cancel: backend.push(args.ref, printer, cancel))
    if printer.as_json:
        write_json(terminal.out, {"digest": digest, "reference": str(reference)}, indent=None)
    elif not any(digest in line for line in printer.seen):
        terminal.print(f"{reference.tag or 'latest'}: digest: {digest}")
    return EXIT_OK


def cmd_login(args: argparse.Namespace, terminal: Terminal) -> int:
    """`login`: check the credentials with the registry, then save them where docker does."""
    from core.store.credentials import login, registry_host

    host = registry_host(args.server)
    username = args.username
    password = args.password
    if args.password_stdin:
        if password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not username:
            raise InvalidArgument("--password-stdin needs the user name in --username")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        terminal.error("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not username or not password:
        if not sys.stdin.isatty():
            raise InvalidArgument(
                "login needs --username and a password (--password-stdin) when not on a terminal"
            )
        import getpass

        if not username:
            terminal.out.write("Username: ")
            terminal.out.flush()
            username = sys.stdin.readline().strip()
        if not password:
            password = getpass.getpass("Password: ")
    login(host, username, password)
    terminal.print("Login Succeeded")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace, terminal: Terminal) -> int:
    """`logout`: forget the saved login for a registry."""
    from core.store.credentials import logout, registry_host

    host = registry_host(args.server)
    if logout(host):
        terminal.print(f"Removing login credentials for {host}")
    else:
        terminal.print(f"Not logged in to {host}")
    return EXIT_OK


def _copy_target(text: str) -> Backend:
    """The back end `copy --to` names: engine[:URL], store[:PATH], or an engine URL."""
    from core.backend import open_engine, open_store

    kind, _sep, rest = text.partition(":")
    if kind == "engine":
        return open_engine(rest or None)
    if kind == "store":
        return open_store(Path(rest).expanduser() if rest else None)
    if "://" in text:
        return open_engine(text)
    raise InvalidArgument(
        f"invalid copy target {text!r}: use engine, engine:URL, store, store:PATH or an engine URL"
    )


def cmd_copy(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`copy --to TARGET IMAGE...`: move images to another source, keeping their IDs."""
    from core.cli_render import EventPrinter, write_json
    from core.transfer import copy_images

    target = _copy_target(args.to)
    try:
        printer = EventPrinter(terminal.err, terminal.err, progress_off_tty=False)
        loaded = run_cancellable(
            lambda cancel: copy_images(backend, target, list(args.refs), printer, cancel)
        )
    finally:
        target.close()
    if args.format == "json":
        write_json(terminal.out, loaded)
    else:
        for name in loaded:
            terminal.print(f"Copied: {name}")
    return EXIT_OK


def cmd_rmi(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`rmi`: each ref in turn; an error is reported and the next ref still tried."""
    from core.cli_render import write_json

    status = EXIT_OK
    removed = []
    for ref in args.refs:
        try:
            entries = backend.remove_image(ref, force=args.force)
        except LayerdeckError as exc:
            terminal.error(f"Error: {exc}")
            status = EXIT_FAILED
            continue
        removed.extend(entries)
        if args.format != "json":
            for entry in entries:
                terminal.print(str(entry))
    if args.format == "json":
        write_json(terminal.out, removed)
    return status


def cmd_tag(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`tag SOURCE TARGET`: silent on success, like docker."""
    backend.tag_image(args.source, args.target)
    return EXIT_OK


def cmd_ps(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`ps`: running containers, or all with -a."""
    import json

    from core.cli_render import ellipsis, write_json, write_table
    from core.units import human_since

    containers = backend.list_containers(all=args.all)
    containers.sort(key=lambda c: c.created, reverse=True)
    if args.quiet:
        for container in containers:
            terminal.print(container.id if args.no_trunc else container.short_id)
        return EXIT_OK
    if args.format == "json":
        write_json(terminal.out, containers)
        return EXIT_OK
    rows = []
    for container in containers:
        command = container.command if args.no_trunc else ellipsis(container.command, 20)
        rows.append(
            [
                container.id if args.no_trunc else container.short_id,
                container.image,
                json.dumps(command, ensure_ascii=False),
                human_since(container.created),
                container.status,
                container.name,
            ]
        )
    headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]
    write_table(terminal.out, headers, rows)
    return EXIT_OK


def cmd_commit(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`commit`: a new image from a container; prints its ID."""
    from core.cli_render import write_json
    from core.models import CommitOptions

    repository = tag = None
    if args.reference:
        from core.reference import parse_reference

        reference = parse_reference(args.reference, default_tag=None)
        if reference.digest is not None:
            raise InvalidArgument(
                f"cannot commit to {args.reference!r}: a commit takes REPOSITORY[:TAG], "
                "not a digest"
            )
        repository, tag = reference.familiar_name, reference.tag
    options = CommitOptions(
        container=args.container,
        repository=repository,
        tag=tag,
        message=args.message,
        author=args.author,
        changes=tuple(args.change),
        pause=args.pause,
    )
    image_id = backend.commit(options)
    if args.format == "json":
        write_json(terminal.out, {"id": image_id}, indent=None)
    else:
        terminal.print(image_id)
    return EXIT_OK


def _dockerfile_path(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """The context dir, the Dockerfile's path, and that path relative to the context.

    As in docker, -f is relative to the current directory, not to the context.
    """
    context = Path(args.context).expanduser()
    if not context.is_dir():
        raise InvalidArgument(f"unable to prepare context: {args.context!r} is not a directory")
    dockerfile = Path(args.file).expanduser() if args.file else context / "Dockerfile"
    if not dockerfile.is_file():
        raise InvalidArgument(f"cannot read the Dockerfile: {str(dockerfile)!r} does not exist")
    try:
        relative = dockerfile.resolve().relative_to(context.resolve())
    except ValueError:
        raise InvalidArgument(
            f"the Dockerfile {str(dockerfile)!r} must be inside the build context {str(context)!r}"
        ) from None
    return context, dockerfile, relative.as_posix()


def _build_args(pairs: Sequence[str]) -> dict[str, str]:
    """`--build-arg K=V`; a bare `K` takes its value from the environment, as in docker."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise InvalidArgument(f"bad --build-arg {pair!r}: expected KEY=VALUE")
        if sep:
            values[key] = value
        elif key in os.environ:
            values[key] = os.environ[key]
    return values


def check_dockerfile(args: argparse.Namespace, terminal: Terminal) -> int:
    """`build --check`: list every mistake in the Dockerfile as `FILE:LINE: message`."""
    from core.cli_render import write_json
    from core.dockerfile import check

    context, dockerfile, relative = _dockerfile_path(args)
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read the Dockerfile {str(dockerfile)!r}: {exc}") from exc
    problems = check(text, _build_args(args.build_arg), args.target, context, relative)
    label = args.file if args.file else "Dockerfile"
    if args.format == "json":
        write_json(terminal.out, problems)
    else:
        for problem in problems:
            terminal.print(f"{label}:{problem.line}: {problem.message}")
    return EXIT_FAILED if problems else EXIT_OK


def cmd_build(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`build`: steps and log as docker's classic builder prints them, then the result."""
    from core.cli_render import EventPrinter, write_json
    from core.errors import BuildFailed
    from core.models import BuildOptions
    from core.reference import parse_reference

    context, _, dockerfile = _dockerfile_path(args)
    tags = [parse_reference(tag) for tag in args.tag]
    options = BuildOptions(
        context=context,
        dockerfile=dockerfile,
        tags=tuple(tag.familiar for tag in tags),
        build_args=_build_args(args.build_arg),
        target=args.target,
        no_cache=args.no_cache,
        pull=args.pull,
        network=args.network,
    )
    printer = EventPrinter(terminal.out, terminal.err, as_json=args.format == "json")
    try:
        image_id = run_cancellable(lambda cancel: backend.build(options, printer, cancel))
    except BuildFailed as exc:
        if not exc.problems:
            raise
        # The check's findings, one `FILE:LINE: message` each (what editors jump to), once.
        label = args.file if args.file else "Dockerfile"
        for problem in exc.problems:
            terminal.error(f"{label}:{problem.line}: {problem.message}")
        count = len(exc.problems)
        noun = "problem" if count == 1 else "problems"
        terminal.error(f"Error: {label} has {count} {noun}; nothing was built.")
        return EXIT_FAILED
    if printer.as_json:
        write_json(terminal.out, {"id": image_id, "tags": list(options.tags)}, indent=None)
        return EXIT_OK
    short_id = image_id.removeprefix("sha256:")[:12]
    # The engine passes docker's own closing lines through; print them only when missing.
    if not any(line.startswith("Successfully built") for line in printer.seen):
        terminal.print(f"Successfully built {short_id}")
    for tag in options.tags:
        line = f"Successfully tagged {tag}"
        if line not in printer.seen:
            terminal.print(line)
    return EXIT_OK


def cmd_search(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`search TERM`: name, description, stars, official."""
    from core.cli_render import ellipsis, write_json, write_table

    if args.limit < 1 or args.limit > 100:
        raise InvalidArgument(f"invalid --limit {args.limit}: it must be between 1 and 100")
    results = backend.search(args.term, limit=args.limit)
    if args.format == "json":
        write_json(terminal.out, results)
        return EXIT_OK
    rows = [
        [
            result.name,
            result.description if args.no_trunc else ellipsis(result.description, 45),
            str(result.stars),
            "[OK]" if result.official else "",
            "[OK]" if result.automated else "",
        ]
        for result in results
    ]
    write_table(terminal.out, ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"], rows)
    return EXIT_OK


def cmd_save(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`save`: a docker-archive tar to -o FILE (written whole or not at all) or stdout."""
    from core.cli_render import EventPrinter

    printer = EventPrinter(terminal.err, terminal.err, progress_off_tty=False)
    if args.output is None:
        if terminal.out.isatty():
            raise InvalidArgument(
                "refusing to write a tar archive to a terminal: use -o FILE or redirect the output"
            )
        binary = terminal.out.buffer  # type: ignore[union-attr]
        run_cancellable(lambda cancel: backend.save(list(args.refs), binary, printer, cancel))
        binary.flush()
        return EXIT_OK
    from core.transfer import SAVE_STATUS, save_to_file, without_progress

    # `docker save -o` prints no progress; the back end's own messages still show.
    sink = without_progress(SAVE_STATUS, printer)
    target = Path(args.output).expanduser()
    run_cancellable(lambda cancel: save_to_file(backend, list(args.refs), target, sink, cancel))
    return EXIT_OK


def cmd_load(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`load`: images from a docker-archive tar; prints what was loaded."""
    from core.cli_render import EventPrinter, write_json

    # Progress goes to stdout like docker's; JSON output keeps stdout for the document.
    as_json = args.format == "json"
    printer = EventPrinter(
        terminal.err if as_json else terminal.out, terminal.err, progress_off_tty=False
    )

    if args.input is None:
        if sys.stdin.isatty():
            raise InvalidArgument(
                "requested load from standard input, but it is a terminal: use -i FILE or "
                "redirect a tar archive into it"
            )
        source = sys.stdin.buffer
        loaded = run_cancellable(lambda cancel: backend.load(source, printer, cancel))
    else:
        from core.transfer import LOAD_STATUS, load_from_file, without_progress

        # The back end's own lines show, as docker's do; the bytes read through the file
        # are for the window.
        sink = without_progress(LOAD_STATUS, printer)
        path = Path(args.input).expanduser()
        loaded = run_cancellable(lambda cancel: load_from_file(backend, path, sink, cancel))
    if as_json:
        write_json(terminal.out, loaded)
        return EXIT_OK
    for name in loaded:
        is_id = name.startswith("sha256:")
        line = f"Loaded image ID: {name}" if is_id else f"Loaded image: {name}"
        # dockerd announces each image itself; a back end that does not gets it said here.
        if line not in printer.seen:
            terminal.print(line)
    return EXIT_OK


def cmd_prune(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`prune`: remove dangling (or with -a all unused) images, after asking unless -f."""
    from core.cli_render import write_json
    from core.units import human_size

    if not args.force:
        what = (
            "all images without at least one container associated to them"
            if args.all
            else "all dangling images"
        )
        terminal.out.write(
            f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "
        )
        terminal.out.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return EXIT_OK
    result = backend.prune(dangling_only=not args.all)
    if args.format == "json":
        write_json(terminal.out, result)
        return EXIT_OK
    if result.removed:
        terminal.print("Deleted Images:")
        for entry in result.removed:
            terminal.print(str(entry))
        terminal.print()
    terminal.print(f"Total reclaimed space: {human_size(result.reclaimed)}")
    return EXIT_OK


def cmd_run(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`run`: create a container (pulling a missing image first), run it, its exit code."""
    from core.cli_render import EventPrinter
    from core.models import ContainerSpec, env_values
    from core.reference import id_prefix, parse_reference

    try:
        backend.inspect_image(args.image)
    except NotFound:
        if id_prefix(args.image) is not None and len(args.image) >= 12:
            raise
        reference = parse_reference(args.image)
        terminal.error(f"Unable to find image '{reference.familiar}' locally")
        progress = EventPrinter(terminal.err, terminal.err)
        pull_with_progress(backend, args.image, progress)
    spec = ContainerSpec(
        image=args.image,
        command=tuple(args.command) if args.command else None,
        name=args.name,
        env=env_values(args.env, os.environ),
        workdir=args.workdir,
        user=args.user,
        network=args.network,
        tty=args.tty,
        interactive=args.interactive,
    )
    if args.tty and not sys.stdin.isatty():
        raise InvalidArgument("the input device is not a TTY")
    container = backend.create_container(spec)
    printer = EventPrinter(terminal.out, terminal.err, tty=False)
    try:
        if args.interactive or args.tty:
            # The container has this terminal: its output goes straight to it.
            return run_cancellable(lambda cancel: backend.run_in_terminal(container, cancel))
        return run_cancellable(lambda cancel: backend.run_container(container, printer, cancel))
    finally:
        if args.rm:
            try:
                backend.remove_container(container, force=True)
            except LayerdeckError as exc:
                terminal.error(f"Error: could not remove the container: {exc}")


def cmd_rm(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`rm`: remove containers, each in turn; prints each one removed."""
    from core.cli_render import write_json

    status = EXIT_OK
    removed = []
    for container in args.containers:
        try:
            backend.remove_container(container, force=args.force)
        except LayerdeckError as exc:
            terminal.error(f"Error: {exc}")
            status = EXIT_FAILED
            continue
        removed.append(container)
        if args.format != "json":
            terminal.print(container)
    if args.format == "json":
        write_json(terminal.out, removed)
    return status


def cmd_fsck(backend: Backend, args: argparse.Namespace, terminal: Terminal) -> int:
    """`fsck [--repair]`: check the built-in store; exit 1 while problems are left."""
    from core.cli_render import write_json

    fsck = getattr(backend, "fsck", None)
    if fsck is None:
        from core.errors import BackendUnavailable

        raise BackendUnavailable(
            "fsck checks the built-in layer store; this back end has nothing to check. "
            "Run `layerdeck --store PATH fsck` (or set LAYERDECK_STORE)."
        )
    report = fsck(repair=args.repair)
    if args.format == "json":
        write_json(terminal.out, report)
    else:
        terminal.print(str(report))
    return EXIT_FAILED if getattr(report, "unrepaired", ()) else EXIT_OK


VERBS: dict[str, Callable[[Backend, argparse.Namespace, Terminal], int]] = {
    "images": cmd_images,
    "inspect": cmd_inspect,
    "history": cmd_history,
    "pull": cmd_pull,
    "rmi": cmd_rmi,
    "tag": cmd_tag,
    "ps": cmd_ps,
    "commit": cmd_commit,
    "build": cmd_build,
    "search": cmd_search,
    "push": cmd_push,
    "copy": cmd_copy,
    "save": cmd_save,
    "load": cmd_load,
    "prune": cmd_prune,
    "run": cmd_run,
    "rm": cmd_rm,
    "fsck": cmd_fsck,
}

REGISTRY_VERBS: dict[str, Callable[[argparse.Namespace, Terminal], int]] = {
    "login": cmd_login,
    "logout": cmd_logout,
}


if __name__ == "__main__":
    sys.exit(main())
