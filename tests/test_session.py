"""The session model without Qt: examples, then a Hypothesis state machine over random use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from snakeid_desktop.request_queue import BytesSource, PathSource, RequestKind
from snakeid_desktop.results import FileResult
from snakeid_desktop.session import Purpose, Session
from tests.conftest import REPO_ROOT


@dataclass(frozen=True)
class FakeOutcome:  # the fields of gui.inference_worker.Outcome the session uses
    request_id: int
    source_name: str
    result: FileResult
    photo: object | None = None
    thumbnail: object | None = None


class FakeRequests:
    """Records what the session asks for; ``answer`` plays the worker (the model runs only for CLASSIFY)."""

    def __init__(self):
        self.next_id = 1
        self.submitted: dict[int, tuple[object, RequestKind]] = {}
        self.cancelled: set[int] = set()
        self.prioritized: list[int] = []
        self.model_calls = 0

    def submit(self, sources, *, kind):
        ids = []
        for source in sources:
            self.submitted[self.next_id] = (source, kind)
            ids.append(self.next_id)
            self.next_id += 1
        return ids

    def cancel(self, request_id):
        self.cancelled.add(request_id)

    def prioritize(self, request_id):
        self.prioritized.append(request_id)

    def answer(self, request_id, pixels=True) -> FakeOutcome:
        source, kind = self.submitted[request_id]
        result = FileResult(path=source.name)
        if kind is RequestKind.CLASSIFY:
            self.model_calls += 1
            result.warnings.append(f"model answer {request_id}")
        photo = f"pixels {request_id}" if pixels else None
        return FakeOutcome(request_id, source.name, result, photo, photo and f"thumb {request_id}")

    def kinds(self):
        return [kind for _, kind in self.submitted.values()]


def paths(*names):
    return [PathSource(f"/photos/{n}.jpg") for n in names]


@pytest.fixture
def fake():
    return FakeRequests()


def answer_all(session, fake, pixels=True):
    for request_id in list(session.live_requests()):
        session.deliver(fake.answer(request_id, pixels))


def test_a_batch_keeps_the_order_given_the_newest_batch_on_top_and_its_first_is_current(fake):
    session = Session(fake)
    events = []
    session.events.added.connect(lambda p, row: events.append(("added", p.name, row)))
    session.events.current_changed.connect(lambda p: events.append(("current", p and p.name)))
    a, b, c = session.add(paths("a", "b", "c"))
    assert session.order == [a.key, b.key, c.key] and session.current is a
    d, e = session.add(paths("d", "e"))
    assert session.order == [d.key, e.key, a.key, b.key, c.key]
    assert session.current is d
    assert events == [
        ("added", "a.jpg", 0), ("added", "b.jpg", 1), ("added", "c.jpg", 2), ("current", "a.jpg"),
        ("added", "d.jpg", 0), ("added", "e.jpg", 1), ("current", "d.jpg"),
    ]
    assert fake.kinds() == [RequestKind.CLASSIFY] * 5 and session.waiting_count() == 5
    # the worker is asked in the order given too
    assert [source.name for source, _ in fake.submitted.values()] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]


def test_a_view_inserting_at_each_added_row_ends_up_in_the_sessions_order(fake):
    session = Session(fake)
    view = []
    session.events.added.connect(lambda p, row: view.insert(row, p.key))
    session.events.removed.connect(lambda p: view.remove(p.key))
    session.add(paths("a", "b", "c"))
    session.add(paths("d", "e"))
    session.remove(session.order[3])
    session.undo_removal()
    session.clear()
    session.add(paths("f"))
    session.undo_removal()
    assert view == session.order and len(view) == 6


def test_moving_through_the_session_stops_at_either_end(fake):
    session = Session(fake)
    a, b, c = session.add(paths("a", "b", "c"))
    session.move(1)
    assert session.current is b
    session.move(5)
    assert session.current is c
    session.move(-1)
    assert session.current is b
    session.move(-len(session))
    assert session.current is a
    Session(FakeRequests()).move(1)  # empty: nothing to do


def test_a_batch_row_already_listed_is_selected_again_not_added_twice(fake):
    session = Session(fake)
    a, b = session.add(paths("a", "b"))
    added = []
    session.events.added.connect(lambda p, row: added.append(p))
    again = session.add_answered(PathSource("/photos/b.jpg"), FileResult(path="/photos/b.jpg"))
    assert again is b and session.current is b
    assert added == [] and len(session) == 2 and len(fake.submitted) == 2
    other = session.add_answered(PathSource("/photos/new.jpg"), FileResult(path="/photos/new.jpg"))
    assert other is not b and session.order[0] == other.key and len(session) == 3


def test_undo_puts_a_removed_photo_back_with_its_answer_row_and_current(fake):
    session = Session(fake)
    a, b, c = session.add(paths("a", "b", "c"))
    answer_all(session, fake)
    answer = b.outcome
    session.select(b.key)
    session.remove(b.key)
    assert session.current is c and session.removal is not None and len(session.removal) == 1
    before = len(fake.submitted)
    (back,) = session.undo_removal()
    assert back is b and b.outcome is answer
    assert session.order == [a.key, b.key, c.key] and session.current is b
    assert len(fake.submitted) == before  # answered: nothing to ask the worker again
    assert session.removal is None and session.undo_removal() == []


def test_undo_of_a_clear_restores_order_answers_and_current_and_asks_again_what_was_waiting(fake):
    session = Session(fake)
    a, b, c = session.add(paths("a", "b", "c"))
    session.deliver(fake.answer(a.requests[Purpose.ANSWER]))
    session.deliver(fake.answer(c.requests[Purpose.ANSWER]))
    session.select(c.key)
    old_b_request = b.requests[Purpose.ANSWER]
    session.clear()
    assert len(session) == 0 and old_b_request in fake.cancelled
    (d,) = session.add(paths("d"))  # added meanwhile: stays on top
    restored = session.undo_removal()
    assert restored == [a, b, c]
    assert session.order == [d.key, a.key, b.key, c.key] and session.current is c
    assert a.outcome.result.warnings and c.outcome.result.warnings  # their answers came back
    assert b.waiting and set(b.requests) == {Purpose.ANSWER} and b.requests[Purpose.ANSWER] != old_b_request
    session.deliver(fake.answer(old_b_request))  # the cancelled one, arriving late, changes nothing
    assert b.outcome is None
    session.deliver(fake.answer(b.requests[Purpose.ANSWER]))
    assert b.outcome is not None


def test_undo_after_a_region_change_answers_the_photos_again(fake):
    session = Session(fake)
    (a,) = session.add(paths("a"))
    answer_all(session, fake)
    first = a.outcome
    session.remove(a.key)
    session.region_changed()
    session.undo_removal()
    assert a.outcome is first and set(a.requests) == {Purpose.REANSWER}  # the old answer shows meanwhile


def test_only_the_last_removal_can_be_undone_and_trimming_is_not_a_removal(fake):
    session = Session(fake, max_photos=2)
    a, b = session.add(paths("a", "b"))
    session.remove(a.key)
    session.remove(b.key)
    assert [p for _, p, _ in session.removal.photos] == [b]
    session.undo_removal()
    assert session.order == [b.key]
    session.add(paths("c", "d"))  # b leaves: the session holds two
    assert session.removal is None and b.key not in session.photos
    session.forget_removal()
    assert session.undo_removal() == []


def test_a_decode_that_finds_no_file_keeps_the_answer_and_says_why(fake):
    session = Session(fake)
    known = FileResult(path="/photos/gone.jpg", warnings=["answered last time"])
    (photo,) = session.add_known([(PathSource("/photos/gone.jpg"), known)])
    request_id = photo.requests[Purpose.DISPLAY]
    missing = FileResult(path="/photos/gone.jpg", error="File not found", error_kind="not_found")
    session.deliver(FakeOutcome(request_id, "gone.jpg", missing))
    assert photo.outcome.result is known and photo.outcome.photo is None
    assert (photo.display_error, photo.display_error_kind) == ("File not found", "not_found")
    assert fake.model_calls == 0


def test_removing_the_current_photo_moves_to_the_next_one_down_then_up(fake):
    session = Session(fake)
    a, b, c = session.add(paths("a", "b", "c"))  # shown a, b, c
    b_request, c_request = b.requests[Purpose.ANSWER], c.requests[Purpose.ANSWER]
    session.select(b.key)
    session.remove(b.key)
    assert session.current is c and session.order == [a.key, c.key]
    session.remove(c.key)
    assert session.current is a
    assert fake.cancelled == {b_request, c_request}  # their requests were cancelled
    session.remove(a.key)
    assert session.current is None and len(session) == 0


def test_an_answer_for_a_removed_photo_changes_nothing(fake):
    session = Session(fake)
    (a,) = session.add(paths("a"))
    request_id = a.requests[Purpose.ANSWER]
    changed = []
    session.events.changed.connect(changed.append)
    session.remove(a.key)
    assert request_id in fake.cancelled
    assert session.deliver(fake.answer(request_id)) is None
    assert session.fail(request_id, "boom") is None
    assert changed == [] and a.outcome is None and a.error is None


def test_the_session_is_bounded_and_the_oldest_leave_first(fake):
    session = Session(fake, max_photos=3)
    removed = []
    session.events.removed.connect(lambda p: removed.append(p.name))
    session.add(paths("a", "b"))
    session.add(paths("c", "d"))
    assert removed == ["a.jpg"] and len(session) == 3
    assert 1 in fake.cancelled  # a's request
    assert [session.photos[k].name for k in session.order] == ["c.jpg", "d.jpg", "b.jpg"]
    assert session.removal is None  # trimmed, not removed by the user: nothing to undo


def test_an_evicted_photo_shown_again_is_decoded_not_reclassified(fake):
    session = Session(fake, photos_kept=1)
    a, b, c = session.add(paths("a", "b", "c"))
    answer_all(session, fake)
    assert fake.model_calls == 3
    assert a.outcome.photo is not None  # current: kept
    assert b.photo_evicted and b.outcome.photo is None
    answer = b.outcome.result
    session.select(b.key)
    (request_id,) = b.requests.values()
    assert fake.submitted[request_id][1] is RequestKind.DECODE_ONLY and b.requests == {Purpose.DISPLAY: request_id}
    session.deliver(fake.answer(request_id))
    assert fake.model_calls == 3  # the model did not run again
    assert b.outcome.result is answer and b.outcome.photo == f"pixels {request_id}" and not b.photo_evicted
    assert a.photo_evicted  # b is on the card now; the older display copy went instead


def test_an_evicted_photo_whose_file_is_gone_is_asked_for_once(fake):
    session = Session(fake, photos_kept=0)
    a, b = session.add(paths("a", "b"))
    answer_all(session, fake)
    assert b.photo_evicted
    session.select(b.key)
    session.deliver(fake.answer(b.requests[Purpose.DISPLAY], pixels=False))
    assert not b.photo_evicted and b.outcome.photo is None
    before = len(fake.submitted)
    session.select(a.key)
    session.select(b.key)
    assert len(fake.submitted) == before + (1 if a.photo_evicted else 0)
    assert Purpose.DISPLAY not in b.requests


def test_a_batch_row_keeps_its_answer_and_is_only_decoded(fake):
    session = Session(fake)
    batch_answer = FileResult(path="/photos/row.jpg", warnings=["from the batch"])
    photo = session.add_answered(PathSource("/photos/row.jpg"), batch_answer)
    assert session.current is photo and photo.waiting
    (request_id,) = photo.requests.values()
    assert fake.submitted[request_id][1] is RequestKind.DECODE_ONLY
    session.deliver(fake.answer(request_id))
    assert fake.model_calls == 0
    assert photo.outcome.result is batch_answer and photo.outcome.photo == f"pixels {request_id}"


def test_a_new_region_re_answers_every_photo_keeping_old_answers_until_then(fake):
    session = Session(fake)
    a, b, broken = session.add(paths("a", "b", "broken"))
    session.deliver(fake.answer(a.requests[Purpose.ANSWER]))
    session.fail(broken.requests[Purpose.ANSWER], "simulated bug")
    old_b_request = b.requests[Purpose.ANSWER]
    first_answer = a.outcome

    session.region_changed()
    assert old_b_request in fake.cancelled and Purpose.ANSWER in b.requests  # waiting: asked again
    assert Purpose.REANSWER in a.requests and a.outcome is first_answer  # answered: old answer shows
    assert broken.requests == {}  # a failure is left alone
    session.region_changed()  # twice: still one re-answer each
    assert len(a.requests) == 1 and len(b.requests) == 1

    session.deliver(fake.answer(old_b_request))  # the old region's answer, arriving late: dropped
    assert b.outcome is None
    session.deliver(fake.answer(a.requests[Purpose.REANSWER], pixels=False))
    assert a.outcome is not first_answer and a.outcome.photo == first_answer.photo  # the photo stays
    assert a.requests == {}


def test_a_failed_re_answer_keeps_the_old_answer(fake):
    session = Session(fake)
    (a,) = session.add(paths("a"))
    answer_all(session, fake)
    first = a.outcome
    session.region_changed()
    assert session.fail(a.requests[Purpose.REANSWER], "boom") is None
    assert a.outcome is first and a.error is None


def test_clear_cancels_everything(fake):
    session = Session(fake)
    session.add(paths("a", "b"))
    current = []
    session.events.current_changed.connect(current.append)
    session.clear()
    assert len(session) == 0 and session.current is None and current == [None]
    assert fake.cancelled == {1, 2} and dict(session.live_requests()) == {}


def test_the_session_model_imports_without_qt():
    code = """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'shiboken6'):
                    raise ImportError('blocked for this test: ' + name)
        sys.meta_path.insert(0, Block())
        import snakeid_desktop.session, snakeid_desktop.request_queue
        print('OK')
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


