#!/usr/bin/env python3
"""The gdb commands of tools/gdb/greenlets.py, on a live process and on a core file.

    check_gdb.py GDB PROGRAM SCRIPT WORKDIR

Runs PROGRAM (tests/gdb/hang.cpp) under `gdb -batch` to its breakpoint, checks what
`greenlets list`, `greenlets bt all` and then `bt` print, writes a core file with
`greenlets gcore`, and checks the same commands on that core file. Fails (exit 1) with
the whole gdb output when anything is missing, including gdb itself.
"""
import os
import re
import subprocess
import sys

TASKS = {
    "sleeper": ("sleep, deadline", "sleeping_task_frame"),
    "reader": ("wait_readable fd ", "reading_task_frame"),
    "event-waiter": ("event::wait on 0x", "event_task_frame"),
    "getter": ("queue::get on 0x", "queue_task_frame"),
}
GREENLETS = ("alpha", "beta", "gamma")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def run_gdb(gdb, args, commands):
    cmd = [gdb, "-nx", "-batch"]
    for c in commands:
        cmd += ["-ex", c]
    cmd += args
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=240)
    return r.stdout


def section(out, start, end):
    a = out.find(start)
    if a < 0:
        return ""
    b = out.find(end, a + len(start))
    return out[a:] if b < 0 else out[a:b]


def list_lines(out):
    """The greenlet lines of `greenlets list` (between the markers)."""
    body = section(out, "==LIST==", "==BTALL==")
    return [l for l in body.splitlines() if l.startswith("  #")]


def check_session(out, label, live):
    check("Python Exception" not in out and "Error occurred" not in out,
          label + ": the commands ran without a Python error")
    lines = list_lines(out)
    check(any(l.endswith(" main running") for l in lines), label + ": main is running")
    check(any('"hub" hub suspended' in l for l in lines), label + ": the hub is listed")
    for name in GREENLETS:
        check(any('"%s" greenlet suspended, parent #0, stack 0x' % name in l for l in lines),
              label + ": %s is listed as suspended with its parent and stack" % name)
    for name, (wait, _) in TASKS.items():
        check(any('"%s" task suspended' % name in l and (": " + wait) in l for l in lines),
              label + ": task %s is listed waiting on %r" % (name, wait))
    if live:
        check(any("deadline in 3" in l for l in lines), label + ": the sleep's deadline, from now")
    else:
        check(any("of steady_clock (a core file: no current time)" in l for l in lines),
              label + ": the sleep's deadline, as a clock reading")

    btall = section(out, "==BTALL==", "==BT==")
    blocks = btall.split("\nThread ")
    for name in GREENLETS:
        block = next((b for b in blocks if '"%s" greenlet' % name in b), "")
        frames = [name + "_innermost_frame", name + "_middle_frame", name + "_outer_frame"]
        at = [block.find(f) for f in frames]
        check(all(i >= 0 for i in at) and at == sorted(at),
              label + ": bt of %s shows %s in order" % (name, ", ".join(frames)))
        check("greenlet_entry" in block, label + ": bt of %s reaches greenlet_entry" % name)
    for name, (_, frame) in TASKS.items():
        block = next((b for b in blocks if '"%s" task' % name in b), "")
        check(frame in block, label + ": bt of task %s shows %s" % (name, frame))
    check("greenlet #0 is running" in btall, label + ": bt all says main is the running one")

    real = section(out, "==BT==", "==END==")
    frames = [l for l in real.splitlines() if re.match(r"#\d", l)]
    check(len(frames) >= 2 and "stopped_here" in frames[0] and " main " in frames[1],
          label + ": bt afterwards is the real stack (stopped_here, main)")
    check(not any("_innermost_frame" in f for f in frames),
          label + ": bt afterwards shows no greenlet's frames")
    return lines


def normalized(lines):
    return [re.sub(r", deadline .*", ", deadline", l) for l in lines]


def main():
    gdb, program, script, workdir = sys.argv[1:5]
    if not os.path.isfile(gdb) or not os.access(gdb, os.X_OK):
        print("check_gdb: gdb not found (%s): install it (scripts/setup-debian.sh does)" % gdb)
        return 1
    core = os.path.join(workdir, "greenlets_gdb_test.core")
    if os.path.exists(core):
        os.remove(core)
    shared = ["set pagination off", "set confirm off", "set python print-stack full",
              "source " + script]
    looks = ["echo ==LIST==\\n", "greenlets list", "echo ==BTALL==\\n", "greenlets bt all",
             "echo ==BT==\\n", "bt", "echo ==END==\\n"]
    live = run_gdb(gdb, [program], shared + ["break stopped_here", "run"] + looks +
                   ["greenlets gcore " + core, "kill"])
    live_lines = check_session(live, "live", True)
    # What the program printed with run_info() just before the breakpoint.
    printed = [l for l in live[:live.find("==LIST==")].splitlines() if l.startswith("  #")]
    check(len(printed) == 9 and normalized(printed) == normalized(live_lines),
          "live: greenlets list prints run_info()'s lines")
    check(os.path.exists(core), "greenlets gcore wrote " + core)
    out = live
    if os.path.exists(core):
        dead = run_gdb(gdb, [program, core], shared + looks)
        check_session(dead, "core", False)
        out += "\n----- core file -----\n" + dead
        os.remove(core)
    if failures:
        print(out)
        print("FAILED:")
        for f in failures:
            print("  " + f)
        return 1
    print("all gdb checks passed (live process and core file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
