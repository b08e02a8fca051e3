// `task<R>`: a greenlet run by the hub, and `spawn`, `spawn_later`, `joinall`.
//
//   auto t = greenlets::spawn([](int x) { greenlets::sleep(10ms); return x * 2; }, 21);
//   int v = t.get();                          // 42: waits for it
//   greenlets::joinall(std::vector{t, t});    // duplicates are fine
#ifndef GREENLETS_HUB_TASK_HPP
#define GREENLETS_HUB_TASK_HPP

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "greenlets/hub/hub.hpp"

namespace greenlets {

template <class R>
class task;
class pool;

namespace detail {

enum class task_phase : unsigned char { pending, running, done };

// A place in a pool's list of running tasks.
struct pool_hook : list_hook {};

// Everything a task's handles and its greenlet share.
struct task_base : task_hook, run_hook, pool_hook, std::enable_shared_from_this<task_base> {
  struct start_timer : timer_node {
    task_base* task = nullptr;
  };

  task_base() {
    run = &start;
    shut_down = &shut_down_at_exit;
  }
  task_base(const task_base&) = delete;
  task_base& operator=(const task_base&) = delete;
  virtual ~task_base() {
    if (exception && !retrieved) {
      report_unraisable(ctx.self, exception, "a task ended with an exception nobody retrieved");
    }
  }

  virtual void invoke() = 0;
  virtual void drop_call() noexcept = 0;

  // Runs in the task's greenlet.
  void body() noexcept {
    phase = task_phase::running;
    try {
      invoke();
      // What interrupted a patched C call and found no blocking point after it.
      if (GREENLETS_UNLIKELY(ctx.deferred != nullptr)) {
        std::exception_ptr e = std::move(ctx.deferred);
        ctx.deferred = nullptr;
        std::rethrow_exception(e);
      }
    } catch (const greenlet_exit&) {
      killed = true;
    } catch (...) {
      exception = std::current_exception();
    }
    finish();
  }

  void finish() noexcept {
    phase = task_phase::done;
    ctx.kill_pending = nullptr;
    ctx.deferred = nullptr;
    ctx.deferred_scope = nullptr;
    loop& l = loop::local();
    while (wait_hook* h = joiners.pop_front()) l.wake(static_cast<waiter&>(*h));
    loop::remove_task(*this);
    l.forget_ctx(ctx);
    if (on_done != nullptr) on_done(*this);
  }

  static void start(run_hook& h) {
    auto& t = static_cast<task_base&>(h);
    loop& l = loop::local();
    l.set_running(&t.ctx);
    try {
      t.ctx.self.switch_to();
    } catch (const greenlet_exit&) {
      throw;
    } catch (...) {
      report_unraisable(t.ctx.self, std::current_exception(), "starting a task failed");
    }
  }

  // Kills a task that has not started: it never runs; joiners wake.
  void cancel_start(std::exception_ptr e) noexcept {
    std::shared_ptr<task_base> keep = shared_from_this();
    loop& l = loop::local();
    l.unschedule(*this);
    l.disarm(timer);
    if (holds_greenlet_exit(e)) {
      killed = true;
    } else {
      exception = std::move(e);
    }
    finish();
    drop_call();
    ctx.self = greenlet();  // never started: frees it and its reference to us
  }

  static void shut_down_at_exit(task_hook& h) {
    auto& t = static_cast<task_base&>(h);
    std::shared_ptr<task_base> keep = t.shared_from_this();
    if (t.phase == task_phase::pending) {
      t.cancel_start(std::make_exception_ptr(greenlet_exit{}));
      return;
    }
    greenlet g = t.ctx.self;
    if (g.active()) {
      try {
        g.set_parent(current());  // it returns here rather than to the dying hub
        g.throw_to();
      } catch (...) {
      }
    }
  }

