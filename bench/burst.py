"""A burst: N messages sent at once over C connections; prints how many got a 2xx, and the time.

Run by bench/run.py in its own process, pinned to the other core: python bench/burst.py PORT N C
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main(port: int, count: int, connections: int) -> None:
    url = f"http://127.0.0.1:{port}/api/messages"
    connector = aiohttp.TCPConnector(limit=connections)
    ok = 0
    statuses: dict[str, int] = {}  # what came back other than 2xx, by status or error
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(i: int) -> None:
            nonlocal ok
            body = {"sender": f"burst-{i}", "text": "My bin was not collected", "id": f"b{i}"}
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    status = str(response.status)
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            ok += status.startswith("2")
            if not status.startswith("2"):
                statuses[status] = statuses.get(status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(send(i) for i in range(count)))
        seconds = time.perf_counter() - began
    print(json.dumps({"sent": count, "ok": ok, "seconds": seconds, "other": statuses}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
