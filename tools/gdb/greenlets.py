# gdb commands for programs that use greenlets (the C++ library).
#
#   (gdb) source /usr/include/greenlets/gdb/greenlets.py   # or wherever it is installed
#   (gdb) greenlets list          # every greenlet of every thread, and what it waits on
#   (gdb) greenlets bt 3          # the backtrace of greenlet #3 (of the selected thread)
#   (gdb) greenlets bt 2.3        # ... of greenlet #3 of gdb's thread 2
#   (gdb) greenlets bt all        # the backtraces of every suspended greenlet
#   (gdb) greenlets bt -full 3    # ... without folding std::invoke and the library's frames
#   (gdb) greenlets gcore FILE    # gcore, keeping the greenlet stacks (see below)
#
# It reads the library's own records through the program's debug information (build
# with -g): each thread's `greenlets::detail::tls_state` and `tls_switch` (the running and main
# greenlets and the list of started, unfinished ones), and its hub loop
# (`greenlets::detail::loop::tls_loop_`: the tasks, and the greenlets blocked in it with
# the description each blocking call leaves in its waiter). `greenlets list` prints the
# lines `greenlets::run_info()` prints in the program.
#
# A suspended greenlet's registers are where Boost.Context's jump_fcontext (x86_64
# System V) left them, on its own stack at its saved context: the MXCSR and x87 control
# words, r12, r13, r14, r15, rbx, rbp, then the return address; the stack pointer after
# the jump's return is the context plus 0x40. `greenlets bt` hands these to gdb through
# an unwinder that claims the selected thread's newest frame and says its caller is the
# greenlet's frame: gdb then unwinds the greenlet's stack with the program's own debug
# information. Nothing is written to the process or its registers, so it works the
# same on a live process and on a core file, and `bt` afterwards shows the real stack.
# Only x86_64 is supported; elsewhere the command says so.
#
# docs/debugging.md walks through a session.

import time

import gdb
from gdb.unwinder import Unwinder, register_unwinder

try:
    from gdb.unwinder import FrameId
except ImportError:  # gdb before 14: any object with sp and pc attributes will do

    class FrameId:
        def __init__(self, sp, pc):
            self.sp = sp
            self.pc = pc