  wait_ctx ctx;  // ctx.self is the task's greenlet
  hook_list<wait_hook> joiners;
  start_timer timer;
  std::exception_ptr exception;
  std::thread::id owner = std::this_thread::get_id();
  task_phase phase = task_phase::pending;
  bool killed = false;
  bool retrieved = false;
  // A pool's bookkeeping.
  void (*on_done)(task_base&) = nullptr;
  void* pool = nullptr;
};

template <class R>
struct task_state : task_base {
  std::optional<R> result;
};
template <>
struct task_state<void> : task_base {};

template <class R, class F, class... A>
struct task_impl final : task_state<R> {
  template <class G, class... B>
  explicit task_impl(G&& g, B&&... b) {
    call.emplace(std::forward<G>(g), std::forward<B>(b)...);
  }
  void invoke() override {
    // The function and its arguments go as soon as it returns: what they hold (often
    // handles to other tasks) must not keep anything alive in a cycle through us.
    struct drop {
      task_impl& t;
      ~drop() { t.call.reset(); }
    } guard{*this};
    auto call_it = [](F& f, A&... a) -> R { return std::invoke(f, std::move(a)...); };
    if constexpr (std::is_void_v<R>) {
      std::apply(call_it, *call);
    } else {
      this->result.emplace(std::apply(call_it, *call));
    }
  }
  void drop_call() noexcept override { call.reset(); }
  std::optional<std::tuple<F, A...>> call;
};

template <class F, class... A>
using task_result_t = std::invoke_result_t<std::decay_t<F>&, std::decay_t<A>...>;

template <class F, class... A>
auto make_task(F&& f, A&&... args) {
  using R = task_result_t<F, A...>;
  loop& l = loop::local();
  using impl = task_impl<R, std::decay_t<F>, std::decay_t<A>...>;
  auto st = std::allocate_shared<impl>(block_allocator<impl>(), std::forward<F>(f),
                                       std::forward<A>(args)...);
  options opts;
  opts.parent = l.hub_greenlet();
  std::shared_ptr<task_base> base = st;
  // The greenlet keeps its task alive until it ends (or, unstarted, is dropped).
  st->ctx.self = greenlet([base = std::move(base)] { base->body(); }, std::move(opts));
  l.add_task(*st);
  return std::shared_ptr<task_state<R>>(std::move(st));
}

}  // namespace detail

/// A handle to a task: a greenlet that the hub starts and whose parent is the hub.
///
/// Copies refer to the same task. `R` is what the function returns (maybe `void`).
/// Everything but copying belongs to the thread that spawned it (`error` otherwise).
/// A task ended by `kill()` counts as finished successfully but has no value.
/// Python: `gevent.Greenlet`.
template <class R>
class task {
 public:
  /// An empty handle; every other call on it is an `error`.
  task() noexcept = default;

  /// Waits until the task has finished (returned, thrown or been killed).
  ///
  /// Python: `g.join()`.
  /// Throws: `error` when a task joins itself or inside the hub; `timeout_error`,
  /// `greenlet_exit` as any blocking call.
  void join() const {
    detail::task_base& t = state("task::join");
    if (t.phase == detail::task_phase::done) return;
    wait_done(t, nullptr);
  }

  /// Waits at most `d` for the task to finish; true if it has.
  ///
  /// Python: `g.join(timeout)` then `g.ready()`.
  bool join_for(duration d) const { return join_until(std::chrono::steady_clock::now() + d); }

  /// Waits until `tp` at the latest for the task to finish; true if it has.
  bool join_until(time_point tp) const {
    detail::task_base& t = state("task::join_until");
    if (t.phase == detail::task_phase::done) return true;
    wait_done(t, &tp);
    return t.phase == detail::task_phase::done;
  }

  /// Waits for the task, then returns its value or rethrows what it threw.
  ///
  /// The same exception object is rethrown each time. A copy of the value each time;
  /// a value that cannot be copied (a `tcp_socket`, a `std::unique_ptr`) is moved out
  /// by the first `get()`.
  /// Python: `g.get()`.
  /// Throws: what the task threw; `error` if it was killed (it has no value), or if a
  /// value that cannot be copied was already taken.
  R get() const {
    join();
    detail::task_state<R>& t = *st_;
    t.retrieved = true;
    if (t.exception) std::rethrow_exception(t.exception);
    if (t.killed) throw error("greenlets: task::get: the task was killed before it returned");
    if constexpr (std::is_void_v<R>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<R>) {
      return *t.result;
    } else {
      if (!t.result) {
        throw error("greenlets: task::get: the result cannot be copied and was already taken");
      }
      R out = std::move(*t.result);
      t.result.reset();
      return out;
    }
  }

  /// True once the task has finished in any way (including killed before starting).
  ///
  /// Python: `g.ready()`.
  bool ready() const { return state("task::ready").phase == detail::task_phase::done; }

  /// True if the task finished without an exception (a kill counts as success).
  ///
  /// Python: `g.successful()`.
  bool successful() const {
    detail::task_base& t = state("task::successful");
    t.retrieved = true;
    return t.phase == detail::task_phase::done && !t.exception;
  }

  /// What the task threw (null while running or if it returned or was killed).
  ///
  /// Python: `g.exception`.
  std::exception_ptr exception() const {
    detail::task_base& t = state("task::exception");
    t.retrieved = true;
    return t.exception;
  }

  /// Kills the task with `greenlet_exit` at its blocking point and waits until it is dead.
  ///
  /// A task that has not started never runs. Killing a finished task does nothing.
  /// Python: `g.kill()`.
  void kill() const { kill(std::make_exception_ptr(greenlet_exit{}), true); }

  /// Raises `e` in the task at its blocking point (now if it is blocked); with `block`,
  /// waits until it is dead.
  ///
  /// A task that has not started never runs and ends with `e` (a kill if `e` is a
  /// `greenlet_exit`). A task killing itself throws `e` at once.
  /// Python: `g.kill(exception, block)`.
  void kill(std::exception_ptr e, bool block = true) const {
    detail::task_base& t = state("task::kill");
    if (!e) throw error("greenlets: task::kill: the exception_ptr is null");
    if (t.phase == detail::task_phase::done) return;
    if (t.phase == detail::task_phase::pending) {
      t.cancel_start(std::move(e));
      return;
    }
    if (t.ctx.self == current()) std::rethrow_exception(e);
    detail::loop::local().interrupt(t.ctx, std::move(e));
    if (block) join();
  }

