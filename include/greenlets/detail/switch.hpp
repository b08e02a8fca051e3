// The switch: jumping between greenlets with Boost.Context's fcontext layer,
// starting a greenlet on its stack, delivering a payload or an exception to whoever
// takes it (dead greenlets pass it to their parent), and a greenlet's end.
//
// The fast path is jump() and landed(); everything unusual waits behind one flag
// word (`thread_state::slow`) for landed_slow(). docs/architecture.md explains the
// design and why it uses fcontext rather than `boost::context::fiber`.
//
// Part of greenlet.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_SWITCH_HPP
#define GREENLETS_DETAIL_SWITCH_HPP

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

#include <boost/context/detail/fcontext.hpp>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/exception_state.hpp"
#include "greenlets/detail/records.hpp"
#include "greenlets/detail/sanitizers.hpp"
#include "greenlets/detail/thread_state.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/stack.hpp"
#include "greenlets/value.hpp"

#if defined(__GNUC__) && !defined(__clang__)
namespace boost::context::detail {
// Called through the GOT rather than the PLT: one jump less on every switch, start and
// finish (GCC's -fno-plt, for these functions).
extern "C" __attribute__((noplt)) transfer_t BOOST_CONTEXT_CALLDECL
jump_fcontext(fcontext_t const to, void* vp);
extern "C" __attribute__((noplt)) fcontext_t BOOST_CONTEXT_CALLDECL
make_fcontext(void* sp, std::size_t size, void (*fn)(transfer_t));
extern "C" __attribute__((noplt)) transfer_t BOOST_CONTEXT_CALLDECL
ontop_fcontext(fcontext_t const to, void* vp, transfer_t (*fn)(transfer_t));
}  // namespace boost::context::detail
#endif

