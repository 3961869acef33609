"""The in-process bench harness serves a request as aeros' server does, end-of-request reports
included: a harness that dropped them would measure the metrics and the access log wrong."""

from __future__ import annotations

from bench.apps import make_aeros_app
from bench.inprocess import new_loop, run_requests


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
