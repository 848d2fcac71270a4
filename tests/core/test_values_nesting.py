"""Stored text nested deeper than any record sessionkit writes is refused before it is parsed
(``sessionkit._values.check_nesting``): the JSON parser recurses once per level, and a record
nested 100,000 deep would otherwise spend the interpreter's whole recursion budget.

The request-level promise (such a record is a lost session, and no finalizer run meanwhile
fails for want of stack) is in ``tests/security/test_14_unreadable_payloads.py``; the command
line's in ``tests/cli/test_stats.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit import Store
from sessionkit._values import MAX_DEPTH, MAX_NESTING, DecodeError, TypeRegistry, check_nesting
from tests.core._values_support import round_trip


def depth(value: Any) -> int:
    """How deep the arrays and objects of a parsed JSON value nest (iteratively)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        if isinstance(current, (list, dict)):
            deepest = max(deepest, level)
            items = current.values() if isinstance(current, dict) else current
            stack.extend((item, level + 1) for item in items)
    return deepest


# Strings full of what the scan must not mistake for structure: brackets, quotes, backslashes
# (so both of its ways of cutting strings out are taken), and text beyond ASCII.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ab\u00e9\u4e2d\U0001f600\n'), max_size=12)
leaves = st.none() | st.booleans() | st.integers() | tricky_text
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=12,
)


@given(
    inner=json_values,
    wraps=st.integers(min_value=MAX_NESTING - 8, max_value=MAX_NESTING + 2),
    as_bytes=st.booleans(),
    ascii_only=st.booleans(),
)
def test_check_nesting_refuses_exactly_the_text_nested_too_deep(
    inner: Any, wraps: int, as_bytes: bool, ascii_only: bool
) -> None:
    value = inner
    for n in range(wraps):  # lists and objects in turn, each holding a decoy string too
        value = [value, '"]]}'] if n % 2 else {'k"[': value, "q": '"{'}
    text = json.dumps(value, ensure_ascii=ascii_only)
    payload: str | bytes = text.encode() if as_bytes else text
    if depth(value) > MAX_NESTING:
        with pytest.raises(ValueError, match=f"nested more than {MAX_NESTING} levels deep"):
            check_nesting(payload)
    else:
        check_nesting(payload)


def test_a_record_nested_too_deep_is_a_decode_error_naming_why() -> None:
    registry = TypeRegistry()
    deep = b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(DecodeError, match=f"nested more than {MAX_NESTING} levels deep"):
        registry.loads(deep)
    at_the_limit = b"[" * MAX_NESTING + b"]" * MAX_NESTING
    assert depth(registry.loads(at_the_limit)) == MAX_NESTING


@pytest.mark.parametrize(
    "wrap",
    [lambda v: (v,), lambda v: {"$t": v}, lambda v: [v]],
    ids=["tuples (tagged: two levels of JSON each)", "dicts escaped (three each)", "lists"],
)
def test_the_deepest_value_set_accepts_stays_far_inside_the_limit(wrap: Any) -> None:
    """The deepest value ``set()`` takes, stored in its envelope and loaded back."""
    store = Store(storage="memory://")
    value: Any = 1
    for _ in range(MAX_DEPTH):
        value = wrap(value)
    assert round_trip(store, value) == value
    session = store.load(None)
    session["v"] = value
    session.save()
    raw = store.storage.get(store.storage_key(session.id))
    assert raw is not None
    assert MAX_DEPTH < depth(json.loads(raw)) < MAX_NESTING // 2
