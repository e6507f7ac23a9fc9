"""The main window's session as a plain model (no Qt): its photos, their answers, what is current.

The window only shows this model and forwards the worker's answers to it; it subscribes to
``Session.events``. The model also keeps the books on which request serves which photo, and
why (:class:`Purpose`): a photo's first answer, a re-decode for display of a photo whose answer
is already known (evicted and shown again, or a batch row opened here: the model is not run),
or an answer again after the region changed. An answer for a request the session no longer
tracks (its photo was removed, or a newer request replaced it) changes nothing.

Whether the worker should still do a request is the queue's business
(:mod:`snakeid_desktop.request_queue`); the session cancels there what it stops tracking.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from .request_queue import PathSource, RequestKind, Source
from .results import FileResult

log = logging.getLogger(__name__)

MAX_SESSION_PHOTOS = 100  # each keeps a display-size copy (<= 3 MB); older ones leave the session
PHOTOS_KEPT = 24  # display copies kept in memory; older ones are decoded again when shown


class Purpose(enum.Enum):
    ANSWER = "answer"  # the photo's first answer: decode and run the model
    DISPLAY = "display"  # pixels for a photo whose answer the session already holds: decode only
    REANSWER = "reanswer"  # the model again after the region changed; the old answer shows meanwhile

    @property
    def kind(self) -> RequestKind:
        return RequestKind.DECODE_ONLY if self is Purpose.DISPLAY else RequestKind.CLASSIFY


class Requests(Protocol):
    """Where the session sends work (the GUI's ``InferenceController``, or a fake in tests)."""

    def submit(self, sources: Sequence[Source], *, kind: RequestKind) -> list[int]: ...

    def cancel(self, request_id: int) -> None: ...

    def prioritize(self, request_id: int) -> None: ...


class Answer(Protocol):
    """What a request produced (``gui.inference_worker.Outcome``, a frozen dataclass)."""

    @property
    def request_id(self) -> int: ...

    @property
    def result(self) -> FileResult: ...

    @property
    def photo(self) -> Any: ...

    @property
    def thumbnail(self) -> Any: ...


@dataclass(eq=False)
class Photo:
    key: int  # stable for the photo's life in the session, whatever requests come and go
    source: Source
    outcome: Any = None  # the Answer on display: result plus display pixels
    error: str | None = None  # an unexpected failure (a bug, not a bad image) instead of an answer
    known_result: FileResult | None = None  # answered elsewhere (a batch row): only pixels are needed
    started: bool = False  # the worker is on its first answer
    photo_evicted: bool = False  # display copy dropped to save memory; decoded again when shown
    requests: dict[Purpose, int] = field(default_factory=dict)  # live request id for each purpose

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def waiting(self) -> bool:
        return self.outcome is None and self.error is None

    @property
    def redecodable(self) -> bool:
        return isinstance(self.source, PathSource)  # pasted bytes are not kept to decode again


class Event:
    """A tiny observer: ``connect`` a callback, ``emit`` calls each in order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class SessionEvents:
    def __init__(self) -> None:
        self.added = Event()  # (photo): new, and first in the order
        self.removed = Event()  # (photo): left the session (removed, trimmed or cleared)
        self.changed = Event()  # (photo): its answer, pixels, error or progress changed
        self.current_changed = Event()  # (photo or None)


class Session:
    def __init__(self, requests: Requests, *, max_photos: int = MAX_SESSION_PHOTOS, photos_kept: int = PHOTOS_KEPT):
        self._requests = requests
        self.max_photos = max_photos
        self.photos_kept = photos_kept
        self._photos: dict[int, Photo] = {}  # oldest first
        self._routes: dict[int, tuple[int, Purpose]] = {}  # live request id -> (photo key, purpose)
        self._next_key = 1
        self.current_key: int | None = None
        self.events = SessionEvents()

    # ---------------------------------------------------------------- reading

    @property
    def photos(self) -> Mapping[int, Photo]:
        """By key, oldest first (read-only)."""
        return MappingProxyType(self._photos)

    @property
    def order(self) -> list[int]:
        """Keys as shown: newest first."""
        return list(reversed(self._photos))

    @property
    def current(self) -> Photo | None:
        return self._photos.get(self.current_key) if self.current_key is not None else None

    def __len__(self) -> int:
        return len(self._photos)

    def waiting_count(self) -> int:
        return sum(1 for p in self._photos.values() if p.waiting)

    def photo_for(self, request_id: int) -> tuple[Photo, Purpose] | None:
        route = self._routes.get(request_id)
        return (self._photos[route[0]], route[1]) if route is not None else None

    def live_requests(self) -> Mapping[int, tuple[int, Purpose]]:
        return MappingProxyType(self._routes)

    # ---------------------------------------------------------------- changing

    def add(self, sources: Sequence[Source]) -> list[Photo]:
        """New photos to answer; the first becomes current (and is answered first)."""
        sources = list(sources)
        if not sources:
            return []
        ids = self._requests.submit(sources, kind=Purpose.ANSWER.kind)
        added = []
        for request_id, source in zip(ids, sources):
            photo = self._new_photo(source)
            self._track(photo, Purpose.ANSWER, request_id)
            added.append(photo)
            self.events.added.emit(photo)
        self.select(added[0].key)
        self._trim()
        return added

    def add_answered(self, source: Source, result: FileResult) -> Photo:
        """A photo answered elsewhere (a batch row): it keeps that answer; the worker only decodes it."""
        photo = self._new_photo(source)
        photo.known_result = result
        self._submit(photo, Purpose.DISPLAY)
        self.events.added.emit(photo)
        self.select(photo.key)
        self._trim()
        return photo

    def select(self, key: int | None) -> None:
        if key is not None and key not in self._photos:
            raise KeyError(key)
        changed = key != self.current_key
        self.current_key = key
        photo = self.current
        if photo is not None:
            for request_id in photo.requests.values():
                self._requests.prioritize(request_id)  # the photo being looked at goes first
            if photo.outcome is not None and photo.photo_evicted and Purpose.DISPLAY not in photo.requests:
                self._submit(photo, Purpose.DISPLAY)
        if changed:
            self.events.current_changed.emit(photo)

    def remove(self, key: int) -> None:
        """Drop a photo and its requests; if it was current, the next one down (else up) is."""
        photo = self._photos.get(key)
        if photo is None:
            return
        neighbour = None
        if key == self.current_key:
            order = self.order
            at = order.index(key)
            if at + 1 < len(order):
                neighbour = order[at + 1]
            elif at > 0:
                neighbour = order[at - 1]
        for purpose in list(photo.requests):
            self._drop(photo, purpose)
        del self._photos[key]
        self.events.removed.emit(photo)
        if key == self.current_key:
            self.current_key = None
            if neighbour is not None:
                self.select(neighbour)
            else:
                self.events.current_changed.emit(None)

    def clear(self) -> None:
        photos = list(self._photos.values())
        had_current = self.current_key is not None
        for photo in photos:
            for purpose in list(photo.requests):
                self._drop(photo, purpose)
        self._photos.clear()
        self.current_key = None
        for photo in photos:
            self.events.removed.emit(photo)
        if had_current:
            self.events.current_changed.emit(None)

    def region_changed(self) -> None:
        """Answer every photo again for a new region (the requests already carry it).

        A photo still waiting for its first answer is asked again (its queued request assumed the
        old region); an answered one keeps its answer on show until the new one arrives. Photos
        that failed unexpectedly are left alone."""
        for photo in list(self._photos.values()):
            if photo.error is not None:
                continue
            if Purpose.ANSWER in photo.requests:
                photo.started = False
                self._submit(photo, Purpose.ANSWER)
                self.events.changed.emit(photo)
            else:
                self._submit(photo, Purpose.REANSWER)
        current = self.current
        if current is not None:  # the card on screen is answered first
            for request_id in current.requests.values():
                self._requests.prioritize(request_id)

    # ---------------------------------------------------------------- the worker's answers

    def started(self, request_id: int) -> Photo | None:
        route = self._routes.get(request_id)
        if route is None or route[1] is not Purpose.ANSWER:
            return None  # a re-decode or re-answer: the photo keeps showing its answer meanwhile
        photo = self._photos[route[0]]
        photo.started = True
        self.events.changed.emit(photo)
        return photo

    def deliver(self, outcome: Answer) -> Photo | None:
        """Apply an answer to the photo its request serves; None (and no change) if none does any more."""
        route = self._routes.pop(outcome.request_id, None)
        if route is None:
            return None
        key, purpose = route
        photo = self._photos[key]
        del photo.requests[purpose]
        if purpose is Purpose.ANSWER:
            photo.outcome = outcome
        elif purpose is Purpose.DISPLAY:
            if photo.outcome is None:  # a batch row: its answer came with it, the worker brought pixels
                photo.outcome = replace(outcome, result=photo.known_result)
                photo.known_result = None
            else:  # the answer stays; only the display copy is back
                thumbnail = photo.outcome.thumbnail or outcome.thumbnail
                photo.outcome = replace(photo.outcome, photo=outcome.photo, thumbnail=thumbnail)
            photo.photo_evicted = False  # back, or the file is gone: either way it is asked for once
        else:
            kept = photo.outcome.photo if photo.outcome is not None else None
            photo.outcome = replace(outcome, photo=outcome.photo or kept)
            photo.known_result = None
            if outcome.photo is not None:  # the new answer brought the pixels a re-decode was fetching
                photo.photo_evicted = False
                self._drop(photo, Purpose.DISPLAY)
        self._evict()
        self.events.changed.emit(photo)
        return photo

    def fail(self, request_id: int, message: str) -> Photo | None:
        """A request failed unexpectedly. Returns the photo now showing that error, or None when
        the photo keeps what it had (a failed re-decode or re-answer) or is gone."""
        route = self._routes.pop(request_id, None)
        if route is None:
            return None
        key, purpose = route
        photo = self._photos[key]
        del photo.requests[purpose]
        if purpose is Purpose.REANSWER:  # the earlier answer stays; it says which region it assumed
            log.warning("could not answer %s again for the new region: %s", photo.name, message)
            return None
        if purpose is Purpose.DISPLAY and photo.outcome is not None:
            photo.photo_evicted = False  # asked once
            log.warning("could not decode %s again: %s", photo.name, message)
            return None
        photo.error = message
        self.events.changed.emit(photo)
        return photo

    # ---------------------------------------------------------------- bookkeeping

    def _new_photo(self, source: Source) -> Photo:
        photo = Photo(self._next_key, source)
        self._next_key += 1
        self._photos[photo.key] = photo
        return photo

    def _track(self, photo: Photo, purpose: Purpose, request_id: int) -> None:
        photo.requests[purpose] = request_id
        self._routes[request_id] = (photo.key, purpose)

    def _submit(self, photo: Photo, purpose: Purpose) -> None:
        """Ask for ``purpose`` anew; a live request for the same purpose is cancelled (one each at most)."""
        self._drop(photo, purpose)
        (request_id,) = self._requests.submit([photo.source], kind=purpose.kind)
        self._track(photo, purpose, request_id)

    def _drop(self, photo: Photo, purpose: Purpose) -> None:
        request_id = photo.requests.pop(purpose, None)
        if request_id is not None:
            del self._routes[request_id]
            self._requests.cancel(request_id)

    def _trim(self) -> None:
        while len(self._photos) > self.max_photos:
            self.remove(next(iter(self._photos)))  # the oldest

    def _evict(self) -> None:
        """Keep display copies only for the newest photos (and the one on the card)."""
        with_photo = [
            p for p in self._photos.values() if p.redecodable and p.outcome is not None and p.outcome.photo is not None
        ]
        for photo in with_photo[: max(0, len(with_photo) - self.photos_kept)]:
            if photo.key != self.current_key:
                photo.outcome = replace(photo.outcome, photo=None)
                photo.photo_evicted = True
