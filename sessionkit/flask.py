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

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import flask
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.exceptions import InternalServerError

from ._csrf import DEFAULT_FIELD, DEFAULT_HEADER, FORBIDDEN_BODY, UNSAFE_METHODS
from ._errors import SessionKitError
from ._finish import FAILURES, ErrorHook, Failure, Finisher
from ._id_lookup import WSGI_KEY
from ._session import LAZY, PENDING, Session
from ._skip import skipper
from ._store import Store

if TYPE_CHECKING:
    from flask.wrappers import Request, Response
    from werkzeug.datastructures import Headers

    from ._envelope import Record

__all__ = ["FlaskSession", "SessionkitInterface", "SkippedSession", "init_app"]


class FlaskSession(Session, SessionMixin):
    """A :class:`~sessionkit.Session` with the attributes Flask and its extensions expect.

    Loaded lazily: the storage is read at the first use of the session's data, so a view that
    never uses ``flask.session`` costs no storage call.
    """

    #: ``_answered``: a storage failure already answered the request (a 503), so the session
    #: is not saved on the way out of it. ``_permanent``: ``permanent = True`` was assigned
    #: before the session was read (see :attr:`permanent`).
    __slots__ = ("_answered", "_permanent")
    _answered: bool  # unset until a failure answers; read with getattr(..., False)
    _permanent: bool  # unset until assigned; read with getattr(..., False)

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
        """Whether the cookie outlives the browser (Flask's meaning).

        ``session.permanent = False`` is ``set_expiry(timedelta(0))``: the cookie carries no
        ``Max-Age`` and the server still ends the session after ``expiration``; it is stored
        with the session. ``True`` undoes that (the lifetime is the store's ``expiration``
        or the session's :meth:`set_expiry`); assigned before the session was read (the
        usual ``before_request`` hook), it costs no storage call, and is applied if the
        session, once read, was a browser session. ``cookie_session_only`` makes every
        session end with the browser, whatever is assigned.
        """
        return not self.expire_at_browser_close

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if not value:
            self._touch()
            if not self._browser:
                self.set_expiry(timedelta(0))
        elif self._state is PENDING:
            self._permanent = True
        elif self._browser:
            self._end_with_browser(False)

    def _end_with_browser(self, browser: bool) -> None:
        self._touch()
        self._browser = browser
        self._modified = True

    def _apply(
        self, session_id: str, record: Record | None, now: float, raw: bytes | None = None
    ) -> None:
        super()._apply(session_id, record, now, raw)
        if self._browser and getattr(self, "_permanent", False):
            self._end_with_browser(False)


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
    return _failure_response(_finisher().failure(exc, request=flask.request))


