"""Codecs, Accept-Encoding negotiation and configuration: units, no server."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aeros import Br, Compress, ConfigurationError, Gzip, WebServer, Zstd
from aeros.compression import (
    DEFAULT_MIMETYPES,
    Negotiator,
    codecs_from_config,
    negotiate,
    parse_accept_encoding,
    resolve_codecs,
)
from tests.support.compression import StreamDecoder, decode

GZIP, BR, ZSTD = Gzip(), Br(), Zstd()
ALL = (ZSTD, BR, GZIP)
BODY = b'{"items": [' + b", ".join(b'{"id": %d, "name": "item"}' % i for i in range(200)) + b"]}"


@pytest.mark.parametrize("codec", [GZIP, BR, ZSTD], ids=lambda c: c.name)
def test_codec_round_trips_whole_and_streamed(codec: Any) -> None:
    """A codec's one-shot and streaming output decode to the original body."""
    assert decode(codec.name, codec.compress(BODY)) == BODY
    encoder, decoder = codec.encoder(), StreamDecoder(codec.name)
    got = b""
    for part in (BODY[:100], BODY[100:2000], BODY[2000:]):
        got += decoder.feed(encoder.compress(part) + encoder.flush())
        assert BODY.startswith(got)
        assert len(got) >= len(part)  # flushed: everything fed so far is decodable now
    got += decoder.feed(encoder.finish())
    assert got == BODY


def test_codec_defaults_match_the_seed() -> None:
    """gzip level 2, 500 bytes, the seed's mimetypes plus the obvious text-like ones."""
    assert (GZIP.level, GZIP.min_size) == (2, 500)
    seed = {"text/plain", "text/html", "text/css", "text/scss", "text/xml"}
    seed |= {"application/json", "application/javascript", "image/svg+xml", "application/xml"}
    assert seed <= set(DEFAULT_MIMETYPES)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        pytest.param(b"application/json", True, id="exact"),
        pytest.param(b"Application/JSON; charset=utf-8", True, id="case-and-params"),
        pytest.param(b"application/problem+json", True, id="json-suffix"),
        pytest.param(b"application/atom+xml", True, id="xml-suffix"),
        pytest.param(b"image/svg+xml", True, id="svg"),
        pytest.param(b"image/png", False, id="png"),
        pytest.param(b"application/octet-stream", False, id="octet"),
        pytest.param(b"garbage", False, id="no-slash"),
    ],
)
def test_codec_accepts_text_like_mimetypes(content_type: bytes, expected: bool) -> None:
    """Default mimetypes: exact entries, parameters ignored, +json/+xml suffixes."""
    assert GZIP.accepts(content_type) is expected


def test_codec_mimetypes_type_wildcard() -> None:
    """A 'type/*' entry matches the whole type and nothing else."""
    codec = Gzip(mimetypes=["text/*"])
    assert codec.accepts(b"text/anything")
    assert not codec.accepts(b"application/json")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        pytest.param(lambda: Gzip(level=0), "from 1 to 9", id="gzip-level-low"),
        pytest.param(lambda: Gzip(level=10), "from 1 to 9", id="gzip-level-high"),
        pytest.param(lambda: Gzip(level=True), "must be an integer", id="gzip-level-bool"),
        pytest.param(lambda: Br(level=12), "from 0 to 11", id="br-level"),
        pytest.param(lambda: Zstd(level=23), "from 1 to 22", id="zstd-level"),
        pytest.param(lambda: Gzip(min_size=-1), ">= 0", id="min-size"),
        pytest.param(lambda: Gzip(mimetypes="text/html"), "list of mimetypes", id="mimetypes-str"),
        pytest.param(lambda: Gzip(mimetypes=["html"]), "'type/subtype'", id="mimetype-bad"),
    ],
)
def test_codec_config_refused_with_allowed_range(factory: Any, message: str) -> None:
    """Invalid codec settings raise ConfigurationError naming what is allowed."""
    with pytest.raises(ConfigurationError, match=message):
        factory()


