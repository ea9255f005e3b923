"""`docker search`: Docker Hub's search API, or a registry's catalog when a host is named.

Both back ends answer `search` with this module, so a term means the same thing whichever
source is active: `nginx` asks Docker Hub, `127.0.0.1:5000/app` lists the repositories of
that registry whose name contains `app`.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from core.errors import InvalidArgument, RegistryError
from core.models import SearchResult
from core.reference import DEFAULT_DOMAIN, DOMAIN_RE

log = logging.getLogger(__name__)

DOCKER_HUB_SEARCH_URL = "https://index.docker.io/v1/search"
SEARCH_TIMEOUT = 15.0
MAX_LIMIT = 100


def search(term: str, limit: int = 25) -> list[SearchResult]:
    """Search Docker Hub for term, or the catalog of the registry named in `HOST/term`."""
    host, rest = split_search_term(term)
    if host is None:
        return search_hub(rest, limit)
    return search_catalog(host, rest, limit)


def split_search_term(term: str) -> tuple[str | None, str]:
    """`HOST/rest` -> (HOST, rest) when the first component is a registry, else (None, term)."""
    text = term.strip()
    if not text:
        raise InvalidArgument("a search term cannot be empty")
    first, sep, rest = text.partition("/")
    # Docker's rule for references: a registry has a dot or a port, or is localhost.
    looks_like_host = ("." in first or ":" in first or first == "localhost") and bool(
        DOMAIN_RE.match(first)
    )
    if not sep or not looks_like_host:
        return None, text
    if first in (DEFAULT_DOMAIN, "index.docker.io", "registry-1.docker.io"):
        return None, rest
    return first, rest


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"the search limit must be between 1 and {MAX_LIMIT}, not {limit}")


def search_hub(term: str, limit: int = 25, url: str = DOCKER_HUB_SEARCH_URL) -> list[SearchResult]:
    """Docker Hub's search (the v1 API the docker CLI uses), best matches first."""
    _check_limit(limit)
    if not term:
        raise InvalidArgument("a search term cannot be empty")
    try:
        reply = requests.get(url, params={"q": term, "n": str(limit)}, timeout=SEARCH_TIMEOUT)
    except requests.RequestException as exc:
        raise RegistryError(
            f"cannot reach Docker Hub's search at {url}: {_reason(exc)}; check the network "
            "connection, or search a registry by host (HOST/term)"
        ) from exc
    if reply.status_code != 200:
        raise RegistryError(
            f"Docker Hub's search answered HTTP {reply.status_code} for {term!r}: "
            f"{reply.text.strip()[:200]}"
        )
    try:
        results = reply.json().get("results") or []
    except (ValueError, AttributeError) as exc:
        raise RegistryError(
            f"Docker Hub's search returned something that is not JSON: {exc}"
        ) from exc
    return [_hub_result(entry) for entry in results[:limit] if isinstance(entry, dict)]


def _hub_result(entry: dict[str, Any]) -> SearchResult:
    return SearchResult(
        name=str(entry.get("name", "")),
        description=str(entry.get("description") or ""),
        stars=int(entry.get("star_count") or 0),
        official=bool(entry.get("is_official")),
        automated=bool(entry.get("is_automated")),
    )


def search_catalog(host: str, term: str, limit: int = 25) -> list[SearchResult]:
    """Repositories of the registry at host whose name contains term (all when term is empty)."""
    from core.store.registry import RegistryClient

    _check_limit(limit)
    needle = term.strip().lower()
    client = RegistryClient(host)
    matches: list[SearchResult] = []
    for repository in client.catalog():
        if needle in repository.lower():
            matches.append(
                SearchResult(
                    name=f"{host}/{repository}",
                    description="",
                    stars=0,
                    official=False,
                    automated=False,
                )
            )
    # Exact and prefix matches first, like a person would expect from a search box.
    matches.sort(key=lambda r: (_rank(r.name.split("/", 1)[1].lower(), needle), r.name))
    return matches[:limit]


def _rank(repository: str, needle: str) -> int:
    last = repository.rsplit("/", 1)[-1]
    if last == needle or repository == needle:
        return 0
    if last.startswith(needle) or repository.startswith(needle):
        return 1
    return 2


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."
