// Looking inside a running program: every greenlet of the calling thread, with its
// state, its stack and, for those blocked in the hub, what it waits on.
//
//   greenlets::spawn_named("reader", [] { greenlets::wait_readable(fd); });
//   greenlets::sleep(0s);
//   std::fputs(greenlets::run_info().c_str(), stderr);  // one line per greenlet
//   greenlets::for_each_greenlet([](const greenlets::greenlet_info& g) { ... });
//
// Nothing here costs anything until it is called: it reads the thread's list of
// started greenlets, the hub's list of tasks and of greenlets blocked in it, and the
// description each blocking call leaves in its waiter. tools/gdb/greenlets.py shows
// the same lines from a debugger (docs/debugging.md).
#ifndef GREENLETS_RUN_INFO_HPP
#define GREENLETS_RUN_INFO_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "greenlets/greenlet.hpp"
#include "greenlets/hub/task.hpp"

namespace greenlets {

/// Where a greenlet is in its life.
enum class greenlet_state { unstarted, running, suspended, dead };

/// The state's name as `run_info()` prints it: "unstarted", "running", "suspended", "dead".
inline const char* to_string(greenlet_state s) noexcept {
  switch (s) {
    case greenlet_state::unstarted:
      return "unstarted";
    case greenlet_state::running:
      return "running";
    case greenlet_state::suspended:
      return "suspended";
    case greenlet_state::dead:
      return "dead";
  }
  return "?";
}

/// One greenlet as `for_each_greenlet` shows it.
struct greenlet_info {
  /// A handle to it (empty only while another thread drops its last handle).
  greenlet handle;
  /// `greenlet::id()`: unique in its thread, 0 for the main greenlet.
  std::uint64_t id = 0;
  /// `greenlet::name()` (empty if none).
  std::string name;
  /// What it is: "main", "hub", "task" or "greenlet".
  const char* kind = "greenlet";
  greenlet_state state = greenlet_state::unstarted;
  /// The parent's id; meaningless when `has_parent` is false (a main greenlet).
  std::uint64_t parent_id = 0;
  bool has_parent = false;
  /// The stack's lowest and highest addresses (null for a main greenlet, whose stack
  /// is the thread's, and for one without a stack yet).
  const void* stack_low = nullptr;
  const void* stack_high = nullptr;
  /// Bytes of the stack in use: up to where it was suspended, or to the caller's frame.
  std::size_t stack_used = 0;
  /// The blocking call it is suspended in, as its error messages name it
  /// ("sleep", "queue::get", "wait_readable", "task::join"...), or null if it is not
  /// blocked in the hub; for an unstarted task, "spawn" or "spawn_later".
  const char* waits_on = nullptr;
  /// What that call waits on: the event, queue, semaphore or mutex, task...; null if
  /// nothing (sleep, fds).
  const void* wait_object = nullptr;
  /// The fd of `wait_readable`/`wait_writable`, else -1.
  int wait_fd = -1;
  /// When the wait ends by itself (`sleep`, the `_for`/`_until` calls, `spawn_later`).
  bool has_deadline = false;
  std::chrono::steady_clock::time_point deadline{};
  /// Already woken, waiting for its turn on the run queue.
  bool wait_ready = false;
  /// The whole wait in words, as `run_info()` prints it (empty if not waiting).
  std::string wait;
};

namespace detail {

inline std::string format_address(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

inline std::string format_from_now(std::chrono::steady_clock::time_point t,
                                   std::chrono::steady_clock::time_point now) {
  char buf[64];
  const double ms = std::chrono::duration<double, std::milli>(t - now).count();
  if (ms >= 0) {
    std::snprintf(buf, sizeof buf, "in %.1f ms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f ms ago", -ms);
  }
  return buf;
}

// The ids of the tasks and greenlets a wait may refer to, by the object it names.
struct info_index {
  std::unordered_map<const void*, std::uint64_t> task_ids;  // task_base* -> greenlet id
};

inline void describe_wait(greenlet_info& g, const info_index& index,
                          std::chrono::steady_clock::time_point now) {
  if (g.waits_on == nullptr) return;
  std::string s = g.waits_on;
  if (g.wait_fd >= 0) s += " fd " + std::to_string(g.wait_fd);
  if (g.wait_object != nullptr) {
    auto it = index.task_ids.find(g.wait_object);
    s += it != index.task_ids.end() ? " of greenlet #" + std::to_string(it->second)
                                    : " on " + format_address(g.wait_object);
  }
  if (g.has_deadline) s += ", deadline " + format_from_now(g.deadline, now);
  if (g.wait_ready) s += ", woken (on the run queue)";
  g.wait = std::move(s);
}

inline greenlet_info make_info(greenlet_impl* g, const void* here) {
  greenlet_info i;
  if (try_add_ref(g)) i.handle = greenlet_access::adopt(g);
  i.id = g->number;
  if (g->name) i.name = g->name.get();
  if (g->is_main) i.kind = "main";
  if (g == tls_switch.current) {
    i.state = greenlet_state::running;
  } else if (g->is(status_dead)) {
    i.state = greenlet_state::dead;
  } else if (g->is(status_started)) {
    i.state = greenlet_state::suspended;
  }
  if (g->parent != nullptr) {
    i.parent_id = g->parent->number;
    i.has_parent = true;
  }
  if (!g->is_main && g->stack.sp != nullptr) {
    char* top = static_cast<char*>(g->stack.sp);
    i.stack_high = top;
    i.stack_low = top - g->stack.size;
    const char* at = i.state == greenlet_state::running     ? static_cast<const char*>(here)
                     : i.state == greenlet_state::suspended ? static_cast<const char*>(g->ctx)
                                                            : nullptr;
    if (at != nullptr && at <= top && at >= top - g->stack.size) {
      i.stack_used = static_cast<std::size_t>(top - at);
    }
  }
  return i;
}

inline std::vector<greenlet_info> collect_greenlets() {
  thread_state& ts = this_thread();
  const char here = 0;
  std::vector<greenlet_impl*> found{ts.main};
  for (greenlet_impl* g = ts.active_head; g != nullptr; g = g->active_next) found.push_back(g);
  loop* l = loop::local_if_any();
  std::unordered_map<greenlet_impl*, task_base*> tasks;
  std::unordered_map<greenlet_impl*, wait_ctx*> blocked;
  info_index index;
  if (l != nullptr) {
    auto& tl = l->tasks();
    for (list_hook* h = tl.back_hook(); h != nullptr; h = tl.prev_hook(h)) {
      auto& t = static_cast<task_base&>(*static_cast<task_hook*>(h));
      greenlet_impl* g = greenlet_access::get(t.ctx.self);
      if (g == nullptr) continue;
      tasks[g] = &t;
      index.task_ids[&t] = g->number;
      if (!g->is(status_started)) found.push_back(g);  // only the hub knows it
    }
    auto& bl = l->blocked();
    for (list_hook* h = bl.back_hook(); h != nullptr; h = bl.prev_hook(h)) {
      auto& c = static_cast<wait_ctx&>(*static_cast<blocked_hook*>(h));
      if (greenlet_impl* g = greenlet_access::get(c.self)) blocked[g] = &c;
    }
  }
  std::vector<greenlet_info> out;
  out.reserve(found.size());
  const auto now = std::chrono::steady_clock::now();
  for (greenlet_impl* g : found) {
    greenlet_info i = make_info(g, &here);
    if (l != nullptr && g == greenlet_access::get(l->hub_greenlet())) i.kind = "hub";
    if (auto t = tasks.find(g); t != tasks.end()) {
      i.kind = "task";
      const task_base& tb = *t->second;
      if (tb.phase == task_phase::pending) {
        i.waits_on = tb.timer.armed() ? "spawn_later" : "spawn";
        i.has_deadline = tb.timer.armed();
        i.deadline = tb.timer.when;
        i.wait_ready = !tb.timer.armed();
      }
    }
    if (auto b = blocked.find(g); b != blocked.end() && b->second->blocked != nullptr) {
      const waiter& w = *b->second->blocked;
      i.waits_on = w.what;
      i.wait_object = w.object;
      i.wait_fd = w.fd;
      i.has_deadline = w.until != std::chrono::steady_clock::time_point{};
      i.deadline = w.until;
      i.wait_ready = w.woken;
    }
    describe_wait(i, index, now);
    out.push_back(std::move(i));
  }
  std::sort(out.begin(), out.end(),
            [](const greenlet_info& a, const greenlet_info& b) { return a.id < b.id; });
  return out;
}

}  // namespace detail

/// Calls `fn(const greenlet_info&)` for each greenlet of the calling thread, by id: the
/// main greenlet, every started greenlet that has not finished (the running one, the
/// suspended ones, the hub's), and the hub's tasks that have not started yet.
///
/// The list is taken before the first call, so `fn` may switch, spawn or block.
/// Python: `gevent.util.GreenletTree` (roughly), `gc.get_objects()` filtered by type.
template <class F>
void for_each_greenlet(F&& fn) {
  for (const greenlet_info& i : detail::collect_greenlets()) fn(i);
}

/// One line per greenlet of the calling thread, as `for_each_greenlet` lists them:
///
///   #4 "sleeper" task suspended, parent #1, stack 0x7f…-0x7f…, 1232 of 262144 bytes
///   used: sleep, deadline in 998.1 ms
///
/// (one line each), after a first line naming the thread. The same text as the gdb
/// command `greenlets list` (tools/gdb/greenlets.py), without backtraces.
/// Python: `gevent.util.format_run_info()`.
inline std::string run_info() {
  std::vector<greenlet_info> all = detail::collect_greenlets();
  const detail::thread_state& ts = detail::this_thread();
  std::string s = "greenlets of " + detail::thread_description(ts.record) + ": " +
                  std::to_string(all.size()) + "\n";
  for (const greenlet_info& i : all) {
    s += "  #" + std::to_string(i.id);
    if (!i.name.empty()) s += " \"" + i.name + "\"";
    s += std::string(" ") + i.kind + " " + to_string(i.state);
    if (i.has_parent) s += ", parent #" + std::to_string(i.parent_id);
    if (i.stack_high != nullptr) {
      const auto size = static_cast<std::size_t>(static_cast<const char*>(i.stack_high) -
                                                 static_cast<const char*>(i.stack_low));
      s += ", stack " + detail::format_address(i.stack_low) + "-" +
           detail::format_address(i.stack_high) + ", " + std::to_string(i.stack_used) + " of " +
           std::to_string(size) + " bytes used";
    }
    if (!i.wait.empty()) s += ": " + i.wait;
    s += "\n";
  }
  return s;
}

}  // namespace greenlets

#endif  // GREENLETS_RUN_INFO_HPP
