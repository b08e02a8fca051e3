"""gevent's side of benchmarks/hub: the same rows, timed; run by the hub binary.

usage: hub.py N SMALL_N REPS FULL_REPS SLEEPERS [MEMORY_TASKS]
N sizes the rows whose cost per task depends on how many tasks are alive at once (spawn,
event), as in hub.cpp; SMALL_N sizes the others (gevent is slow, and their cost per
operation does not depend on the size). SLEEPERS is the task count of the sleepers row
(its wall time is not linear, so it is not scaled). The rows sized by N run FULL_REPS
times (they take seconds each), the others REPS times. With MEMORY_TASKS, only the memory
row runs: that many tasks blocked on one Event, RSS before and after.

Prints one JSON object per line:
  {"row": "spawn_join", "ops": 100000, "seconds": [...], "cpu_seconds": [...]}
The rows run interleaved, after a warm-up at a tenth of their size.
"""
import gc
import json
import sys
import time

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import gevent.queue


def nothing():
    pass


def sleep0_once():
    gevent.sleep(0)


def spawn_join(n):
    tasks = [gevent.spawn(nothing) for _ in range(n)]
    gevent.joinall(tasks)
    return n


def spawn_sleep0_join(n):
    tasks = [gevent.spawn(sleep0_once) for _ in range(n)]
    gevent.joinall(tasks)
    return n


def sleep0_switch(n):
    # Two tasks alternate through the hub: 2n sleep(0) calls, one switch each.
    def loop():
        for _ in range(n):
            gevent.sleep(0)

    gevent.joinall([gevent.spawn(loop), gevent.spawn(loop)])
    return 2 * n


def pingpong(make_queue, n):
    # The pinger puts i and waits for it back: 2n items cross between two tasks.
    there, back = make_queue(), make_queue()

    def pinger():
        for i in range(n):
            there.put(i)
            back.get()

    def ponger():
        for _ in range(n):
            back.put(there.get())

    gevent.joinall([gevent.spawn(pinger), gevent.spawn(ponger)])
    return 2 * n


def queue_pingpong(n):
    return pingpong(gevent.queue.Queue, n)


def channel_pingpong(n):
    # Queue(0) means "unbounded" in gevent 22; the rendezvous queue is Channel.
    return pingpong(gevent.queue.Channel, n)


def event_wake(n):
    # Rounds of 10,000 waiters: spawn them, let them all block, set, join.
    waiters = min(n, 10_000)
    rounds = max(1, n // waiters)
    for _ in range(rounds):
        ev = gevent.event.Event()
        tasks = [gevent.spawn(ev.wait) for _ in range(waiters)]
        gevent.sleep(0)
        ev.set()
        gevent.joinall(tasks)
    return rounds * waiters


def timeout_scope(n):
    def body():
        for _ in range(n):
            with gevent.Timeout(3600):
                pass

    gevent.spawn(body).join()
    return n


def lock_contended(n):
    # 10 tasks each take the lock n/10 times and yield while holding it, so the others
    # queue up behind it: every acquisition after the first waits.
    lock = gevent.lock.Semaphore(1)
    per_task = max(1, n // 10)

    def worker():
        for _ in range(per_task):
            with lock:
                gevent.sleep(0)

    gevent.joinall([gevent.spawn(worker) for _ in range(10)])
    return 10 * per_task


def identity(x):
    return x


def pool_map(n):
    jobs = max(1, n // 2)
    out = gevent.pool.Pool(100).map(identity, range(jobs))
    assert len(out) == jobs
    return jobs


# (name, function, sized by N rather than SMALL_N)
ROWS = [
    ("spawn_join", spawn_join, True),
    ("spawn_sleep0_join", spawn_sleep0_join, True),
    ("sleep0_switch", sleep0_switch, False),
    ("queue_pingpong", queue_pingpong, False),
    ("channel_pingpong", channel_pingpong, False),
    ("event_wake", event_wake, True),
    ("timeout_scope", timeout_scope, False),
    ("lock_contended", lock_contended, False),
    ("pool_map", pool_map, False),
]


def sleepers(count):
    tasks = [gevent.spawn(gevent.sleep, 0.010) for _ in range(count)]
    gevent.joinall(tasks)
    return count


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def memory(count):
    gc.collect()
    ev = gevent.event.Event()
    before = rss_bytes()
    t0 = time.perf_counter()
    tasks = [gevent.spawn(ev.wait) for _ in range(count)]
    gevent.sleep(0)
    t1 = time.perf_counter()
    after = rss_bytes()
    ev.set()
    gevent.joinall(tasks)
    print(json.dumps({"row": "sleepers_1m_memory", "ops": count,
                      "bytes_per_task": (after - before) / count,
                      "seconds": [t1 - t0]}))


def timed(fn, n):
    t0, c0 = time.perf_counter(), time.process_time()
    ops = fn(n)
    return ops, time.perf_counter() - t0, time.process_time() - c0


def main():
    n = int(float(sys.argv[1]))
    small_n = int(float(sys.argv[2]))
    reps = int(sys.argv[3])
    full_reps = int(sys.argv[4])
    count = int(float(sys.argv[5]))
    if len(sys.argv) > 6:
        memory(int(float(sys.argv[6])))
        return
    columns = ROWS + [("sleepers_10k", lambda _n: sleepers(count), False)]
    for _, fn, full in columns:
        fn(max(10, (n if full else small_n) // 10))
    samples = {name: {"ops": 0, "seconds": [], "cpu_seconds": []} for name, _, _ in columns}
    for rep in range(max(reps, full_reps)):
        for name, fn, full in columns:
            if rep >= (full_reps if full else reps):
                continue
            ops, wall, cpu = timed(fn, n if full else small_n)
            s = samples[name]
            s["ops"] = ops
            s["seconds"].append(wall)
            s["cpu_seconds"].append(cpu)
    for name, _, _ in columns:
        print(json.dumps(dict(row=name, **samples[name])))


if __name__ == "__main__":
    main()
