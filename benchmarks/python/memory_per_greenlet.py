"""Resident memory per suspended Python greenlet; run by benchmarks/memory_per_greenlet.

usage: memory_per_greenlet.py N
Creates N greenlets; each builds a ~1 KiB local, switches back to main and stays
suspended. Stops early if MemAvailable falls below 3 GiB. Prints one line:
"python_greenlet <created> <create seconds> <destroy seconds> <RSS bytes per greenlet>".
"""
import gc
import sys
import time

from greenlet import greenlet, getcurrent

FLOOR_KIB = 3 * 1024 * 1024


def status_kib(path, key):
    with open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return -1


def body():
    local = bytearray(1024)  # the C++ runs touch 1 KiB of stack
    getcurrent().parent.switch()
    return len(local)


def main():
    n = int(float(sys.argv[1]))
    gc.disable()
    all_ = []
    rss0 = status_kib("/proc/self/status", "VmRSS:")
    t0 = time.perf_counter()
    for i in range(n):
        if i % 4096 == 0 and status_kib("/proc/meminfo", "MemAvailable:") < FLOOR_KIB:
            break
        g = greenlet(body)
        g.switch()
        all_.append(g)
    t1 = time.perf_counter()
    rss1 = status_kib("/proc/self/status", "VmRSS:")
    created = len(all_)
    t2 = time.perf_counter()
    del all_[:]
    t3 = time.perf_counter()
    per = (rss1 - rss0) * 1024.0 / created if created else 0.0
    print("python_greenlet %d %.6f %.6f %.1f" % (created, t1 - t0, t3 - t2, per))


if __name__ == "__main__":
    main()
