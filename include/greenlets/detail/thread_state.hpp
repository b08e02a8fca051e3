// Per-thread state: the running and main greenlets, what a switch in progress
// carries (payload, pending exception, trace event), the flags that send a switch
// down its slow path, and the thread's list of started greenlets.
//
// Part of greenlet.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_THREAD_STATE_HPP
#define GREENLETS_DETAIL_THREAD_STATE_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>

#include "greenlets/detail/block_cache.hpp"
#include "greenlets/detail/config.hpp"
#include "greenlets/detail/exception_state.hpp"
#include "greenlets/detail/records.hpp"
#include "greenlets/error.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/stack.hpp"
#include "greenlets/value.hpp"

namespace greenlets::detail {

enum slow_bits : unsigned {
  slow_pending_exception = 1,  // `pending` holds an exception to raise in the target
  slow_tracing = 2,            // a trace function is installed
  slow_orphan = 4,             // `orphan` holds a greenlet whose handles all went while it ran
  slow_finished = 8,           // the greenlet that jumped here has finished: free its stack
};
// The bits that outlast a switch; while one is set the switch key stays cleared, so that
// every switch takes the full path (the fast one assumes `slow` is 0).
inline constexpr unsigned slow_lasting = slow_tracing | slow_orphan;

// What the switch's fast path reads and writes, kept out of thread_state in a
// zero-initialised thread_local: reading it needs no initialisation check, and in an
// executable each field is one %fs-relative access, with no pointer to load first.
struct switch_tls {
  // record->key() while this thread has state, no kill is queued and no lasting slow
  // work is set (see inactive_key and slow_lasting).
  std::atomic<std::uintptr_t> key{no_thread_key};
  greenlet_impl* current = nullptr;  // the running greenlet, once the thread has state
  exception_state* eh = nullptr;     // the C++ runtime's exception globals of this thread
};
inline thread_local switch_tls tls_switch;

struct thread_state {
  greenlet_impl* main;
  thread_record* record;
  unsigned slow = 0;
  trace_event event = trace_event::switch_to;
  value transfer;  // a payload being routed, or the first switch's arguments
  std::exception_ptr pending;
  greenlet_impl* orphan = nullptr;
  trace_function trace;
  greenlet_impl* active_head = nullptr;
  unsigned stack_color = 0;   // staggers the tops of new stacks (see start())
  std::uint64_t created = 0;  // greenlets created here: the last one's number

  thread_state();
  ~thread_state();
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;

  void link_active(greenlet_impl* g) noexcept {
    g->active_pprev = &active_head;
    g->active_next = active_head;
    if (active_head != nullptr) active_head->active_pprev = &g->active_next;
    active_head = g;
  }
  void unlink_active(greenlet_impl* g) noexcept {
    if (g->active_pprev == nullptr) return;  // unlinked already (a kill that leaked it)
    *g->active_pprev = g->active_next;
    if (g->active_next != nullptr) g->active_next->active_pprev = g->active_pprev;
    g->active_pprev = nullptr;
    g->active_next = nullptr;
  }
};

// The fast pointer the switch reads, and the owner whose destructor runs at thread exit.
inline thread_local thread_state* tls_state = nullptr;
inline thread_local bool tls_state_destroyed = false;

// True if `g` is suspended or running on this thread and no kill is queued here: a
// switch to it needs no other check unless it is the running one.
GREENLETS_ALWAYS_INLINE bool switchable_here(const greenlet_impl* g) noexcept {
  return g->switch_key.load(std::memory_order_relaxed) ==
         tls_switch.key.load(std::memory_order_relaxed);
}

struct thread_state_owner {
  thread_state* state = nullptr;
  ~thread_state_owner() { delete state; }
};

GREENLETS_COLD inline thread_state& create_thread_state() {
  if (tls_state_destroyed) {
    throw error(
        "greenlets: this thread's greenlet state was already destroyed (the thread is "
        "exiting)");
  }
  // Touch the stack pool first so that it outlives the state, which returns stacks
  // to it while unwinding at thread exit.
  (void)stack_pool::local();
  thread_local thread_state_owner owner;
  owner.state = new thread_state();
  tls_state = owner.state;
  thread_record* r = owner.state->record;
  {
    std::lock_guard<std::mutex> lock(r->mutex);
    r->switch_key_slot = &tls_switch.key;
  }
  tls_switch.key.store(r->key(), std::memory_order_relaxed);
  return *owner.state;
}

inline void process_kill_queue(thread_state& ts) noexcept;

// Sets this thread's switch key from what it stands for: the thread is alive, no kill is
// queued, and no lasting slow work is set. Under the record's lock, as a queuing thread
// clears it there.
GREENLETS_COLD inline void sync_switch_key(thread_state& ts) noexcept {
  std::lock_guard<std::mutex> lock(ts.record->mutex);
  const bool fast = ts.record->alive && !ts.record->kills_pending.load(std::memory_order_relaxed) &&
                    (ts.slow & slow_lasting) == 0;
  tls_switch.key.store(fast ? ts.record->key() : no_thread_key, std::memory_order_relaxed);
}

// A new reference to the running greenlet (whose count another thread may have just
// dropped to zero: then the queue makes it an orphan first).
inline greenlet_impl* share_current(thread_state& ts) noexcept {
  while (!try_add_ref(tls_switch.current)) process_kill_queue(ts);
  return tls_switch.current;
}

GREENLETS_COLD GREENLETS_NOINLINE inline thread_state& this_thread_slow() {
  thread_state* ts = tls_state;
  if (ts == nullptr) ts = &create_thread_state();
  if (ts->record->kills_pending.load(std::memory_order_relaxed)) process_kill_queue(*ts);
  return *ts;
}

inline void* greenlet_impl::operator new(std::size_t size) { return allocate_block(size); }

inline void greenlet_impl::operator delete(void* p, std::size_t size) noexcept {
  free_block(p, size);
}

// This thread's state, created on first use; runs kills queued by other threads. One
// test covers both: the key is unset without a state and cleared by a queued kill.
GREENLETS_ALWAYS_INLINE thread_state& this_thread() {
  if (GREENLETS_UNLIKELY(tls_switch.key.load(std::memory_order_relaxed) == no_thread_key)) {
    return this_thread_slow();
  }
  return *tls_state;
}

// The running greenlet of this thread (its state created first if need be), without
// taking a reference as current() does.
GREENLETS_ALWAYS_INLINE greenlet_impl* running_greenlet() {
  (void)this_thread();
  return tls_switch.current;
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_THREAD_STATE_HPP
