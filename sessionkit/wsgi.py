"""Sessions for any WSGI application (Werkzeug, Bottle, Falcon, a bare WSGI callable).

Mounting::

    store = Store()
    app = SessionMiddleware(app, store)

The session is ``environ["sessionkit.session"]``, and ``store.get(request)`` (any request
object with an ``environ``) returns that same object. For Flask, use
:func:`sessionkit.flask.init_app`, which makes ``flask.session`` a sessionkit session.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._csrf import (
    FORBIDDEN_BODY,
    MAX_FORM_BYTES,
    UNSAFE_METHODS,
    CSRFGuard,
    form_token,
    is_form,
)
from ._errors import SessionKitError
from ._finish import FAILURES, ErrorHook, Finisher, Outcome, add_vary
from ._id_lookup import OWNER_KEY
from ._session import LAZY, Session
from ._skip import skipper, wsgi_path
from ._store import Store

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["CSRFMiddleware", "SessionMiddleware"]

_WAITING, _STARTED, _REPLACED = range(3)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _discard(data: bytes) -> None:
    """The ``write`` handed to an app whose response was replaced: its bytes go nowhere."""


class SessionMiddleware:
    """Loads the session on first use; saves it and sets the cookie in ``start_response``.

    **Loading is lazy**: ``environ["sessionkit.session"]`` is in place before the app runs, but
    the storage is read only when the app first uses the session. A request that never
    touches it costs no storage call, and keeps answering while the storage is down.

    **Saving** happens inside ``start_response``, before the headers can leave, so the cookie
    and the stored record always agree: a changed session is written, a read one is renewed
    past half its lifetime, and an untouched one costs nothing and sets no cookie. Changes
    made after ``start_response`` (while the body is iterated) are not saved.

    **Failures**: a :class:`~sessionkit.StorageError` while loading (in the app, at first use),
    while saving, or raised by the app before ``start_response``, replaces the response with a
    plain 503 carrying no ``Set-Cookie`` (a :class:`~sessionkit.SessionTooLarge` with a 500);
    the error is logged with its driver exception. So does a 500 error page that the app (or
    its framework) sends after a storage call of its session failed in the request. Once the response has started, an error
    raised while the body is produced reaches the server like any other error of the app, from
    a generator app too, so the server ends the response as broken rather than short.

    An app that calls ``start_response`` again with ``exc_info`` (to send an error page
    instead) gets the session's headers on that call too: the session was saved by the first
    call, and its cookie must go out with whichever headers do.

    **Skipping routes** (Fiber's ``Next``, Litestar's ``exclude``): ``exclude`` takes regular
    expressions searched in ``PATH_INFO``, ``skip`` a function of the environ returning
    ``True`` for a request to leave alone. A skipped request has no
    ``environ["sessionkit.session"]``: nothing is read, written or sent.

    **Error pages**: ``on_error(environ, error)`` returns the :class:`~sessionkit.ErrorResponse`
    of the 503 (or 500); the status stays and no ``Set-Cookie`` goes out whatever it returns.
    """

    def __init__(
        self,
        app: WSGIApplication,
        store: Store,
        *,
        skip: Callable[[WSGIEnvironment], bool] | None = None,
        exclude: str | Iterable[str] | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self._skip = skipper(skip, exclude, wsgi_path)
        self._finisher = finisher = Finisher(store, on_error)
        self._header = finisher.header_name
        self._varies = finisher.varies

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get(OWNER_KEY) is self.store or (self._skip is not None and self._skip(environ)):
            # Ours, further out (see OWNER_KEY), or a route the app excluded.
            return self.app(environ, start_response)
        environ[OWNER_KEY] = self.store
        session = self.store._session_for(False, environ, LAZY)
        exchange = _Exchange(self, session, start_response, environ)
        try:
            result = self.app(environ, exchange.start_response)
        except FAILURES as exc:
            if exchange.state == _STARTED:
                raise  # the response started: the server must see it break (see the class)
            return exchange.fail(exc)
        if exchange.state == _STARTED:
            return result
        if exchange.state == _REPLACED:
            _close(result)
            return exchange.replacement
        # The app calls start_response while its body is iterated (a generator app).
        return exchange.iterate(result)

    def headers(self, headers: list[tuple[str, str]], outcome: Outcome) -> list[tuple[str, str]]:
        """``headers`` with the session's added (a copy: the app's list is left alone)."""
        headers = list(headers)
        if outcome.value is not None and self._header is not None:
            headers.append((self._header, outcome.value))
        if outcome.more:  # a chain's other carriers
            headers += outcome.more
        if outcome.vary:
            for vary in self._varies:
                add_vary(headers, "vary", vary, ", ")
        return headers


class _Exchange:
    """One request's response side: finishes the session inside ``start_response``."""

    __slots__ = (
        "_environ",
        "_middleware",
        "_outcome",
        "_session",
        "_start_response",
        "replacement",
        "state",
    )

    def __init__(
        self,
        middleware: SessionMiddleware,
        session: Session,
        start_response: StartResponse,
        environ: WSGIEnvironment,
    ) -> None:
        self._middleware = middleware
        self._environ = environ
        self._session = session
        self._start_response = start_response
        self.state = _WAITING
        self.replacement: list[bytes] = []
        #: What the first ``start_response`` added to the headers; a second one (with
        #: ``exc_info``) adds it again, as the session is not finished twice.
        self._outcome: Outcome | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Any:
        if self.state == _REPLACED:
            return _discard
        middleware = self._middleware
        if self.state == _WAITING:
            broke = self._session._broke
            if broke is not None and status[:4] == "500 ":
                # The app's own error page for this request's storage failure: an outage.
                self.fail(broke)
                return _discard
            try:
                outcome = middleware._finisher.finish(self._session, self._environ)
            except FAILURES as exc:
                self.fail(exc)
                return _discard
            self.state = _STARTED
            self._outcome = outcome
        else:
            outcome = self._outcome  # type: ignore[assignment]  # set when it started
        if outcome.value is not None or outcome.vary:
            headers = middleware.headers(headers, outcome)
        return self._start_response(status, headers, exc_info)

    def fail(self, exc: SessionKitError) -> list[bytes]:
        """Answer the failure if the response has not started; else it is only logged."""
        waiting = self.state == _WAITING
        failure = self._middleware._finisher.failure(exc, replaced=waiting, request=self._environ)
        if waiting:
            self.state = _REPLACED
            self._start_response(failure.status_line, failure.headers)
            self.replacement = [failure.body]
        return self.replacement

    def iterate(self, result: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in result:
                if self.state == _REPLACED:
                    break
                yield chunk
        except FAILURES as exc:
            if self.state != _WAITING:
                raise  # the response started: the server must see it break (see the class)
            self.fail(exc)
        finally:
            _close(result)
        yield from self.replacement


class CSRFMiddleware(CSRFGuard):
    """Rejects unsafe requests (POST, PUT, PATCH, DELETE) that lack the session's CSRF token,
    with a plain 403.

    Mount it *inside* :class:`SessionMiddleware` (``SessionMiddleware(CSRFMiddleware(app,
    store), store)``). The token is read from the ``X-CSRF-Token`` header (``header_name``),
    or else from the ``csrf_token`` field (``field_name``) of an
    ``application/x-www-form-urlencoded`` body, which is read here and put back as
    ``wsgi.input``, so the app still reads the whole body. ``skip``/``exclude`` leave routes
    alone, as on :class:`SessionMiddleware`.
    """

    app: WSGIApplication
    _path = staticmethod(wsgi_path)

    def _prepare(self) -> None:
        self._environ_key = "HTTP_" + self.header_name.upper().replace("-", "_")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in UNSAFE_METHODS or (
            self._skip is not None and self._skip(environ)
        ):
            return self.app(environ, start_response)
        token = environ.get(self._environ_key)
        if token is not None and "," in token:  # sent twice, joined by the server
            token = None
        elif token is None and is_form(environ.get("CONTENT_TYPE", "")):
            token = self._form_token(environ)
        if not self.store.get(environ).check_csrf(token):
            start_response(
                "403 Forbidden",
                [
                    ("content-type", "text/plain; charset=utf-8"),
                    ("content-length", str(len(FORBIDDEN_BODY))),
                ],
            )
            return [FORBIDDEN_BODY]
        return self.app(environ, start_response)

    def _form_token(self, environ: WSGIEnvironment) -> str | None:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= MAX_FORM_BYTES:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # the app reads the body again
        environ["CONTENT_LENGTH"] = str(len(body))
        return form_token(body, self.field_name)
