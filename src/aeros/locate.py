"""Find the app a command line names: ``module``, ``module:app`` or ``module:create_app(...)``.

The rules are Flask's and Quart's (``flask --app``, ``quart run``):

- ``module:name`` takes the attribute (dotted for nested ones). When it is a factory (a function
  callable without arguments) rather than an app, it is called.
- ``module:factory(arg, key=value)`` calls the factory with literal arguments; the text is parsed
  with :mod:`ast` and only literals are accepted (nothing is evaluated).
- ``module`` alone looks for ``app`` or ``application``, then for the one Quart app among the
  module's names, then for a ``create_app`` or ``make_app`` factory.

Any ASGI app is accepted (an ``aeros.WebServer``, a plain Quart app, a Starlette app, an
``async def app(scope, receive, send)``); aeros' server runs all of them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

__all__ = ["AppSpecError", "import_app", "is_asgi_app"]

_APP_NAMES = ("app", "application")
_FACTORY_NAMES = ("create_app", "make_app")


class AppSpecError(Exception):
    """The app spec could not be resolved to an ASGI app; the message says why."""


def is_asgi_app(obj: Any) -> bool:
    """Whether ``obj`` looks like an ASGI application (an async callable taking 3 arguments).

    An instance counts when its ``__call__`` is ``async`` (Quart, Starlette, middleware);
    a class, a module or a factory taking no arguments does not.
    """
    if inspect.isclass(obj) or inspect.ismodule(obj) or not callable(obj):
        return False
    target = obj if inspect.isroutine(obj) else type(obj).__call__
    if not inspect.iscoroutinefunction(target):
        return False
    try:
        inspect.signature(obj).bind(object(), object(), object())
    except (TypeError, ValueError):
        return False
    return True


def import_app(spec: str, app_dir: str = ".") -> Any:
    """Import the module ``spec`` names and return its ASGI app (see the module docstring).

    Args:
        spec: ``module``, ``module:attribute`` or ``module:factory(args)``.
        app_dir: directory put first on ``sys.path`` before importing.

    Raises:
        AppSpecError: the spec is malformed, the module does not exist, the attribute is
            missing, the factory raised, or what was found is not an ASGI app. Errors raised
            while the module itself is imported are left alone: they are the app's bugs,
            with their traceback.
    """
    module_name, colon, expression = spec.partition(":")
    module_name, expression = module_name.strip(), expression.strip()
    if not module_name or (colon and not expression):
        raise AppSpecError(
            f"app {spec!r} must be 'module', 'module:attribute' or 'module:factory()', "
            "e.g. 'myproject.web:app'"
        )
    app_path = str(Path(app_dir).resolve())
    if app_path not in sys.path:
        sys.path.insert(0, app_path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing != module_name and not module_name.startswith(missing + "."):
            raise  # a module the app imports is missing: the app's traceback says which
        raise AppSpecError(f"app {spec!r}: no module named {module_name!r} in {app_path}") from exc
    if not expression:
        return _find_app(spec, module)
    return _resolve(spec, module, expression)


def _resolve(spec: str, module: Any, expression: str) -> Any:
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppSpecError(
            f"app {spec!r}: {expression!r} is not an attribute name or a factory call"
        ) from None
    if isinstance(node, ast.Call):
        name = _dotted(spec, node.func)
        args, kwargs = _literal_arguments(spec, node)
        factory = _attribute(spec, module, name)
        if not callable(factory):
            raise AppSpecError(f"app {spec!r}: {name!r} is {_kind(factory)}, not a factory")
        return _call_factory(spec, name, factory, args, kwargs)
    name = _dotted(spec, node)
    found = _attribute(spec, module, name)
    if is_asgi_app(found):
        return found
    if _is_factory(found):
        return _call_factory(spec, name, found, [], {})
    raise AppSpecError(
        f"app {spec!r}: {name!r} is {_kind(found)}, not an ASGI app "
        "(an aeros.WebServer, a Quart app, any ASGI callable) or a factory returning one"
    )


def _dotted(spec: str, node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(spec, node.value)}.{node.attr}"
    raise AppSpecError(f"app {spec!r}: expected an attribute name, got {ast.unparse(node)!r}")


def _literal_arguments(spec: str, call: ast.Call) -> tuple[list[Any], dict[str, Any]]:
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except ValueError:
        raise AppSpecError(
            f"app {spec!r}: factory arguments must be literals (strings, numbers, True/False/"
            "None, lists, dicts)"
        ) from None
    if any(kw.arg is None for kw in call.keywords):
        raise AppSpecError(f"app {spec!r}: '**' is not allowed in factory arguments")
    return args, kwargs


def _attribute(spec: str, module: Any, name: str) -> Any:
    obj = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppSpecError(
                f"app {spec!r}: module {module.__name__!r} has no attribute {name!r}"
            ) from None
    return obj


def _is_factory(obj: Any) -> bool:
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return False
    try:
        inspect.signature(obj).bind()
    except TypeError:
        return False
    return True


def _call_factory(
    spec: str, name: str, factory: Any, args: list[Any], kwargs: dict[str, Any]
) -> Any:
    try:
        app = factory(*args, **kwargs)
    except Exception as exc:
        detail = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
        raise AppSpecError(f"app {spec!r}: {name}() raised {reason}") from exc
    if inspect.isawaitable(app):
        if inspect.iscoroutine(app):
            app.close()  # never awaited: silence "coroutine was never awaited"
        raise AppSpecError(f"app {spec!r}: {name}() is async; a factory must return the app")
    if not is_asgi_app(app):
        raise AppSpecError(
            f"app {spec!r}: {name}() returned {_kind(app)}, not an ASGI app "
            "(an aeros.WebServer, a Quart app, any ASGI callable)"
        )
    return app


def _find_app(spec: str, module: Any) -> Any:
    for name in _APP_NAMES:
        found = getattr(module, name, None)
        if is_asgi_app(found):
            return found
    quart_apps = _quart_apps(module)
    if len(quart_apps) == 1:
        return next(iter(quart_apps.values()))
    if len(quart_apps) > 1:
        names = ", ".join(f"{module.__name__}:{name}" for name in sorted(quart_apps))
        raise AppSpecError(f"app {spec!r}: several apps found ({names}); name the one to serve")
    for name in _FACTORY_NAMES:
        factory = getattr(module, name, None)
        if _is_factory(factory):
            return _call_factory(spec, name, factory, [], {})
    raise AppSpecError(
        f"app {spec!r}: found no app in module {module.__name__!r} (looked for 'app', "
        "'application', a Quart app, 'create_app()', 'make_app()'); name it as 'module:attribute'"
    )


def _quart_apps(module: Any) -> dict[str, Any]:
    from quart import Quart

    found = {name: value for name, value in vars(module).items() if isinstance(value, Quart)}
    # one app bound to several names is still one app
    unique = {id(value): name for name, value in found.items()}
    return {name: found[name] for name in unique.values()}


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return f"the class {obj.__name__!r}"
    if inspect.isroutine(obj):
        return f"the function {getattr(obj, '__qualname__', obj)!r}"
    return f"{type(obj).__name__!r}"
