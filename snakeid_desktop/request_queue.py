"""What the app asks its inference worker for, and the queue that holds it (no Qt).

The queue is the one place that says whether a request is still wanted: an id is wanted from
``put_front`` until it is cancelled or its answer is ``claim``-ed by the receiving side. The
worker checks ``is_wanted`` between steps and drops unwanted work; the receiver claims an answer
on its own thread, so an answer already in flight when its request is cancelled is dropped too.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Candidates always computed; the card shows the user's top-k of them. The venom warning does not
# depend on it: the predictor weighs the venomous probability mass of every species in play.
MAX_TOP_K = 10


@dataclass(frozen=True)
class PathSource:
    path: str

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path


@dataclass(frozen=True)
class BytesSource:
    """Encoded image bytes (clipboard or drag from a browser)."""

    data: bytes
    name: str = "pasted image"


@dataclass(frozen=True)
class PixelSource:
    """Raw RGBA8888 pixels (a clipboard QImage with no encoded form)."""

    width: int
    height: int
    rgba: bytes
    name: str = "pasted image"


Source = PathSource | BytesSource | PixelSource


class RequestKind(enum.Enum):
    CLASSIFY = "classify"  # decode, then run the model
    DECODE_ONLY = "decode_only"  # decode for display; the answer is already known, the model is not run


@dataclass(frozen=True)
class Request:
    request_id: int
    source: Source
    top_k: int = MAX_TOP_K
    country: str | None = None  # the user's "Where are you?" choice: a code, or None for anywhere
    kind: RequestKind = RequestKind.CLASSIFY


class RequestQueue:
    """Thread-safe deque of requests plus the set of ids still wanted.

    A cancelled id leaves the deque at once; if the worker is already on it, the worker sees
    ``is_wanted`` turn false at its next step and drops the work.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._items: deque[Request] = deque()
        self._wanted: set[int] = set()
        self._stopped = False

    def put_front(self, requests: Iterable[Request]) -> None:
        """Queue ahead of older work, keeping the given order (the first is taken first)."""
        requests = list(requests)
        with self._cond:
            for req in reversed(requests):
                self._items.appendleft(req)
                self._wanted.add(req.request_id)
            self._cond.notify()

    def prioritize(self, request_id: int) -> None:
        with self._cond:
            for req in self._items:
                if req.request_id == request_id:
                    self._items.remove(req)
                    self._items.appendleft(req)
                    break

    def cancel(self, request_id: int) -> None:
        with self._cond:
            self._wanted.discard(request_id)
            self._items = deque(r for r in self._items if r.request_id != request_id)

    def cancel_all(self) -> None:
        with self._cond:
            self._wanted.clear()
            self._items.clear()

    def is_wanted(self, request_id: int) -> bool:
        with self._cond:
            return request_id in self._wanted and not self._stopped

    def claim(self, request_id: int) -> bool:
        """The receiver takes the answer: True once, if the id was still wanted; it is not wanted after."""
        with self._cond:
            wanted = request_id in self._wanted and not self._stopped
            self._wanted.discard(request_id)
            return wanted

    def wanted_count(self) -> int:
        with self._cond:
            return 0 if self._stopped else len(self._wanted)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._wanted.clear()
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopped

    def take(self) -> Request | None:
        """Block until a request arrives (it is returned) or the queue stops (None)."""
        with self._cond:
            while not self._items and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            return self._items.popleft()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
