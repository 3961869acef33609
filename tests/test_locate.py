"""Finding the app: ``module``, ``module:app``, ``module:create_app(...)``; any ASGI app serves."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quart import Quart

from aeros import WebServer
from aeros.cli import main
from aeros.locate import AppSpecError, import_app, is_asgi_app
from tests.support.cli import start_cli, stop_cli, wait_for

MODULES = {
    "factory": """
        from aeros import WebServer

        def create_app(name="default", *, debug=False):
            app = WebServer(__name__)
            app.config["NAME"] = name
            app.config["DEBUG_FLAG"] = debug

            @app.route("/")
            async def home():
                return f"factory {app.config['NAME']}"

            return app
    """,
    "makeapp": """
        from quart import Quart

        def helper(x):
            return x

        def make_app():
            return Quart(__name__)
    """,
    "application_mod": """
        from quart import Quart

        application = Quart(__name__)
    """,
    "single_quart": """
        from quart import Quart

        website = Quart(__name__)
        same_app = website

        @website.route("/")
        async def home():
            return "plain quart"
    """,
    "two_apps": """
        from quart import Quart

        first = Quart(__name__)
        second = Quart(__name__)
    """,
    "raw_asgi": """
        # a bare ASGI app that refuses the lifespan protocol, as many hand-written ones do
        async def app(scope, receive, send):
            assert scope["type"] == "http", "only HTTP"
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"raw asgi"})

        class Starlettish:
            async def __call__(self, scope, receive, send):
                await app(scope, receive, send)

        starlettish = Starlettish()
    """,
    "bad_factories": """
        def create_app():
            raise RuntimeError("database URL missing")

        def returns_dict():
            return {"not": "an app"}

        async def async_factory():
            return None

        def needs_args(config):
            return None

        not_an_app = 42
    """,
    "nothing_here": """
        VALUE = 1
    """,
}


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory holding the test app modules (imported fresh, forgotten after)."""
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.setattr(sys, "path", list(sys.path))  # import_app prepends the app dir
    for name in MODULES:
        sys.modules.pop(name, None)
    yield tmp_path
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        pytest.param("factory:create_app", "default", id="factory-name"),
        pytest.param("factory:create_app()", "default", id="factory-call"),
        pytest.param("factory:create_app('prod')", "prod", id="factory-literal-arg"),
        pytest.param("factory:create_app(name='kw', debug=True)", "kw", id="factory-kwargs"),
        pytest.param("factory", "default", id="module-finds-create_app"),
    ],
)
def test_locate_calls_factories(modules: Path, spec: str, name: str) -> None:
    """A factory named, called (literal arguments) or found by its name builds the app."""
    app = import_app(spec, str(modules))
    assert isinstance(app, WebServer)
    assert app.config["NAME"] == name
    assert app.config["DEBUG_FLAG"] is ("debug=True" in spec)


