"""Rate-limit layer: count each request against its limits, answer 429 over them.

It sits in front of CORS and the response cache (DESIGN.md's stack), so cache hits are counted
like misses and a refusal costs no CORS, cache or app work. The fields it adds to allowed
responses go on after the cache, so a stored entry never holds them.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

from aeros.asgi_entry import asgi3
from aeros.headers import send_adding
from aeros.middleware.headers import GlobalHeaders
from aeros.ratelimit.backend import Backend, BackendDown
from aeros.ratelimit.fields import (
    ONE_MEMBER_LINE,
    POLICY_FIELD,
    RATE_FIELD,
    rate_line,
    rate_line_start,
    rate_value,
    refusal,
    retry_seconds,
)
from aeros.ratelimit.keys import client_address
from aeros.ratelimit.routes import Check, Plan, RouteLimits
from aeros.types import HEADER_LINES, RATE_LIMIT_STATE, ASGIApp, Receive, Scope, Send

__all__ = ["AppLimitMiddleware", "RateLimitMiddleware", "rate_limit_layer"]

_ceil = math.ceil


class RateLimitMiddleware:
    """Apply the limits :meth:`plan_for` finds for each HTTP request.

    Args:
        app: the inner ASGI app.
        backend: where hits are counted (:class:`~aeros.ratelimit.backend.Backend`).
        plan_for: the checks of a request's route, or None (nothing to count).
        headers: the app's global headers, for the 429 this layer answers itself.
        fail_open: on a storage failure let the request through (True) or refuse it (429).
        send_fields: add ``RateLimit-Policy`` / ``RateLimit`` to allowed responses too.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: Backend,
        plan_for: Callable[[Scope], Plan | None],
        headers: GlobalHeaders | None = None,
        *,
        fail_open: bool = True,
        send_fields: bool = True,
    ) -> None:
        self.app = app
        self.backend = backend
        self.plan_for = plan_for
        self.headers = headers if headers else None
        self.fail_open = fail_open
        self.send_fields = send_fields

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        plan = self.plan_for(scope)
        if plan is None:
            return self.app(scope, receive, send)
        hit_now = self.backend.hit_now
        if hit_now is None:  # Redis: each hit is awaited and may fail
            return self._checked(scope, receive, send, plan)
        # memory: counted at once, so no coroutine of this layer (the app's goes back as it is)
        counted: list[tuple[bytes, int, float]] = []
        for check in plan.checks:
            name, _, amount, window, key, prefix = check
            identity = key(scope)
            if identity is None:
                continue
            allowed, remaining, reset = hit_now(prefix + identity, amount, window)
            counted.append((name, remaining, reset))
            if not allowed:
                return self._refused(scope, send, plan, counted, check, reset)
        return self._allowed(scope, receive, send, plan, counted)

    async def _checked(self, scope: Scope, receive: Receive, send: Send, plan: Plan) -> None:
        """Count the hits on a storage that is awaited and may fail (Redis)."""
        hit = self.backend.hit
        counted: list[tuple[bytes, int, float]] = []
        for check in plan.checks:
            identity = check.key(scope)
            if identity is None:
                continue
            try:
                allowed, remaining, reset = await hit(
                    check.prefix + identity, check.amount, check.window
                )
            except BackendDown:
                scope[RATE_LIMIT_STATE] = "error"
                if self.fail_open:
                    await self.app(scope, receive, send)
                else:
                    await self.refuse(
                        scope,
                        send,
                        self.backend.retry_after,
                        (),
                        "the rate limit could not be checked",
                    )
                return
            counted.append((check.name, remaining, reset))
            if not allowed:
                await self._refused(scope, send, plan, counted, check, reset)
                return
        await self._allowed(scope, receive, send, plan, counted)

    def _refused(
        self,
        scope: Scope,
        send: Send,
        plan: Plan,
        counted: list[tuple[bytes, int, float]],
        check: Check,
        reset: float,
    ) -> Awaitable[None]:
        """The 429 for a request ``check`` refused (``reset``: when it frees one). The
        limits after ``check`` were not counted: they are read without a hit, so ``RateLimit``
        lists every limit of the plan and ``Retry-After`` waits for all of them."""
        scope[RATE_LIMIT_STATE] = "429"
        unread = _after(plan.checks, check)
        if unread:
            return self._read_and_refuse(scope, send, plan, counted, check, reset, unread)
        fields = [(POLICY_FIELD, plan.policy), (RATE_FIELD, rate_value(counted))]
        return self.refuse(scope, send, _retry_after(counted, reset), fields, _detail(check))

    async def _read_and_refuse(
        self,
        scope: Scope,
        send: Send,
        plan: Plan,
        counted: list[tuple[bytes, int, float]],
        check: Check,
        reset: float,
        unread: Sequence[Check],
    ) -> None:
        """:meth:`_refused` once the ``unread`` limits are read. The refusal stands if the
        storage fails (a limit has answered): the limits left unread are left out and,
        failing closed, ``Retry-After`` also waits until the storage is tried again (every
        request is refused until then)."""
        members = list(counted)
        wait = reset
        peek = self.backend.peek
        for later in unread:
            identity = later.key(scope)
            if identity is None:  # the limit does not apply to this request
                continue
            try:
                _, remaining, later_reset = await peek(
                    later.prefix + identity, later.amount, later.window
                )
            except BackendDown:
                if not self.fail_open:
                    wait = max(wait, self.backend.retry_after)
                break
            members.append((later.name, remaining, later_reset))
        fields = [(POLICY_FIELD, plan.policy), (RATE_FIELD, rate_value(members))]
        await self.refuse(scope, send, _retry_after(members, wait), fields, _detail(check))

    def _allowed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        plan: Plan,
        counted: list[tuple[bytes, int, float]],
    ) -> Awaitable[None]:
        """The app's answer, with the fields of the limits counted."""
        if not counted or not self.send_fields:
            return self.app(scope, receive, send)
        lines = scope.get(HEADER_LINES)
        if lines is not None:  # aeros' server writes them into the response: no send wrapper
            lines.append(plan.policy_line)
            lines.append(rate_line(counted))
            return self.app(scope, receive, send)
        fields = ((POLICY_FIELD, plan.policy), (RATE_FIELD, rate_value(counted)))
        return self.app(scope, receive, send_adding(send, fields))

    async def refuse(
        self,
        scope: Scope,
        send: Send,
        reset: float,
        fields: Sequence[tuple[bytes, bytes]],
        detail: str,
    ) -> None:
        """Answer 429 with ``Retry-After``, the fields given and the global headers."""
        accept = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value
                break
        headers, body = refusal(retry_seconds(reset), accept, fields, detail)
        if self.headers is not None:
            headers = self.headers.apply(headers)
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


