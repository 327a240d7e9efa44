"""What the sources built on google-api-python-client share (YouTube, Google Play): bounded HTTP, retries.

The client library speaks httplib2; ``BoundedHttp`` gives it a ``TimeoutSession``
instead, so its answers are bounded in time and size like every other
source's. google-auth's ``AuthorizedHttp`` wraps one the same way (Google Play),
so the token request is bounded too.
"""

from __future__ import annotations

import socket
from typing import Any

import httplib2
import requests
from googleapiclient.errors import HttpError

from monitor.sources.resilience import transient_http


class BoundedHttp:
    """httplib2's ``request`` (what google-api-python-client calls) over a ``TimeoutSession``.

    httplib2 bounds each socket read only, and reads any answer whole; the
    requests session bounds the whole answer in time and size like every
    other client here. The body comes back decoded, so the encoding headers
    are dropped.
    """

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
                redirections: int = 5, connection_type: Any = None) -> tuple[httplib2.Response, bytes]:
        response = self.session.request(method, uri, data=body, headers=headers)
        info = {k.lower(): v for k, v in response.headers.items()
                if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")}
        info["status"] = str(response.status_code)
        answer = httplib2.Response(info)
        answer.reason = response.reason or ""
        return answer, response.content

    def close(self) -> None:
        self.session.close()


def transient_google(exc: BaseException) -> bool:
    """A failure worth another try: a 5xx, a timeout, a dropped connection (``RetryPolicy.call``)."""
    if isinstance(exc, HttpError):
        return int(exc.resp.status) >= 500
    if isinstance(exc, requests.RequestException):
        return transient_http(exc)
    return isinstance(exc, TimeoutError | socket.timeout | ConnectionError)
