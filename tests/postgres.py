"""A real PostgreSQL server for the tests: each test gets a schema of its own, dropped after.

The server is HOLDING_REPLY_TEST_POSTGRES (default postgresql://127.0.0.1:5432/test, which this
machine kind runs with trust authentication). When it cannot be reached, the PostgreSQL half of
the suite is skipped with a warning; with HOLDING_REPLY_REQUIRE_POSTGRES=1 (as CI sets) it fails.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
import warnings
from collections.abc import Coroutine, Iterator
from functools import cache
from typing import Any, TypeVar

import asyncpg
import pytest

T = TypeVar("T")
SERVER = os.environ.get("HOLDING_REPLY_TEST_POSTGRES") or "postgresql://127.0.0.1:5432/test"
REQUIRED = os.environ.get("HOLDING_REPLY_REQUIRE_POSTGRES") == "1"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end on a thread of its own (a test's event loop may be running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def sql(statement: str, url: str = SERVER) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(statement)
        return rows
    finally:
        await conn.close()


@cache
def unreachable() -> str | None:
    """Why the test server cannot be used, or None when it can."""
    try:
        run(sql("SELECT 1"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
        return f"PostgreSQL at {SERVER} cannot be reached: {e}"
    return None


def require() -> None:
    reason = unreachable()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"{reason} (HOLDING_REPLY_REQUIRE_POSTGRES=1: the PostgreSQL half must run)")
    warnings.warn(f"{reason}: the PostgreSQL tests are SKIPPED", stacklevel=2)
    pytest.skip(reason)


def with_schema(schema: str) -> str:
    separator = "&" if "?" in SERVER else "?"
    return f"{SERVER}{separator}search_path={schema}"


def fresh_database() -> Iterator[str]:
    """A DATABASE_URL whose tables live in a new, empty schema; the schema goes afterwards."""
    require()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    run(sql(f"CREATE SCHEMA {schema}"))
    try:
        yield with_schema(schema)
    finally:
        run(sql(f"DROP SCHEMA {schema} CASCADE"))
