"""The main window's session as a plain model (no Qt): its photos, their answers, what is current.

The window only shows this model and forwards the worker's answers to it; it subscribes to
``Session.events``. The model also keeps the books on which request serves which photo, and
why (:class:`Purpose`): a photo's first answer, a re-decode for display of a photo whose answer
is already known (evicted and shown again, or a batch row opened here: the model is not run),
or an answer again after the region changed. An answer for a request the session no longer
tracks (its photo was removed, or a newer request replaced it) changes nothing.

Whether the worker should still do a request is the queue's business
(:mod:`snakeid_desktop.request_queue`); the session cancels there what it stops tracking.

The order as shown is the newest batch first, each batch (one open, drop or paste) in the order
it was given. What the user removes (one photo, or a clear) is kept until the next removal so it
can be put back with its answers (:meth:`Session.undo_removal`).
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


@dataclass(frozen=True)
class Removal:
    """What the last removal took away, to put back: photos with the rows they had."""

    photos: tuple[tuple[int, "Photo", frozenset], ...]  # (row, photo, purposes it had requests for)
    current_key: int | None  # what was current before
    region_epoch: int  # region changes so far: one since means answers are asked again

    def __len__(self) -> int:
        return len(self.photos)


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
    display_error: str | None = None  # a decode-only request found no pixels (e.g. the file is gone)
    display_error_kind: str | None = None  # its ErrorKind code ("not_found": the file is gone)

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
        # (photo, row): new or put back, now at ``row`` of the order. Emitted in increasing row
        # order, so a view that inserts at ``row`` each time ends up in the session's order.
        self.added = Event()
        self.removed = Event()  # (photo): left the session (removed, trimmed or cleared)
        self.changed = Event()  # (photo): its answer, pixels, error or progress changed
        self.current_changed = Event()  # (photo or None)


class Session:
    def __init__(self, requests: Requests, *, max_photos: int = MAX_SESSION_PHOTOS, photos_kept: int = PHOTOS_KEPT):
        self._requests = requests
        self.max_photos = max_photos
        self.photos_kept = photos_kept
        self._photos: dict[int, Photo] = {}  # by key; keys grow with each photo added
        self._order: list[int] = []  # as shown, top first
        self._routes: dict[int, tuple[int, Purpose]] = {}  # live request id -> (photo key, purpose)
        self._next_key = 1
        self.current_key: int | None = None
        self.events = SessionEvents()
        self._removal: Removal | None = None
        self._added_since_removal = 0  # rows pushed on top since: restored rows move down as much
        self._region_epoch = 0

    # ---------------------------------------------------------------- reading

    @property
    def photos(self) -> Mapping[int, Photo]:
        """By key (read-only); a photo put back by undo keeps its key."""
        return MappingProxyType(self._photos)

    @property
    def order(self) -> list[int]:
        """Keys as shown: the newest batch first, each batch in the order it was given."""
        return list(self._order)

    @property
    def last_key(self) -> int:
        """The key the newest photo got (0 before any): every later photo's key is larger."""
        return self._next_key - 1

    @property
    def removal(self) -> Removal | None:
        """What :meth:`undo_removal` would put back, or None."""
        return self._removal

    def find_path(self, path: str) -> Photo | None:
        for photo in self._photos.values():
            if isinstance(photo.source, PathSource) and photo.source.path == path:
                return photo
        return None

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
        for row, (request_id, source) in enumerate(zip(ids, sources)):
            photo = self._new_photo(source, row)
            self._track(photo, Purpose.ANSWER, request_id)
            added.append(photo)
            self.events.added.emit(photo, row)
        self.select(added[0].key)
        self._trim()
        return added

    def add_answered(self, source: Source, result: FileResult) -> Photo:
        """A photo answered elsewhere (a batch row): it keeps that answer; the worker only decodes it.

        A file already in the session is selected again instead of listed twice."""
        if isinstance(source, PathSource):
            existing = self.find_path(source.path)
            if existing is not None:
                self.select(existing.key)
                return existing
        (photo,) = self.add_known([(source, result)])
        return photo

    def add_known(self, entries: Sequence[tuple[Source, FileResult]]) -> list[Photo]:
        """Photos whose answers are known (a batch row, the history of an earlier launch), on top in
        the order given; the first becomes current. The worker only decodes them for display."""
        added = []
        for row, (source, result) in enumerate(entries):
            photo = self._new_photo(source, row)
            photo.known_result = result
            self._submit(photo, Purpose.DISPLAY)
            added.append(photo)
            self.events.added.emit(photo, row)
        if added:
            self.select(added[0].key)
            self._trim()
        return added

    def move(self, steps: int) -> None:
        """Make the photo ``steps`` rows down (up if negative) current, stopping at either end."""
        if not self._order:
            return
        at = self._order.index(self.current_key) if self.current_key in self._photos else 0
        self.select(self._order[max(0, min(len(self._order) - 1, at + steps))])

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
        """Drop a photo and its requests; if it was current, the next one down (else up) is.
        :meth:`undo_removal` puts it back until the next removal."""
        if key not in self._photos:
            return
        self._keep_for_undo([key])
        self._discard(key)

    def clear(self) -> None:
        """Drop every photo; :meth:`undo_removal` puts them back until the next removal."""
        if not self._photos:
            return
        self._keep_for_undo(self._order)
        had_current = self.current_key is not None
        photos = [self._photos[key] for key in self._order]
        for photo in photos:
            for purpose in list(photo.requests):
                self._drop(photo, purpose)
        self._photos.clear()
        self._order.clear()
        self.current_key = None
        for photo in photos:
            self.events.removed.emit(photo)
        if had_current:
            self.events.current_changed.emit(None)

    def undo_removal(self) -> list[Photo]:
        """Put back what the last removal took, at the rows it had (below photos added since), with
        its answers, and make current again what was current before. Requests the photos had are
        asked again; an answer given before a region change is asked again for the new region."""
        removal, self._removal = self._removal, None
        if removal is None:
            return []
        region_moved = removal.region_epoch != self._region_epoch
        restored = []
        for row, photo, purposes in sorted(removal.photos, key=lambda entry: entry[0]):
            row = min(row + self._added_since_removal, len(self._order))
            self._photos[photo.key] = photo
            self._order.insert(row, photo.key)
            photo.started = False
            answered = photo.outcome is not None
            if photo.error is None and (Purpose.REANSWER in purposes or (region_moved and answered)):
                self._submit(photo, Purpose.REANSWER)
            if not answered and photo.error is None:  # still waiting for its answer (or its pixels)
                self._submit(photo, Purpose.DISPLAY if photo.known_result is not None else Purpose.ANSWER)
            elif Purpose.DISPLAY in purposes:
                self._submit(photo, Purpose.DISPLAY)
            restored.append(photo)
            self.events.added.emit(photo, row)
        if removal.current_key in self._photos:
            self.select(removal.current_key)
        elif self.current_key is None and self._order:
            self.select(self._order[0])
        self._trim(keep={photo.key for photo in restored})
        self._evict()
        return restored

    def forget_removal(self) -> None:
        """Undo is no longer offered: let the removed photos (and their pixels) go."""
        self._removal = None

    def region_changed(self) -> None:
        """Answer every photo again for a new region (the requests already carry it).

        A photo still waiting for its first answer is asked again (its queued request assumed the
        old region); an answered one keeps its answer on show until the new one arrives. Photos
        that failed unexpectedly are left alone."""
        self._region_epoch += 1
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
            if outcome.photo is None and outcome.result.error:
                # The answer shows all the same; the card says why there is no photo.
                photo.display_error, photo.display_error_kind = outcome.result.error, outcome.result.error_kind
            else:
                photo.display_error = photo.display_error_kind = None
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

    def _new_photo(self, source: Source, row: int) -> Photo:
        photo = Photo(self._next_key, source)
        self._next_key += 1
        self._photos[photo.key] = photo
        self._order.insert(row, photo.key)
        self._added_since_removal += 1
        return photo

    def _keep_for_undo(self, keys: Sequence[int]) -> None:
        """Remember the photos about to go (replacing the last removal's)."""
        photos = tuple(
            (self._order.index(key), self._photos[key], frozenset(self._photos[key].requests)) for key in keys
        )
        self._removal = Removal(photos, self.current_key, self._region_epoch)
        self._added_since_removal = 0

    def _discard(self, key: int) -> None:
        """Drop one photo (no undo kept); if it was current, the next one down (else up) is."""
        photo = self._photos[key]
        neighbour = None
        if key == self.current_key:
            at = self._order.index(key)
            if at + 1 < len(self._order):
                neighbour = self._order[at + 1]
            elif at > 0:
                neighbour = self._order[at - 1]
        for purpose in list(photo.requests):
            self._drop(photo, purpose)
        del self._photos[key]
        self._order.remove(key)
        self.events.removed.emit(photo)
        if key == self.current_key:
            self.current_key = None
            if neighbour is not None:
                self.select(neighbour)
            else:
                self.events.current_changed.emit(None)

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

    def _trim(self, keep: frozenset | set = frozenset()) -> None:
        """The oldest photos leave (not undoable: nobody asked); ``keep``: just put back by undo."""
        while len(self._photos) > self.max_photos:
            candidates = [key for key in self._photos if key not in keep] or list(self._photos)
            self._discard(min(candidates))

    def _evict(self) -> None:
        """Keep display copies only for the newest photos (and the one on the card)."""
        with_photo = [  # oldest added first
            self._photos[key]
            for key in sorted(self._photos)
            if self._photos[key].redecodable and self._photos[key].outcome is not None and self._photos[key].outcome.photo is not None
        ]
        for photo in with_photo[: max(0, len(with_photo) - self.photos_kept)]:
            if photo.key != self.current_key:
                photo.outcome = replace(photo.outcome, photo=None)
                photo.photo_evicted = True
