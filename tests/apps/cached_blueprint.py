"""A blueprint in its own module, as Flask apps lay them out: no app object to import."""

from __future__ import annotations

from collections import Counter

from quart import Blueprint

from aeros import cached

calls: Counter[str] = Counter()
blog = Blueprint("blog", __name__)


@blog.route("/posts/<int:post_id>")
@cached(timeout=30)
async def post(post_id: int) -> str:
    calls[f"post{post_id}"] += 1
    return f"post {post_id} #{calls[f'post{post_id}']}"


@cached()  # the store's timeout, whichever app serves it; above @route works too
@blog.route("/latest")
async def latest() -> str:
    calls["latest"] += 1
    return f"latest #{calls['latest']}"