def test_codec_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Br() / Zstd() without their library say which extra to install."""
    monkeypatch.setitem(sys.modules, "brotli", None)  # None in sys.modules: ImportError
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'aeros\[brotli\]'"):
        Br()
    with pytest.raises(ConfigurationError, match=r"pip install 'aeros\[zstd\]'"):
        Zstd()


def test_codec_frozen_and_hashable() -> None:
    """Codecs are frozen values: equal settings compare equal; fields cannot be reassigned."""
    assert Gzip(level=3) == Gzip(level=3)
    assert hash(Gzip(level=3)) == hash(Gzip(level=3))
    with pytest.raises(AttributeError):
        GZIP.level = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"gzip", "gzip", id="gzip"),
        pytest.param(b"x-gzip", "gzip", id="x-gzip-alias"),
        pytest.param(b"gzip, deflate, br, zstd", "zstd", id="browser-server-order"),
        pytest.param(b"br;q=1.0, gzip;q=0.8", "br", id="qvalues"),
        pytest.param(b"zstd;q=0.5, gzip", "gzip", id="higher-q-wins"),
        pytest.param(b"gzip;q=0, br", "br", id="q0-refuses"),
        pytest.param(b"gzip;q=0", None, id="only-refused"),
        pytest.param(b"GZIP;Q=0.5", "gzip", id="case-insensitive"),
        pytest.param(b"*", "zstd", id="star"),
        pytest.param(b"*;q=0.5, zstd;q=0", "br", id="star-minus-refused"),
        pytest.param(b"*;q=0", None, id="star-q0"),
        pytest.param(b"identity", None, id="identity-only"),
        pytest.param(b"gzip;q=0.5, identity", None, id="identity-preferred"),
        pytest.param(b"identity;q=0, gzip;q=0.1", "gzip", id="identity-refused"),
        pytest.param(b"gzip;q=abc, br", "br", id="bad-q-is-refusal"),
        pytest.param(b"gzip;q=2", None, id="q-out-of-range"),
        pytest.param(b"gzipx, xgzip", None, id="no-substring-match"),
        pytest.param(b"deflate", None, id="unsupported-only"),
    ],
)
def test_negotiate_accept_encoding(header: bytes | None, expected: str | None) -> None:
    """q-values decide, q=0 refuses, * covers the rest, ties go to the server's order."""
    codec = negotiate(header, ALL)
    assert (codec.name if codec else None) == expected
    memoised = Negotiator(ALL)
    assert memoised(header) is codec
    assert memoised(header) is codec  # second lookup from the memo


def test_negotiate_server_preference_breaks_ties() -> None:
    """With equal weights the server's first codec wins."""
    assert negotiate(b"gzip, br", (GZIP, BR)) is GZIP
    assert negotiate(b"gzip, br", (BR, GZIP)) is BR


def test_parse_accept_encoding_keeps_first_weight() -> None:
    """A coding listed twice keeps its first weight."""
    assert parse_accept_encoding(b"gzip;q=0.2, br, gzip") == {"gzip": 0.2, "br": 1.0}


def test_negotiator_memo_is_bounded() -> None:
    """Random Accept-Encoding values cannot grow the memo without bound."""
    memoised = Negotiator((GZIP,))
    for i in range(2000):
        memoised(b"gzip, x-%d" % i)
    assert len(memoised._memo) <= 512
    long_value = b"br;q=0, " + b"x" * 1000 + b", gzip"
    assert memoised(long_value) is not None
    assert long_value not in memoised._memo


def test_resolve_codecs_defaults_and_arguments() -> None:
    """Default gzip; None is off; one codec or a list in order of preference."""
    app = WebServer(__name__, access_log=False)
    assert app.codecs == (Gzip(),)
    assert WebServer(__name__, compression=None).codecs == ()
    assert WebServer(__name__, compression=Br(level=5)).codecs == (Br(level=5),)
    assert WebServer(__name__, compression=[Zstd(), Gzip()]).codecs == (Zstd(), Gzip())


@pytest.mark.parametrize(
    ("compression", "message"),
    [
        pytest.param("gzip", "must be Gzip", id="string"),
        pytest.param([Gzip(), "br"], "entries must be codecs", id="list-with-string"),
        pytest.param([Gzip(), Gzip(level=3)], "twice", id="duplicate"),
    ],
)
def test_resolve_codecs_refuses_bad_argument(compression: Any, message: str) -> None:
    """A bad compression= argument is a ConfigurationError naming what is allowed."""
    with pytest.raises(ConfigurationError, match=message):
        resolve_codecs(WebServer(__name__, access_log=False), compression)