namespace greenlets::detail {

namespace fctx = boost::context::detail;

inline void free_stack(greenlet_impl* g) noexcept {
  tool_stack_freed(g->tools, g->stack);
  if (stack_resource* r = g->allocator.resource()) {
    r->deallocate(g->stack);
  } else {
    pool_deallocate(g->stack);  // the default, without a virtual call
  }
  g->stack = stack_context();
}

// Makes `to` current and hands it the exception globals (rule 10: each greenlet sees
// only its own caught and in-flight exceptions); the caller then jumps. The event is
// stored only for a throw: landed_slow() reads it and puts back `switch_to`.
GREENLETS_ALWAYS_INLINE void prepare_jump(thread_state& ts, greenlet_impl* from, greenlet_impl* to,
                                          trace_event ev) noexcept {
  if (ev != trace_event::switch_to) ts.event = ev;
  tls_switch.current = to;
  exception_state* globals = tls_switch.eh;
  std::memcpy(&from->eh, globals, sizeof(exception_state));
  std::memcpy(globals, &to->eh, sizeof(exception_state));
}

inline void landed_slow(thread_state& ts, greenlet_impl* origin, value& result);

[[noreturn]] GREENLETS_COLD GREENLETS_NOINLINE inline void no_saved_context() noexcept {
  std::fputs("greenlets: internal error: switching to a greenlet with no saved context\n", stderr);
  std::abort();
}

// Where the landing's slow half runs. Without AddressSanitizer it runs on top of the
// target's stack before the target resumes (Boost.Context's ontop_fcontext), chosen by
// the jumper, which knows it left work behind: so a landing checks nothing. ASan's
// fiber hooks must finish a switch before anything else runs on the new stack, once,
// so there the landing checks `ts.slow` itself.
#if defined(GREENLETS_ASAN)
inline constexpr bool slow_on_top = false;
#else
inline constexpr bool slow_on_top = true;
#endif

// First thing after a jump lands in `self`: keep the context of the greenlet that
// jumped here. The payload is already in `result`. `checked`: a greenlet's first
// landing, which no slow half can run on top of (see jump_slow()).
template <bool checked = !slow_on_top>
GREENLETS_ALWAYS_INLINE void landed(thread_state& ts, greenlet_impl* self, fctx::transfer_t t,
                                    value& result) {
  auto* from = static_cast<greenlet_impl*>(t.data);
  tool_after_switch(self->tools, from->tools);
  from->ctx = t.fctx;
  if constexpr (checked) {
    if (GREENLETS_UNLIKELY(ts.slow != 0)) landed_slow(ts, from, result);
  }
}

// The slow half of a landing, run on top of the target's stack: `t` is the jump as the
// target would have seen it. Exceptions leave it into the target's frame, which
// ontop_fcontext makes this function's caller. The landing then stores a null context
// into the target itself (running, its saved context means nothing): `t.data` may be
// gone by then (a finished or orphaned greenlet released here).
inline fctx::transfer_t land_on_top(fctx::transfer_t t) {
  thread_state& ts = *tls_state;
  greenlet_impl* self = tls_switch.current;
  auto* from = static_cast<greenlet_impl*>(t.data);
  from->ctx = t.fctx;
  landed_slow(ts, from, *self->inbox);
  return {nullptr, self};
}

// The jump when `ts.slow` says the landing has work: on top of a suspended target's
// stack, or plainly into one never run (its entry checks; ontop_fcontext needs a
// context that jump_fcontext saved). It tells the tools of the switch itself: under
// ThreadSanitizer a function's entry must be recorded on the fiber its exit will be
// (the jumper's, when it is resumed here), or the other fiber's shadow call stack
// runs dry.
GREENLETS_NOINLINE inline fctx::transfer_t jump_slow(greenlet_impl* to, greenlet_impl* self,
                                                     bool self_finished) {
  tool_before_switch(self->tools, to->tools, self_finished);
  if (to->fresh) return fctx::jump_fcontext(to->ctx, self);
  return fctx::ontop_fcontext(to->ctx, self, &land_on_top);
}

// Jumps to `to` (suspended or just started); what comes back lands in `result`.
// `known_fast`: the caller checked the switch key, which matches only while `ts.slow`
// holds no lasting work (tracing, an orphan; see sync_switch_key()), and nothing
// transient (a pending throw, a finished greenlet) is set outside a jump.
template <bool known_fast = false>
GREENLETS_ALWAYS_INLINE void jump(thread_state& ts, greenlet_impl* to, trace_event ev,
                                  value& result) {
  greenlet_impl* self = tls_switch.current;
  self->inbox = &result;
  prepare_jump(ts, self, to, ev);
  fctx::transfer_t t;
  if constexpr (slow_on_top) {
    if constexpr (known_fast) {
      GREENLETS_ASSERT(ts.slow == 0, "a switch-key match with slow work pending");
    } else if (GREENLETS_UNLIKELY(ts.slow != 0)) {
      t = jump_slow(to, self, false);
      landed(ts, self, t, result);
      return;
    }
  }
  tool_before_switch(self->tools, to->tools, false);
  t = fctx::jump_fcontext(to->ctx, self);
  landed(ts, self, t, result);
}

// The start of a fast jump: `to` becomes the running greenlet, with its exception
// globals; the running one, `self`, keeps its own, and its result will land in `result`.
GREENLETS_ALWAYS_INLINE void hand_over(greenlet_impl* self, greenlet_impl* to,
                                       value& result) noexcept {
  self->inbox = &result;
  exception_state* globals = tls_switch.eh;
  tls_switch.current = to;
  std::memcpy(&self->eh, globals, sizeof(exception_state));
  std::memcpy(globals, &to->eh, sizeof(exception_state));
}

// The same from the running greenlet, which it returns.
GREENLETS_ALWAYS_INLINE greenlet_impl* hand_over(greenlet_impl* to, value& result) noexcept {
  greenlet_impl* self = tls_switch.current;
  hand_over(self, to, result);
  return self;
}

// switch_to's jump, to a target whose switch key matched (so `ts.slow` is 0): false,
// having done nothing that matters, if `to` is the running greenlet (its inbox and
// exception globals written onto itself); `self_checked` when the caller knows it is
// not.
//
// Two tests of nothing-ever-happens sit just before the call, and they are worth their
// four instructions a round trip: two greenlets switching to each other in identical
// loops (the tutorial's switch benchmark) ran at 1.6-1.8x a raw fiber (median of eight
// runs) with fewer conditional branches on this path, against 1.1x with them, on the
// project's machine (an AMD EPYC). The likely cause is the prediction of
// jump_fcontext's closing indirect jump, which keys on the branches taken before it.
// Re-measured: without the saved-context test (95 instructions) 1.83-1.89x against
// 1.11-1.13x; docs/architecture.md has the variants tried.
template <bool self_checked = false>
GREENLETS_ALWAYS_INLINE bool jump_fast(greenlet_impl* to, value& result) {
  greenlet_impl* self = hand_over(to, result);
  if constexpr (!self_checked) {
    if (GREENLETS_UNLIKELY(to == self)) return false;
  }
  tool_before_switch(self->tools, to->tools, false);
  const fctx::fcontext_t target = to->ctx;
  if (GREENLETS_UNLIKELY(target == nullptr)) no_saved_context();
  fctx::transfer_t t = fctx::jump_fcontext(target, self);
  landed(*tls_state, self, t, result);
  return true;
}

// A generator's per-item jump, between its consumer and its body: `self` is the
// running greenlet (the generator's tests said so), `to` matched the switch key and is
// not running (each waits while the other runs). Here there are no tests.
GREENLETS_ALWAYS_INLINE void jump_direct(greenlet_impl* self, greenlet_impl* to, value& result) {
  hand_over(self, to, result);
  tool_before_switch(self->tools, to->tools, false);
  fctx::transfer_t t = fctx::jump_fcontext(to->ctx, self);
  landed(*tls_state, self, t, result);
}

// Runs `self` to its end, leaving its result or its exception in `result` or `failure`.
template <class G>
GREENLETS_INLINE_WHEN_OPTIMIZED void run_greenlet(thread_state& ts, G* self, fctx::transfer_t t,
                                                  value& result, std::exception_ptr& failure) {
  try {
    value args;
    value_access::take(args, ts.transfer);  // start() made it our inbox
    self->fresh = false;
    landed<true>(ts, self, t, args);  // raises the throw that an unrun greenlet dies of
    if (!self->is(status_unrun)) self->invoke(std::move(args), result);
  } catch (const greenlet_exit& e) {
    result.emplace<greenlet_exit>(e);
  } catch (...) {
    failure = std::current_exception();
  }
  self->drop_run();
}

// A finished greenlet's last jump when its stack is all the landing has to see to (the
// usual end): landed_slow()'s first case, without the thread state or the flag word.
inline fctx::transfer_t land_finished(fctx::transfer_t t) noexcept {
  auto* from = static_cast<greenlet_impl*>(t.data);
  from->ctx = nullptr;
  free_stack(from);
  return {nullptr, tls_switch.current};  // see land_on_top()
}

// For a finished greenlet about to leave its stack for good: gives the stack back
// already, if it is a pool's stack and the pool's spare place is free, so that the
// last jump is a plain one (no function run on top of the target). Nothing can take
// the spare before that jump: nothing else runs in between. Not under ThreadSanitizer
// or valgrind, whose stack bookkeeping must be undone once off the stack.
GREENLETS_INLINE_WHEN_OPTIMIZED bool give_back_stack_early(greenlet_impl* self) noexcept {
#if defined(GREENLETS_TSAN)
  (void)self;
  return false;
#else
#if defined(GREENLETS_VALGRIND_ACTIVE)
  if (on_valgrind()) return false;
#endif
  if (self->allocator.resource() != nullptr || !pool_deallocate_to_spare(self->stack)) {
    return false;
  }
  self->stack = stack_context();
  return true;
#endif
}

// The bottom frame of every greenlet's stack; `G` is its record's type.
template <class G>
void greenlet_entry(fctx::transfer_t t) noexcept {
  thread_state& ts = *tls_state;
  auto* self = static_cast<G*>(tls_switch.current);  // the jumper made us current
  greenlet_impl* next;
  {
    value result;
    std::exception_ptr failure;
    run_greenlet(ts, self, t, result, failure);
    // The greenlet to resume, prepared. (finish() is defined below: found when this
    // template is instantiated, as `self` has a type that depends on G.)
    next = finish(ts, self, result, failure);
  }
  if constexpr (slow_on_top) {
    if (GREENLETS_LIKELY(ts.slow == 0 && !next->fresh)) {
      const bool plain = give_back_stack_early(self);
      tool_before_switch(self->tools, next->tools, true);
      if (GREENLETS_LIKELY(plain)) {
        fctx::jump_fcontext(next->ctx, self);
      } else {
        fctx::ontop_fcontext(next->ctx, self, &land_finished);
      }
    } else {
      ts.slow |= slow_finished;  // the greenlet landing next frees this stack
      jump_slow(next, self, true);
    }
  } else {
    ts.slow |= slow_finished;
    tool_before_switch(self->tools, next->tools, true);
    fctx::jump_fcontext(next->ctx, self);
  }
  GREENLETS_ASSERT(false, "a finished greenlet was resumed");
  std::abort();  // never reached; tells the compiler the frame needs no epilogue
}

// Gives `g` its stack; it runs at the next jump to it.
inline void start(thread_state& ts, greenlet_impl* g) {
  stack_resource* r = g->allocator.resource();
  const stack_context sc = r != nullptr ? r->allocate(g->stack_size) : pool_allocate(g->stack_size);
  g->stack = sc;
  tool_stack_allocated(g->tools, sc);
  g->inbox = &ts.transfer;
  g->set(status_started);
  g->fresh = true;
  g->switch_key.store(ts.record->key(), std::memory_order_relaxed);
  ts.link_active(g);
  // Staggered tops: stacks are page-aligned, and greenlets switching to each other
  // with frames at the same offset in a page suffer 4K-aliasing stalls.
  const std::size_t stagger = (ts.stack_color++ % 8) * 64;
  // Last, so that only `g` is needed after the call.
  g->ctx = fctx::make_fcontext(static_cast<char*>(sc.sp) - stagger, sc.size - stagger, g->entry);
}

inline bool is_greenlet_exit(const std::exception_ptr& e, value* as_value) {
  try {
    std::rethrow_exception(e);
  } catch (const greenlet_exit& x) {
    if (as_value != nullptr) as_value->emplace<greenlet_exit>(x);
    return true;
  } catch (...) {
    return false;
  }
}

inline void set_pending(thread_state& ts, std::exception_ptr e) noexcept {
  ts.pending = std::move(e);
  ts.slow |= slow_pending_exception;
}

inline void clear_pending(thread_state& ts) noexcept {
  ts.pending = nullptr;
  ts.slow &= ~static_cast<unsigned>(slow_pending_exception);
}

// Starts `t` for a switch whose arguments are in `ts.transfer`; on failure (no
// stack) drops them and throws.
GREENLETS_NOINLINE inline void start_for_switch(thread_state& ts, greenlet_impl* t) {
  try {
    start(ts, t);
  } catch (...) {
    ts.transfer.reset();
    throw;
  }
}

// Starts `t` only to have the pending exception raised in it before `run`; false if
// no stack could be had.
GREENLETS_COLD inline bool start_unrun(thread_state& ts, greenlet_impl* t) noexcept {
  try {
    start(ts, t);
  } catch (...) {
    return false;
  }
  t->set(status_unrun);
  return true;
}

// Finds who takes a payload meant for `t`: dead greenlets pass it to their parent,
// an unstarted one starts with it or, for an exception, dies without running (a
// greenlet_exit then travels on as a value). Starts the one found if needed.
// When starting fails (no stack): from a switch, throws, and `ts` holds no payload;
// for a finished greenlet (`passing_on`), the failure goes on up as the payload,
// as Python's test_parent_return_failure.
inline greenlet_impl* resolve_target(thread_state& ts, greenlet_impl* t, bool passing_on) {
  for (;;) {
    if (t->is(status_dead)) {
      t = t->parent;
      if (ts.pending && is_greenlet_exit(ts.pending, &ts.transfer)) clear_pending(ts);
      continue;
    }
    if (!t->is(status_started)) {
      if (ts.pending) {
        // Traced, it is entered to die there, so that the trace function sees the
        // throw arrive in it and its death leave it, as in Python; untraced (or if no
        // stack is left) it dies here, and the exception goes on to its parent.
        if ((ts.slow & slow_tracing) && start_unrun(ts, t)) return t;
        t->set(status_dead);
        t->drop_run();
        t = t->parent;
        if (is_greenlet_exit(ts.pending, &ts.transfer)) clear_pending(ts);
        continue;
      }
      try {
        start(ts, t);
      } catch (...) {
        ts.transfer.reset();
        if (!passing_on) {
          clear_pending(ts);
          throw;
        }
        set_pending(ts, std::current_exception());
        t = t->parent;
        continue;
      }
    }
    return t;
  }
}

// Delivers the payload in `ts.transfer` to `t` or whoever takes it for `t` (see
// resolve_target); the current greenlet gets it at once. What comes back lands in
// `result`.
GREENLETS_NOINLINE inline void deliver(thread_state& ts, greenlet_impl* t, trace_event ev,
                                       value& result) {
  t = resolve_target(ts, t, false);
  if (t == tls_switch.current) {
    result = std::move(ts.transfer);
    if (ts.slow != 0) {
      ts.event = ev;
      landed_slow(ts, t, result);
    }
    return;
  }
  *t->inbox = std::move(ts.transfer);  // a no-op for one just started: its inbox is `transfer`
  jump(ts, t, ev, result);
}

// finish() when the greenlet failed or its parent is not waiting in a switch: the
// payload goes to whoever takes it (resolve_target). Out of line: finish() is part of
// every greenlet_entry<G>.
GREENLETS_NOINLINE inline greenlet_impl* finish_slow(thread_state& ts, greenlet_impl* self,
                                                     value& result, std::exception_ptr& failure) {
  ts.transfer = std::move(result);
  if (failure) {
    set_pending(ts, std::move(failure));
  } else {
    clear_pending(ts);
  }
  greenlet_impl* t = resolve_target(ts, self->parent, true);
  *t->inbox = std::move(ts.transfer);
  trace_event ev =
      (ts.slow & slow_pending_exception) ? trace_event::throw_to : trace_event::switch_to;
  prepare_jump(ts, self, t, ev);
  return t;
}

// The end of a greenlet: hand its result (or exception) to the parent chain and
// return the greenlet to resume, prepared for the jump.
GREENLETS_INLINE_WHEN_OPTIMIZED greenlet_impl* finish(thread_state& ts, greenlet_impl* self,
                                                      value& result, std::exception_ptr& failure) {
  self->status.store(self->is(status_unrun) ? std::uint8_t{status_dead}
                                            : std::uint8_t{status_started | status_dead},
                     std::memory_order_release);
  self->switch_key.store(inactive_key, std::memory_order_relaxed);
  ts.unlink_active(self);
  greenlet_impl* parent = self->parent;
  if (GREENLETS_LIKELY(!failure &&
                       parent->status.load(std::memory_order_relaxed) == status_started)) {
    // The common end: a live parent waits in a switch; hand it the result directly.
    value_access::replace(*parent->inbox, result);
    prepare_jump(ts, self, parent, trace_event::switch_to);
    return parent;
  }
  return finish_slow(ts, self, result, failure);
}

GREENLETS_COLD inline void landed_slow(thread_state& ts, greenlet_impl* origin, value& result) {
  if (ts.slow == slow_finished) {  // the usual reason: a greenlet returned to its parent
    ts.slow = 0;
    origin->ctx = nullptr;
    free_stack(origin);
    return;
  }
  const trace_event ev = std::exchange(ts.event, trace_event::switch_to);
  if (ts.slow & slow_finished) {
    ts.slow &= ~static_cast<unsigned>(slow_finished);
    origin->ctx = nullptr;
    free_stack(origin);
  }
  // Take the exception first: trace functions and kills below switch too (the value
  // is safe in `result`, on this greenlet's own stack).
  std::exception_ptr failure;
  if (ts.slow & slow_pending_exception) {
    failure = std::move(ts.pending);
    clear_pending(ts);
  }
  if ((ts.slow & slow_tracing) && ts.trace) {
    greenlet from = try_add_ref(origin) ? greenlet_access::adopt(origin) : greenlet();
    greenlet target = greenlet_access::adopt(share_current(ts));
    trace_function fn = ts.trace;  // a copy: the trace function may replace itself
    try {
      fn(ev, from, target);
    } catch (...) {
      ts.trace = nullptr;
      ts.slow &= ~static_cast<unsigned>(slow_tracing);
      failure = std::current_exception();
    }
  }
  if (ts.slow & slow_orphan) {
    greenlet_impl* o = ts.orphan;
    ts.orphan = nullptr;
    ts.slow &= ~static_cast<unsigned>(slow_orphan);
    release(o);
  }
  if ((ts.slow & slow_lasting) == 0 &&
      tls_switch.key.load(std::memory_order_relaxed) == no_thread_key) {
    sync_switch_key(ts);  // the trace function or the orphan is gone
  }
  if (failure) {
    result.reset();
    std::rethrow_exception(failure);
  }
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_SWITCH_HPP
