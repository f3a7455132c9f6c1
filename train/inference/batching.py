"""Micro-batching for --mode serve: requests that arrive together share one model call, and a large
request is served in turns with the others.

One worker thread makes every model call. A request is a job of `size` rows (its aspects); the worker
fills a call of at most `max_batch` rows by taking up to `turn` rows from each waiting job in the
order they came (a job alone in the queue fills the call). The next call starts with the job after
the last one served, so a request of 10,000 aspects is cut into pieces served in turn with the
others: a request that arrives while it runs waits for the call in progress, and its own call holds
no more than `turn` rows of each other request. A call that is not full waits until `max_delay`
seconds after its oldest job arrived, for more jobs to join it (the dynamic batching of Triton's
max_queue_delay, TorchServe's max_batch_delay, Ray Serve's batch_wait_timeout_s).

The batcher knows nothing of models: `run(pieces)` is given [(job payload, start, stop)] and returns
one result per piece; a job's future gets the list of its pieces' results in row order. A result
that is an exception fails its job only; an exception raised by `run` fails the jobs of that call.
The worker keeps serving either way.
"""
import collections
import threading
import time
from concurrent.futures import Future


class _Job:
    __slots__ = ("payload", "size", "next", "results", "future", "arrived")

    def __init__(self, payload, size, arrived):
        self.payload, self.size, self.next, self.results = payload, size, 0, []
        self.future, self.arrived = Future(), arrived


class MicroBatcher:
    """Batches jobs for `run` on one worker thread (started by start(), ended by close())."""

    def __init__(self, run, max_batch, max_delay, turn, clock=time.monotonic, name="model calls"):
        if max_batch < 1 or turn < 1 or max_delay < 0:
            raise ValueError(f"max_batch={max_batch}, turn={turn}, max_delay={max_delay}: need max_batch >= 1, "
                             f"turn >= 1, max_delay >= 0")
        self.run, self.max_batch, self.max_delay, self.turn, self.clock = run, max_batch, max_delay, turn, clock
        self._waiting = collections.deque()   # jobs with rows left, in serving order
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def close(self, timeout=None):
        """Finish the jobs already submitted, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, payload, size):
        """A Future of the results of the job's pieces (in row order); a job of size 0 is done at once."""
        job = _Job(payload, size, self.clock())
        if size <= 0:
            job.future.set_result([])
            return job.future
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._waiting.append(job)
            self._cond.notify_all()
        return job.future

    def _rows_waiting(self):
        return sum(job.size - job.next for job in self._waiting)

    def _take(self):
        """The pieces of the next call, under the lock: up to `turn` rows of each waiting job in
        order, until the call holds max_batch rows; a job alone fills the call."""
        order, pieces, room = list(self._waiting), [], self.max_batch
        for k, job in enumerate(order):
            count = min(self.turn if len(order) > 1 else self.max_batch, job.size - job.next, room)
            pieces.append((job, job.next, job.next + count))
            job.next += count
            room -= count
            if not room:
                break
        # the next call starts with the job after the last one served; finished jobs leave
        last = len(pieces) - 1
        self._waiting = collections.deque(job for job in order[last + 1:] + order[:last + 1] if job.next < job.size)
        return pieces

    def _next_pieces(self):
        with self._cond:
            while not self._waiting:
                if self._closed:
                    return None
                self._cond.wait()
            deadline = min(job.arrived for job in self._waiting) + self.max_delay
            while self._rows_waiting() < self.max_batch and not self._closed:
                left = deadline - self.clock()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._take()

    def _loop(self):
        while (pieces := self._next_pieces()) is not None:
            try:
                results = self.run([(job.payload, start, stop) for job, start, stop in pieces])
                if len(results) != len(pieces):
                    raise RuntimeError(f"run returned {len(results)} results for {len(pieces)} pieces")
            except BaseException as err:   # the jobs of this call fail; the worker keeps serving the others
                self._fail({job for job, _, _ in pieces}, err)
                continue
            for (job, _, stop), result in zip(pieces, results):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    self._fail({job}, result)
                    continue
                job.results.append(result)
                if stop == job.size:
                    job.future.set_result(job.results)

    def _fail(self, jobs, err):
        with self._cond:
            for job in jobs:
                if job in self._waiting:
                    self._waiting.remove(job)
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(err)