class AppLimitMiddleware(RateLimitMiddleware):
    """:class:`RateLimitMiddleware` for the commonest setup, in one function per request: one
    app-wide limit of one window (``WebServer(rate_limit=RateLimit("100/minute"))``), counted
    in memory, on aeros' own URL map.

    While no view has limits of its own or an exemption, a request is counted here without
    finding its plan, a fixed window's hit in a running window with room is counted here
    without the memory counters' call, and both fields go out as one line from a start made
    once (+6.8-7.1 k instructions per JSON request over plain aeros, docs/performance.md
    round ten); otherwise (a ``@rate_limit`` view was added) every request takes the general
    path. Same answers, same counts.

    Args:
        app: the inner ASGI app.
        backend: a memory backend (``hit_now`` set).
        limits: the app's limits; their :attr:`~RouteLimits.app_plan` has one check.
        headers: the app's global headers, for the 429 this layer answers itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: Backend,
        limits: RouteLimits,
        headers: GlobalHeaders | None = None,
        *,
        fail_open: bool = True,
    ) -> None:
        super().__init__(app, backend, limits.plan_for, headers, fail_open=fail_open)
        plan = limits.app_plan
        hit_now = backend.hit_now
        if plan is None or len(plan.checks) != 1 or hit_now is None:
            raise ValueError("AppLimitMiddleware needs one app-wide check in memory")
        self.limits = limits
        self.plan = plan
        self.check = plan.checks[0]
        self.hit = hit_now
        self.url_map = limits.app.url_map
        self.uniform_at = -1  # the map's rules_added when every request was known uniform
        check = self.check
        self.amount = check.amount
        # the default key (client_address) is read here: a call less per request
        self.address_prefix = check.prefix + "a:" if check.key is client_address else None
        # both fields as one line: the policy's, made once, then the start of the RateLimit one
        self.lines_start = plan.policy_line + rate_line_start(check.name)
        # a fixed window: the hit in a running window with room is counted here
        self.counts = backend.counts if backend.fixed_window else None

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or (
            self.url_map.rules_added != self.uniform_at and not self._still_uniform()
        ):
            return super().__call__(scope, receive, send)
        prefix = self.address_prefix
        if prefix is not None:
            client = scope.get("client")
            counted = prefix + (client[0] if client else "-")
        else:
            identity = self.check.key(scope)
            if identity is None:  # the limit does not apply to this request
                return self.app(scope, receive, send)
            counted = self.check.prefix + identity
        counts = self.counts
        counter = None
        if counts is not None:
            now = counts.clock()
            counter = counts.counters.get(counted)
        if counter is not None and counter[1] > now and counter[0] < self.amount:
            # MemoryCounts.fixed_hit's commonest case (the key's window runs and has room),
            # the same count without its call
            count = counter[0] = counter[0] + 1
            remaining = self.amount - count
            reset = counter[1] - now
        else:
            check = self.check
            allowed, remaining, reset = self.hit(counted, check.amount, check.window)
            if not allowed:
                refused = [(check.name, remaining, reset)]
                return self._refused(scope, send, self.plan, refused, check, reset)
        lines = scope.get(HEADER_LINES)
        if lines is None:  # another server: the general path's send wrapper
            members = [(self.check.name, remaining, reset)]
            return self._allowed(scope, receive, send, self.plan, members)
        # the policy's line and rate_line's one-member line, in one formatting
        lines.append(ONE_MEMBER_LINE % (self.lines_start, remaining, _ceil(reset)))
        return self.app(scope, receive, send)

    def _still_uniform(self) -> bool:
        """Whether every request still has the app-wide plan, after the map gained a rule."""
        seen = self.url_map.rules_added
        if not self.limits.uniform():
            return False
        self.uniform_at = seen
        return True


def _after(checks: tuple[Check, ...], check: Check) -> tuple[Check, ...]:
    """The checks after ``check`` (the one that refused): those the request did not reach."""
    for index, candidate in enumerate(checks):
        if candidate is check:
            return checks[index + 1 :]
    return ()


def _retry_after(members: Sequence[tuple[bytes, int, float]], reset: float) -> float:
    """Seconds until every limit has room: ``reset`` (the refusing limit's) or the latest
    reset of a member with nothing left, whichever is later."""
    return max([reset, *(later for _, remaining, later in members if remaining <= 0)])


def _detail(check: Check) -> str:
    item = check.item
    unit = item.GRANULARITY.name
    per = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
    return f"limit of {item.amount} per {per} reached"


def rate_limit_layer(
    inner: ASGIApp, limits: RouteLimits, headers: GlobalHeaders | None = None
) -> ASGIApp:
    """The rate-limit layer around ``inner`` for the app's ``limits``; ``inner`` itself when
    nothing is limited (no app-wide limit and no ``@rate_limit`` view)."""
    if not limits.active():
        return inner
    config = limits.config
    backend = Backend(
        config.storage,
        config.strategy,
        config.prefix,
        socket_timeout=config.socket_timeout,
        retry_after=config.retry_after,
    )
    plan = limits.app_plan
    if (
        plan is not None
        and len(plan.checks) == 1
        and backend.hit_now is not None
        and config.headers
        and hasattr(limits.app.url_map, "rules_added")  # aeros' map (the default)
    ):
        return AppLimitMiddleware(inner, backend, limits, headers, fail_open=config.fail_open)
    return RateLimitMiddleware(
        inner,
        backend,
        limits.plan_for,
        headers,
        fail_open=config.fail_open,
        send_fields=config.headers,
    )