# ---------------------------------------------------------------- random use keeps the invariants


class SessionMachine(RuleBasedStateMachine):
    MAX, KEPT = 5, 1

    def __init__(self):
        super().__init__()
        self.fake = FakeRequests()
        self.session = Session(self.fake, max_photos=self.MAX, photos_kept=self.KEPT)
        self.names = 0
        self.classified: dict[int, set[int]] = {}  # photo key -> CLASSIFY request ids it got
        self.regions_seen: dict[int, int] = {}  # photo key -> region changes while it was there
        self.batch_rows: set[int] = set()  # photos added with their answer
        self.undos_seen: dict[int, int] = {}  # photo key -> times put back by undo
        self.removed: list[tuple[int, int]] = []  # (row, key) of the last removal, as undo must restore it
        self.added_since_removal = 0
        self.expected_order: list[int] = []  # the order as the rules below say it must be
        self.seen_ids = 0

    def _note_new_requests(self):
        for request_id in range(self.seen_ids + 1, self.fake.next_id):
            found = self.session.photo_for(request_id)
            if found is not None and self.fake.submitted[request_id][1] is RequestKind.CLASSIFY:
                self.classified.setdefault(found[0].key, set()).add(request_id)
        self.seen_ids = self.fake.next_id - 1

    def _source(self, as_path: bool):
        self.names += 1
        return PathSource(f"/p/{self.names}.jpg") if as_path else BytesSource(b"x", f"pasted {self.names}")

    def _snapshot(self):
        return {k: (p.outcome, p.error, p.photo_evicted, dict(p.requests)) for k, p in self.session.photos.items()}

    def _expect_trimmed(self, keep=()):
        while len(self.expected_order) > self.MAX:
            self.expected_order.remove(min(k for k in self.expected_order if k not in keep))

    @rule(kinds=st.lists(st.booleans(), min_size=1, max_size=4))
    def add(self, kinds):
        added = self.session.add([self._source(k) for k in kinds])
        for photo in added:
            self.regions_seen[photo.key] = 0
        self.expected_order[:0] = [p.key for p in added]
        self._expect_trimmed()
        self.added_since_removal += len(added)
        self._note_new_requests()

    @rule(again=st.booleans())
    def add_answered(self, again):
        listed = [p for p in self.session.photos.values() if isinstance(p.source, PathSource)]
        source = listed[0].source if again and listed else self._source(True)
        photo = self.session.add_answered(source, FileResult(path="row", warnings=["batch"]))
        if again and listed:
            assert photo is listed[0] and self.session.current is photo  # selected, not listed twice
            return
        self.regions_seen[photo.key] = 0
        self.batch_rows.add(photo.key)
        self.expected_order.insert(0, photo.key)
        self._expect_trimmed()
        self.added_since_removal += 1
        self._note_new_requests()

    def _expect_removal(self, keys):
        self.removed = [(self.expected_order.index(k), k) for k in keys]
        self.added_since_removal = 0
        for key in keys:
            self.expected_order.remove(key)

    @precondition(lambda self: len(self.session) > 0)
    @rule(data=st.data())
    def remove(self, data):
        key = data.draw(st.sampled_from(self.session.order))
        self._expect_removal([key])
        self.session.remove(key)

    @rule()
    def clear(self):
        if self.expected_order:
            self._expect_removal(list(self.expected_order))
        self.session.clear()

    @rule()
    def undo(self):
        restored = self.session.undo_removal()
        for row, key in sorted(self.removed):
            self.expected_order.insert(min(row + self.added_since_removal, len(self.expected_order)), key)
        keys = [key for _, key in self.removed]
        assert [p.key for p in restored] == [key for _, key in sorted(self.removed)]
        for key in keys:
            self.undos_seen[key] = self.undos_seen.get(key, 0) + 1
        self._expect_trimmed(keep=set(keys))
        self.removed = []
        self._note_new_requests()

    @rule()
    def move(self):
        self.session.move(1)
        self._note_new_requests()

    @precondition(lambda self: len(self.session) > 0)
    @rule(data=st.data())
    def select(self, data):
        self.session.select(data.draw(st.sampled_from(self.session.order)))
        self._note_new_requests()

    @rule()
    def region_changed(self):
        self.session.region_changed()
        for key in self.session.photos:
            self.regions_seen[key] += 1
        self._note_new_requests()

    @precondition(lambda self: self.fake.submitted)
    @rule(data=st.data(), pixels=st.booleans(), fails=st.booleans())
    def worker_answers(self, data, pixels, fails):
        """Any request ever made answers, live or long cancelled; only live ones may change anything."""
        request_id = data.draw(st.sampled_from(sorted(self.fake.submitted)))
        found = self.session.photo_for(request_id)
        before = self._snapshot()
        old_result = found[0].outcome.result if found and found[0].outcome is not None else None
        if fails:
            self.session.fail(request_id, "simulated bug")
        else:
            self.session.deliver(self.fake.answer(request_id, pixels))
        if found is None:
            assert self._snapshot() == before  # no answer is applied to a removed or replaced request
            return
        photo, purpose = found
        assert purpose not in photo.requests or photo.requests[purpose] != request_id
        if purpose is Purpose.DISPLAY and old_result is not None:
            assert photo.outcome.result is old_result  # a re-decode never changes the answer
        self._note_new_requests()

    @precondition(lambda self: self.fake.submitted)
    @rule(data=st.data())
    def worker_starts(self, data):
        self.session.started(data.draw(st.sampled_from(sorted(self.fake.submitted))))

    @invariant()
    def current_is_a_member_and_only_none_when_empty(self):
        session = self.session
        assert (session.current_key is None) == (len(session) == 0)
        assert session.current_key is None or session.current_key in session.photos

    @invariant()
    def counts_are_bounded(self):
        assert len(self.session) <= self.MAX
        with_pixels = [p for p in self.session.photos.values() if p.redecodable and p.outcome is not None and p.outcome.photo is not None]
        assert len(with_pixels) <= self.KEPT + 1  # the newest few, plus the one on the card

    @invariant()
    def requests_are_tracked_once_and_never_cancelled_while_tracked(self):
        routes = dict(self.session.live_requests())
        expected = {}
        for key, photo in self.session.photos.items():
            for purpose, request_id in photo.requests.items():  # a dict: at most one per purpose
                expected[request_id] = (key, purpose)
                assert self.fake.submitted[request_id][1] is purpose.kind
            assert not (Purpose.ANSWER in photo.requests and len(photo.requests) > 1)
            if photo.photo_evicted:
                assert photo.outcome is not None and photo.outcome.photo is None
        assert routes == expected
        assert not set(routes) & self.fake.cancelled

    @invariant()
    def an_answered_photo_is_only_classified_again_for_a_new_region(self):
        for key in self.session.photos:
            first = 0 if key in self.batch_rows else 1
            # put back by undo, a photo still waiting is asked again (its request was cancelled)
            assert len(self.classified.get(key, ())) <= first + self.regions_seen[key] + self.undos_seen.get(key, 0)

    @invariant()
    def the_order_is_newest_batch_first_each_in_the_order_given(self):
        assert self.session.order == self.expected_order
        assert sorted(self.session.order) == sorted(self.session.photos)


SessionMachine.TestCase.settings = hypothesis_settings(max_examples=150, stateful_step_count=40, deadline=None)
test_session_state_machine = SessionMachine.TestCase