def test_compress_reads_flask_style_config() -> None:
    """The seed's app.config["COMPRESS_*"] + Compress(app) style sets the codecs."""
    app = WebServer(__name__, access_log=False)
    app.config["COMPRESS_MIN_SIZE"] = 5
    app.config["COMPRESS_LEVEL"] = 6
    app.config["COMPRESS_MIMETYPES"] = ["text/plain", "application/json"]
    Compress(app)
    assert app.codecs == (Gzip(level=6, min_size=5, mimetypes=["text/plain", "application/json"]),)
    assert app.extensions["compress"] == app.codecs


def test_compress_config_algorithms_and_off() -> None:
    """COMPRESS_ALGORITHM orders codecs (deflate ignored); COMPRESS_REGISTER=False is off."""
    config = {"COMPRESS_ALGORITHM": ["zstd", "br", "gzip", "deflate"], "COMPRESS_BR_LEVEL": 6}
    assert codecs_from_config(config) == (Zstd(), Br(level=6), Gzip())
    assert codecs_from_config({"COMPRESS_ALGORITHM": "br, gzip"}) == (Br(), Gzip())
    assert codecs_from_config({"COMPRESS_REGISTER": False}) == ()
    with pytest.raises(ConfigurationError, match="COMPRESS_ALGORITHM"):
        codecs_from_config({"COMPRESS_ALGORITHM": "lzma"})
    with pytest.raises(ConfigurationError, match=r"COMPRESS_\*.*from 1 to 9"):
        codecs_from_config({"COMPRESS_LEVEL": 42})


def test_compress_init_app_later_and_explicit_codecs() -> None:
    """Compress().init_app(app) works later; Compress(codecs=...) overrides the config."""
    app = WebServer(__name__, access_log=False)
    ext = Compress(codecs=[Br()])
    ext.init_app(app)
    assert app.codecs == (Br(),)


ACCEPT_PARTS = st.sampled_from(["gzip", "br", "zstd", "identity", "*", "deflate", "x-gzip", ""])
WEIGHTS = st.sampled_from(["", ";q=0", ";q=0.0", ";q=0.5", ";q=1", ";q=abc", ";Q=0.3", ";q=2"])


@given(st.lists(st.tuples(ACCEPT_PARTS, WEIGHTS), max_size=6))
def test_negotiate_picks_a_best_weighted_coding(items: list[tuple[str, str]]) -> None:
    """The choice is a coding with the highest q offered (ties: server order), or None only
    when no coding is acceptable or identity is weighted higher; never a refused coding."""
    header = ", ".join(coding + weight for coding, weight in items).encode()
    codec = negotiate(header, ALL)
    weights = parse_accept_encoding(header)
    star = weights.get("*", 0.0)
    q = {c.name: weights.get(c.name, star) for c in ALL}
    best_q = max(q.values())
    if best_q > 0 and weights.get("identity", star) <= best_q:
        assert codec is next(c for c in ALL if q[c.name] == best_q)
    else:
        assert codec is None
    if codec is not None:
        assert q[codec.name] > 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(b"gzip", "gzip", id="only-gzip"),
        pytest.param(b"gzip;q=0.5, br", "br", id="higher-q-wins"),
        pytest.param(b"gzip, br, zstd", "zstd", id="tie-server-order"),
        pytest.param(b"*;q=0.2, gzip;q=0.1", "zstd", id="star-covers-unlisted"),
        pytest.param(b"x-gzip", "gzip", id="x-gzip-alias"),
        pytest.param(b"gzip;q=0, identity", None, id="refused"),
        pytest.param(b"gzip;q=0.5, identity;q=1", None, id="identity-preferred"),
    ],
)
def test_negotiate_examples(header: bytes, expected: str | None) -> None:
    """Examples of the rules the property checks."""
    codec = negotiate(header, ALL)
    assert (codec.name if codec is not None else None) == expected
