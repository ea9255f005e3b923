"""Image references, parsed and normalised the way docker does.

`ubuntu` is `docker.io/library/ubuntu:latest`; `localhost:5000/x` keeps its host and port;
a reference may carry a tag, a digest, or both. Bad references are refused with the reason,
never silently "fixed". Grammar: distribution/reference (docker's own parser).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUM}(?:{_SEPARATOR}{_ALPHANUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

PATH_COMPONENT_RE = re.compile(rf"^{_PATH_COMPONENT}$")
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
FULL_ID_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{64}$")
ID_PREFIX_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: domain, path, and an optional tag and digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, `docker.io/library/ubuntu`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as docker prints it: `ubuntu`, `user/app`, `host:5000/app`."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix(f"{OFFICIAL_NAMESPACE}/")
        return self.name

    @property
    def familiar(self) -> str:
        """The short form docker prints: `ubuntu:22.04`, `host:5000/app@sha256:...`."""
        return self._render(self.familiar_name)

    def __str__(self) -> str:
        return self._render(self.name)

    def _render(self, name: str) -> str:
        text = name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        """The same repository with another tag and no digest."""
        if not TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r}: {_TAG_RULE}")
        return Reference(self.domain, self.path, tag, None)

    @property
    def is_docker_hub(self) -> bool:
        """True for Docker Hub references, which use Hub's auth and search."""
        return self.domain == DEFAULT_DOMAIN


_TAG_RULE = "a tag is up to 128 letters, digits, '_', '.' and '-', and cannot start with '.' or '-'"


def parse_reference(text: str, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse and normalise `text`; a reference with neither tag nor digest gets default_tag."""
    original = text
    text = text.strip()
    if not text:
        raise InvalidReference("an image reference cannot be empty")
    if text != original:
        raise InvalidReference(f"invalid reference {original!r}: it has leading or trailing spaces")
    if any(ch.isspace() for ch in text):
        raise InvalidReference(f"invalid reference {text!r}: it contains white space")

    name, tag, digest = _split(text)
    if FULL_ID_RE.match(name) and tag is None and digest is None:
        raise InvalidReference(
            f"invalid repository name {text!r}: a 64-character hexadecimal string is an image "
            "ID, not a name"
        )
    domain, path = _split_domain(name)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(
            f"invalid reference {text!r}: the repository name is longer than "
            f"{NAME_TOTAL_LENGTH_MAX} characters"
        )
    if not DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid reference {text!r}: {domain!r} is not a valid registry")
    for component in path.split("/"):
        if not component:
            raise InvalidReference(f"invalid reference {text!r}: empty path component")
        if component.lower() == component and not PATH_COMPONENT_RE.match(component):
            raise InvalidReference(
                f"invalid reference {text!r}: {component!r} may use only lowercase letters, "
                "digits and single separators ('.', '_', '__', '-') between them"
            )
        if not PATH_COMPONENT_RE.match(component):
            raise InvalidReference(f"invalid reference {text!r}: repository name must be lowercase")
    if tag is not None and not TAG_RE.match(tag):
        raise InvalidReference(f"invalid reference {text!r}: invalid tag {tag!r}; {_TAG_RULE}")
    if digest is not None and not DIGEST_RE.match(digest):
        raise InvalidReference(
            f"invalid reference {text!r}: invalid digest {digest!r}; expected ALGORITHM:HEX "
            "with at least 32 hex digits"
        )
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)


def _split(text: str) -> tuple[str, str | None, str | None]:
    """Split `name[:tag][@digest]`, telling a tag's colon from a registry port's."""
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not text:
            raise InvalidReference(f"invalid reference '@{digest}': the repository name is missing")
    tag = None
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        text, tag = text[:colon], text[colon + 1 :]
        if not tag:
            raise InvalidReference(f"invalid reference '{text}:': the tag after ':' is empty")
    if not text:
        raise InvalidReference("invalid reference: the repository name is missing")
    return text, tag, digest


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: the first component is a registry only if it looks like one."""
    first, sep, rest = name.partition("/")
    if not sep or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path


def normalize(text: str) -> str:
    """The canonical string for a reference: `ubuntu` -> `docker.io/library/ubuntu:latest`."""
    return str(parse_reference(text))


def familiar(text: str) -> str:
    """The short string docker prints for a reference: `docker.io/library/x:1` -> `x:1`."""
    return parse_reference(text).familiar


def id_prefix(text: str) -> str | None:
    """The hex part of `text` when it could be an image or container ID prefix, else None."""
    if ID_PREFIX_RE.match(text):
        return text.removeprefix("sha256:")
    return None


def full_id(text: str) -> str:
    """`sha256:<hex>` for a full 64-hex image ID with or without the prefix."""
    if not FULL_ID_RE.match(text):
        raise InvalidReference(f"{text!r} is not a full image ID")
    return "sha256:" + text.removeprefix("sha256:")
