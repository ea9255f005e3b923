"""The build context: what ADD and COPY may read, by docker's .dockerignore rules.

docker's CLI sends the context as a tar without what .dockerignore excludes (the Dockerfile
and .dockerignore themselves always go), and the classic builder resolves ADD/COPY sources
inside that tar: `..` cannot leave it, a leading `/` means its root, wildcards match with
Go's filepath.Match. Here the context directory is read in place with the same filter.

Patterns follow docker's fileutils.PatternMatcher: cleaned paths, `*`, `?`, `[...]` and
`**`, `!` re-includes, the last matching pattern wins, and a pattern that matches a
directory matches everything below it.

The cache key of an ADD/COPY step includes a content hash of its sources: every included
path below them with its type, mode, owner and content (not its times, as docker's).
ADD URL fetches go through urllib; the file keeps the server's Last-Modified time.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import logging
import os
import posixpath
import re
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import BuildFailed, InvalidArgument
from core.models import CancelToken

log = logging.getLogger(__name__)

DOCKERIGNORE = ".dockerignore"
_CHUNK = 1 << 20
_WILDCARD_RE = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class IgnorePattern:
    """One .dockerignore line: its cleaned text, regex and whether it re-includes."""

    text: str
    regex: re.Pattern[str]
    exclusion: bool
    directories: int


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """docker's fileutils regex for one pattern (`**` spans directories, `*` does not)."""
    out = "^"
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern[index + 1 : index + 2] == "*":
                index += 1
                # `**/` may match nothing at all; a bare `**` anything.
                if pattern[index + 1 : index + 2] == "/":
                    index += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out += re.escape(pattern[index])
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out += re.escape(char)
            else:
                # docker hands a bracket expression to Go's regexp as it is: `^` negates.
                out += pattern[index : end + 1]
                index = end
        else:
            out += re.escape(char)
        index += 1
    return re.compile(out + "$")


def parse_dockerignore(text: str) -> list[IgnorePattern]:
    """The patterns of a .dockerignore file, in order."""
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = posixpath.normpath(line).lstrip("/") if line else line
        if not line or line == ".":
            continue
        patterns.append(IgnorePattern(line, wildcard_regex(line), exclusion, line.count("/") + 1))
    return patterns


