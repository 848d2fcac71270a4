"""The class a plugin's tests subclass: every check, gathered."""

from __future__ import annotations

from ._contract import ContractChecks
from ._principals import PrincipalChecks
from ._promises import AsyncLoopChecks, CleanupAndTtlChecks, FaultChecks, RaceChecks, UrlChecks

__all__ = ["StorageConformance"]


class StorageConformance(
    ContractChecks,
    FaultChecks,
    RaceChecks,
    AsyncLoopChecks,
    UrlChecks,
    CleanupAndTtlChecks,
    PrincipalChecks,
):
    """Subclass in a test module as ``class TestMyStorage(StorageConformance)`` and implement
    :meth:`make_storage`.

    The subclass inherits every test of the contract. Set :attr:`clock_injectable` when the
    storage takes every TTL decision from the ``clock`` it is given: the suite then moves a
    :class:`FakeClock` instead of sleeping, and its state machine exercises expiry. Set
    :attr:`conditional` to ``False`` when the storage has no ``replace``/``areplace``, and
    :attr:`atomic` to ``True`` when it has ``take`` and ``replace_if`` (an
    :class:`~sessionkit.AtomicStorage`), and :attr:`creating` to ``True`` when it has
    ``create`` (a :class:`~sessionkit.CreatingStorage`): the suite then checks those too.

    The stricter checks need three more answers, and fail saying so when they are missing:
    :meth:`make_broken_storage` (or :attr:`no_driver_faults`, the reason there is no driver
    that can fail), :attr:`bad_urls` (or :attr:`takes_no_options`), and :meth:`storage_url`
    with :attr:`processes_share_storage` for the two-process races. Give
    :meth:`drop_namespace` when a namespace leaves a table or a collection behind.
    """