@pytest.mark.parametrize(
    ("spec", "attribute"),
    [
        pytest.param("makeapp", None, id="make_app"),
        pytest.param("application_mod", "application", id="application"),
        pytest.param("single_quart", "website", id="the-one-quart-app"),
        pytest.param("raw_asgi", "app", id="asgi-function-named-app"),
        pytest.param("raw_asgi:starlettish", "starlettish", id="asgi-instance"),
    ],
)
def test_locate_finds_any_asgi_app(modules: Path, spec: str, attribute: str | None) -> None:
    """'module' finds app / application / the one Quart app / make_app(); any ASGI app counts."""
    app = import_app(spec, str(modules))
    module = sys.modules[spec.partition(":")[0]]
    if attribute is None:
        assert isinstance(app, Quart)
    else:
        assert app is getattr(module, attribute)
    assert is_asgi_app(app)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("", "must be 'module', 'module:attribute'", id="empty"),
        pytest.param("factory:", "must be 'module', 'module:attribute'", id="no-attribute"),
        pytest.param("no_such_mod_xyz", "no module named 'no_such_mod_xyz'", id="no-module"),
        pytest.param("factory:missing", "module 'factory' has no attribute 'missing'", id="attr"),
        pytest.param(
            "bad_factories:create_app",
            "create_app() raised RuntimeError: database URL missing",
            id="factory-raises",
        ),
        pytest.param(
            "bad_factories:returns_dict()",
            "returns_dict() returned 'dict', not an ASGI app",
            id="factory-returns-dict",
        ),
        pytest.param("bad_factories:async_factory", "async_factory() is async", id="async-factory"),
        pytest.param(
            "bad_factories:needs_args",
            "the function 'needs_args', not an ASGI app",
            id="needs-args",
        ),
        pytest.param("bad_factories:not_an_app", "'int', not an ASGI app", id="int"),
        pytest.param(
            "factory:create_app(__import__('os').getcwd())",
            "factory arguments must be literals",
            id="no-eval",
        ),
        pytest.param("factory:create_app(**{})", "'**' is not allowed", id="double-star"),
        pytest.param("factory:1 + 2", "expected an attribute name", id="expression"),
        pytest.param("factory:create_app(", "is not an attribute name or a factory", id="syntax"),
        pytest.param(
            "bad_factories", "create_app() raised RuntimeError", id="found-factory-raises"
        ),
        pytest.param("nothing_here", "found no app in module 'nothing_here'", id="empty-module"),
        pytest.param(
            "two_apps", "several apps found (two_apps:first, two_apps:second)", id="several"
        ),
    ],
)
def test_locate_explains_what_it_cannot_serve(modules: Path, spec: str, message: str) -> None:
    """A spec that names no ASGI app is refused with a message saying why."""
    with pytest.raises(AppSpecError) as info:
        import_app(spec, str(modules))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_locate_never_evaluates_arguments(modules: Path) -> None:
    """Factory arguments are parsed as literals: a call inside them never runs."""
    marker = modules / "ran"
    with pytest.raises(AppSpecError):
        import_app(f"factory:create_app(open({str(marker)!r}, 'w'))", str(modules))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        pytest.param(
            "bad_factories:create_app",
            "aeros: error: app 'bad_factories:create_app': create_app() raised RuntimeError: "
            "database URL missing",
            id="factory-raises",
        ),
        pytest.param(
            "no_such_mod_xyz:app",
            "aeros: error: app 'no_such_mod_xyz:app': no module named 'no_such_mod_xyz' in ",
            id="no-module",
        ),
        pytest.param(
            "bad_factories:returns_dict",
            "aeros: error: app 'bad_factories:returns_dict': returns_dict() returned 'dict', "
            "not an ASGI app",
            id="not-asgi",
        ),
    ],
)
def test_main_exits_2_with_one_line(
    modules: Path, spec: str, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() turns an app it cannot serve into exit status 2 and one line on stderr."""
    assert main(["run", spec, "--app-dir", str(modules)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line)
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("spec", "body"),
    [
        pytest.param("factory:create_app('cli')", "factory cli", id="factory-call"),
        pytest.param("single_quart", "plain quart", id="plain-quart"),
        pytest.param("raw_asgi", "raw asgi", id="raw-asgi-without-lifespan"),
    ],
)
def test_cli_serves_factories_and_foreign_apps(modules: Path, spec: str, body: str) -> None:
    """aeros run serves a factory's app, a plain Quart app and a bare ASGI app over HTTP."""
    proc, url = start_cli(modules, spec, "--workers", "1", "--access-log-format", "common")
    try:
        response = wait_for(proc, lambda: httpx.get(url, timeout=2), lambda r: True)
    finally:
        out, err = stop_cli(proc)
    assert (response.status_code, response.text) == (200, body), err
    assert proc.returncode == 0, err
    assert f"aeros: serving on {url.rstrip('/')} (workers: 1" in err
    assert '"GET / HTTP/1.1" 200' in out  # aeros' access log, also for a foreign app