class ContextFilter:
    """Decides which context paths the build sees, as docker's PatternMatcher does."""

    def __init__(self, patterns: list[IgnorePattern], always: tuple[str, ...] = ()) -> None:
        self.patterns = patterns
        self.always = set(always)
        self.has_exclusions = any(p.exclusion for p in patterns)

    def excluded(self, relative: str) -> bool:
        """True when .dockerignore leaves relative (a '/'-separated path) out."""
        if not self.patterns or relative in self.always:
            return False
        parents = relative.split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # only a pattern that could flip the answer matters
            hit = bool(pattern.regex.match(relative))
            if not hit:
                # A pattern matching a parent directory matches what is inside it.
                for depth in range(1, len(parents)):
                    if pattern.regex.match("/".join(parents[:depth])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_reinclude_below(self, relative: str) -> bool:
        """True when an exclusion pattern could bring back something below an excluded dir."""
        if not self.has_exclusions:
            return False
        prefix = relative + "/"
        return any(
            p.exclusion and (p.text.startswith(prefix) or _WILDCARD_RE.search(p.text))
            for p in self.patterns
        )


class BuildContext:
    """The context directory with its .dockerignore applied."""

    def __init__(self, root: Path, dockerfile: str = "Dockerfile") -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidArgument(f"the build context {root} is not a directory")
        text = ""
        ignore = self.root / DOCKERIGNORE
        if ignore.is_file():
            try:
                text = ignore.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise InvalidArgument(f"cannot read {ignore}: {exc.strerror}") from exc
        dockerfile_rel = posixpath.normpath(dockerfile).lstrip("/")
        self.filter = ContextFilter(parse_dockerignore(text), (DOCKERIGNORE, dockerfile_rel))

    def excluded(self, relative: str) -> bool:
        """True when the path (relative to the context root) is not sent to the build."""
        return bool(relative) and self.filter.excluded(relative)

    def clean(self, source: str, line: int | None = None) -> str:
        """A source path made relative to the context root; outside it is a BuildFailed."""
        cleaned = posixpath.normpath("/" + source.replace("\\", "/")).lstrip("/")
        joined = posixpath.normpath(source.lstrip("/")) if source.strip("/") else "."
        if joined == ".." or joined.startswith("../"):
            where = f" (line {line})" if line is not None else ""
            raise BuildFailed(
                f"forbidden path outside the build context: {source}{where}", line=line
            )
        return "" if cleaned == "." else cleaned

    def path(self, relative: str) -> Path:
        """The file system path of a context path."""
        return self.root / relative if relative else self.root

    def exists(self, relative: str) -> bool:
        """True when the path is in the context and not excluded."""
        if self.excluded(relative):
            return False
        return os.path.lexists(self.path(relative))

    def names_for(self, source: str, line: int | None = None) -> list[str]:
        """The context paths a COPY/ADD source names: wildcards expanded, .dockerignore
        applied; none when it names nothing. A path out of the context is a BuildFailed."""
        relative = self.clean(source, line)
        if any(char in relative for char in "*?["):
            return self.match(relative)
        return [relative] if self.exists(relative) else []

    def match(self, pattern: str) -> list[str]:
        """Context paths matching a source with wildcards (Go's filepath.Match per level)."""
        parts = [p for p in pattern.split("/") if p]
        results: list[str] = []

        def visit(prefix: str, remaining: list[str]) -> None:
            if not remaining:
                if not self.excluded(prefix):
                    results.append(prefix)
                return
            head, rest = remaining[0], remaining[1:]
            directory = self.path(prefix)
            if not _WILDCARD_RE.search(head):
                candidate = f"{prefix}/{head}" if prefix else head
                if os.path.lexists(self.path(candidate)):
                    visit(candidate, rest)
                return
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                return
            regex = wildcard_regex(head)
            for name in names:
                if regex.match(name):
                    visit(f"{prefix}/{name}" if prefix else name, rest)

        visit("", parts)
        return results

    def walk(self, relative: str) -> Iterator[tuple[str, os.stat_result]]:
        """Every included path below a context directory (itself excluded), parents first,
        with its lstat; names relative to that directory."""
        base = self.path(relative)

        def visit(directory: Path, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
            try:
                with os.scandir(directory) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError as exc:
                raise InvalidArgument(f"cannot read {directory}: {exc.strerror}") from exc
            for entry in entries:
                name = prefix + entry.name
                full = f"{relative}/{name}" if relative else name
                info = entry.stat(follow_symlinks=False)
                is_dir = stat.S_ISDIR(info.st_mode)
                if self.excluded(full):
                    if is_dir and self.filter.may_reinclude_below(full):
                        yield from visit(Path(entry.path), name + "/")
                    continue
                yield name, info
                if is_dir:
                    yield from visit(Path(entry.path), name + "/")

        yield from visit(base, "")

    def content_hash(self, sources: list[str]) -> str:
        """sha256 over the sources: every included path's type, mode, owner and content."""
        hasher = hashlib.sha256()
        for source in sources:
            full = self.path(source)
            info = os.lstat(full)
            _hash_entry(hasher, source or ".", full, info)
            if stat.S_ISDIR(info.st_mode):
                for name, child in self.walk(source):
                    _hash_entry(hasher, f"{source}/{name}", full / name, child)
        return "sha256:" + hasher.hexdigest()


def _hash_entry(hasher: hashlib._Hash, name: str, path: Path, info: os.stat_result) -> None:
    mode = info.st_mode
    header = f"{name}\0{stat.S_IFMT(mode)}\0{stat.S_IMODE(mode)}\0{info.st_uid}\0{info.st_gid}\0"
    hasher.update(header.encode("utf-8", "surrogateescape"))
    if stat.S_ISREG(mode):
        hasher.update(str(info.st_size).encode() + b"\0")
        with open(path, "rb") as handle:
            while block := handle.read(_CHUNK):
                hasher.update(block)
    elif stat.S_ISLNK(mode):
        hasher.update(os.readlink(path).encode("utf-8", "surrogateescape"))
    hasher.update(b"\n")


def missing_source(keyword: str, source: str) -> str:
    """docker's words for a COPY/ADD source the context does not have."""
    return (
        f"{keyword} failed: file not found in build context or excluded by .dockerignore: "
        f"stat {source}: file does not exist"
    )


def is_url(source: str) -> bool:
    """True for an ADD source docker fetches (http:// or https://)."""
    return source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class FetchedFile:
    """An ADD URL's content in a temporary file, with its name and modification time."""

    path: Path
    name: str
    mtime: float
    digest: str


def fetch_url(
    url: str, directory: Path, cancel: CancelToken, line: int | None = None
) -> FetchedFile:
    """Download url for ADD into directory; the file keeps the Last-Modified time."""
    parsed = urllib.parse.urlparse(url)
    name = posixpath.basename(parsed.path.rstrip("/")) if parsed.path else ""
    where = f" (line {line})" if line is not None else ""
    handle, temporary = tempfile.mkstemp(dir=directory, prefix="add-url-")
    hasher = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "layerdeck"})
            with _opener(parsed.hostname or "").open(request, timeout=60) as reply:
                modified = reply.headers.get("Last-Modified")
                while block := reply.read(_CHUNK):
                    cancel.raise_if_cancelled()
                    out.write(block)
                    hasher.update(block)
    except urllib.error.HTTPError as exc:
        os.unlink(temporary)
        raise BuildFailed(
            f"failed to fetch {url}: {exc.code} {exc.reason}{where}", line=line
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        os.unlink(temporary)
        reason = getattr(exc, "reason", exc)
        raise BuildFailed(f"failed to fetch {url}: {reason}{where}", line=line) from exc
    except BaseException:
        os.unlink(temporary)
        raise
    mtime = 0.0
    if modified:
        try:
            mtime = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            mtime = 0.0
    return FetchedFile(Path(temporary), name, mtime, "sha256:" + hasher.hexdigest())


def _opener(host: str) -> urllib.request.OpenerDirector:
    """urllib's opener; a loopback address never goes through a proxy from the environment."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()
