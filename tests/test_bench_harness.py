"""The in-process bench harness serves a request as aeros' server does, end-of-request reports
included: a harness that dropped them would measure the metrics and the access log wrong."""

from __future__ import annotations

from bench.apps import make_aeros_app
from bench.inprocess import new_loop, run_requests
from bench.layer_instructions import WARM, serve

from aeros.middleware.request_id import _POOL_IDS


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
    assert next(layer.ids.batch, None) is not None
