"""``SessionMiddleware``: Django's session middleware, answering a storage outage with a 503.

A subclass of ``django.contrib.sessions.middleware.SessionMiddleware``, so it takes that one's
place in ``MIDDLEWARE`` (one line) and everything that looks for Django's (the admin's
``admin.E410`` check, ``django.contrib.auth``, ``django.contrib.messages``) finds it. What it
does beyond Django's:

* **A storage outage answers 503, without ``Set-Cookie``** and with ``Cache-Control:
  no-store``, whether the :class:`~sessionkit.StorageError` was raised in the view, in another
  middleware (``messages`` saving its messages, ``LoginRequiredMiddleware`` reading the user)
  whose exception Django already turned into its 500 page, or in the save at the end of the
  request. Nobody is logged out by an outage, and no fresh empty session replaces a real one.
  The failure is logged as sessionkit logs every outage: one WARNING line per kind of failure
  per interval (:mod:`sessionkit._failurelog`); Django's ``django.request`` logger is kept
  from adding an ERROR line with a traceback per request for it.
* **The cookie follows the resolved settings** (``SESSIONKIT`` wins where it sets a field,
  see :mod:`sessionkit.django._engine`), and its ``Max-Age`` is the stored record's lifetime.
* **A stale cookie is left alone** unless the session was ended (``flush()``, as ``logout()``
  does): Django deletes the cookie of any request whose session loaded nothing, and that
  deletion, from a request that raced a log-in in another tab, can land after the log-in's
  new cookie and log the user out. A stale id is never adopted either way.
* **A session that a ``SESSION_SAVE_EVERY_REQUEST`` save finds gone is not recreated**: no
  record for a visitor with a stale cookie who never wrote to the session.
* **Async**: under ASGI the response side awaits the store's async methods (``asave``),
  rather than running the sync ones in a thread as Django's does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from .._config import KeyLookup
from .._errors import StorageError
from .._id_lookup import wsgi_values
from ._backend import SessionStore
from ._engine import Cookie, engine

__all__ = ["SessionMiddleware"]

#: Where a view's StorageError waits for ``process_response`` (``process_exception`` sees it).
_FAILURE = "_sessionkit_failure"


class SessionMiddleware(DjangoSessionMiddleware):
    """Put it where Django's is: ``"sessionkit.django.SessionMiddleware"`` in ``MIDDLEWARE``."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        if not issubclass(self.SessionStore, SessionStore):
            raise ImproperlyConfigured(
                "sessionkit.django.SessionMiddleware needs SESSION_ENGINE = 'sessionkit.django'"
            )
        engine()  # a wrong SESSIONKIT stops the server from starting, naming the setting
        _quiet_request_log()

    # -- request ------------------------------------------------------------------------------

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        self.process_request(request)
        try:
            response: Any = self.get_response(request)
        except StorageError as exc:  # only with DEBUG_PROPAGATE_EXCEPTIONS: Django re-raises
            return _unavailable(exc)
        return self.process_response(request, response)

    async def _acall(self, request: HttpRequest) -> Any:
        self.process_request(request)  # no I/O: the session loads on first use
        try:
            response: Any = await self.get_response(request)  # type: ignore[misc]
        except StorageError as exc:
            return _unavailable(exc)
        return await self.aprocess_response(request, response)

    def process_request(self, request: HttpRequest) -> None:
        request.session = self.SessionStore(_client_key(request, engine().cookie.name))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's StorageError: a 503 (the final one is made in ``process_response``)."""
        if not isinstance(exception, StorageError):
            return None
        setattr(request, _FAILURE, exception)
        return HttpResponse(status=503)

    # -- response -----------------------------------------------------------------------------

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        session = getattr(request, "session", None)
        failed = _failure(request, session)
        if failed is not None:
            return _answer(session, response, failed)
        if not isinstance(session, SessionStore):  # a view replaced it: Django's own rules
            return super().process_response(request, response)
        try:
            return self._finish(request, response, session, engine().cookie)
        except StorageError as exc:
            return _unavailable(exc)

    async def aprocess_response(self, request: HttpRequest, response: Any) -> Any:
        """Async twin of :meth:`process_response`."""
        session = getattr(request, "session", None)
        failed = _failure(request, session)
        if failed is not None:
            return _answer(session, response, failed)
        if not isinstance(session, SessionStore):
            return await sync_to_async(super().process_response)(request, response)
        try:
            return await self._afinish(request, response, session, engine().cookie)
        except StorageError as exc:
            return _unavailable(exc)

    def _finish(
        self, request: HttpRequest, response: Any, session: SessionStore, cookie: Cookie
    ) -> Any:
        if _save_due(session, cookie):
            browser_close = session.get_expire_at_browser_close()  # may load the session
            if _still_due(session, response):
                try:
                    session.save()
                except UpdateError:
                    raise _interrupted() from None
                _set_cookie(response, session, cookie, browser_close)
        return _close(request, response, session, cookie)

    async def _afinish(
        self, request: HttpRequest, response: Any, session: SessionStore, cookie: Cookie
    ) -> Any:
        if _save_due(session, cookie):
            browser_close = await session.aget_expire_at_browser_close()
            if _still_due(session, response):
                try:
                    await session.asave()
                except UpdateError:
                    raise _interrupted() from None
                _set_cookie(response, session, cookie, browser_close)
        return _close(request, response, session, cookie)


