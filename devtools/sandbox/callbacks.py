"""Fire-and-forget JSON POSTs (Insider error_callback_endpoint)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx


class CallbackSender:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()
        self.outcomes: Counter[str] = Counter()

    def post(self, url: str, payload: dict) -> None:
        task = asyncio.get_running_loop().create_task(self._post(url, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, payload: dict) -> None:
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.post(url, json=payload)
            self.outcomes["delivered" if response.status_code < 300 else "failed"] += 1
        except httpx.HTTPError:
            self.outcomes["failed"] += 1
