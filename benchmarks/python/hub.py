"""The hub rows of benchmarks/hub in gevent; run by benchmarks/hub.

usage: hub.py N REPS
Prints one line per row: "<row> <seconds> <seconds> ...", each at size N (sleepers_10k
always runs 10,000 sleepers). Every row runs once at N/10 first as a warm-up.
"""
import sys
import time

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.pool import Pool
from gevent.queue import Channel, Queue


def spawn_join(n):
    for _ in range(n):
        gevent.spawn(lambda: None).join()


def spawn_sleep0_join(n):
    for _ in range(n):
        gevent.spawn(gevent.sleep, 0).join()


def sleep0_switch(n):
    def body():
        for _ in range(n // 2):
            gevent.sleep(0)
    a = gevent.spawn(body)
    b = gevent.spawn(body)
    a.join()
    b.join()


def pingpong(n, there, back):
    def pong():
        for _ in range(n):
            back.put(there.get())
    p = gevent.spawn(pong)
    for i in range(n):
        there.put(i)
        back.get()
    p.join()


def queue_pingpong(n):
    pingpong(n, Queue(), Queue())


def channel_pingpong(n):
    pingpong(n, Channel(), Channel())


def event_wake(n):
    ping, pong = Event(), Event()

    def partner():
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()
    p = gevent.spawn(partner)
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    p.join()


def timeout_scope(n):
    for _ in range(n):
        with gevent.Timeout(1):
            pass


def lock_contended(n):
    lock = Semaphore(1)

    def body():
        for _ in range(n // 2):
            with lock:
                gevent.sleep(0)
    a = gevent.spawn(body)
    b = gevent.spawn(body)
    a.join()
    b.join()


def pool_map(n):
    Pool(10).map(lambda x: x + 1, range(n))


def sleepers_10k(_n):
    gevent.joinall([gevent.spawn(gevent.sleep, 0.001) for _ in range(10000)])


ROWS = [spawn_join, spawn_sleep0_join, sleep0_switch, queue_pingpong, channel_pingpong,
        event_wake, timeout_scope, lock_contended, pool_map, sleepers_10k]


def main():
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    for row in ROWS:
        row(max(1, n // 10))
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            row(n)
            samples.append(time.perf_counter() - t0)
        print(row.__name__, " ".join("%.6f" % s for s in samples))


if __name__ == "__main__":
    main()
