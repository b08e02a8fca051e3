"""The tutorial's "switch overhead" programs, timed; run by benchmarks/switch_overhead.

usage: switch_overhead.py N REPS
Serial runs f1() then f2(); switched runs f1 and f2 in two greenlets that switch to
each other after every iteration (2N one-way switches). Prints one line per column:
"<column> <seconds> <seconds> ...". The columns run interleaved, after a warm-up at N/10.
"""
import sys
import time

from greenlet import greenlet


def run_serial(n):
    def f1():
        res = 1
        for i in range(n):
            res += i

    def f2():
        res = 1
        for i in range(n):
            res *= i

    f1()
    f2()


def run_greenlet(n):
    def f1():
        res = 1
        for i in range(n):
            res += i
            g2.switch()

    def f2():
        res = 1
        for i in range(n):
            res *= i
            g1.switch()

    g1 = greenlet(f1)
    g2 = greenlet(f2)
    g1.switch()
    g2.switch()  # let f2 finish too, so nothing is left suspended


def main():
    n = int(float(sys.argv[1]))
    reps = int(sys.argv[2])
    columns = [("python_serial", run_serial), ("python_greenlet", run_greenlet)]
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
