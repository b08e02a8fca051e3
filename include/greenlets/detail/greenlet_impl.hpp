// The inside of `greenlet`: the shared record behind a handle, the per-thread
// state, and the switch itself. Included at the end of greenlet.hpp.
//
// A suspended greenlet publishes where its pending switch wants its result (its
// `inbox`: the switch's return value, on its own stack). A switch constructs the
// payload there directly, saves the C++ exception globals of the greenlet leaving,
// installs those of the greenlet arriving, and jumps with Boost.Context's
// `jump_fcontext` (the primitive under `boost::context::fiber`), passing its own
// record as the jump's data. The side that lands stores the context it came from
// into that record; its result is already in place. A finished greenlet leaves
// with a plain jump and whoever lands frees its stack (`ontop_fcontext` cannot:
// on a context that has never run, Boost 1.74's start trampoline drops the ontop
// function's result). Everything unusual (tracing, a pending exception, a greenlet
// whose last handle went while it ran, a finished stack to free) is one flag word
// tested after the jump.
//
// We use the fcontext layer rather than `fiber` because the switch needs the data
// word, a greenlet needs no set-up jump at creation, and the sanitizer
// announcements must wrap every jump, including the first entry and the exit,
// which `fiber` performs internally.
#ifndef GREENLETS_DETAIL_GREENLET_IMPL_HPP
#define GREENLETS_DETAIL_GREENLET_IMPL_HPP

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/context/detail/fcontext.hpp>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/exception_state.hpp"
#include "greenlets/detail/invoke.hpp"
#include "greenlets/detail/sanitizers.hpp"
#include "greenlets/greenlet.hpp"

namespace greenlets::detail {

// ---------------------------------------------------------------------------
// Records

enum status_bits : std::uint8_t { status_started = 1, status_dead = 2 };

// What outlives a thread for the greenlets it created: its identity, whether it
// still runs, and the kills other threads queued for it.
struct thread_record {
  std::atomic<std::size_t> refs{1};
  std::thread::id id = std::this_thread::get_id();
  unsigned long number = next_number();
  std::mutex mutex;  // guards `alive` and `kill_queue`
  bool alive = true;
  std::vector<greenlet_impl*> kill_queue;
  std::atomic<bool> kills_pending{false};

  static unsigned long next_number() noexcept {
    static std::atomic<unsigned long> counter{0};
    return ++counter;
  }
  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  bool exited() {
    std::lock_guard<std::mutex> lock(mutex);
    return !alive;
  }
};

// The greenlet itself; handles count references to it.
struct greenlet_impl {
  std::atomic<std::size_t> refs{1};
  std::atomic<std::uint8_t> status{0};
  bool is_main = false;
  thread_record* record;                             // strong reference
  greenlet_impl* parent;                             // strong reference; null for a main greenlet
  boost::context::detail::fcontext_t ctx = nullptr;  // where it resumes, while switched out
  exception_state eh;                                // the exception globals while switched out
  tool_state tools;
  stack_context stack{};
  value* inbox = nullptr;  // where the pending switch wants its result
  std::size_t stack_size = default_stack_size;
  stack_allocator allocator;
  greenlet_impl* active_prev = nullptr;  // this thread's started, unfinished greenlets
  greenlet_impl* active_next = nullptr;

  greenlet_impl(thread_record* r, greenlet_impl* p) noexcept : record(r), parent(p) {
    r->add_ref();
  }
  greenlet_impl(const greenlet_impl&) = delete;
  greenlet_impl& operator=(const greenlet_impl&) = delete;
  virtual ~greenlet_impl();

  virtual void invoke(value&& args, value& result) = 0;  // runs `run`; its result goes to `result`
  virtual void drop_run() noexcept = 0;

  bool is(std::uint8_t bits) const noexcept {
    return (status.load(std::memory_order_relaxed) & bits) != 0;
  }
  void set(std::uint8_t bits) noexcept {
    status.store(static_cast<std::uint8_t>(status.load(std::memory_order_relaxed) | bits),
                 std::memory_order_release);
  }
};

template <class F>
struct user_greenlet final : greenlet_impl {
  union {
    F fn;  // destroyed once run has finished
  };
  bool has_fn = true;

