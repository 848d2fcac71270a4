"""Flask integration: ``flask.session`` becomes a sessionkit session.

::

    from flask import Flask, session
    from sessionkit import Store
    from sessionkit.flask import init_app

    app = Flask(__name__)
    store = Store()
    init_app(app, store)

    @app.get("/")
    def index():
        session["visits"] = session.get("visits", 0) + 1
        return f"visit {session['visits']}"

The store's :class:`~sessionkit.Config` decides the cookie and the lifetime; Flask's
``SESSION_COOKIE_*``, ``PERMANENT_SESSION_LIFETIME`` and ``SECRET_KEY`` play no part (the cookie
holds only a random id, so nothing needs signing). Use this or the WSGI middleware, not both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.exceptions import InternalServerError

from ._errors import SessionKitError
from ._finish import FAILURES, Failure, Finisher
from ._id_lookup import WSGI_KEY
from ._session import Session
from ._store import Store

if TYPE_CHECKING:
    from flask.wrappers import Request, Response
    from werkzeug.datastructures import Headers

__all__ = ["FlaskSession", "SessionkitInterface", "init_app"]


class FlaskSession(Session, SessionMixin):
    """A :class:`~sessionkit.Session` with the attributes Flask and its extensions expect.

    Loaded lazily: the storage is read at the first use of the session's data, so a view that
    never uses ``flask.session`` costs no storage call.
    """

    #: ``_answered``: a storage failure already answered the request (a 503), so the session
    #: is not saved on the way out of it.
    __slots__ = ("_answered",)
    _answered: bool  # unset until a failure answers; read with getattr(..., False)

    @property
    def accessed(self) -> bool:
        """Whether the session was used; Flask sets it whenever ``flask.session`` is touched."""
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self._accessed = value

    @property
    def modified(self) -> bool:
        """Unsaved changes. Set it to ``True`` after changing a value in place (a nested list or
        dict), which the session cannot see, so the request saves it."""
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            self._touch()
        self._modified = value

    @property
    def new(self) -> bool:  # type: ignore[override]
        """Flask's name for :attr:`fresh`."""
        return self.fresh

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser: ``not Config.cookie_session_only``.

        Assigning it is accepted and ignored, so code written for Flask's own sessions
        (``session.permanent = True``) keeps working; the lifetime is the store's
        ``expiration`` or the session's :meth:`set_expiry`.
        """
        return not self._store.config.cookie_session_only

    @permanent.setter
    def permanent(self, value: bool) -> None:
        pass


def _failure_response(failure: Failure) -> Response:
    session = flask.request.environ.get(WSGI_KEY)
    if isinstance(session, FlaskSession):
        session._answered = True
    return flask.current_app.response_class(
        failure.body, status=failure.status, headers=failure.headers
    )


def _finisher() -> Finisher:
    """The finisher of the app's sessionkit interface (it names the backend in logs)."""
    interface = flask.current_app.session_interface
    if isinstance(interface, SessionkitInterface):
        return interface._finisher
    return Finisher(flask.current_app.extensions["sessionkit"])


def _on_failure(exc: Exception) -> Response:
    """Error handler: a storage failure raised by a view answers 503 (too large: 500)."""
    if not isinstance(exc, SessionKitError):  # registered for FAILURES only
        raise exc
    return _failure_response(_finisher().failure(exc))


class SessionkitInterface(SessionInterface):
    """Flask's session interface backed by a :class:`~sessionkit.Store`.

    ``open_session`` costs no storage call (the session loads on first use). ``save_session``
    saves, renews, and sets or expires the cookie as the WSGI middleware does; a storage
    failure there replaces the response with a 503 carrying no ``Set-Cookie``.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._finisher = Finisher(store)

    def open_session(self, app: flask.Flask, request: Request) -> FlaskSession:
        session = self.store._lazy_environ(request.environ, FlaskSession)
        if not isinstance(session, FlaskSession):
            raise SessionKitError(
                "the request already has a session from sessionkit.wsgi.SessionMiddleware; "
                "use init_app or the WSGI middleware, not both"
            )
        return session

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession) or getattr(session, "_answered", False):
            return
        finisher = self._finisher
        try:
            outcome = finisher.finish(session)
        except FAILURES as exc:
            _replace(response, finisher.failure(exc))
            return
        headers = response.headers
        if outcome.value is not None and finisher.header_name is not None:
            headers.add(finisher.header_name, outcome.value)
        if outcome.vary and finisher.vary is not None:
            if _has_vary(headers):
                response.vary.add(finisher.vary)  # merge into the view's own Vary
            else:
                headers.add("Vary", finisher.vary)  # the usual case, without parsing a HeaderSet


def _has_vary(headers: Headers) -> bool:
    """``"Vary" in headers`` without werkzeug's miss path, which raises and catches a
    ``BadRequestKeyError``, on every response that adds ``Vary`` (docs/performance.md)."""
    return any(name.lower() == "vary" for name, _ in headers)


def _replace(response: Response, failure: Failure) -> None:
    """Turn the app's response into ``failure`` in place (``save_session`` cannot return one)."""
    response.status = failure.status_line
    response.headers.clear()
    response.headers.extend(failure.headers)
    response.direct_passthrough = False
    response.set_data(failure.body)


def _server_error_handler(
    previous: Callable[[InternalServerError], Any] | None,
) -> Callable[[InternalServerError], Any]:
    """A 500 handler that answers a session failure as :func:`_on_failure` does.

    Flask sends an exception raised by an ``after_request`` hook (one that uses the session
    during an outage) straight to its 500 handling, past the handlers registered by class.
    Any other 500 goes to the handler the app had (or to Flask's own page).
    """

    def handler(error: InternalServerError) -> Any:
        original = error.original_exception
        if isinstance(original, SessionKitError) and isinstance(original, FAILURES):
            return _failure_response(_finisher().failure(original))
        return previous(error) if previous is not None else error

    return handler


def init_app(app: flask.Flask, store: Store) -> None:
    """Make ``flask.session`` a sessionkit session backed by ``store``.

    Also registers error handlers so a :class:`~sessionkit.StorageError` raised in a view or
    in an ``after_request`` hook answers 503 (and :class:`~sessionkit.SessionTooLarge` 500)
    with no cookie set. An app may register its own for those classes afterwards to override
    them; a 500 handler it registers afterwards takes over the ``after_request`` case too.
    """
    app.session_interface = SessionkitInterface(store)
    for exc in FAILURES:
        app.register_error_handler(exc, _on_failure)
    previous = app.error_handler_spec[None][500].get(InternalServerError)
    app.register_error_handler(InternalServerError, _server_error_handler(previous))
    app.extensions["sessionkit"] = store
