"""A cycle class's own ``__init__`` checked against uvicorn's, and uvicorn's as the fallback.

:class:`~aeros.server.http.cycle.LeanCycle` sets its state in an ``__init__`` of its own, which
takes uvicorn's parameters by position and sets each attribute in one order (so that the
interpreter can specialize its loads). That is right only while it sets every attribute
uvicorn's ``RequestResponseCycle.__init__`` sets, with the same values. cycle.py asks
:func:`same_state` at import, and otherwise makes each cycle with :func:`uvicorns_init`:
uvicorn's constructor, then the first values of aeros' own state that it did not set.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

__all__ = ["first_values", "made", "parameters", "same_state", "uvicorns_init"]

States = tuple[dict[str, Any], dict[str, Any]]
"""The attributes of a cycle made by uvicorn's ``__init__``, then of one made by the class's."""


def parameters(cycle_class: type[RequestResponseCycle]) -> tuple[str, ...]:
    """The parameters of ``cycle_class.__init__`` in order, without ``self``."""
    return tuple(inspect.signature(cycle_class.__init__).parameters)[1:]


def made(cycle_class: type[RequestResponseCycle], **arguments: Any) -> States | None:
    """The state of a cycle made by uvicorn's ``__init__`` and of one made by
    ``cycle_class``'s, given ``arguments``; None if either fails (other parameters, slots)."""
    try:
        return vars(RequestResponseCycle(**arguments)), vars(cycle_class(**arguments))
    except Exception:
        return None


def first_values(cycle_class: type[RequestResponseCycle], names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes ``cycle_class``'s ``__init__`` (parameters ``names``) gives a new cycle
    that come from none of its arguments (uvicorn's first response state and aeros' own),
    with their values: made by the class alone, so they are known whatever uvicorn's
    ``__init__`` does with arguments."""
    arguments: dict[str, Any] = {name: object() for name in names}
    given = {id(value) for value in arguments.values()}
    state = vars(cycle_class(**arguments))
    return {
        name: value
        for name, value in state.items()
        if id(value) not in given and type(value) is not bytearray
    }


def same_state(states: States | None) -> bool:
    """Whether the class's ``__init__`` gave its cycle every attribute uvicorn's ``__init__``
    set, with the same values (``states``: :func:`made`, each argument a value of its own, so
    that one stored under another name shows)."""
    if states is None:
        return False
    theirs, ours = states
    return all(
        type(ours.get(name)) is bytearray
        if type(value) is bytearray
        else ours.get(name, same_state) == value
        for name, value in theirs.items()
    )


def uvicorns_init(names: tuple[str, ...], values: dict[str, Any]) -> Callable[..., None]:
    """An ``__init__`` for the class: uvicorn's, given the class's positional arguments by
    their names ``names``, then each of the class's first values (``values``,
    :func:`first_values`) that uvicorn's did not set."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        RequestResponseCycle.__init__(self, **dict(zip(names, args, strict=False)), **kwargs)
        state = vars(self)
        for name, value in values.items():
            if name not in state:
                setattr(self, name, value)

    return __init__
