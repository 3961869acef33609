"""The in-process bench harness serves a request as aeros' server does, end-of-request reports
included: a harness that dropped them would measure the metrics and the access log wrong."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.apps import make_aeros_app
from bench.bytecodes import count
from bench.catalog import BROWSER_FIELDS, FIELDS_VARIABLE, GZIP, load_fields
from bench.inprocess import new_loop, run_requests
from bench.layer_instructions import WARM, opcodes, serve

from aeros.middleware.request_id import _POOL_IDS
from aeros.server.http.protocol import HardenedHttpToolsProtocol


def test_in_process_requests_reach_the_metrics_as_served_ones_do() -> None:
    app = make_aeros_app(metrics=True)
    loop = new_loop()
    try:
        status = loop.run_until_complete(run_requests(app, "/json", [], 3))
    finally:
        loop.close()
    assert status == 200
    assert app.metrics_exporter is not None
    assert app.metrics_exporter.tally.take().requests() == {("GET", "/json", 200): 3}


def test_layer_count_harness_runs_each_layer_as_served() -> None:
    """bench.layer_instructions' child makes the layers do their work (a layer passed by
    would count nothing): every request reaches the metrics, and ids are drawn."""
    metrics = serve("metrics", 5)
    assert metrics.__self__.tally.take().requests() == {("GET", "/json", 200): WARM + 5}
    layer = serve("request-id", 5).__self__
    assert layer.trust is None
    # a batch was made and is part used (a count on a batch's end would leave it empty)
    assert (WARM + 5) % _POOL_IDS != 0
    assert next(layer.lines.batch, None) is not None


def test_opcode_counts_name_each_layers_own_steps() -> None:
    """bench.layer_instructions --opcodes: every traced request runs the layer's own code, and
    a layer's count is the stub's and more (a trace that missed the layer would read the same
    as the stub)."""
    stub, layer = opcodes("stub", 20), opcodes("request-id-trusted", 20)
    assert layer[("request_id.py", "__call__")] >= 20 * 10  # at least ten bytecodes a request
    assert layer[("request_id.py", "request_line")] > 0
    assert not any(file == "request_id.py" for file, _ in stub)
    assert sum(layer.values()) > sum(stub.values())


def test_opcode_counts_give_back_the_tracer_they_found() -> None:
    """The tracer in place before (coverage's under pytest-cov, a debugger's) is back after
    the count: a count that left none would end the coverage of every later test."""
    before = sys.gettrace()

    def outer(frame: Any, event: str, arg: Any) -> None:
        return None

    sys.settrace(outer)
    try:
        opcodes("stub", 3)
        found = sys.gettrace()
    finally:
        sys.settrace(before)
    assert found is outer


def test_per_function_profile_reads_calls_into_trampolines(tmp_path: Path) -> None:
    """bench.pyprofile: the inclusive cost of the calls into each trampoline address, per
    request from two runs, named by the perf map (a callgrind file written by hand)."""
    from bench.pyprofile import per_function

    def run(cost: int, calls: int) -> Path:
        out = tmp_path / f"callgrind.{cost}"
        out.write_text(
            "events: Ir\n"
            "fn=(1) py_trampoline_evaluator\n"
            "0 5\n"
            f"cfn=(2) 0x0000000000001000\ncalls={calls} 0\n0 {cost}\n"
            f"cfn=(2)\ncalls={calls} 0\n0 {cost}\n"  # a second call site, named once
            "cfn=(3) _PyEval_EvalFrameDefault\ncalls=1 0\n0 999\n"  # not a trampoline
            f"totals: {cost}\n"
        )
        return out

    perf_map = tmp_path / "perf.map"
    perf_map.write_text("1000 10 py::handle_request:/src/dispatch.py\n")
    rows = per_function((run(100, 2), perf_map), (run(500, 6), perf_map), requests=4)
    assert rows == [(200.0, 2.0, "handle_request:/src/dispatch.py")]


def test_served_bytecode_counts_cover_the_server_and_the_app() -> None:
    """bench.bytecodes counts only the traced requests, each the same: the bytecodes of the
    server's and the app's own functions per request, the same for twice the requests."""
    few = count("aeros", "/json", 50, 40, 4, frozenset({"_start_head"}))
    more = count("aeros", "/json", 50, 80, 4, frozenset())
    assert few["fastpath/dispatch.py:handle_request"] > 20
    assert more["fastpath/dispatch.py:handle_request"] == pytest.approx(
        few["fastpath/dispatch.py:handle_request"], rel=0.05
    )
    assert any(place.startswith("http/head.py:_start_head:") for place in few)  # by line
    assert "http/head.py:_start_head" in more
    assert 1000 < sum(more.values()) < 10_000


def _append_line() -> str:
    """Where the server's callback per field appends the field: run once per field."""
    lines, first = inspect.getsourcelines(HardenedHttpToolsProtocol.on_header)
    offset = next(i for i, line in enumerate(lines) if "self.headers.append(" in line)
    return f"http/protocol.py:on_header:{first + offset}"


