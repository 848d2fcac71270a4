"""The app config ``"sessionkit.django"`` in ``INSTALLED_APPS`` loads: it registers the
``sessionkit`` system checks, so a wrong setting is reported by ``manage.py check`` and at
every start-up, with the others Django reports (and ``check --deploy`` warns of sessions kept
in each process's memory)."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class SessionkitConfig(AppConfig):
    """sessionkit's Django app: no models, no migrations; its system checks."""

    name = "sessionkit.django"
    label = "sessionkit"
    verbose_name = "sessionkit"

    def ready(self) -> None:
        from ._checks import check_deploy, check_settings

        checks.register(check_settings, "sessionkit")
        checks.register(check_deploy, "sessionkit", deploy=True)
