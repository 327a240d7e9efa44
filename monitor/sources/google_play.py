"""Google Play: the reviews of the company's own Android app (Google Play Developer API, ``reviews.list``).

The API is for the app's developer account: a Google Cloud service account,
linked to the Play Console and given the app with the "Reply to reviews"
permission, signs in with its JSON key (``GOOGLE_PLAY_SERVICE_ACCOUNT_FILE``,
the file's path; google-auth exchanges it for an access token at the key's
``token_uri`` and renews it). The client is google-api-python-client built
from its bundled discovery document, over ``BoundedHttp`` like YouTube, so
``api_root`` can point it at a test server and every answer is bounded.

What the API gives, and what it does not:

* only reviews **created or modified in the last seven days**, and only those
  with a text (a rating alone is not listed): a worker stopped for longer than
  a week misses what was written meanwhile, and the first poll reads that week;
* the listing is newest modification first: an edited review comes back to the
  top with its new ``lastModified`` and is seen again (a new version, see
  ``reviews.py``); there is no separate creation time, so a review's time is
  its last modification and its edit time is not known apart;
* a title and a body, when the reviewer wrote both, are separated by a tab;
* the developer's reply is ``comments[].developerComment``.

A review is linked to its public page (``details?id=…&reviewId=…``); the alert
links to the review in the Play Console when ``developer_id`` and
``console_app_id`` are given (both are in the console's address), else to the
console, where replying is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from google.auth.exceptions import GoogleAuthError, RefreshError
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from monitor.clock import Clock, SystemClock
from monitor.redact import protect_logger, remember_secret
from monitor.sources.google_api import BoundedHttp, transient_google
from monitor.sources.resilience import RetryPolicy, TimeoutSession
from monitor.sources.reviews import CountedClient, RawReview, ReviewError, ReviewPage, detail_of, obj, refusal, titled

log = logging.getLogger(__name__)
protect_logger("googleapiclient.discovery")
protect_logger("googleapiclient.http")
protect_logger("google.auth")
protect_logger("google_auth_httplib2")

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
CONSOLE = "https://play.google.com/console"
MAX_KEY_FILE = 64 * 1024


def service_account_credentials(path: str, *, variable: str) -> service_account.Credentials:
    """The service account of the JSON key file at ``path``; ``ReviewError`` (blind) naming what is wrong.

    The key's secrets (the private key, its id) are masked by ``redact`` from here on.
    """
    where = f"{variable}={path}"
    try:
        file = Path(path)
        if file.stat().st_size > MAX_KEY_FILE:
            raise ValueError("larger than a service-account key")
        info = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReviewError(f"Google Play: cannot read the service-account key {where} ({exc}): download the JSON "
                          "key of the service account from Google Cloud (IAM > Service accounts > Keys)",
                          blind=True) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ReviewError(f"Google Play: {where} is not a service-account key (\"type\": \"service_account\"): "
                          "download the JSON key of the service account from Google Cloud", blind=True)
    key = str(info.get("private_key") or "")
    remember_secret(key)
    remember_secret(info.get("private_key_id"))
    for line in key.splitlines():
        if "PRIVATE KEY" not in line:
            remember_secret(line.strip())
    try:
        credentials: service_account.Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[SCOPE])
        return credentials
    except (ValueError, KeyError, GoogleAuthError) as exc:
        raise ReviewError(f"Google Play: the service-account key {where} is unusable ({type(exc).__name__}: "
                          f"{str(exc)[:120]}): download a new JSON key", blind=True) from None


@dataclass(slots=True)
class Counted:
    """The requests sent (each try), for ``PollResult.requests``."""

    requests: int = 0


class GooglePlayClient(CountedClient):
    """One app's reviews of the last week, newest modification first, ``page_size`` per page.

    ``credentials`` is called on the first page (a key file that cannot be read fails that poll, blind,
    and is read again on the next one); the service is built once it succeeds.
    """

    sorted_by_edit = True
    what = "Google Play review"

    def __init__(self, *, package_name: str, credentials: Callable[[], service_account.Credentials],
                 fix: str, api_root: str = "https://androidpublisher.googleapis.com", page_size: int = 100,
                 translate_to: str | None = None, developer_id: str | None = None,
                 console_app_id: str | None = None, timeout: float = 20.0, policy: RetryPolicy | None = None,
                 clock: Clock | None = None) -> None:
        self.counted = Counted()
        super().__init__(self.counted)
        self.package_name, self.credentials, self.fix = package_name, credentials, fix
        self.api_root, self.page_size, self.translate_to = api_root.rstrip("/") + "/", page_size, translate_to
        self.developer_id, self.console_app_id = developer_id, console_app_id
        self.timeout, self.policy, self.clock = timeout, policy or RetryPolicy(), clock or SystemClock()
        self._service: Any = None
        self._creds: service_account.Credentials | None = None

    def __repr__(self) -> str:
        return f"GooglePlayClient({self.package_name!r})"

    def service(self) -> Any:
        if self._service is None:
            self._creds = self.credentials()
            http = AuthorizedHttp(self._creds, http=BoundedHttp(TimeoutSession(self.timeout,
                                                                               max_body=self.policy.max_body)))
            self._service = build("androidpublisher", "v3", http=http, static_discovery=True,
                                  cache_discovery=False, client_options={"api_endpoint": self.api_root})
        return self._service

    def page(self, token: str | None) -> ReviewPage:
        params: dict[str, Any] = {"packageName": self.package_name, "maxResults": self.page_size}
        if token:
            params["token"] = token
        if self.translate_to:
            params["translationLanguage"] = self.translate_to
        body = self.execute(self.service().reviews().list(**params))
        following = obj(body.get("tokenPagination")).get("nextPageToken")
        return self.parsed(body.get("reviews"), self.review, str(following) if following else None)

    def execute(self, request: Any) -> dict[str, Any]:
        """Run one prepared request (a 5xx or a dropped connection retried); refusals as ``ReviewError``."""
        what = "Google Play reviews"

        def attempt() -> Any:
            self.counted.requests += 1
            return request.execute()

        try:
            answer = self.policy.call(attempt, transient=transient_google, what=f"{what} {self.package_name}")
        except HttpError as exc:
            try:
                detail = detail_of(json.loads(exc.content))
            except ValueError:
                detail = ""
            raise refusal(what, self.fix, int(exc.resp.status), detail=detail,
                          retry_after=exc.resp.get("retry-after"), now=self.clock.now()) from None
        except RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise ReviewError(f"{what}: the token endpoint failed ({str(exc)[:200]})") from None
            raise ReviewError(f"{what}: Google refused the service account's key ({str(exc)[:200]}): "
                              f"{self.fix}", blind=True) from None
        except ValueError:
            raise ReviewError(f"{what}: the API answered with malformed JSON") from None
        except (GoogleAuthError, requests.RequestException, OSError) as exc:  # timeouts, connections, after retries
            raise ReviewError(f"{what}: {type(exc).__name__}: {str(exc)[:200]}") from None
        finally:
            if self._creds is not None:
                remember_secret(self._creds.token)
        if not isinstance(answer, dict):
            raise ReviewError(f"{what}: the API answered with malformed JSON")
        return answer

    def review(self, item: Any) -> RawReview:
        """A ``Review`` resource as a ``RawReview``; ValueError when it has no id, stars or time."""
        item = obj(item)
        rid = item.get("reviewId")
        comments = [obj(c) for c in item.get("comments") or [] if isinstance(c, dict)]
        user = next((obj(c.get("userComment")) for c in comments if c.get("userComment")), {})
        reply = next((obj(c.get("developerComment")) for c in comments if c.get("developerComment")), {})
        stars, modified = user.get("starRating"), timestamp(user.get("lastModified"))
        if not isinstance(rid, str) or not isinstance(stars, int) or not 1 <= stars <= 5 or modified is None:
            raise ValueError(f"review {rid!r} without reviewId, starRating 1-5 or lastModified")
        title, _, body = str(user.get("text") or "").partition("\t")
        text = titled(title, body) if body else title.strip()
        return RawReview(
            id=rid, rating=stars, text=text, created_at=modified, order_at=modified,
            author=str(item.get("authorName") or "") or None,
            language=self.translate_to if self.translate_to and user.get("originalText") else
            user.get("reviewerLanguage"),
            reply=str(reply["text"]) if reply.get("text") else None, reply_at=timestamp(reply.get("lastModified")),
            url=f"https://play.google.com/store/apps/details?id={self.package_name}&reviewId={rid}",
            answer_url=self.answer_url(rid),
        )

    def answer_url(self, review_id: str) -> str:
        """The review in the Play Console (where the reply is written), or the console without its ids."""
        if self.developer_id and self.console_app_id:
            return (f"{CONSOLE}/developers/{self.developer_id}/app/{self.console_app_id}/user-feedback/"
                    f"review-details?reviewId={review_id}")
        return CONSOLE


def timestamp(value: Any) -> datetime | None:
    """The API's ``Timestamp`` (``{"seconds": "1763459400", "nanos": 0}``) as aware UTC, or None."""
    value = obj(value)
    try:
        seconds = int(value["seconds"])
        nanos = int(value.get("nanos") or 0)
    except (KeyError, TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
