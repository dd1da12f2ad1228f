"""Load for the console latency test, run as its own process (as operators' browsers are).

``python -m tests.console_load_client URL STREAMS`` opens ``STREAMS`` concurrent requests to
``/api/events`` (the page's live status stream, each one a request in flight for as long as the
page is open), prints ``ready`` once every stream delivered its first event, then keeps reading
until killed; at exit it prints the number of events received.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx


async def hold(url: str, streams: int) -> None:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    received = 0
    first = asyncio.Event()
    started = 0
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal received, started
        async with client.stream("GET", "/api/events") as response:
            response.raise_for_status()
            counted = False
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    received += 1
                    if not counted:
                        counted = True
                        started += 1
                        if started == streams:
                            first.set()

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(streams)]
        await first.wait()
        print("ready", flush=True)
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(received, flush=True)


if __name__ == "__main__":
    asyncio.run(hold(sys.argv[1], int(sys.argv[2])))
