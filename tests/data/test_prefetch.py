"""Prefetcher: order, depth, exceptions re-raised, the thread stops with its owner."""
import gc
import threading

import pytest

from pycaffe_lowbit.data.prefetch import Prefetcher


class Counter:
    """load_batch yielding 0, 1, 2, ...; fails at ``fail_at`` if given."""

    def __init__(self, fail_at=None):
        self.n = 0
        self.fail_at = fail_at

    def load_batch(self):
        if self.n == self.fail_at:
            raise KeyError("record %d is broken" % self.n)
        self.n += 1
        return self.n - 1


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_batches_come_in_order_and_at_most_depth_ahead(depth):
    source = Counter()
    p = Prefetcher(source.load_batch, depth)
    assert [p.next() for _ in range(10)] == list(range(10))
    p.close()
    # the thread has loaded at most depth batches beyond the ones taken (+1 in hand)
    assert 10 <= source.n <= 10 + depth + 1


@pytest.mark.parametrize("depth", [0, 2])
def test_an_exception_is_raised_in_next_at_its_batch_and_after(depth):
    p = Prefetcher(Counter(fail_at=3).load_batch, depth)
    assert [p.next() for _ in range(3)] == [0, 1, 2]
    for _ in range(2):
        with pytest.raises(KeyError, match="record 3 is broken"):
            p.next()


def test_the_thread_stops_when_the_prefetcher_is_collected():
    p = Prefetcher(Counter().load_batch, 2, name="prefetch-test-gc")
    p.next()
    thread = p._thread
    del p
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert "prefetch-test-gc" not in [t.name for t in threading.enumerate()]


def test_stop_all_waits_for_a_thread_busy_in_a_batch():
    """What runs at exit (data/threads.py): a thread in the middle of a batch
    finishes it, sees the stop and ends; none is left running."""
    import time
    from pycaffe_lowbit.data import threads

    def slow():
        time.sleep(0.3)
        return 0

    p = Prefetcher(slow, 1, name="prefetch-test-exit")
    time.sleep(0.05)
    threads.stop_all()
    assert not p._thread.is_alive() and threads.running() == []


@pytest.mark.parametrize("depth", [0, 2])
def test_peek_shows_the_next_ready_batch_without_taking_it(depth):
    import time
    p = Prefetcher(Counter(fail_at=4).load_batch, depth)
    assert p.next() == 0
    if depth:
        deadline = time.time() + 5
        while p.peek() is None and time.time() < deadline:
            time.sleep(0.01)
        assert p.peek() == 1
    else:
        assert p.peek() is None                # synchronous: nothing is ahead
    assert [p.next() for _ in range(3)] == [1, 2, 3]
    time.sleep(0.2)
    assert p.peek() is None                    # the failure is not shown, next() raises it
    with pytest.raises(KeyError):
        p.next()
