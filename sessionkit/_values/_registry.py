"""The per-store registry: which classes a store admits, and the tagged codec that uses it."""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._faults import Circular, DecodeError, Refused, TooDeep, unsupported
from ._tags import DECODERS, LEAF_ENCODERS, int_limit
from ._text import SURROGATE, TAG, dumps_text, plain_decode, scanner, tagged

if TYPE_CHECKING:
    import cattrs

# ``._shapes`` and ``._paths`` import cattrs (about 30 ms, a sixth of importing sessionkit),
# which only registered classes and the error messages of refused values use: they are
# imported where those need them, so a process that stores built-in values never loads it.

__all__ = ["MAX_DEPTH", "TypeRegistry"]

MAX_DEPTH = 64
"""How deeply a session value may nest containers (lists, tuples, sets, dicts, registered
objects), the value itself being level 1. Far above what a session needs, and far below what
the JSON decoder's recursion can load back (each level is up to three levels of JSON)."""

_REGISTER_HINT = (
    "give it a type cattrs can rebuild: a built-in, an attrs class, dataclass or enum, a list, "
    "tuple, set or dict of those, X | None, a union, or Any"
)


class TypeRegistry:
    """Per-store registry of value types, with its own cattrs converter.

    Each :class:`~sessionkit.Store` owns one, so two stores (or two apps in one process) never
    see each other's registrations, and the global cattrs converter is never touched.
    """

    def __init__(self) -> None:
        # The cattrs converter is built on first need (see ``_converter``).
        self._made: cattrs.Converter | None = None
        self._making = threading.Lock()
        # One decoder per registry, built once: json.loads with options builds one per call.
        self._json_decode = scanner(json.JSONDecoder(object_hook=self.object_hook))
        self._int_digits, self._int_bits, self._int_bound = int_limit()
        self._by_name: dict[str, type] = {}
        self._name_of: dict[type, str] = {}
        # What a stored object's name loads as: its class, and the hook that structures it.
        self._loaders: dict[str, tuple[type, Callable[[Any, Any], Any]]] = {}
        keep = _leaf
        # Each encoder takes the value and its nesting level (the value given is level 1).
        self._encoders: dict[type, Callable[[Any, int], Any]] = {
            str: keep,
            int: self._encode_int,
            float: keep,
            bool: keep,
            type(None): keep,
            list: self._encode_list,
            dict: self._encode_dict,
            tuple: lambda v, d: tagged("tuple", self._encode_list(v, d)),
            set: lambda v, d: tagged("set", self._encode_list(v, d)),
            frozenset: lambda v, d: tagged("frozenset", self._encode_list(v, d)),
            **LEAF_ENCODERS,
        }

    @property
    def _converter(self) -> cattrs.Converter:
        """The registry's cattrs converter, built when first needed.

        Only registered classes (and the error path that places a refused value) use it, and
        building one costs more than the rest of a :class:`~sessionkit.Store` together (about
        0.7 ms: cattrs inspects the signature of each of its hook factories). A store whose
        sessions hold only built-in values never pays for it; one that registers types pays
        once, at the first ``register_type``. Built under a lock, so two threads asking at
        once share one converter and no registration can land on a converter then replaced.
        """
        made = self._made
        if made is None:
            with self._making:
                made = self._made
                if made is None:
                    from ._shapes import make_converter

                    made = self._made = make_converter()
        return made

    # -- registration -------------------------------------------------------------------------

    def register_type(self, cls: type, *, name: str | None = None) -> None:
        """Admit ``cls`` (an attrs class, a dataclass or an enum) as a session value type.

        ``name`` is what is stored to identify the class; it defaults to the class's
        ``module.QualName``. Give an explicit name to keep old sessions readable after moving
        or renaming the class. Registering the same class twice is harmless; two classes under
        one name is an error.

        A class whose fields cattrs cannot load back (a plain class, ...) raises ``TypeError``
        here, naming the field, rather than being stored and then lost.
        """
        if not isinstance(cls, type):
            raise TypeError(f"register_type() takes a class, got {cls!r}")
        if name is not None and (type(name) is not str or SURROGATE.search(name)):
            raise TypeError(f"register_type() name must be a str, got {name!r}")
        if issubclass(cls, enum.Enum):
            encode = self._enum_encoder()
            load: Callable[[Any, Any], Any] = _not_an_object
        elif attrs.has(cls) or dataclasses.is_dataclass(cls):
            load = self._check_loadable(cls)
            encode = self._object_encoder(cls)
        else:
            raise TypeError(
                f"register_type() accepts attrs classes, dataclasses and enums, not {cls.__qualname__}"
            )
        name = name or f"{cls.__module__}.{cls.__qualname__}"
        known = self._by_name.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"type name {name!r} is already registered for {known!r}")
        previous = self._name_of.get(cls)
        if previous is not None and previous != name:
            raise ValueError(f"{cls.__qualname__} is already registered as {previous!r}")
        self._by_name[name] = cls
        self._name_of[cls] = name
        self._loaders[name] = (cls, load)
        self._encoders[cls] = encode

    def is_registered(self, cls: type) -> bool:
        """Return whether ``cls`` was registered with :meth:`register_type`."""
        return cls in self._name_of

    def _check_loadable(self, cls: type) -> Callable[[Any, Any], Any]:
        """The structure hook of ``cls``; ``TypeError`` unless the converter can make one.

        cattrs builds a class's hooks, and with them the hooks of every field type, all the
        way down, when first asked for them, and fails then for a type it has no hook for;
        asking now moves that failure from the first load (a lost session) to here.
        """
        try:
            self._converter.get_unstructure_hook(cls)
            return self._converter.get_structure_hook(cls)
        except Exception as exc:
            field = self._culprit(cls)
            raise TypeError(
                f"register_type({cls.__qualname__}): {field}cannot be loaded back "
                f"({type(exc).__name__}: {exc}); {_REGISTER_HINT}"
            ) from exc

    def _culprit(self, cls: type) -> str:
        """``"field 'x' typed T "`` for the first field of ``cls`` the converter cannot
        structure."""
        from ._shapes import field_types

        for name, kind in field_types(cls):
            try:
                self._converter.get_structure_hook(kind)
            except Exception:
                shown = getattr(kind, "__qualname__", None) or repr(kind)
                return f"field {name!r} typed {shown} "
        return "a field "

    def _enum_encoder(self) -> Callable[[Any, int], Any]:
        def encode(member: enum.Enum, depth: int) -> Any:
            value = self._encode(member.value, depth + 1)
            return {TAG: "enum", "n": self._name_of[type(member)], "v": value}

        return encode

    def _object_encoder(self, cls: type) -> Callable[[Any, int], Any]:
        from ._shapes import CHECKING

        converter = self._converter
        unstructure = converter.get_unstructure_hook(cls)
        structure = converter.get_structure_hook(cls)

        def encode(obj: Any, depth: int) -> Any:
            if depth > MAX_DEPTH:
                raise self._too_deep(obj)
            token = CHECKING.set(True)
            try:
                raw = unstructure(obj)
                # What a load will do with it: a field holding something its annotation does
                # not admit (attrs does not check) fails here rather than at the next load.
                structure(raw, cls)
            except RecursionError:
                raise self._too_deep(obj) from None
            except Refused:
                raise
            except Exception as exc:
                raise Refused(
                    f"sessionkit cannot store this {cls.__qualname__}: it would not load back "
                    f"({type(exc).__name__}: {exc}); do its fields hold what they are "
                    "annotated with?"
                ) from exc
            finally:
                CHECKING.reset(token)
            try:  # The object and its field dict are one level.
                fields = self._encode_dict(raw, depth)
            except TooDeep:
                # The unstructured copy of a container never contains itself; the object may.
                if _contains_itself(obj):
                    raise self._too_deep(obj) from None
                raise
            return {TAG: "obj", "n": self._name_of[cls], "v": fields}

        return encode

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        """Turn ``value`` into a JSON-ready tree; raise ``TypeError`` for a type not admitted
        (naming where it sits inside ``value``), or for a value nested deeper than
        :data:`MAX_DEPTH` levels or containing itself."""
        try:
            return self._encode(value, 1)
        except Refused as exc:
            raise self._placed(value, exc, self._root(value)) from exc

    def encode_data(self, data: dict[str, Any]) -> Any:
        """:meth:`encode` for a session's whole data dict, whose values are each at level 1
        (as they were when ``set()`` checked them), so the dict adds no level."""
        try:
            return self._encode_dict(data, 0)
        except Refused as exc:
            raise self._placed(data, exc, "") from exc

    def _encode(self, value: Any, depth: int) -> Any:
        encoder = self._encoders.get(type(value))
        if encoder is None:
            raise unsupported(value)
        return encoder(value, depth)

    def _root(self, value: Any) -> str:
        return type(value).__qualname__ if type(value) in self._name_of else ""

    def _placed(self, value: Any, error: Refused, root: str) -> TypeError:
        """``error`` with the path of the part of ``value`` that caused it (the slow path)."""
        if isinstance(error, (TooDeep, Circular)):
            return error
        from ._paths import locate

        found = locate(self._check_at, value, Any, root)
        if found is None:
            return error
        path, culprit = found
        if isinstance(culprit, Refused):
            message = str(culprit)
        else:
            message = (
                f"sessionkit cannot store this {type(value).__qualname__}: it would not load "
                f"back ({type(culprit).__name__}: {culprit})"
            )
        return TypeError(f"{message} (at {path})" if path != root else message)

    def _check_at(self, value: Any, annotation: Any) -> None:
        """Encode ``value`` alone as it would be at a position declared ``annotation``."""
        from ._shapes import CHECKING

        converter = self._converter
        token = CHECKING.set(True)
        try:
            raw = converter.get_unstructure_hook(annotation)(value)
            converter.get_structure_hook(annotation)(raw, annotation)
        finally:
            CHECKING.reset(token)
        self._encode(raw, 1)

    def _too_deep(self, value: Any) -> TypeError:
        """The error for a container met below level :data:`MAX_DEPTH` (a slow path)."""
        if _contains_itself(value):
            return Circular(
                f"sessionkit cannot store a circular value: this {type(value).__qualname__} "
                "contains itself"
            )
        return TooDeep(
            f"sessionkit cannot store a value nested more than {MAX_DEPTH} levels deep "
            f"(a {type(value).__qualname__} at level {MAX_DEPTH + 1}): flatten it"
        )

    def _encode_int(self, value: int, _: int = 0) -> int:
        """``value`` itself, once it is known to fit the interpreter's int-to-text limit.

        ``json`` writes an int as its decimal text, and Python refuses to make text of an int
        longer than ``sys.get_int_max_str_digits()`` digits (a guard against quadratic-time
        conversions): such an int would be accepted by ``set()`` and fail at save time, in a
        later step, with a bare ``ValueError``. Only ints above a bit length that surely fits
        pay for the exact comparison, so ordinary ints cost one ``bit_length()``.
        """
        if value.bit_length() > self._int_bits and abs(value) >= self._int_bound:
            raise Refused(
                f"sessionkit cannot store an int of more than {self._int_digits} decimal digits "
                "(sys.get_int_max_str_digits()): store it as a str or a Decimal"
            )
        return value

    def _encode_list(self, values: Any, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise self._too_deep(values)
        encoders = self._encoders
        bits = self._int_bits
        out = []
        for v in values:
            t = type(v)
            if t is str or (t is int and v.bit_length() <= bits) or t is float:
                out.append(v)
            else:
                encoder = encoders.get(t)
                if encoder is None:
                    raise unsupported(v)
                out.append(encoder(v, depth + 1))
        return out

    def _encode_dict(self, mapping: dict[Any, Any], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self._too_deep(mapping)
        encoders = self._encoders
        bits = self._int_bits
        out: dict[str, Any] = {}
        for k, v in mapping.items():
            if type(k) is not str:
                raise Refused(
                    f"sessionkit dict keys must be str, got {type(k).__qualname__} key {k!r}"
                )
            t = type(v)
            if (
                t is str
                or (t is int and v.bit_length() <= bits)
                or t is bool
                or v is None
                or t is float
            ):
                out[k] = v
            else:
                encoder = encoders.get(t)
                if encoder is None:
                    raise unsupported(v)
                out[k] = encoder(v, depth + 1)
        if TAG in out:
            return tagged("dict", [[k, v] for k, v in out.items()])
        return out

    def dumps(self, tree: Any) -> bytes:
        """Serialise an encoded tree to compact UTF-8 JSON."""
        return dumps_text(tree).encode()

    #: :meth:`dumps` before the UTF-8 encoding, for a caller that wraps the text (the
    #: envelope, on every save): :func:`._text.dumps_text` itself, without a method's frame
    #: around it (see there for how lone surrogates travel).
    dumps_text = staticmethod(dumps_text)

    # -- decoding -----------------------------------------------------------------------------

    def object_hook(self, obj: dict[str, Any]) -> Any:
        """``json.loads`` hook that rebuilds tagged values (bottom-up, so children are done)."""
        tag = obj.get(TAG)
        if tag is None:
            return obj
        if tag == "obj" or tag == "enum":
            if obj.keys() != {TAG, "n", "v"}:
                raise DecodeError(f"malformed {tag} value")
            loader = self._loaders.get(obj["n"])
            if loader is None:
                raise DecodeError(f"stored type {obj['n']!r} is not registered")
            cls, structure = loader
            if tag == "enum":
                if not issubclass(cls, enum.Enum):
                    raise DecodeError(f"{obj['n']!r} is not an enum")
                return cls(obj["v"])
            if not isinstance(obj["v"], dict):
                raise DecodeError("malformed object value")
            return structure(obj["v"], cls)
        decoder = DECODERS.get(tag) if isinstance(tag, str) else None
        if decoder is None or obj.keys() != {TAG, "v"}:
            raise DecodeError(f"unknown or malformed tag {tag!r}")
        return decoder(obj["v"])

    def loads(self, payload: bytes) -> Any:
        """Parse bytes written by :meth:`dumps`; raise :class:`DecodeError` on any defect."""
        try:
            text = payload.decode()
            # Our encoder writes every tag as the literal '"$t"'; text without it holds plain
            # JSON only and skips the per-object Python hook.
            if '"$t"' not in text:
                return plain_decode(text)
            return self._json_decode(text)
        except DecodeError:
            raise
        except Exception as exc:  # corrupt JSON, bad base64, cattrs errors, ...
            raise DecodeError(f"{type(exc).__name__}: {exc}") from exc


def _leaf(value: Any, _: int) -> Any:
    return value


def _not_an_object(value: Any, _: Any) -> Any:
    raise DecodeError("an enum stored as an object")


def _contains_itself(value: Any) -> bool:
    """Whether ``value`` can be reached from its own items (iteratively: it may be deep)."""
    from ._shapes import field_types

    seen: set[int] = set()
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, (list, tuple, set, frozenset)):
            children = current
        elif attrs.has(type(current)) or dataclasses.is_dataclass(type(current)):
            fields = field_types(type(current))  # type: ignore[arg-type]  # classes hash
            children = [getattr(current, name, None) for name, _ in fields]
        else:
            continue
        for child in children:
            if child is value:
                return True
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return False
