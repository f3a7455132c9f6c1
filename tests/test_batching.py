"""The micro-batcher of --mode serve (train/inference/batching.py), with a recording stand-in for the
model: which rows share a call, that a large job is served in turns, the bounded wait, failures."""
import threading
import time

import pytest

from train.inference.batching import MicroBatcher


class Recorder:
    """run(): records each call's pieces [(payload, start, stop)] and answers each piece with its
    row range; `gate`, when set, holds every call until released (to queue jobs behind one)."""

    def __init__(self, gate=None, fail_on=None):
        self.calls, self.gate, self.fail_on = [], gate, fail_on
        self.started = threading.Event()

    def __call__(self, pieces):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append(list(pieces))
        if any(payload == self.fail_on for payload, _, _ in pieces):
            raise RuntimeError("the model failed")
        return [ValueError("bad job") if piece[0] == "bad" else piece for piece in pieces]


def rows_of(results):
    return [row for _, start, stop in results for row in range(start, stop)]


def test_jobs_that_arrive_together_share_one_call_and_get_their_own_rows_back():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=64, max_delay=0.5, turn=16)
    futures = [batcher.submit(f"request {k}", 2) for k in range(8)]   # queued before the worker starts
    batcher.start()
    answers = [f.result(10) for f in futures]
    batcher.close()
    assert len(run.calls) == 1 and len(run.calls[0]) == 8
    assert [rows_of(a) for a in answers] == [[0, 1]] * 8
    assert [a[0][0] for a in answers] == [f"request {k}" for k in range(8)]


def test_a_call_holds_at_most_max_batch_rows_and_the_rest_follow():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=5, max_delay=0.0, turn=5)
    futures = [batcher.submit(k, 2) for k in range(4)]
    batcher.start()
    assert all(rows_of(f.result(10)) == [0, 1] for f in futures)
    batcher.close()
    sizes = [sum(stop - start for _, start, stop in call) for call in run.calls]
    assert max(sizes) <= 5 and sum(sizes) == 8


def test_a_large_job_alone_fills_every_call_and_is_cut_in_row_order():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=64, max_delay=0.0, turn=16).start()
    result = batcher.submit("large", 1000).result(10)
    batcher.close()
    assert rows_of(result) == list(range(1000))
    assert [stop - start for call in run.calls for _, start, stop in call] == [64] * 15 + [40]


def test_a_small_job_arriving_beside_a_10000_row_job_is_in_the_next_call():
    gate = threading.Event()
    run = Recorder(gate)
    batcher = MicroBatcher(run, max_batch=64, max_delay=0.0, turn=16).start()
    large = batcher.submit("large", 10_000)
    run.started.wait(10)                      # the large job's first call is in progress
    small = batcher.submit("small", 1)
    gate.set()
    assert rows_of(small.result(10)) == [0]
    calls_until_small = next(k for k, call in enumerate(run.calls) if any(p == "small" for p, _, _ in call))
    assert calls_until_small == 1             # only the call in progress before it
    shared = run.calls[1]
    assert [(p, stop - start) for p, start, stop in shared] == [("large", 16), ("small", 1)]   # a turn each
    assert rows_of(large.result(60)) == list(range(10_000))
    batcher.close()


def test_jobs_take_turns_so_two_large_jobs_progress_together():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=32, max_delay=0.0, turn=8)
    a, b = batcher.submit("a", 100), batcher.submit("b", 100)
    batcher.start()
    assert rows_of(a.result(10)) == rows_of(b.result(10)) == list(range(100))
    batcher.close()
    for call in run.calls[:-1]:
        assert sorted(p for p, _, _ in call) == ["a", "b"]


def test_a_call_that_is_not_full_waits_for_its_delay_and_a_full_one_does_not():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=4, max_delay=0.3, turn=4).start()
    began = time.monotonic()
    batcher.submit("one", 1).result(10)
    waited = time.monotonic() - began
    assert 0.25 <= waited < 5                  # up to max_delay for others to join
    slow = MicroBatcher(Recorder(), max_batch=4, max_delay=30.0, turn=4).start()
    began = time.monotonic()
    futures = [slow.submit(k, 2) for k in range(2)]   # 4 rows: full
    for future in futures:
        future.result(10)
    assert time.monotonic() - began < 10       # not the 30 s delay
    batcher.close()
    slow.close()


def test_a_failing_job_fails_alone_and_a_failing_call_fails_its_jobs_while_the_worker_keeps_serving():
    run = Recorder(fail_on="crash")
    batcher = MicroBatcher(run, max_batch=64, max_delay=0.2, turn=16)
    bad, good = batcher.submit("bad", 1), batcher.submit("good", 1)
    batcher.start()
    with pytest.raises(ValueError, match="bad job"):
        bad.result(10)
    assert rows_of(good.result(10)) == [0]
    with pytest.raises(RuntimeError, match="the model failed"):
        batcher.submit("crash", 3).result(10)
    assert rows_of(batcher.submit("after", 2).result(10)) == [0, 1]
    batcher.close()


def test_close_finishes_the_jobs_already_submitted():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch=8, max_delay=0.0, turn=8)
    futures = [batcher.submit(k, 20) for k in range(3)]
    batcher.start()
    batcher.close(10)
    assert all(rows_of(f.result(0)) == list(range(20)) for f in futures)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("late", 1)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(Recorder(), max_batch=0, max_delay=0.0, turn=1)
