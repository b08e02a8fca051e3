"""The tutorial's "yield vs serial" programs, timed; run by benchmarks/yield_vs_serial.

usage: yield_vs_serial.py N REPS
Prints one line per column: "<column> <seconds> <seconds> ...", one number per repetition.
The columns run interleaved (round-robin), after one warm-up at N/10.
"""
import sys
import time

try:
    from greenlet import greenlet, getcurrent
except ImportError:  # the greenlet column is skipped
    greenlet = None


# Serial: the producer builds a list, then the consumer gets it (consumer does nothing,
# as in the tutorial).
def consumer_serial(res):
    pass


def producer_serial(n):
    res = []
    for i in range(n):
        res.append(i)
    return res


def run_serial(n):
    res = producer_serial(n)
    consumer_serial(res)


# Concurrent: the tutorial's generator consumer fed by send().
def consumer_gen():
    while True:
        x = yield


def run_generator(n):
    g = consumer_gen()
    next(g)
    for i in range(n):
        g.send(i)


# Extra: the same consumer as a greenlet fed by switch().
def run_greenlet(n):
    main = getcurrent()

    def consumer():
        while True:
            x = main.switch()

    g = greenlet(consumer)
    g.switch()
    for i in range(n):
        g.switch(i)


def main():
    n = int(float(sys.argv[1]))
    reps = int(sys.argv[2])
    columns = [("python_serial", run_serial), ("python_generator", run_generator)]
    if greenlet is not None:
        columns.append(("python_greenlet", run_greenlet))
    for _, fn in columns:
        fn(max(1, n // 10))
    samples = {name: [] for name, _ in columns}
    for _ in range(reps):
        for name, fn in columns:
            t0 = time.perf_counter()
            fn(n)
            samples[name].append(time.perf_counter() - t0)
    for name, _ in columns:
        print(name, " ".join("%.6f" % s for s in samples[name]))


if __name__ == "__main__":
    main()
