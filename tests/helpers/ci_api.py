"""A local stand-in for the GitHub and GitLab comment APIs, on 127.0.0.1: it keeps comments
in memory, pages lists as the real APIs do, checks the token, records every request, and
answers with a chosen status when told to."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers.http import QuietHandler, serving

GITHUB_TOKEN = "ghs_fakeGitHubToken0123456789"
GITLAB_TOKEN = "glpat-fakeGitLabToken-98765"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeCiApi:
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Comment collection path -> its comments (``{"id", "body"}``)."""
    requests: list[Recorded] = field(default_factory=list)
    fail_with: int | None = None
    next_id: int = 1000
    url: str = ""

    def add(self, collection: str, body: str) -> int:
        self.next_id += 1
        self.comments.setdefault(collection, []).append({"id": self.next_id, "body": body})
        return self.next_id


_GITHUB_LIST = re.compile(r"/repos/[^/]+/[^/]+/issues/\d+/comments")
_GITHUB_ITEM = re.compile(r"(/repos/[^/]+/[^/]+)/issues/comments/(\d+)")
_GITLAB_LIST = re.compile(r"/api/v4/projects/\d+/merge_requests/\d+/notes")
_GITLAB_ITEM = re.compile(r"(/api/v4/projects/\d+/merge_requests/\d+/notes)/(\d+)")


def _handler(api: FakeCiApi) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _reply(self, status: int, body: Any) -> None:
            self.reply(status, body)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            raw = self.body()
            body = json.loads(raw) if raw else None
            api.requests.append(
                Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
            )
            if api.fail_with is not None:
                self._reply(api.fail_with, {"message": f"failing with {api.fail_with}"})
                return
            github = parts.path.startswith("/repos/")
            if github and self.headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
                self._reply(401, {"message": "Bad credentials"})
                return
            if not github and self.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
                self._reply(401, {"message": "401 Unauthorized"})
                return
            self._route(parts.path, parse_qs(parts.query), body)

        def _route(self, path: str, query: dict[str, list[str]], body: Any) -> None:
            if _GITHUB_LIST.fullmatch(path) or _GITLAB_LIST.fullmatch(path):
                if path not in api.comments and "/issues/404/" in path:
                    self._reply(404, {"message": "Not Found"})
                    return
                items = api.comments.setdefault(path, [])
                if self.command == "GET":
                    per_page = int(query.get("per_page", ["30"])[0])
                    page = int(query.get("page", ["1"])[0])
                    self._reply(200, items[(page - 1) * per_page : page * per_page])
                    return
                if self.command == "POST":
                    new = api.add(path, body["body"])
                    self._reply(201, {"id": new, "body": body["body"]})
                    return
            for pattern, method in ((_GITHUB_ITEM, "PATCH"), (_GITLAB_ITEM, "PUT")):
                match = pattern.fullmatch(path)
                if match and self.command == method:
                    for items in api.comments.values():
                        for item in items:
                            if item["id"] == int(match.group(2)):
                                item["body"] = body["body"]
                                self._reply(200, item)
                                return
                    self._reply(404, {"message": "Not Found"})
                    return
            self._reply(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = do_PUT = _handle

    return Handler


def serve() -> Iterator[FakeCiApi]:
    """Serve a :class:`FakeCiApi` on 127.0.0.1 until the generator is closed."""
    api = FakeCiApi()
    with serving(_handler(api)) as url:
        api.url = url
        yield api
