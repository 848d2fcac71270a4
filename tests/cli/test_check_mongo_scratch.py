"""``sessionkit check --reset-scratch`` on MongoDB, as an operator runs it: the installed script
in a process of its own, on the Mongo test server. It checks ``reset`` on a scratch collection
of its own (``collection=skcheck_<hex>``), and must not leave that collection behind: ``reset``
empties a collection, so the check drops it afterwards (``MongoStorage.drop()``). What is left
is read back with plain pymongo, not through the plugin under test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pymongo
import pytest

pytestmark = pytest.mark.mongo

SCRIPT = Path(sys.executable).with_name("sessionkit")


def test_check_leaves_no_scratch_collection(mongo_url: str) -> None:
    database = pymongo.uri_parser.parse_uri(mongo_url)["database"] or "sessionkit"
    with pymongo.MongoClient(mongo_url) as client:
        before = {n for n in client[database].list_collection_names() if n.startswith("skcheck")}
        done = subprocess.run(
            [str(SCRIPT), "check", mongo_url, "--reset-scratch"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        reset = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("reset"))
        assert " ok " in reset and "collection=" in reset, reset
        after = {n for n in client[database].list_collection_names() if n.startswith("skcheck")}
    assert after == before