# The saved context's layout (Boost.Context's jump_fcontext, x86_64 System V).
_SAVED = [("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20), ("rbx", 0x28),
          ("rbp", 0x30), ("rip", 0x38)]
_SP_AFTER_JUMP = 0x40
_MAX_FRAMES = 64


class GreenletsError(gdb.GdbError):
    pass


def _type(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise GreenletsError(
            "greenlets: the program has no debug information for %s (build with -g, and "
            "make sure the program uses greenlets)" % name)


def _ptr_size():
    return gdb.lookup_type("void").pointer().sizeof


def _read_word(address, size=8):
    data = bytes(gdb.selected_inferior().read_memory(address, size))
    return int.from_bytes(data, "little")


def _base_offset(derived, base_name):
    """The byte offset of base class `base_name` inside `derived` (a gdb.Type)."""
    for f in derived.strip_typedefs().fields():
        if f.is_base_class:
            if f.type.strip_typedefs().name == base_name:
                return f.bitpos // 8
            inner = _base_offset(f.type, base_name)
            if inner is not None:
                return f.bitpos // 8 + inner
    return None


def _container(hook_address, derived_name, base_name):
    """The object of type `derived_name` whose base `base_name` is at `hook_address`."""
    derived = _type(derived_name)
    off = _base_offset(derived, base_name)
    if off is None:
        raise GreenletsError("greenlets: %s has no base %s" % (derived_name, base_name))
    return gdb.Value(hook_address - off).cast(derived.pointer()).dereference()


def _hooks(hook_list):
    """The addresses of the hooks of a greenlets::detail::hook_list, front to back."""
    head = hook_list["head_"]
    head_address = int(head.address)
    p = head["next"]
    seen = 0
    while int(p) != head_address and int(p) != 0 and seen < 1000000:
        yield int(p)
        p = p["next"]
        seen += 1


def _read_c_string(address, limit=256):
    """The NUL-terminated string at `address` (at most `limit` bytes of it)."""
    out = b""
    inferior = gdb.selected_inferior()
    while len(out) < limit:
        chunk = bytes(inferior.read_memory(address + len(out), 16))
        end = chunk.find(b"\0")
        if end >= 0:
            return (out + chunk[:end]).decode("utf-8", "replace")
        out += chunk
    return out[:limit].decode("utf-8", "replace")


def _c_string(pointer):
    if int(pointer) == 0:
        return None
    return _read_c_string(int(pointer))


def _tls(name):
    try:
        return gdb.parse_and_eval("'%s'" % name)
    except gdb.error:
        return None


_offsets = {}


def _offset(type_name, path):
    """The byte offset of `path` ("a.b.c", through base classes too) in `type_name`."""
    key = (type_name, path)
    if key not in _offsets:
        t = _type(type_name)
        off = 0
        for part in path.split("."):
            found = _find_field(t.strip_typedefs(), part)
            if found is None:
                raise GreenletsError("greenlets: %s has no field %s (a different version of "
                                     "greenlets?)" % (type_name, path))
            off += found[0]
            t = found[1]
        _offsets[key] = off
    return _offsets[key]


def _find_field(t, name):
    for f in t.fields():
        if f.name == name and not f.is_base_class:
            return f.bitpos // 8, f.type
    for f in t.fields():
        if f.is_base_class:
            inner = _find_field(f.type.strip_typedefs(), name)
            if inner is not None:
                return f.bitpos // 8 + inner[0], inner[1]
    return None


# Polymorphic records (greenlet_impl, task_base) are read by offset, never through
# gdb.Value: gdb looks up their dynamic type on every dereference, and the lambdas'
# types have no RTTI symbol it could find (one warning per greenlet).
def _word(address, type_name, path, size=8):
    return _read_word(address + _offset(type_name, path), size)


_IMPL = "greenlets::detail::greenlet_impl"
_TASK = "greenlets::detail::task_base"


class Greenlet:
    """One greenlet as `greenlets list` shows it (the fields of greenlet_info)."""

    def __init__(self, address, current):
        self.address = address
        self.id = _word(address, _IMPL, "number")
        name = _word(address, _IMPL, "name")  # a unique_ptr<char[]>: one pointer
        self.name = _read_c_string(name) if name else None
        self.is_main = _word(address, _IMPL, "is_main", 1) != 0
        self.kind = "main" if self.is_main else "greenlet"
        status = _word(address, _IMPL, "status", 1)
        if address == current:
            self.state = "running"
        elif status & 2:
            self.state = "dead"
        elif status & 1:
            self.state = "suspended"
        else:
            self.state = "unstarted"
        parent = _word(address, _IMPL, "parent")
        self.parent_id = _word(parent, _IMPL, "number") if parent else None
        self.ctx = _word(address, _IMPL, "ctx")
        self.stack_high = _word(address, _IMPL, "stack.sp")
        self.stack_size = _word(address, _IMPL, "stack.size")
        self.wait = None

    def stack_text(self):
        if self.is_main or self.stack_high == 0:
            return ""
        low = self.stack_high - self.stack_size
        used = None
        if self.state == "suspended" and low <= self.ctx <= self.stack_high:
            used = self.stack_high - self.ctx
        elif self.state == "running":
            sp = _running_sp()
            if sp is not None and low <= sp <= self.stack_high:
                used = self.stack_high - sp
        return ", stack %#x-%#x, %s of %d bytes used" % (
            low, self.stack_high, used if used is not None else "?", self.stack_size)

    def line(self):
        s = "  #%d" % self.id
        if self.name:
            s += ' "%s"' % self.name
        s += " %s %s" % (self.kind, self.state)
        if self.parent_id is not None:
            s += ", parent #%d" % self.parent_id
        s += self.stack_text()
        if self.wait:
            s += ": " + self.wait
        return s


def _running_sp():
    try:
        return int(gdb.newest_frame().read_register("rsp"))
    except (gdb.error, ValueError):
        return None


_live_now = None


def _from_now(ns):
    """`in 12.5 ms` on a live process; the raw steady_clock reading on a core file,
    whose time of death the core does not record."""
    if _live_now is None:
        return "at %.3f s of steady_clock (a core file: no current time)" % (ns / 1e9)
    ms = (ns - _live_now) / 1e6
    return "in %.1f ms" % ms if ms >= 0 else "%.1f ms ago" % -ms


def _duration_ns(tp):
    return int(tp.address.cast(gdb.lookup_type("long").pointer()).dereference())


def _describe(what, obj, fd, until_ns, woken, task_ids):
    s = what
    if fd >= 0:
        s += " fd %d" % fd
    if obj:
        s += (" of greenlet #%d" % task_ids[obj]) if obj in task_ids else " on %#x" % obj
    if until_ns:
        s += ", deadline " + _from_now(until_ns)
    if woken:
        s += ", woken (on the run queue)"
    return s


def _thread_greenlets():
    """The greenlets of the selected thread, by id; [] if it has none."""
    ts_ptr = _tls("greenlets::detail::tls_state")
    if ts_ptr is None or int(ts_ptr) == 0:
        return None, []
    ts = ts_ptr.dereference()
    current = int(_tls("greenlets::detail::tls_switch")["current"])
    found = [int(ts["main"])]
    p = int(ts["active_head"])
    while p != 0 and len(found) < 10000000:
        found.append(p)
        p = _word(p, _IMPL, "active_next")
    loop_ptr = _tls("greenlets::detail::loop::tls_loop_")
    tasks = {}
    blocked = {}
    task_ids = {}
    hub_address = None
    if loop_ptr is not None and int(loop_ptr) != 0:
        loop = loop_ptr.dereference()
        hub_address = int(loop["hub_"]["p_"])
        for h in _hooks(loop["tasks_"]):
            t = h - _base_offset(_type(_TASK), "greenlets::detail::task_hook")
            g = _word(t, _TASK, "ctx.self.p_")
            if g == 0:
                continue
            tasks[g] = t
            task_ids[t] = _word(g, _IMPL, "number")
            if not _word(g, _IMPL, "status", 1) & 1:
                found.append(g)  # only the hub knows it
        for h in _hooks(loop["blocked_"]):
            c = _container(h, "greenlets::detail::wait_ctx", "greenlets::detail::blocked_hook")
            blocked[int(c["self"]["p_"])] = c
    out = []
    npos = (1 << (8 * _ptr_size())) - 1
    for address in found:
        g = Greenlet(address, current)
        if g.address == hub_address:
            g.kind = "hub"
        t = tasks.get(g.address)
        if t is not None:
            g.kind = "task"
            if _word(t, _TASK, "phase", 1) == 0:  # task_phase::pending
                armed = _word(t, _TASK, "timer.index") != npos
                when = _word(t, _TASK, "timer.when") if armed else 0
                g.wait = _describe("spawn_later" if armed else "spawn", 0, -1, when, not armed,
                                   task_ids)
        c = blocked.get(g.address)
        if c is not None and int(c["blocked"]) != 0:
            w = c["blocked"].dereference()
            g.wait = _describe(_c_string(w["what"]) or "?", int(w["object"]), int(w["fd"]),
                               _duration_ns(w["until"]), bool(w["woken"]), task_ids)
        out.append(g)
    out.sort(key=lambda x: x.id)
    return ts, out


def _each_thread():
    """Selects each thread in turn (yielding it); restores the selection afterwards."""
    inferior = gdb.selected_inferior()
    original = gdb.selected_thread()
    try:
        frame = gdb.selected_frame()
    except gdb.error:
        frame = None
    try:
        for th in sorted(inferior.threads(), key=lambda t: t.num):
            th.switch()
            yield th
    finally:
        if original is not None and original.is_valid():
            original.switch()
            if frame is not None and frame.is_valid():
                frame.select()


def _set_clock():
    global _live_now
    # A core file has no process to ask; a live one on this machine shares
    # CLOCK_MONOTONIC, which is steady_clock's.
    _live_now = time.monotonic_ns() if _is_live() else None


def _is_live():
    inferior = gdb.selected_inferior()
    if inferior.pid == 0:
        return False
    connection = getattr(inferior, "connection", None)  # gdb 12 and later
    if connection is not None:
        return connection.type != "core"
    return "core file" not in gdb.execute("info target", to_string=True).lower()


class _GreenletUnwinder(Unwinder):
    """Makes the greenlet whose saved context is `ctx` the caller of frame 0."""

    def __init__(self):
        super().__init__("greenlets")
        self.ctx = None

    def __call__(self, pending_frame):
        if self.ctx is None or pending_frame.level() != 0:
            return None
        sp = pending_frame.read_register("rsp")
        pc = pending_frame.read_register("rip")
        info = pending_frame.create_unwind_info(FrameId(sp, pc))
        ptr = sp.type
        for reg, off in _SAVED:
            info.add_saved_register(reg, gdb.Value(_read_word(self.ctx + off)).cast(
                pc.type if reg == "rip" else gdb.lookup_type("long")))
        info.add_saved_register("rsp", gdb.Value(self.ctx + _SP_AFTER_JUMP).cast(ptr))
        return info


_unwinder = _GreenletUnwinder()
register_unwinder(None, _unwinder, replace=True)


def _frame_line(level, frame):
    sal = frame.find_sal()
    name = frame.name() or "??"
    if name.startswith("greenlets::detail::greenlet_entry<"):
        # One instance per callable type: its template argument repeats the frame above.
        name = "greenlets::detail::greenlet_entry"
    where = ""
    if sal.symtab is not None:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    elif frame.pc():
        where = " (%#x)" % frame.pc()
    return "#%-2d %s%s" % (level, name, where)


def _is_plumbing(frame):
    """A frame of greenlets itself or of the standard library (std::invoke and the like)."""
    sal = frame.find_sal()
    name = frame.name() or ""
    path = sal.symtab.filename if sal.symtab is not None else ""
    return (name.startswith("std::") or "include/greenlets/" in path or "/c++/" in path or
            path.startswith("greenlets/"))


def _print_backtrace(g, full):
    if g.state == "running":
        print("greenlet #%d is running: its stack is the thread's (bt)" % g.id)
        first = gdb.newest_frame()
    elif g.state != "suspended":
        print("greenlet #%d is %s: it has no stack to show" % (g.id, g.state))
        return
    else:
        if g.ctx == 0:
            print("greenlet #%d: no saved context (it is in the middle of a switch)" % g.id)
            return
        _unwinder.ctx = g.ctx
        gdb.invalidate_cached_frames()
        first = gdb.newest_frame().older()
    try:
        level = 0
        frame = first
        seen_user = False
        hidden = 0
        while frame is not None and level < _MAX_FRAMES:
            name = frame.name() or ""
            # Below the program's own frames, the library's and std::invoke's are one line.
            if not full and seen_user and _is_plumbing(frame) and "greenlet_entry" not in name:
                hidden += 1
            else:
                if hidden:
                    print("    (%d frames of greenlets and the standard library: "
                          "greenlets bt -full shows them)" % hidden)
                    hidden = 0
                print(_frame_line(level, frame))
                seen_user = seen_user or not _is_plumbing(frame)
            if "greenlet_entry" in name:
                break  # below it is only Boost.Context's start trampoline
            level += 1
            try:
                frame = frame.older()
            except gdb.error as e:
                print("(backtrace stopped: %s)" % e)
                break
        if hidden:
            print("    (%d frames of greenlets and the standard library)" % hidden)
    finally:
        if _unwinder.ctx is not None:
            _unwinder.ctx = None
            gdb.invalidate_cached_frames()


def _check_arch():
    arch = gdb.selected_inferior().architecture().name()
    if "x86-64" not in arch:
        raise GreenletsError("greenlets bt: only x86_64 is supported (this is %s): the saved "
                             "context's layout differs per architecture" % arch)


class GreenletsCommand(gdb.Command):
    """Commands for greenlets: `greenlets list`, `greenlets bt ID|THREAD.ID|all`."""

    def __init__(self):
        super().__init__("greenlets", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class GreenletsList(gdb.Command):
    """Lists every greenlet of every thread: id, name, kind, state, parent, stack, and
    what it waits on in the hub (the lines of greenlets::run_info())."""

    def __init__(self):
        super().__init__("greenlets list", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        _set_clock()
        any_thread = False
        for th in _each_thread():
            ts, gs = _thread_greenlets()
            if ts is None:
                continue
            any_thread = True
            rec = ts["record"].dereference()
            print("Thread %d (%s): greenlets of thread #%d: %d" % (
                th.num, th.name or "LWP %d" % th.ptid[1], int(rec["number"]), len(gs)))
            for g in gs:
                print(g.line())
        if not any_thread:
            print("greenlets: no thread has greenlet state (has the program used greenlets yet?)")


class GreenletsBacktrace(gdb.Command):
    """Shows the backtrace of a suspended greenlet from the registers its last switch
    saved: `greenlets bt ID` (a greenlet of the selected thread), `greenlets bt T.ID`
    (of gdb's thread T), `greenlets bt all`. Below the program's own frames, those of
    greenlets and the standard library are counted on one line; `-full` shows them.
    Changes nothing: `bt` still shows the real stack afterwards."""

    def __init__(self):
        super().__init__("greenlets bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        _check_arch()
        _set_clock()
        words = arg.split()
        full = "-full" in words
        words = [w for w in words if w != "-full"]
        if len(words) != 1:
            raise GreenletsError("usage: greenlets bt [-full] ID | THREAD.ID | all")
        arg = words[0]
        want_thread = None
        want_id = None
        if arg != "all":
            try:
                if "." in arg:
                    t, i = arg.split(".", 1)
                    want_thread, want_id = int(t), int(i)
                else:
                    want_thread, want_id = gdb.selected_thread().num, int(arg)
            except ValueError:
                raise GreenletsError("usage: greenlets bt [-full] ID | THREAD.ID | all")
        shown = 0
        for th in _each_thread():
            if want_thread is not None and th.num != want_thread:
                continue
            ts, gs = _thread_greenlets()
            for g in gs:
                if want_id is not None and g.id != want_id:
                    continue
                if want_id is None and g.state not in ("suspended", "running"):
                    continue
                print("Thread %d, %s" % (th.num, g.line().strip()))
                _print_backtrace(g, full)
                print("")
                shown += 1
        if shown == 0:
            raise GreenletsError("greenlets bt: no greenlet %s" % arg)


_PAGE = 4096
_CHUNK = 1 << 20  # gcore's own read size


def _fill_core(path):
    """Rewrites into the core file at `path` the pages of its PT_LOAD segments that the
    live process can read but gcore left as zeros; returns how many pages it wrote.

    gcore reads memory a megabyte at a time and, at the first megabyte of a segment
    with a page it cannot read, gives up on the rest of that segment (zeros). A guard page made by madvise(MADV_GUARD_INSTALL)
    (Linux 6.13 and later: what greenlets' pooled stacks use) is such a page, and lies
    in the same mapping as its neighbours' stacks, so every greenlet stack in that
    segment after it would be lost. Here the rest of such a segment is read again,
    the failing megabytes page by page."""
    import struct
    inferior = gdb.selected_inferior()
    written = 0
    with open(path, "r+b") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            raise GreenletsError("greenlets gcore: %s is not a 64-bit ELF core file" % path)
        phoff, = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _, p_offset, p_vaddr, _, p_filesz, _ = struct.unpack("<IIQQQQQ", f.read(48))
            if p_type != 1 or p_filesz == 0:  # PT_LOAD with contents
                continue
            failed = False
            for chunk in range(p_vaddr, p_vaddr + p_filesz, _CHUNK):
                size = min(_CHUNK, p_vaddr + p_filesz - chunk)
                try:
                    data = bytes(inferior.read_memory(chunk, size))
                    if failed:  # gcore gave up on the rest of the segment
                        f.seek(p_offset + (chunk - p_vaddr))
                        f.write(data)
                        written += size // _PAGE
                    continue
                except gdb.MemoryError:
                    failed = True
                for page in range(chunk, chunk + size, _PAGE):
                    try:
                        data = bytes(inferior.read_memory(page, _PAGE))
                    except gdb.MemoryError:
                        continue  # a guard page: stays zeros
                    f.seek(p_offset + (page - p_vaddr))
                    f.write(data)
                    written += 1
    return written


class GreenletsGcore(gdb.Command):
    """Writes a core file like `gcore FILE`, with every greenlet stack in it: gcore alone
    drops the rest of a mapping after a guard page made by MADV_GUARD_INSTALL."""

    def __init__(self):
        super().__init__("greenlets gcore", gdb.COMMAND_FILES, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        path = arg.strip() or "core.%d" % gdb.selected_inferior().pid
        if not _is_live():
            raise GreenletsError("greenlets gcore: no live process")
        # gcore warns about each megabyte it cannot read; those are filled in below.
        gdb.execute("gcore " + path, to_string=True)
        pages = _fill_core(path)
        print("Saved corefile %s (%d pages that gcore could not read written again)" % (path, pages))


GreenletsCommand()
GreenletsList()
GreenletsBacktrace()
GreenletsGcore()
