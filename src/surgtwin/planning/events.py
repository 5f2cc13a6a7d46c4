"""A tiny typed event system for the planning models (no Qt, no global bus, no singletons).

Each model owns an :class:`EventEmitter`; views subscribe with :meth:`EventEmitter.connect`.
An event fires only when a value really changes (NumPy-aware comparison, see
:func:`values_equal`), and :meth:`EventEmitter.batch` collects the events of several changes and
emits each changed field once at the end, as napari's evented models do.

Examples
--------
>>> emitter = EventEmitter()
>>> seen = []
>>> _ = emitter.connect(seen.append)
>>> emitter.emit("opacity", 1.0, 1.0)  # no change: no event
False
>>> with emitter.batch():
...     _ = emitter.emit("opacity", 1.0, 0.5)
...     _ = emitter.emit("opacity", 0.5, 0.3)
>>> [(e.name, e.old, e.new) for e in seen]
[('opacity', 1.0, 0.3)]
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["Event", "EventEmitter", "RecordCollection", "values_equal"]


@dataclass(frozen=True, eq=False)
class Event:
    """One change of a model.

    Attributes
    ----------
    name : str
        The field or collection that changed ("notes", "implants", "history").
    old, new : object
        The value before and after. For collections ``old`` is ``None`` when an item was added
        and ``new`` is ``None`` when it was removed.
    key : hashable, optional
        The item concerned, for collections (the structure or implant name).
    source : object, optional
        The model that emitted the event.
    """

    name: str
    old: Any
    new: Any
    key: Hashable | None = None
    source: Any = None

    @property
    def kind(self) -> str:
        """``"added"``, ``"removed"`` (collection items) or ``"changed"``."""
        if self.key is not None and self.old is None:
            return "added"
        if self.key is not None and self.new is None:
            return "removed"
        return "changed"

    def __repr__(self) -> str:
        key = f"[{self.key!r}]" if self.key is not None else ""
        return f"Event({self.name}{key} {self.kind})"


def values_equal(a: Any, b: Any) -> bool:
    """Whether two values are equal, also for NumPy arrays, containers and dataclasses.

    Arrays are equal when they have the same shape and elements (NaN equals NaN); dicts,
    lists, tuples and dataclass instances are compared element by element, so records holding
    arrays (an implant pose, a mesh) compare by value without raising.
    """
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape:
            return False
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:  # dtypes without NaN
            return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            return False
        return all(
            values_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


Callback = Callable[[Event], Any]


class EventEmitter:
    """Calls the connected callbacks with an :class:`Event` when a value really changes.

    Bound methods are held weakly, so a view that is deleted without disconnecting is not
    kept alive (it is dropped silently); plain functions and lambdas are held strongly.

    Parameters
    ----------
    source : object, optional
        The model owning this emitter, passed on as :attr:`Event.source`.
    """

    def __init__(self, source: Any = None):
        self._source = None if source is None else weakref.ref(source)
        self._callbacks: list[Callable[[], Callback | None]] = []
        self._depth = 0
        # (name, key) -> [first old, last new], in order of first change
        self._pending: dict[tuple[str, Hashable | None], list[Any]] = {}

    @property
    def source(self) -> Any:
        return None if self._source is None else self._source()

    # ------------------------------------------------------------------ subscribers

    def connect(self, callback: Callback) -> Callback:
        """Call ``callback(event)`` for every event; returns ``callback`` (usable as decorator)."""
        if inspect.ismethod(callback):
            ref: Callable[[], Callback | None] = weakref.WeakMethod(callback)
        else:

            def ref(cb: Callback = callback) -> Callback:
                return cb

        if callback not in self._live():
            self._callbacks.append(ref)
        return callback

    def disconnect(self, callback: Callback) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        self._callbacks = [r for r in self._callbacks if r() is not None and r() != callback]

    def _live(self) -> list[Callback]:
        out = []
        for ref in list(self._callbacks):
            cb = ref()
            if cb is None:
                self._callbacks.remove(ref)
            else:
                out.append(cb)
        return out

    @property
    def n_callbacks(self) -> int:
        """Number of connected (still alive) callbacks."""
        return len(self._live())

    # ------------------------------------------------------------------ emitting

    @property
    def batching(self) -> bool:
        """Whether a :meth:`batch` is open."""
        return self._depth > 0

    def emit(self, name: str, old: Any, new: Any, key: Hashable | None = None) -> bool:
        """Report that ``name`` (item ``key``) changed from ``old`` to ``new``.

        Returns
        -------
        bool
            False when ``old`` equals ``new`` (nothing is emitted), True otherwise (the event
            was sent, or queued until the open batch ends).
        """
        if self._depth:
            slot = self._pending.get((name, key))
            if slot is None:
                if values_equal(old, new):
                    return False
                self._pending[(name, key)] = [old, new]
            else:
                slot[1] = new
            return True
        if values_equal(old, new):
            return False
        self._send(Event(name, old, new, key, self.source))
        return True

    def _send(self, event: Event) -> None:
        for cb in self._live():
            cb(event)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect events and emit each changed (name, key) once when the outermost batch ends.

        A field changed and changed back within the batch emits nothing.
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                pending, self._pending = self._pending, {}
                for (name, key), (old, new) in pending.items():
                    if not values_equal(old, new):
                        self._send(Event(name, old, new, key, self.source))


T = TypeVar("T")


class RecordCollection(Mapping[str, T], Generic[T]):
    """Named records (anything with a ``name``) in order, emitting events keyed by name.

    ``add`` emits ``(name, None, item)`` (kind ``added``), ``remove`` ``(name, item, None)``
    (``removed``) and ``replace`` ``(name, old, new)`` (``changed``, only if they differ).

    Parameters
    ----------
    name : str
        The event name ("structures").
    record_type : type
        The class of the records.
    events : EventEmitter
        The emitter of the model owning the collection.
    """

    def __init__(self, name: str, record_type: type[T], events: EventEmitter):
        self.name = name
        self._type = record_type
        self._events = events
        self._items: dict[str, T] = {}

    def __getitem__(self, key: str) -> T:
        try:
            return self._items[key]
        except KeyError:
            raise KeyError(f"no {self._type.__name__.lower()} named {key!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<{self.name}: {', '.join(self._items)}>"

    def index(self, key: str) -> int:
        """Position of an item (its place in lists and files)."""
        return list(self._items).index(key)

    def add(self, item: T, index: int | None = None) -> None:
        """Add a record (at ``index``, default the end); its name must be new."""
        if not isinstance(item, self._type):
            raise TypeError(f"{self.name} holds {self._type.__name__} records, not {item!r}")
        if item.name in self._items:
            raise ValueError(f"the plan has a {self._type.__name__.lower()} {item.name!r}")
        items = list(self._items.items())
        items.insert(len(items) if index is None else index, (item.name, item))
        self._items = dict(items)
        self._events.emit(self.name, None, item, key=item.name)

    def remove(self, key: str) -> T:
        """Remove and return a record."""
        item = self[key]
        del self._items[key]
        self._events.emit(self.name, item, None, key=key)
        return item

    def replace(self, item: T) -> T:
        """Put a changed record in place of the one with the same name; returns the old one."""
        old = self[item.name]
        if not isinstance(item, self._type):
            raise TypeError(f"{self.name} holds {self._type.__name__} records, not {item!r}")
        self._items[item.name] = item
        self._events.emit(self.name, old, item, key=item.name)
        return old
