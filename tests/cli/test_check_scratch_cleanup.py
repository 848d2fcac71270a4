"""``sessionkit check --reset-scratch`` on MongoDB and SQLite, as an operator runs it: the
installed script in a process of its own. It checks ``reset`` on a scratch namespace of its own
(``collection=skcheck_<hex>``, ``table=skcheck_<hex>``) and must not leave it behind: ``reset``
empties a collection or a table, so the check drops it afterwards (the storage's ``drop()``).
What is left is read back with plain pymongo and sqlite3, not through the plugin under test.
(PostgreSQL and MariaDB: ``test_sql_servers``.)
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pytest

SCRIPT = Path(sys.executable).with_name("sessionkit")


def _check(url: str, option: str) -> None:
    done = subprocess.run(
        [str(SCRIPT), "check", url, "--reset-scratch"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reset = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("reset"))
    assert " ok " in reset and f"{option}=" in reset, reset


@pytest.mark.mongo
def test_mongo_check_leaves_no_scratch_collection(mongo_url: str) -> None:
    # A database of this test's own: the test server may be shared (an external one named by
    # SESSIONKIT_TEST_MONGO_URL), and others' checks make scratch collections meanwhile.
    database = f"skscratch_{uuid.uuid4().hex[:12]}"
    url = urlunsplit(urlsplit(mongo_url)._replace(path=f"/{database}"))
    with pymongo.MongoClient(url) as client:
        try:
            client[database]["sessions"].insert_one({"_id": "kept"})
            _check(url, "collection")
            names = client[database].list_collection_names()
        finally:
            client.drop_database(database)
    assert names == ["sessions"]


def test_sqlite_check_leaves_no_scratch_table(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    _check(f"sqlite:///{path}", "table")
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert not [name for name in tables if name.startswith("skcheck")], tables
    assert "sessions" in tables  # the real table is there, untouched
