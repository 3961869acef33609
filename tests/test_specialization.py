"""The request path's code stays specializable by CPython's adaptive interpreter.

CPython (3.11 to 3.13) compiles ``name.method(...)`` as a plain attribute load when ``name``
was bound by ``from ... import`` (the compiler takes it for a module): on an object that is
not a module that load is never specialized and makes a bound method each call. The request
path binds such methods once (``_set_app_ctx = _cv_app.set``); this scan finds any call that
slipped back, in 3.13's layout (``LOAD_GLOBAL x; LOAD_ATTR m; PUSH_NULL``) and in 3.11's and
3.12's (``LOAD_GLOBAL NULL + x; LOAD_ATTR m``).
"""

from __future__ import annotations

import dis
import importlib
import pkgutil
import types
from collections.abc import Iterator

from bench.unspecialized import code_objects

import aeros

# on the request path
HOT = (
    "aeros.compression.",
    "aeros.fastpath.",
    "aeros.headers",
    "aeros.logging.access",
    "aeros.logging.context",
    "aeros.metrics.layer",
    "aeros.middleware.",
    "aeros.misc",
    "aeros.response_cache.",
    "aeros.server.http.",
    "aeros.stack",
    "aeros.whole_response",
)
# one of these two imports, by Quart's version (0.23's unified context or 0.22's split one)
BY_QUART = {"aeros.fastpath.ctx_split", "aeros.fastpath.ctx_unified"}
# calls that run only off the request's common path
COLD = {
    "appcontext_pushed.send_async",  # only with receivers of Quart's signals
    "appcontext_popped.send_async",
    "request_started.send_async",
    "request_finished.send_async",
    "HEADER_RE.search",  # only for a header pair not seen before
    "HEADER_VALUE_RE.search",
}


def _attribute_calls(module: types.ModuleType) -> Iterator[str]:
    """``name.method`` of each call compiled as a plain attribute load on a global that is
    neither a module nor a class."""
    path = module.__file__
    assert path is not None
    with open(path, encoding="utf-8") as source:
        top = compile(source.read(), path, "exec")
    for code in code_objects(top):
        steps = list(dis.get_instructions(code))
        for owner, load, push in zip(steps, steps[1:], [*steps[2:], None], strict=False):
            if (
                owner.opname == "LOAD_GLOBAL"
                and load.opname == "LOAD_ATTR"
                and "NULL|self" not in load.argrepr
                and (
                    (push is not None and push.opname == "PUSH_NULL")  # 3.13
                    or owner.argrepr.startswith("NULL + ")  # 3.11, 3.12
                )
            ):
                value = vars(module).get(owner.argval)
                if value is not None and not isinstance(value, (types.ModuleType, type)):
                    yield f"{owner.argval}.{load.argval}"


def test_no_method_call_on_a_from_imported_object_in_the_request_path() -> None:
    found = []
    hot = [
        info.name
        for info in pkgutil.walk_packages(aeros.__path__, "aeros.")
        if info.name.startswith(HOT) and not info.ispkg
    ]
    assert set(hot) >= BY_QUART
    assert "aeros.middleware.request_id" in hot
    scanned = set()
    for name in hot:
        try:
            module = importlib.import_module(name)
        except ImportError:
            if name in BY_QUART:  # the other Quart version's context
                continue
            raise
        scanned.add(name)
        found += [f"{name}: {call}" for call in _attribute_calls(module) if call not in COLD]
    assert scanned & BY_QUART
    assert found == []
