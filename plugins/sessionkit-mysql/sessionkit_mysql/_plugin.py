"""Entry point of the MySQL plugin: describes the backend; the drivers are imported only on open.

``storage=`` names the storage class as text: it is imported when a URL first asks for it.
"""

from __future__ import annotations

from sessionkit.storage import Backend, hookimpl


@hookimpl
def sessionkit_backends() -> list[Backend]:
    return [
        Backend(
            name="mysql",
            schemes=("mysql", "mariadb"),
            storage="sessionkit_mysql._storage:MySQLStorage",
            options="sessionkit_mysql._options:MySQLURLOptions",
            description="MySQL or MariaDB table; expiry on the server's clock (PyMySQL, aiomysql)",
        )
    ]