def test_browser_fields_reach_every_served_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """--fields browser: each request of the load carries Host and a browser's twelve fields
    (the line that keeps a field runs 13 times as often as with Host alone), and
    Accept-Encoding is negotiated."""
    alone = count("aeros", "/json", 50, 40, 4, frozenset({"on_header"}))
    monkeypatch.setenv(FIELDS_VARIABLE, "browser")
    browser = count("aeros", "/json", 50, 40, 4, frozenset({"on_header"}))
    line = _append_line()
    # within 5 %: on 3.13 the line's count is not exactly one a call (13.3 measured), and a
    # field more or less would be 7.7 % away
    assert browser[line] / alone[line] == pytest.approx(1 + len(BROWSER_FIELDS), rel=0.05)
    assert "compression/negotiate.py:__call__" in browser
    assert "compression/negotiate.py:__call__" not in alone


def test_a_scenarios_own_field_replaces_the_browsers_of_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gzip scenario with --fields browser sends one Accept-Encoding, the scenario's."""
    monkeypatch.setenv(FIELDS_VARIABLE, "browser")
    fields = load_fields(GZIP)
    assert fields[0] == GZIP
    assert [f for f in fields if f.lower().startswith("accept-encoding:")] == [GZIP]
    assert len(fields) == len(BROWSER_FIELDS)
    assert load_fields(None) == BROWSER_FIELDS


class _Shadowed:
    value = 0  # a class attribute of the name every instance sets: never specialized

    def __init__(self) -> None:
        self.value = 1


class _Own:
    def __init__(self) -> None:
        self.value = 1


def _read_shadowed(item: Any) -> Any:
    return item.value


def _read_own(item: Any) -> Any:
    return item.value


def test_unspecialized_lists_the_loads_the_interpreter_refused(monkeypatch: Any) -> None:
    """bench.unspecialized lists a load run often and refused (an instance attribute that a
    class attribute shadows) and not the same load of an unshadowed attribute; before 3.13,
    whose dis shows no inline caches, it says so and stops."""
    import bench.unspecialized as unspecialized

    if sys.version_info < (3, 13):
        monkeypatch.setattr(sys, "argv", ["bench.unspecialized"])
        with pytest.raises(SystemExit, match=r"3\.13"):
            unspecialized.main()
        return
    shadowed, own = _Shadowed(), _Own()
    for _ in range(5000):
        _read_shadowed(shadowed)
        _read_own(own)
    here = unspecialized.refused(4, [_read_shadowed, _read_own])
    assert any("_read_shadowed LOAD_ATTR value" in line for line in here), here
    assert not any("_read_own" in line for line in here), here


def test_the_step_harness_runs_every_step_on_the_current_code() -> None:
    """``bench.inprocess --steps`` calls the lean path's own functions (``dispatch._view``
    among them): a change of their signature fails here, not in a benchmark run."""
    from bench.steps import measure_steps

    steps = measure_steps(make_aeros_app(), "json", 5, 1)
    assert {"request", "routing", "context", "view", "send", "layers", "total"} <= set(steps)
    assert steps["total"] > 0