  template <class G>
  user_greenlet(G&& f, thread_record* r, greenlet_impl* p) : greenlet_impl(r, p) {
    ::new (&fn) F(std::forward<G>(f));
  }
  ~user_greenlet() override { drop_run(); }
  void invoke(value&& args, value& result) override { invoke_run(fn, std::move(args), result); }
  void drop_run() noexcept override {
    if (has_fn) {
      has_fn = false;
      fn.~F();
    }
  }
};

struct main_greenlet final : greenlet_impl {
  explicit main_greenlet(thread_record* r) noexcept : greenlet_impl(r, nullptr) {
    is_main = true;
    status.store(status_started, std::memory_order_relaxed);
  }
  void invoke(value&&, value&) override {}
  void drop_run() noexcept override {}
};

inline void add_ref(greenlet_impl* g) noexcept { g->refs.fetch_add(1, std::memory_order_relaxed); }
inline void release(greenlet_impl* g) noexcept;

// Takes a reference unless the count is already zero: another thread dropped the last
// handle and the greenlet is on its way to this thread's kill queue.
inline bool try_add_ref(greenlet_impl* g) noexcept {
  std::size_t n = g->refs.load(std::memory_order_relaxed);
  while (n != 0) {
    if (g->refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Access to handle internals

struct greenlet_access {
  static greenlet adopt(greenlet_impl* g) noexcept { return greenlet(g); }
  static greenlet share(greenlet_impl* g) noexcept {
    add_ref(g);
    return greenlet(g);
  }
  static greenlet_impl* get(const greenlet& g) noexcept { return g.p_; }
};

// ---------------------------------------------------------------------------
// Per-thread state

enum slow_bits : unsigned {
  slow_pending_exception = 1,  // `pending` holds an exception to raise in the target
  slow_tracing = 2,            // a trace function is installed
  slow_orphan = 4,             // `orphan` holds a greenlet whose handles all went while it ran
  slow_finished = 8,           // the greenlet that jumped here has finished: free its stack
};

struct thread_state {
  greenlet_impl* current;
  greenlet_impl* main;
  exception_state* eh;
  thread_record* record;
  unsigned slow = 0;
  trace_event event = trace_event::switch_to;
  value transfer;  // a payload being routed, or the first switch's arguments
  std::exception_ptr pending;
  greenlet_impl* orphan = nullptr;
  trace_function trace;
  greenlet_impl* active_head = nullptr;
  unsigned stack_color = 0;  // staggers the tops of new stacks (see start())

  thread_state();
  ~thread_state();
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;

  void link_active(greenlet_impl* g) noexcept {
    g->active_prev = nullptr;
    g->active_next = active_head;
    if (active_head != nullptr) active_head->active_prev = g;
    active_head = g;
  }
  void unlink_active(greenlet_impl* g) noexcept {
    if (g->active_prev != nullptr) {
      g->active_prev->active_next = g->active_next;
    } else if (active_head == g) {
      active_head = g->active_next;
    }
    if (g->active_next != nullptr) g->active_next->active_prev = g->active_prev;
    g->active_prev = g->active_next = nullptr;
  }
};

// The fast pointer the switch reads, and the owner whose destructor runs at thread exit.
inline thread_local thread_state* tls_state = nullptr;
inline thread_local bool tls_state_destroyed = false;

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
  return *owner.state;
}

inline void process_kill_queue(thread_state& ts) noexcept;

// A new reference to the running greenlet (whose count another thread may have just
// dropped to zero: then the queue makes it an orphan first).
inline greenlet_impl* share_current(thread_state& ts) noexcept {
  while (!try_add_ref(ts.current)) process_kill_queue(ts);
  return ts.current;
}

// This thread's state, created on first use; runs kills queued by other threads.
inline thread_state& this_thread() {
  thread_state* ts = tls_state;
  if (GREENLETS_UNLIKELY(ts == nullptr)) ts = &create_thread_state();
  if (GREENLETS_UNLIKELY(ts->record->kills_pending.load(std::memory_order_relaxed))) {
    process_kill_queue(*ts);
  }
  return *ts;
}

// ---------------------------------------------------------------------------
// Messages

inline std::string thread_description(const thread_record* r) {
  std::ostringstream os;
  os << "thread #" << r->number << " (id " << r->id << ")";
  return os.str();
}

[[noreturn]] GREENLETS_COLD inline void throw_empty(const char* op) {
  throw error(std::string("greenlets: ") + op + ": empty greenlet handle");
}

[[noreturn]] GREENLETS_COLD inline void throw_foreign(const char* op, const char* who,
                                                      greenlet_impl* g) {
  thread_state* ts = tls_state;
  const bool exited = g->record->exited();
  std::string msg = std::string("greenlets: ") + op + ": " + who +
                    " belongs to another thread: " + thread_description(g->record);
  msg += exited ? ", which has exited" : "";
  if (ts != nullptr) msg += "; the current thread is " + thread_description(ts->record);
  throw error(msg);
}

// Checks that `g` may be switched to (or thrown to) from this thread.
inline thread_state& checked_state(const char* op, greenlet_impl* g) {
  if (GREENLETS_UNLIKELY(g == nullptr)) throw_empty(op);
  thread_state& ts = this_thread();
  if (GREENLETS_UNLIKELY(g->record != ts.record)) throw_foreign(op, "target", g);
  return ts;
}

// ---------------------------------------------------------------------------
// Unraisable exceptions

struct unraisable_state {
  std::mutex mutex;
  unraisable_function fn;
  static unraisable_state& get() {
    static unraisable_state* state = new unraisable_state();  // never destroyed: used at exit
    return *state;
  }
};

inline std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (const greenlet_exit&) {
    return "greenlets::greenlet_exit";
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

inline void report_unraisable(greenlet_impl* g, const std::exception_ptr& e,
                              std::string_view what) noexcept {
  try {
    unraisable_function fn;
    {
      std::lock_guard<std::mutex> lock(unraisable_state::get().mutex);
      fn = unraisable_state::get().fn;
    }
    if (fn) {
      add_ref(g);
      fn(greenlet_access::adopt(g), e, what);
      return;
    }
    std::string line = "greenlets: " + std::string(what);
    char where[64];
    std::snprintf(where, sizeof where, " (greenlet %p)", static_cast<void*>(g));
    line += where;
    if (e) line += ": " + describe_exception(e);
    std::fprintf(stderr, "%s\n", line.c_str());
  } catch (...) {
    // An unraisable handler that throws has nowhere to report to either.
  }
}

// ---------------------------------------------------------------------------
// The switch

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

// Makes `to` current and hands it the exception globals; the caller then jumps.
GREENLETS_ALWAYS_INLINE void prepare_jump(thread_state& ts, greenlet_impl* from, greenlet_impl* to,
                                          trace_event ev) noexcept {
  ts.event = ev;
  ts.current = to;
  std::memcpy(&from->eh, ts.eh, sizeof(exception_state));
  std::memcpy(ts.eh, &to->eh, sizeof(exception_state));
}

inline void landed_slow(thread_state& ts, greenlet_impl* origin, value& result);

// First thing after a jump lands in `self`: keep the context of the greenlet that
// jumped here (its stack is gone if it finished). The payload is already in `result`.
GREENLETS_ALWAYS_INLINE void landed(thread_state& ts, greenlet_impl* self, fctx::transfer_t t,
                                    value& result) {
  auto* from = static_cast<greenlet_impl*>(t.data);
  tool_after_switch(self->tools, from->tools);
  from->ctx = t.fctx;
  if (GREENLETS_UNLIKELY(ts.slow != 0)) landed_slow(ts, from, result);
}

// Jumps to `to` (suspended or just started); what comes back lands in `result`.
GREENLETS_ALWAYS_INLINE void jump(thread_state& ts, greenlet_impl* to, trace_event ev,
                                  value& result) {
  greenlet_impl* self = ts.current;
  self->inbox = &result;
  prepare_jump(ts, self, to, ev);
  tool_before_switch(self->tools, to->tools, false);
  fctx::transfer_t t = fctx::jump_fcontext(to->ctx, self);
  landed(ts, self, t, result);
}

inline greenlet_impl* finish(thread_state& ts, greenlet_impl* self, value& result,
                             std::exception_ptr& failure);

// Runs `self` to its end; returns the greenlet to resume, already prepared.
inline greenlet_impl* run_greenlet(thread_state& ts, greenlet_impl* self, fctx::transfer_t t) {
  value result;
  std::exception_ptr failure;
  try {
    value args = std::move(ts.transfer);  // start() made it our inbox
    landed(ts, self, t, args);
    self->invoke(std::move(args), result);
  } catch (const greenlet_exit& e) {
    result.emplace<greenlet_exit>(e);
  } catch (...) {
    failure = std::current_exception();
  }
  self->drop_run();
  return finish(ts, self, result, failure);
}

// The bottom frame of every greenlet's stack.
inline void greenlet_entry(fctx::transfer_t t) noexcept {
  thread_state& ts = *tls_state;
  greenlet_impl* self = ts.current;  // the jumper made us current
  greenlet_impl* next = run_greenlet(ts, self, t);
  ts.slow |= slow_finished;  // the greenlet landing next frees this stack
  tool_before_switch(self->tools, next->tools, true);
  fctx::jump_fcontext(next->ctx, self);
  GREENLETS_ASSERT(false, "a finished greenlet was resumed");
}

// Gives `g` its stack; it runs at the next jump to it.
inline void start(thread_state& ts, greenlet_impl* g) {
  stack_resource* r = g->allocator.resource();
  const stack_context sc = r != nullptr ? r->allocate(g->stack_size) : pool_allocate(g->stack_size);
  g->stack = sc;
  tool_stack_allocated(g->tools, sc);
  g->inbox = &ts.transfer;
  // Staggered tops: stacks are page-aligned, and greenlets switching to each other
  // with frames at the same offset in a page suffer 4K-aliasing stalls.
  const std::size_t stagger = (ts.stack_color++ % 8) * 64;
  g->ctx =
      fctx::make_fcontext(static_cast<char*>(sc.sp) - stagger, sc.size - stagger, &greenlet_entry);
  g->set(status_started);
  ts.link_active(g);
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
  if (t == ts.current) {
    result = std::move(ts.transfer);
    ts.event = ev;
    if (ts.slow != 0) landed_slow(ts, t, result);
    return;
  }
  *t->inbox = std::move(ts.transfer);  // a no-op for one just started: its inbox is `transfer`
  jump(ts, t, ev, result);
}

// The end of a greenlet: hand its result (or exception) to the parent chain and
// return the greenlet to resume, prepared for the jump.
inline greenlet_impl* finish(thread_state& ts, greenlet_impl* self, value& result,
                             std::exception_ptr& failure) {
  self->set(status_dead);
  ts.unlink_active(self);
  greenlet_impl* parent = self->parent;
  if (GREENLETS_LIKELY(!failure &&
                       parent->status.load(std::memory_order_relaxed) == status_started)) {
    // The common end: a live parent waits in a switch; hand it the result directly.
    *parent->inbox = std::move(result);
    prepare_jump(ts, self, parent, trace_event::switch_to);
    return parent;
  }
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

inline void kill(thread_state& ts, greenlet_impl* g, bool at_exit) noexcept;

inline void drop_local(thread_state& ts, greenlet_impl* g) noexcept {
  if (!g->is(status_started) || g->is(status_dead)) {
    delete g;
    return;
  }
  g->refs.store(1, std::memory_order_relaxed);
  if (g == ts.current) {
    // Its last handle went while it runs: the thread keeps it until it switches away.
    ts.orphan = g;
    ts.slow |= slow_orphan;
    return;
  }
  kill(ts, g, false);
}

// The last handle of `g` is gone (refs is 0).
GREENLETS_COLD inline void last_ref_dropped(greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  if (ts != nullptr && g->record == ts->record) {
    drop_local(*ts, g);
    return;
  }
  thread_record* r = g->record;
  {
    std::lock_guard<std::mutex> lock(r->mutex);
    if (r->alive) {
      try {
        r->kill_queue.push_back(g);
        r->kills_pending.store(true, std::memory_order_relaxed);
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

inline void release(greenlet_impl* g) noexcept {
  if (g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) last_ref_dropped(g);
}

inline greenlet_impl::~greenlet_impl() {
  // A greenlet that never finished (leaked on purpose) keeps its stack: nothing on
  // it is ever unwound or freed.
  if (parent != nullptr) release(parent);
  record->release();
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
  }
  for (greenlet_impl* g : queue) drop_local(ts, g);
}

GREENLETS_COLD inline void landed_slow(thread_state& ts, greenlet_impl* origin, value& result) {
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
    trace_event ev = ts.event;
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
  if (failure) {
    result.reset();
    std::rethrow_exception(failure);
  }
}

inline thread_state::thread_state() : eh(exception_globals()) {
  record = new thread_record();
  main = new main_greenlet(record);
  current = main;
}

inline thread_state::~thread_state() {
  tls_state = this;  // still valid while the owner unwinds
  if (current == main) {
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
    late.swap(record->kill_queue);
  }
  for (greenlet_impl* g : late) {
    if (!g->is(status_started) || g->is(status_dead)) delete g;
  }
  main->set(status_dead);
  trace = nullptr;
  transfer.reset();
  pending = nullptr;
  tls_state = nullptr;
  tls_state_destroyed = true;
  greenlet_impl* m = main;
  thread_record* r = record;
  if (orphan != nullptr) release(orphan);
  release(m);
  r->release();
}

}  // namespace greenlets::detail

namespace greenlets {

// ---------------------------------------------------------------------------
// greenlet members

template <class F, class>
greenlet::greenlet(F&& run) {
  detail::thread_state& ts = detail::this_thread();
  auto* g = new detail::user_greenlet<std::decay_t<F>>(std::forward<F>(run), ts.record, ts.current);
  detail::share_current(ts);  // the new greenlet's reference to its parent
  p_ = g;
}

template <class F>
greenlet::greenlet(F&& run, greenlet parent) {
  detail::thread_state& ts = detail::this_thread();
  detail::greenlet_impl* p = parent.p_;
  if (p == nullptr) throw error("greenlets: greenlet: the parent is an empty greenlet handle");
  if (p->record != ts.record) detail::throw_foreign("greenlet", "the parent", p);
  p_ = new detail::user_greenlet<std::decay_t<F>>(std::forward<F>(run), ts.record, p);
  parent.p_ = nullptr;  // the new greenlet took the reference
}

template <class F>
greenlet::greenlet(F&& run, options opts) {
  detail::thread_state& ts = detail::this_thread();
  detail::greenlet_impl* p = opts.parent.p_ != nullptr ? opts.parent.p_ : ts.current;
  if (p->record != ts.record) detail::throw_foreign("greenlet", "the parent", p);
  auto* g = new detail::user_greenlet<std::decay_t<F>>(std::forward<F>(run), ts.record, p);
  if (opts.parent.p_ != nullptr) {
    opts.parent.p_ = nullptr;  // the new greenlet took the reference
  } else {
    detail::share_current(ts);
  }
  g->stack_size = detail::round_to_pages(opts.stack_size);
  if (opts.allocator.resource() != detail::pooled_resource().get()) {
    g->allocator = std::move(opts.allocator);
  }
  p_ = g;
}

inline greenlet::greenlet(const greenlet& other) noexcept : p_(other.p_) {
  if (p_ != nullptr) detail::add_ref(p_);
}

// Self-assignment is safe: the new reference is taken before the old one goes.
inline greenlet& greenlet::operator=(
    const greenlet& other) noexcept {  // NOLINT(bugprone-unhandled-self-assignment)
  if (other.p_ != nullptr) detail::add_ref(other.p_);
  detail::greenlet_impl* old = std::exchange(p_, other.p_);
  if (old != nullptr) detail::release(old);
  return *this;
}

inline greenlet& greenlet::operator=(greenlet&& other) noexcept {
  if (this != &other) {
    detail::greenlet_impl* old = std::exchange(p_, std::exchange(other.p_, nullptr));
    if (old != nullptr) detail::release(old);
  }
  return *this;
}

inline greenlet::~greenlet() {
  if (p_ != nullptr) detail::release(p_);
}

template <class... Args>
GREENLETS_ALWAYS_INLINE value greenlet::switch_to(Args&&... args) {
  value result;  // the target sends it here, to our inbox
  detail::thread_state* ts = detail::tls_state;
  detail::greenlet_impl* t = p_;
  if (GREENLETS_UNLIKELY(ts == nullptr || t == nullptr || t->record != ts->record ||
                         ts->record->kills_pending.load(std::memory_order_relaxed))) {
    if (t == nullptr) detail::throw_empty("switch_to");  // tells the compiler t is set below
    ts = &detail::checked_state("switch_to", t);
  }
  if (GREENLETS_LIKELY(t->status.load(std::memory_order_relaxed) == detail::status_started &&
                       t != ts->current)) {
    if constexpr (sizeof...(Args) != 0) t->inbox->assign(std::forward<Args>(args)...);
    detail::jump(*ts, t, trace_event::switch_to, result);
  } else if (t->status.load(std::memory_order_relaxed) == 0) {
    // The first switch: start it here rather than in deliver(), so that no function
    // returns right after the jump (that would miss the return-stack predictor).
    if constexpr (sizeof...(Args) != 0) ts->transfer.assign(std::forward<Args>(args)...);
    detail::start_for_switch(*ts, t);
    detail::jump(*ts, t, trace_event::switch_to, result);
  } else {
    if constexpr (sizeof...(Args) != 0) ts->transfer.assign(std::forward<Args>(args)...);
    detail::deliver(*ts, t, trace_event::switch_to, result);
  }
  return result;
}

inline value greenlet::throw_to() { return throw_to(std::make_exception_ptr(greenlet_exit{})); }

inline value greenlet::throw_to(std::exception_ptr exception) {
  detail::thread_state& ts = detail::checked_state("throw_to", p_);
  if (!exception) throw error("greenlets: throw_to: the exception_ptr is null");
  value result;
  detail::set_pending(ts, std::move(exception));
  detail::deliver(ts, p_, trace_event::throw_to, result);
  return result;
}

inline bool greenlet::started() const noexcept {
  return p_ != nullptr && p_->is(detail::status_started);
}

inline bool greenlet::dead() const noexcept { return p_ != nullptr && p_->is(detail::status_dead); }

inline bool greenlet::active() const noexcept {
  return p_ != nullptr && p_->status.load(std::memory_order_acquire) == detail::status_started;
}

inline bool greenlet::is_main() const noexcept { return p_ != nullptr && p_->is_main; }

inline greenlet greenlet::parent() const& {
  if (p_ == nullptr) detail::throw_empty("parent");
  detail::thread_state& ts = detail::this_thread();
  if (p_->record != ts.record) detail::throw_foreign("parent", "the greenlet", p_);
  if (p_->parent == nullptr) return greenlet();
  return detail::greenlet_access::share(p_->parent);
}

inline greenlet greenlet::parent() && {
  greenlet result = static_cast<const greenlet&>(*this).parent();
  greenlet released = std::move(*this);  // drops this temporary's reference now
  return result;
}

inline void greenlet::set_parent(greenlet new_parent) {
  if (p_ == nullptr) detail::throw_empty("set_parent");
  if (new_parent.p_ == nullptr) {
    throw error("greenlets: set_parent: the new parent is an empty greenlet handle");
  }
  if (p_->is_main) {
    throw error("greenlets: set_parent: a main greenlet has no parent and cannot be given one");
  }
  detail::thread_state& ts = detail::this_thread();
  if (p_->record != ts.record) detail::throw_foreign("set_parent", "the greenlet", p_);
  if (new_parent.p_->record != ts.record) {
    detail::throw_foreign("set_parent", "the new parent", new_parent.p_);
  }
  for (detail::greenlet_impl* q = new_parent.p_; q != nullptr; q = q->parent) {
    if (q == p_) throw error("greenlets: set_parent: would create a cycle");
  }
  detail::greenlet_impl* old = std::exchange(p_->parent, std::exchange(new_parent.p_, nullptr));
  detail::release(old);
}

inline greenlet current() {
  detail::thread_state& ts = detail::this_thread();
  return detail::greenlet_access::adopt(detail::share_current(ts));
}

inline trace_function settrace(trace_function fn) {
  detail::thread_state& ts = detail::this_thread();
  trace_function old = std::move(ts.trace);
  ts.trace = std::move(fn);
  if (ts.trace) {
    ts.slow |= detail::slow_tracing;
  } else {
    ts.slow &= ~static_cast<unsigned>(detail::slow_tracing);
  }
  return old;
}

inline trace_function gettrace() { return detail::this_thread().trace; }

inline unraisable_function set_unraisable_handler(unraisable_function fn) {
  auto& state = detail::unraisable_state::get();
  std::lock_guard<std::mutex> lock(state.mutex);
  return std::exchange(state.fn, std::move(fn));
}

}  // namespace greenlets

#include "greenlets/detail/overflow.hpp"

#endif  // GREENLETS_DETAIL_GREENLET_IMPL_HPP
