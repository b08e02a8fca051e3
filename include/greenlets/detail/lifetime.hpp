// The end of a greenlet's or a thread's life: dropping the last handle (a
// suspended greenlet is unwound by throwing greenlet_exit into it, one dropped on
// another thread is queued for its owner), and a thread's exit, which unwinds what
// it still has suspended.
//
// Part of greenlet.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_LIFETIME_HPP
#define GREENLETS_DETAIL_LIFETIME_HPP

#include <exception>
#include <mutex>
#include <vector>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/exception_state.hpp"
#include "greenlets/detail/records.hpp"
#include "greenlets/detail/report.hpp"
#include "greenlets/detail/switch.hpp"
#include "greenlets/detail/thread_state.hpp"
#include "greenlets/greenlet.hpp"

namespace greenlets::detail {

inline void kill(thread_state& ts, greenlet_impl* g, bool at_exit) noexcept;

// A started greenlet, not dead, whose last handle went on its own thread.
GREENLETS_COLD GREENLETS_NOINLINE inline void drop_suspended(thread_state& ts,
                                                             greenlet_impl* g) noexcept {
  g->refs.store(1, std::memory_order_relaxed);
  if (g == tls_switch.current) {
    // Its last handle went while it runs: the thread keeps it until it switches away.
    ts.orphan = g;
    ts.slow |= slow_orphan;
    tls_switch.key.store(no_thread_key, std::memory_order_relaxed);  // see slow_lasting
    return;
  }
  kill(ts, g, false);
}

// The usual drop, a greenlet that finished or never started, is only a delete; kept
// small so that it needs no stack frame.
GREENLETS_ALWAYS_INLINE void drop_local(thread_state& ts, greenlet_impl* g) noexcept {
  const unsigned s = g->status.load(std::memory_order_relaxed);
  if ((s & status_started) == 0 || (s & status_dead) != 0) {
    delete g;
    return;
  }
  drop_suspended(ts, g);
}

// The last handle of `g` went on a thread other than its own.
GREENLETS_COLD GREENLETS_NOINLINE inline void drop_foreign(greenlet_impl* g) noexcept {
  thread_record* r = g->record;
  {
    std::lock_guard<std::mutex> lock(r->mutex);
    if (r->alive) {
      try {
        r->kill_queue.push_back(g);
        r->kills_pending.store(true, std::memory_order_relaxed);
        if (r->switch_key_slot != nullptr) {
          r->switch_key_slot->store(no_thread_key, std::memory_order_relaxed);
        }
        return;
      } catch (...) {
        // Out of memory: leak the greenlet rather than touch another thread's stack.
        return;
      }
    }
  }
  // The owner has exited, having unwound everything it had started.
  delete g;
}

// The last handle of `g` is gone (refs is 0).
GREENLETS_NOINLINE inline void last_ref_dropped(greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  if (GREENLETS_LIKELY(ts != nullptr && g->record == ts->record)) {
    drop_local(*ts, g);
    return;
  }
  drop_foreign(g);
}

// A release that found the count at 1, ours. On the owning thread nobody can raise it
// meanwhile: only that thread takes references from a bare pointer (share_current(),
// run_info(), a kill at exit), and every other thread copies a handle it holds, which
// would count. So the last release there needs no atomic read-modify-write, the
// costliest step of dropping a greenlet. Elsewhere the owner may be taking one now.
GREENLETS_NOINLINE inline void release_last(greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  if (GREENLETS_LIKELY(ts != nullptr && g->record == ts->record)) {
    g->refs.store(0, std::memory_order_relaxed);
    drop_local(*ts, g);
    return;
  }
  if (g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) drop_foreign(g);
}

// release() of a reference seldom the last: a child's on its parent.
inline void release_parent(greenlet_impl* g) noexcept {
  if (g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) last_ref_dropped(g);
}

inline void release(greenlet_impl* g) noexcept {
  // Acquire: a release by another thread that brought the count to 1 happens before
  // the greenlet is destroyed here.
  if (g->refs.load(std::memory_order_acquire) == 1) {
    release_last(g);
  } else if (g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    last_ref_dropped(g);
  }
}

inline greenlet_impl::~greenlet_impl() {
  // A greenlet that never finished (leaked on purpose) keeps its stack: nothing on
  // it is ever unwound or freed.
  if (is_main) {
    record->release();
  } else {
    release_parent(parent);
  }
}

// Throws greenlet_exit into the suspended `g`, with the current greenlet as its parent
// meanwhile. Consumes one reference to `g`.
inline void kill(thread_state& ts, greenlet_impl* g, bool at_exit) noexcept {
  greenlet_impl* killer = share_current(ts);
  greenlet_impl* old_parent = g->parent;
  g->parent = killer;
  try {
    set_pending(ts, std::make_exception_ptr(greenlet_exit{}));
    value ignored;
    jump(ts, g, trace_event::throw_to, ignored);
  } catch (...) {
    report_unraisable(g, std::current_exception(),
                      "unwinding a dropped greenlet raised an exception other than greenlet_exit");
  }
  g->parent = old_parent;
  release(killer);
  if (!g->is(status_dead) && (at_exit || g->refs.load(std::memory_order_relaxed) == 1)) {
    report_unraisable(g, nullptr, "greenlet_exit did not kill the greenlet; leaking it");
    ts.unlink_active(g);  // never unwound again
    return;               // keeps our reference forever
  }
  release(g);
}

inline void process_kill_queue(thread_state& ts) noexcept {
  std::vector<greenlet_impl*> queue;
  {
    std::lock_guard<std::mutex> lock(ts.record->mutex);
    queue.swap(ts.record->kill_queue);
    ts.record->kills_pending.store(false, std::memory_order_relaxed);
    if (ts.record->alive && (ts.slow & slow_lasting) == 0) {
      tls_switch.key.store(ts.record->key(), std::memory_order_relaxed);
    }
  }
  for (greenlet_impl* g : queue) drop_local(ts, g);
}

inline thread_state::thread_state() {
  tls_blocks.open = true;
  record = new thread_record();
  main = new main_greenlet(record);
  tls_switch.current = main;
  tls_switch.eh = exception_globals();
}

inline thread_state::~thread_state() {
  tls_state = this;  // still valid while the owner unwinds
  if (tls_switch.current == main) {
    // Unwind what is still suspended, newest first, each once.
    for (;;) {
      process_kill_queue(*this);
      greenlet_impl* g = active_head;
      if (g == nullptr) break;
      if (try_add_ref(g)) kill(*this, g, true);  // else: queued by another thread right now
    }
  }
  std::vector<greenlet_impl*> late;
  {
    std::lock_guard<std::mutex> lock(record->mutex);
    record->alive = false;
    record->switch_key_slot = nullptr;
    late.swap(record->kill_queue);
  }
  tls_switch.key.store(no_thread_key, std::memory_order_relaxed);
  tls_switch.current = nullptr;
  for (greenlet_impl* g : late) {
    if (!g->is(status_started) || g->is(status_dead)) delete g;
  }
  main->set(status_dead);
  main->switch_key.store(inactive_key, std::memory_order_relaxed);
  trace = nullptr;
  transfer.reset();
  pending = nullptr;
  tls_blocks.open = false;
  tls_blocks.free_all();
  tls_state = nullptr;
  tls_state_destroyed = true;
  greenlet_impl* m = main;
  thread_record* r = record;
  if (orphan != nullptr) release(orphan);
  release(m);
  r->release();
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_LIFETIME_HPP