  /// The greenlet underneath (empty once a task killed before starting is dropped).
  greenlet handle() const { return state("task::handle").ctx.self; }

  /// The task's name (empty if none): its greenlet's, see `greenlet::name()`.
  ///
  /// Python: `g.name`.
  std::string name() const {
    const greenlet& g = state("task::name").ctx.self;
    return g.empty() ? std::string() : g.name();
  }

  /// Names the task for `run_info()`, error reports and the gdb commands; returns
  /// `*this`, so `auto t = spawn(f).set_name("reader");` reads well.
  ///
  /// A task killed before it started has no greenlet left to name: nothing happens.
  /// Python: `g.name = name`.
  const task& set_name(std::string_view name) const {
    greenlet g = state("task::set_name").ctx.self;
    if (!g.empty()) g.set_name(name);
    return *this;
  }

  /// True for an empty handle.
  bool empty() const noexcept { return st_ == nullptr; }

  /// Same task.
  friend bool operator==(const task& a, const task& b) noexcept { return a.st_ == b.st_; }
  /// Not the same task.
  friend bool operator!=(const task& a, const task& b) noexcept { return a.st_ != b.st_; }

 private:
  template <class F, class... A>
  friend task<detail::task_result_t<F, A...>> spawn(F&& f, A&&... args);
  template <class Rep, class Per, class F, class... A>
  friend task<detail::task_result_t<F, A...>> spawn_later(std::chrono::duration<Rep, Per> d, F&& f,
                                                          A&&... args);
  friend class pool;

  explicit task(std::shared_ptr<detail::task_state<R>> st) noexcept : st_(std::move(st)) {}

  detail::task_state<R>& state(const char* op) const {
    if (st_ == nullptr) throw error(std::string("greenlets: ") + op + ": empty task handle");
    detail::check_thread(op, st_->owner);
    return *st_;
  }

  static void wait_done(detail::task_base& t, const time_point* until) {
    detail::loop& l = detail::loop::local();
    detail::wait_ctx& me = l.current_ctx("task::join");
    if (&me == &t.ctx) throw error("greenlets: task::join: a task cannot join itself");
    detail::waiter w(me, "task::join", &t);
    t.joiners.push_back(w);
    try {
      l.block_for(w, until);
    } catch (...) {
      if (static_cast<detail::wait_hook&>(w).linked()) t.joiners.erase(w);
      throw;
    }
    if (static_cast<detail::wait_hook&>(w).linked()) t.joiners.erase(w);
  }

  std::shared_ptr<detail::task_state<R>> st_;
};

/// Creates a task running `f(args...)` (copies of the arguments); it starts, in spawn
/// order, when the caller next blocks or sleeps.
///
/// Python: `gevent.spawn(f, *args)`.
template <class F, class... A>
task<detail::task_result_t<F, A...>> spawn(F&& f, A&&... args) {
  auto st = detail::make_task(std::forward<F>(f), std::forward<A>(args)...);
  detail::loop::local().schedule(*st);
  return task<detail::task_result_t<F, A...>>(std::move(st));
}

/// `spawn(f, args...)` with a name for the task (see `task::set_name`).
///
/// Python: `gevent.spawn(f, *args)` then `g.name = name`.
template <class F, class... A>
task<detail::task_result_t<F, A...>> spawn_named(std::string_view name, F&& f, A&&... args) {
  task<detail::task_result_t<F, A...>> t = spawn(std::forward<F>(f), std::forward<A>(args)...);
  t.set_name(name);
  return t;
}

/// Creates a task that starts after `d`.
///
/// Python: `gevent.spawn_later(seconds, f, *args)`.
template <class Rep, class Per, class F, class... A>
task<detail::task_result_t<F, A...>> spawn_later(std::chrono::duration<Rep, Per> d, F&& f,
                                                 A&&... args) {
  auto st = detail::make_task(std::forward<F>(f), std::forward<A>(args)...);
  st->timer.task = st.get();
  st->timer.when = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  st->timer.fire = [](detail::timer_node& n) {
    auto& t = *static_cast<detail::task_base::start_timer&>(n).task;
    detail::loop::local().schedule(t);
  };
  detail::loop::local().arm(st->timer);
  return task<detail::task_result_t<F, A...>>(std::move(st));
}

/// Waits until every task of `tasks` has finished; duplicates are fine.
///
/// Python: `gevent.joinall(tasks)`.
template <class Range>
void joinall(Range&& tasks) {
  for (auto& t : tasks) t.join();
}

/// Waits at most `d` for every task of `tasks`; true if all have finished.
///
/// Python: `gevent.joinall(tasks, timeout)`.
template <class Range>
bool joinall_for(Range&& tasks, duration d) {
  const time_point until = std::chrono::steady_clock::now() + d;
  for (auto& t : tasks) {
    if (!t.join_until(until)) return false;
  }
  return true;
}

}  // namespace greenlets

#endif  // GREENLETS_HUB_TASK_HPP
