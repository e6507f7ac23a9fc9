"""The Qt-free request queue: order, cancelling, and the one record of what is still wanted."""

from __future__ import annotations

import threading

from snakeid_desktop.request_queue import PathSource, Request, RequestKind, RequestQueue


def req(i: int, kind: RequestKind = RequestKind.CLASSIFY) -> Request:
    return Request(i, PathSource(f"/photos/{i}.jpg"), kind=kind)


def drain(queue: RequestQueue) -> list[int]:
    taken = []
    while len(queue):
        taken.append(queue.take().request_id)
    return taken


def test_new_requests_go_first_in_the_order_given_and_can_be_prioritized():
    queue = RequestQueue()
    queue.put_front([req(1), req(2)])
    queue.put_front([req(3), req(4)])
    queue.prioritize(2)
    assert drain(queue) == [2, 3, 4, 1]


def test_an_id_is_wanted_until_cancelled_or_claimed_once():
    queue = RequestQueue()
    queue.put_front([req(1), req(2), req(3)])
    assert queue.take().request_id == 1  # taken by the worker: still wanted until its answer is claimed
    assert queue.is_wanted(1) and queue.wanted_count() == 3
    queue.cancel(2)
    assert not queue.is_wanted(2) and drain(queue) == [3]
    assert queue.claim(1) is True
    assert queue.claim(1) is False  # a second answer for the same id is not delivered
    assert queue.claim(2) is False  # cancelled: its late answer is dropped
    assert queue.wanted_count() == 1  # 3, taken, answer not yet claimed


def test_cancel_all_and_stop():
    queue = RequestQueue()
    queue.put_front([req(1), req(2)])
    queue.cancel_all()
    assert len(queue) == 0 and queue.wanted_count() == 0
    queue.put_front([req(3)])
    got = []
    waiter = threading.Thread(target=lambda: (queue.take(), got.append(queue.take())))
    waiter.start()
    queue.stop()  # wakes the blocked take() with None
    waiter.join(5)
    assert not waiter.is_alive() and got == [None]
    assert not queue.is_wanted(3) and queue.claim(3) is False and queue.stopped


def test_requests_say_what_kind_of_work_they_are():
    assert req(1).kind is RequestKind.CLASSIFY
    assert req(2, RequestKind.DECODE_ONLY).kind is RequestKind.DECODE_ONLY