class SkippedSession(NullSession):
    """``flask.session`` on a route excluded from sessions (``init_app(skip=..., exclude=...)``):
    empty, and writing to it raises, naming why (Flask's own null session blames a missing
    ``SECRET_KEY``, which sessionkit does not use)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise SessionKitError(
            f"{flask.request.path} is excluded from sessions (init_app's skip or exclude): "
            "it has no session to write to"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _refuse


def _flask_path(request: Request) -> str:
    return request.path


class SessionkitInterface(SessionInterface):
    """Flask's session interface backed by a :class:`~sessionkit.Store`.

    ``open_session`` costs no storage call (the session loads on first use). ``save_session``
    saves, renews, and sets or expires the cookie as the WSGI middleware does; a storage
    failure there replaces the response with a 503 carrying no ``Set-Cookie``.

    ``skip`` (a function of the Flask request) and ``exclude`` (regular expressions searched
    in ``request.path``) name routes left alone: their ``flask.session`` is a
    :class:`SkippedSession`, and nothing is read, written or sent.
    """

    def __init__(
        self,
        store: Store,
        *,
        skip: Callable[[Request], bool] | None = None,
        exclude: str | Iterable[str] | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.store = store
        self._finisher = Finisher(store, on_error)
        self._skip = skipper(skip, exclude, _flask_path)

    def open_session(self, app: flask.Flask, request: Request) -> FlaskSession | SkippedSession:
        if self._skip is not None and self._skip(request):
            return SkippedSession()
        session = self.store._session_for(False, request.environ, LAZY, FlaskSession)
        if not isinstance(session, FlaskSession):
            raise SessionKitError(
                "the request already has a session from sessionkit.wsgi.SessionMiddleware; "
                "use init_app or the WSGI middleware, not both"
            )
        return session

    def is_null_session(self, obj: object) -> bool:
        """Flask's question before every ``save_session``. Its own answer is an ``isinstance``
        against :class:`~flask.sessions.NullSession`, a ``MutableMapping``: the ABC's check,
        in Python, on every response. A :class:`FlaskSession` is never one, and its exact
        type says so at once."""
        return type(obj) is not FlaskSession and super().is_null_session(obj)

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession) or getattr(session, "_answered", False):
            return
        finisher = self._finisher
        try:
            outcome = finisher.finish(session, flask.request.environ)
        except FAILURES as exc:
            _replace(response, finisher.failure(exc, request=flask.request))
            return
        headers = response.headers
        if outcome.value is not None and finisher.header_name is not None:
            headers.add(finisher.header_name, outcome.value)
        for name, value in outcome.more:  # a chain's other carriers
            headers.add(name, value)
        if outcome.vary:
            if _has_vary(headers):
                for vary in finisher.varies:
                    response.vary.add(vary)  # merge into the view's own Vary
            else:  # the usual case, without parsing a HeaderSet
                headers.add("Vary", ", ".join(finisher.varies))


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
            return _failure_response(_finisher().failure(original, request=flask.request))
        return previous(error) if previous is not None else error

    return handler


def init_app(
    app: flask.Flask,
    store: Store,
    *,
    skip: Callable[[Request], bool] | None = None,
    exclude: str | Iterable[str] | None = None,
    on_error: ErrorHook | None = None,
    csrf: bool = False,
) -> None:
    """Make ``flask.session`` a sessionkit session backed by ``store``.

    ``csrf=True`` rejects POST, PUT, PATCH and DELETE requests without the session's CSRF
    token (the ``X-CSRF-Token`` header or a ``csrf_token`` form field) with a 403, and gives
    templates ``csrf_token()`` (see :meth:`Session.csrf_token`).

    ``skip`` and ``exclude`` name routes that get no session (see :class:`SessionkitInterface`);
    ``on_error(request, error)`` returns the :class:`~sessionkit.ErrorResponse` (body and
    headers) of the 503 a storage failure answers, with no ``Set-Cookie`` whatever it returns.

    Also registers error handlers so a :class:`~sessionkit.StorageError` raised in a view or
    in an ``after_request`` hook answers 503 (and :class:`~sessionkit.SessionTooLarge` 500)
    with no cookie set. An app may register its own for those classes afterwards to override
    them; a 500 handler it registers afterwards takes over the ``after_request`` case too.
    """
    app.session_interface = SessionkitInterface(
        store, skip=skip, exclude=exclude, on_error=on_error
    )
    for exc in FAILURES:
        app.register_error_handler(exc, _on_failure)
    previous = app.error_handler_spec[None][500].get(InternalServerError)
    app.register_error_handler(InternalServerError, _server_error_handler(previous))
    app.extensions["sessionkit"] = store
    if csrf:
        app.before_request(_csrf_guard)
        app.jinja_env.globals["csrf_token"] = _template_csrf_token


def _template_csrf_token() -> str:
    session = flask.session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(session, FlaskSession):
        raise SessionKitError(f"{flask.request.path} has no session, and so no CSRF token")
    return session.csrf_token()


def _csrf_guard() -> Response | None:
    """``before_request`` of ``init_app(csrf=True)``: a 403 for an unsafe request without the
    session's token. Routes excluded from sessions are excluded from this check too."""
    request = flask.request
    if request.method not in UNSAFE_METHODS:
        return None
    session = flask.session._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(session, FlaskSession):
        return None
    tokens = request.headers.getlist(DEFAULT_HEADER)
    if not tokens:
        tokens = request.form.getlist(DEFAULT_FIELD)
    if session.check_csrf(tokens[0] if len(tokens) == 1 else None):
        return None
    return flask.current_app.response_class(
        FORBIDDEN_BODY, status=403, content_type="text/plain; charset=utf-8"
    )
