"""Coalescing of concurrent searches: ``search`` calls that several threads make at the same
time go to the server as one request, the way Search-R1's trainer sends every active rollout's
queries in one ``/retrieve`` call.

Why: over HTTP each request costs a fixed ~1 ms of CPU (client and server, Python) where a
query costs 0.3-0.7 ms; threads that each send one query per request spend more on requests
than on searching. Batching the calls that would wait anyway removes requests without making
any caller wait for a batch to fill.

How (leader/follower: no background thread, no timer):

- At most ``in_flight`` shared requests are on the wire at once. A call that finds a free slot
  is sent at once by its own thread (a lone caller never waits); one that finds every slot busy
  queues.
- When a request's answer arrives, its sender hands the slot on before it reads the answer: the
  oldest queued calls (up to ``max_batch`` queries) go to the first of them, which sends them as
  the next request, while the finishing sender turns the answer into hits and wakes its callers.
  A queue is never left without a sender.
- A call of ``max_batch`` queries or more is sent alone at once: it fills requests by itself.
- One request per result count ``k`` in a batch (the env asks one ``k`` almost always). Asking
  the largest ``k`` and trimming was not chosen: a ranked list's top 3 is not always the first 3
  of its top 10 (ties; approximate indexes of other servers), and a server makes a snippet for
  every hit it returns, so trimmed hits would be paid for and thrown away.
- Each caller gets the slice of the answer that belongs to its own queries, in order.
- Errors: a failure of a shared request reaches every caller in it as its own exception (a
  :class:`SearchError`, or a :class:`DamagedWorldError` that ends the run; a bug in this client
  reaches the sender as itself and the others as a ``RuntimeError`` naming it). A request the
  server refuses for its content (``isolate(err)``: HTTP 4xx, e.g. one caller's query pushing
  the body over the server's limit) is sent again by each of its callers alone, so no call fails
  coalesced that would have succeeded on its own.
- No caller waits forever: every request has the client's timeouts, the sender of a batch
  answers all its callers whatever happens (``finally``), a queued call that is not taken
  within ``wait_s`` is sent alone, and a taken call waits at most ``wait_s`` per request of its
  batch, then gives up with a :class:`SearchError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wideseek_env.search.base import DamagedWorldError, Hit, SearchError

#: ``send(queries, k, answered)``: one request; calls ``answered()`` once the server's answer
#: is in (before it is read into hits), so the wire can be handed on.
Send = Callable[[list[str], int, Callable[[], None]], list[list[Hit]]]


@dataclass(frozen=True)
class CoalesceStats:
    """Counts since the client was made: ``calls`` of ``search``, ``requests`` sent for them
    (a call sent again alone after a 4xx counts in ``alone`` instead), ``queries`` in those
    requests."""

    calls: int
    requests: int
    queries: int
    alone: int

    @property
    def calls_per_request(self) -> float:
        return self.calls / self.requests if self.requests else 0.0


class _Call:
    __slots__ = ("batch", "error", "event", "hits", "k", "queries", "requests", "taken")

    def __init__(self, queries: list[str], k: int) -> None:
        self.queries = queries
        self.k = k
        self.event = threading.Event()
        self.hits: list[list[Hit]] | None = None
        self.error: BaseException | None = None
        self.batch: list[_Call] | None = None  # set when this call is made the next sender
        self.taken = False  # in a batch that a sender has taken
        self.requests = 1  # requests of that batch (bounds how long its answer may take)


class _Alone(Exception):
    """Outcome of a call whose shared request was refused for its content: send it alone."""


def _noop() -> None:
    pass


class Coalescer:
    """Coalesces concurrent :meth:`search` calls into shared ``send`` calls (see the module
    docstring). ``send`` must be thread-safe; it gets at most ``max_batch`` queries unless one
    call has more."""

    def __init__(self, send: Send, *, in_flight: int = 2, max_batch: int = 64,
                 wait_s: float = 60.0,
                 isolate: Callable[[BaseException], bool] = lambda err: False) -> None:
        if in_flight < 1 or max_batch < 1 or not wait_s > 0:
            raise ValueError("in_flight and max_batch must be >= 1 and wait_s > 0")
        self._send = send
        self.in_flight = in_flight
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._isolate = isolate
        self._lock = threading.Lock()
        self._queue: list[_Call] = []  # not empty only while every slot is taken
        self._sending = 0  # slots taken
        self._counts = [0, 0, 0, 0]  # calls, requests, queries, alone

    def stats(self) -> CoalesceStats:
        with self._lock:
            return CoalesceStats(*self._counts)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        call = _Call(list(queries), k)
        batch = None
        with self._lock:
            self._counts[0] += 1
            big = len(call.queries) >= self.max_batch
            if big:
                self._counts[1] += 1
                self._counts[2] += len(call.queries)
            else:
                self._queue.append(call)
                if self._sending < self.in_flight:  # then the queue was empty: send it alone
                    batch = self._take()
                    self._sending += 1
        if big:
            return self._send(call.queries, k, _noop)
        if batch is not None:
            self._lead(batch, call, counted=True)
        else:
            self._follow(call)
        if isinstance(call.error, _Alone):
            with self._lock:
                self._counts[3] += 1
            return self._send(call.queries, k, _noop)
        if call.error is not None:
            raise call.error
        assert call.hits is not None
        return call.hits

    # ------------------------------------------------------------------------------ internals

    def _take(self) -> list[_Call]:
        """The oldest queued calls up to ``max_batch`` queries in all (at least one), marked
        taken (hold the lock); the rest stay queued for the next slot."""
        n = size = 0
        for c in self._queue:
            size += len(c.queries)
            if n and size > self.max_batch:
                break
            n += 1
        batch, self._queue = self._queue[:n], self._queue[n:]
        requests = len({c.k for c in batch})
        for c in batch:
            c.taken, c.requests = True, requests
        return batch

    def _follow(self, call: _Call) -> None:
        """Wait until ``call`` is answered, or made the next sender (then send)."""
        try:
            led = call.event.wait(self.wait_s)
        except BaseException:  # Ctrl-C in a waiting main thread: leave no slot or call behind
            self._abandon(call)
            raise
        if not led:
            with self._lock:
                alone = not call.taken
                if alone:  # no slot came free for it in time: send it outside the slots
                    self._queue.remove(call)
                    call.taken = True
            if alone:
                self._lead([call], call, counted=False)
                return
        if call.batch is not None:
            self._lead(call.batch, call, counted=True)
        elif not call.event.wait(self.wait_s * call.requests):
            call.error = SearchError(f"no answer from the shared search request within "
                                     f"{self.wait_s * call.requests:g} s")

    def _abandon(self, call: _Call) -> None:
        """Take ``call`` out of the queue; if it was just made a sender, pass its batch and its
        slot on."""
        with self._lock:
            if not call.taken:
                self._queue.remove(call)
                return
            batch, call.batch = call.batch, None
            if batch is None:
                return  # in another sender's batch: answered there, nobody waits for it
            for c in batch:
                c.taken = False
            self._queue[:0] = [c for c in batch if c is not call]
            nxt = self._take() if self._queue else None
            if nxt is not None:
                nxt[0].batch = nxt
            else:
                self._sending -= 1
        if nxt is not None:
            nxt[0].event.set()

    def _lead(self, batch: list[_Call], own: _Call, *, counted: bool) -> None:
        """Send ``batch`` (one request per ``k``), hand the slot on as soon as the last answer
        is in, and answer every call in the batch, whatever happens."""
        handed = [not counted]

        def hand_on() -> None:
            if handed[0]:
                return
            handed[0] = True
            with self._lock:
                if self._queue:  # the slot passes to the oldest queued call
                    nxt = self._take()
                    nxt[0].batch = nxt
                else:
                    nxt = None
                    self._sending -= 1
            if nxt is not None:
                nxt[0].event.set()

        try:
            self._send_batch(batch, own, hand_on)
        finally:
            hand_on()
            for c in batch:
                if c.hits is None and c.error is None:
                    c.error = SearchError("the shared search request was interrupted")
                c.event.set()

    def _send_batch(self, batch: list[_Call], own: _Call, hand_on: Callable[[], None]) -> None:
        groups: dict[int, list[_Call]] = {}
        for c in batch:
            groups.setdefault(c.k, []).append(c)
        last = len(groups) - 1
        for i, (k, calls) in enumerate(groups.items()):
            queries = [q for c in calls for q in c.queries]
            with self._lock:
                self._counts[1] += 1
                self._counts[2] += len(queries)
            try:
                hits = self._send(queries, k, hand_on if i == last else _noop)
            except Exception as err:  # every caller of the group gets it (below)
                alone = len(calls) > 1 and self._isolate(err)
                for c in calls:
                    c.error = _Alone() if alone else _own_copy(err, c is own)
                continue
            pos = 0
            for c in calls:
                c.hits = hits[pos: pos + len(c.queries)]
                pos += len(c.queries)


def _own_copy(err: Exception, is_sender: bool) -> BaseException:
    """The exception one caller raises for a failed shared request (each thread its own)."""
    if isinstance(err, DamagedWorldError):
        out: BaseException = DamagedWorldError(str(err))
    elif isinstance(err, SearchError):
        out = SearchError(str(err))
    elif is_sender:
        return err
    else:
        out = RuntimeError(f"the shared search request failed: {type(err).__name__}: {err}")
    out.__cause__ = err
    return out


__all__ = ["CoalesceStats", "Coalescer"]
