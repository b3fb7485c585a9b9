"""The websocket viewers of `bench console`, run in a child process (no Django imports here)."""

import time


async def watch(url: str, cookie: str, viewers: int, messages: int, ready, results) -> None:
    """In the viewers' process: open the sockets, say ready, record each receipt's delay."""
    import asyncio
    import json

    import websockets

    headers = {"Cookie": cookie, "Origin": url.replace("ws://", "http://").split("/ws/")[0]}
    sockets = []
    for _ in range(viewers):
        ws = await websockets.connect(url, additional_headers=headers, max_size=None)
        if json.loads(await ws.recv()).get("type") != "snapshot":
            raise RuntimeError("expected a snapshot first")
        sockets.append(ws)
    latencies: list[float] = []

    async def receive(ws):
        for _ in range(messages):
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            latencies.append(time.time() - msg["sent_at"])

    readers = [asyncio.create_task(receive(ws)) for ws in sockets]
    ready.set()
    await asyncio.gather(*readers)
    await asyncio.gather(*(ws.close() for ws in sockets))
    results.put(latencies)


def viewers_process(url, cookie, viewers, messages, ready, results) -> None:
    import asyncio

    asyncio.run(watch(url, cookie, viewers, messages, ready, results))