def _client_key(request: HttpRequest, name: str) -> str | None:
    """The session key the request carries, as Django reads it; ``None`` when the raw
    ``Cookie`` header names the cookie twice, a planted second cookie (sessionkit's rule)."""
    if len(wsgi_values(request.META, KeyLookup("cookie", name))) > 1:
        return None
    return request.COOKIES.get(name)


def _failure(request: HttpRequest, session: object) -> StorageError | None:
    """The storage failure met in this request: a view's exception, or a session's call."""
    failure: StorageError | None = getattr(request, _FAILURE, None)
    if failure is None and isinstance(session, SessionStore):
        failure = session._broke
    return failure


def _answer(session: object, response: Any, failed: StorageError) -> Any:
    """A request whose session storage failed: nothing is saved and no cookie sent. An error
    page (Django's 500, or the view's exception) becomes the 503; a response the view made
    anyway, having caught the error, goes out as it is."""
    if response.status_code >= 500:
        return _unavailable(failed)
    if isinstance(session, SessionStore) and session.accessed:
        patch_vary_headers(response, ("Cookie",))
    return response


def _save_due(session: SessionStore, cookie: Cookie) -> bool:
    return (session.modified or cookie.save_every_request) and not session.is_empty()


def _still_due(session: SessionStore, response: Any) -> bool:
    """Save unless the load just found nothing (a stale cookie under
    ``SESSION_SAVE_EVERY_REQUEST``: no record for it) or the response is an error (Django's
    rule: a 5xx saves nothing)."""
    return not session.is_empty() and response.status_code < 500


def _interrupted() -> SessionInterrupted:
    return SessionInterrupted(
        "The request's session was deleted before the request completed. "
        "The user may have logged out in a concurrent request, for example."
    )


def _set_cookie(response: Any, session: SessionStore, cookie: Cookie, browser_close: bool) -> None:
    key = session.session_key
    if key is None:
        return
    response.set_cookie(
        cookie.name,
        key,
        max_age=None if browser_close else session._max_age(),
        domain=cookie.domain,
        path=cookie.path,
        secure=cookie.secure or None,
        httponly=cookie.http_only or None,
        samesite=cookie.same_site or None,
    )
    patch_vary_headers(response, ("Cookie",))


def _close(request: HttpRequest, response: Any, session: SessionStore, cookie: Cookie) -> Any:
    """Expire the cookie of a session ended in this request; ``Vary`` for one that was read."""
    if session._flushed and session.is_empty() and cookie.name in request.COOKIES:
        response.delete_cookie(
            cookie.name,
            path=cookie.path,
            domain=cookie.domain,
            samesite=cookie.same_site or None,
        )
        patch_vary_headers(response, ("Cookie",))
    elif session.accessed:
        patch_vary_headers(response, ("Cookie",))
    return response


def _unavailable(exc: StorageError) -> HttpResponse:
    """The 503 that replaces the response, logged once per kind of failure per interval."""
    failure = engine().finisher.failure(exc)
    response = HttpResponse(
        failure.body, status=failure.status, content_type="text/plain; charset=utf-8"
    )
    response["Cache-Control"] = "no-store"
    # Django's request log would add an ERROR line per request; the line above is the log.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class _OutageFilter(logging.Filter):
    """Drops ``django.request``'s traceback of a storage outage: the 500 page it logs is
    replaced by the middleware's 503, and the outage is logged by sessionkit, rate-limited."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StorageError)


_filter_lock = threading.Lock()
_filter: _OutageFilter | None = None


def _quiet_request_log() -> None:
    global _filter
    with _filter_lock:
        if _filter is None:
            _filter = _OutageFilter()
            logging.getLogger("django.request").addFilter(_filter)
