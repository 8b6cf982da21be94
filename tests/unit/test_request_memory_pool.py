"""RequestMemoryPool (runtime/memory.py): one bound on the bytes of requests being received;
connections past it wait in line, one may pass it so no frame waits forever."""

from __future__ import annotations

from moldau.runtime.memory import RequestMemoryPool


class Conn:
    def __init__(self, pool: RequestMemoryPool, need: int) -> None:
        self.pool, self.need, self.closed, self.resumed = pool, need, False, 0

    def retry_memory(self) -> bool:
        if self.pool.try_charge(self, self.need):
            self.resumed += 1
            return True
        return False


def test_charges_within_the_bound_are_granted() -> None:
    pool = RequestMemoryPool(100)
    a = Conn(pool, 0)
    assert pool.try_charge(a, 60) and pool.try_charge(a, 40)
    assert pool.exhausted() and pool.used_bytes == 100 and pool.holder is None


def test_one_connection_may_pass_the_bound_the_others_wait_in_line() -> None:
    pool = RequestMemoryPool(100)
    a, b, c = Conn(pool, 50), Conn(pool, 50), Conn(pool, 50)
    assert pool.try_charge(a, 80)
    assert pool.try_charge(b, 50) and pool.holder is b  # past the bound: the holder
    assert not pool.try_charge(c, 50)
    pool.wait(c)
    assert not pool.may_read_fully(c) and pool.may_read_fully(b)
    pool.release(b, 50, done=True)  # b's frame is complete: c is next, and may pass the bound
    assert c.resumed == 1 and pool.holder is c and not pool.waiting
    assert pool.used_bytes == 130


def test_a_waiting_connection_becomes_the_holder_when_nobody_is() -> None:
    pool = RequestMemoryPool(100)
    a, b = Conn(pool, 0), Conn(pool, 70)
    assert pool.try_charge(a, 60)
    assert pool.try_charge(b, 70)  # b is the holder
    c = Conn(pool, 30)
    assert not pool.try_charge(c, 30)
    pool.wait(c)
    pool.release(b, 70, done=True)  # 60 used: c's 30 fits
    assert c.resumed == 1
    d = Conn(pool, 50)
    assert pool.try_charge(d, 50) and pool.holder is d  # 140 > 100: d passes the bound
    e = Conn(pool, 10)
    assert not pool.try_charge(e, 10)
    pool.wait(e)
    pool.forget(d)  # d's connection closed while holding
    pool.release(d, 50, done=True)
    assert e.resumed == 1


def test_closed_connections_leave_the_line() -> None:
    pool = RequestMemoryPool(10)
    a, b = Conn(pool, 0), Conn(pool, 5)
    assert pool.try_charge(a, 10) and pool.try_charge(Conn(pool, 0), 1)  # a holder now
    assert not pool.try_charge(b, 5)
    pool.wait(b)
    b.closed = True
    pool.forget(b)
    assert not pool.waiting


def test_unbounded() -> None:
    pool = RequestMemoryPool(-1)
    assert pool.try_charge(Conn(pool, 0), 10**12) and not pool.exhausted()
