"""An S3 endpoint on 127.0.0.1 for the tests: moto's S3 API (the application moto's standalone server runs) in a
threaded werkzeug server, which the code under test reaches over HTTP like any S3-compatible store.

Two things differ from moto's own ``ThreadedMotoServer``, both about the commit files of Delta tables
(``.../_delta_log/<20 digits>.json``), which delta-rs writes with ``If-None-Match: *``:

- S3 guarantees that of two conditional writes of one key exactly one succeeds. moto checks the condition and then
  stores the object in two steps, so two requests could both pass the check; the server therefore handles commit
  writes one at a time.
- ``hold`` (seconds) keeps a commit write waiting until a second write of the same key arrives (or the time is
  up), so that two writers who race for the same table version reach the store together and one of them is
  refused, every time rather than by chance.
- ``ignore_conditions`` makes it a store without conditional writes: the condition is dropped and the later of
  two writes of a key replaces the earlier one, as a store that ignores ``If-None-Match`` does.

Every commit write is recorded (:attr:`S3Server.commits`): its key, whether it was conditional, its status.
moto keeps its buckets per process, so servers of one test process share them: give each test its own bucket.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

COMMIT_FILE = re.compile(r"/_delta_log/\d{20}\.json$")
REGION = "us-east-1"
ACCESS_KEY = "pivot-test-key-id"


@dataclass(frozen=True)
class CommitWrite:
    key: str  # the request path: /bucket/.../_delta_log/<version>.json
    conditional: bool  # sent with If-None-Match: *
    status: int


@dataclass
class S3Server:
    hold: float = 0.0
    ignore_conditions: bool = False
    commits: list[CommitWrite] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        self._app = DomainDispatcherApplication(create_backend_app)
        self._one_at_a_time = threading.Lock()
        self._arrivals: Counter[str] = Counter()
        self._arrived = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._handle, True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def options(self, secret: str) -> dict[str, str]:
        """Storage options (delta-rs key names) for this endpoint, with ``secret`` as the secret key."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret}

    def client(self, secret: str) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=secret)

    def __enter__(self) -> S3Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handle(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] != "PUT" or not COMMIT_FILE.search(path):
            return self._app(environ, start_response)
        if self.hold:
            with self._arrived:
                self._arrivals[path] += 1
                self._arrived.notify_all()
                self._arrived.wait_for(lambda: self._arrivals[path] >= 2, timeout=self.hold)
        status: list[str] = []

        def record_status(s: str, headers: Any, *rest: Any) -> Any:
            status.append(s)
            return start_response(s, headers, *rest)

        conditional = environ.get("HTTP_IF_NONE_MATCH") == "*"
        if self.ignore_conditions:
            environ.pop("HTTP_IF_NONE_MATCH", None)
        with self._one_at_a_time:
            body = b"".join(self._app(environ, record_status))
        self.commits.append(CommitWrite(path, conditional, int(status[0][:3])))
        return [body]
