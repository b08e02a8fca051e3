// `pool`: at most n tasks at a time; `spawn` waits while the pool is full.
//
//   greenlets::pool p(5);
//   std::vector<int> squares = p.map([](int x) { greenlets::sleep(1ms); return x * x; },
//                                    std::vector<int>{1, 2, 3});      // input order
//   for (int v : p.imap_unordered(f, inputs)) use(v);                 // completion order
#ifndef GREENLETS_HUB_POOL_HPP
#define GREENLETS_HUB_POOL_HPP

#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlets/generator.hpp"
#include "greenlets/hub/hub.hpp"
#include "greenlets/hub/queue.hpp"
#include "greenlets/hub/sync.hpp"
#include "greenlets/hub/task.hpp"

namespace greenlets {

/// A group of at most `size` running tasks.
///
/// Belongs to the thread that made it. Destroying it leaves its tasks running.
/// Python: `gevent.pool.Pool(size)`.
class pool {
 public:
  /// A pool admitting `size` tasks at a time.
  explicit pool(std::size_t size) : size_(size), slots_(size) {}
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;
  /// Lets the running tasks go on without the pool.
  ~pool() {
    while (detail::pool_hook* h = members_.pop_front()) {
      auto& t = static_cast<detail::task_base&>(*h);
      t.on_done = nullptr;
      t.pool = nullptr;
    }
    detail::abandon(idle_, "pool");
  }

  /// Spawns `f(args...)` in the pool, first waiting while it is full.
  ///
  /// Python: `p.spawn(f, *args)`.
  template <class F, class... A>
  task<detail::task_result_t<F, A...>> spawn(F&& f, A&&... args) {
    detail::check_thread("pool::spawn", owner_);
    slots_.acquire();
    std::shared_ptr<detail::task_state<detail::task_result_t<F, A...>>> st;
    try {
      st = detail::make_task(std::forward<F>(f), std::forward<A>(args)...);
    } catch (...) {
      slots_.release();
      throw;
    }
    st->pool = this;
    st->on_done = &task_done;
    members_.push_back(*st);
    ++count_;
    detail::loop::local().schedule(*st);
    return task<detail::task_result_t<F, A...>>(std::move(st));
  }

  /// Calls `f(x)` for each `x` of `items` in the pool; the results in input order.
  ///
  /// Python: `p.map(f, items)`.
  /// Throws: the first exception in input order, once every call has finished.
  template <class F, class Range>
  auto map(F&& f, Range&& items) {
    using X = typename std::decay_t<decltype(*std::begin(items))>;
    using R = std::invoke_result_t<std::decay_t<F>&, X>;
    std::vector<task<R>> tasks;
    for (auto&& x : items) tasks.push_back(spawn(f, x));
    joinall(tasks);
    std::vector<R> out;
    out.reserve(tasks.size());
    for (auto& t : tasks) out.push_back(t.get());
    return out;
  }

  /// Calls `f(x)` for each `x` of `items` in the pool; a generator of the results in
  /// the order the calls finish.
  ///
  /// Nothing starts before the first `next()`; each `next()` starts as many calls as
  /// the pool admits. Dropping the generator kills the calls still running. The
  /// generator must not be used once the pool is destroyed.
  /// Python: `p.imap_unordered(f, items)`.
  /// Throws (from `next()`): what a call threw.
  template <class F, class Range>
  auto imap_unordered(F&& f, Range&& items) {
    using X = typename std::decay_t<decltype(*std::begin(items))>;
    using R = std::invoke_result_t<std::decay_t<F>&, X>;
    using Fn = std::decay_t<F>;
    struct shared {
      shared(Fn f, std::vector<X> in) : fn(std::move(f)), inputs(std::move(in)) {}
      Fn fn;
      std::vector<X> inputs;
      queue<std::pair<std::optional<R>, std::exception_ptr>> done;
      std::vector<task<void>> tasks;
    };
    // Shared with the tasks, which may outlive a generator dropped early.
    auto sh = std::make_shared<shared>(Fn(std::forward<F>(f)),
                                       std::vector<X>(std::begin(items), std::end(items)));
    return generator<R>([this, sh](yield<R>& yield_result) {
      struct stop {
        shared& s;
        ~stop() {
          // Without waiting: the body may be unwinding.
          auto kill = std::make_exception_ptr(greenlet_exit{});
          for (auto& t : s.tasks) t.kill(kill, false);
        }
      } guard{*sh};
      // The body starts the calls itself, as many as the pool admits whenever it runs
      // (so never once the generator is done or dropped: no greenlet of ours is left to
      // touch the pool), and waits for a free place only when none of its calls is in
      // flight. A call's place is free again before its result is taken: the call
      // finishes without blocking once it has put the result.
      const std::size_t n = sh->inputs.size();
      std::size_t started = 0;
      std::size_t in_flight = 0;
      while (started < n || in_flight > 0) {
        while (started < n && (free_count() > 0 || in_flight == 0)) {
          const std::size_t i = started++;
          sh->tasks.push_back(spawn([sh, i] {
            try {
              sh->done.put({std::optional<R>(sh->fn(sh->inputs[i])), nullptr});
            } catch (const greenlet_exit&) {
              throw;
            } catch (...) {
              sh->done.put({std::nullopt, std::current_exception()});
            }
          }));
          ++in_flight;
        }
        auto item = sh->done.get();
        --in_flight;
        if (item.second) std::rethrow_exception(item.second);
        yield_result(std::move(*item.first));
      }
    });
  }

  /// Waits until every task of the pool has finished.
  ///
  /// Python: `p.join()`.
  void join() {
    detail::check_thread("pool::join", owner_);
    while (!members_.empty()) {
      detail::loop& l = detail::loop::local();
      detail::waiter w(l.current_ctx("pool::join"), "pool::join", this);
      detail::wait_in(l, idle_, w, nullptr);
    }
  }

  /// Kills every task of the pool and waits until they are dead.
  ///
  /// Python: `p.kill()`.
  void kill() {
    detail::check_thread("pool::kill", owner_);
    auto e = std::make_exception_ptr(greenlet_exit{});
    std::vector<std::shared_ptr<detail::task_base>> running;
    for (detail::list_hook* h = members_.back_hook(); h != nullptr; h = members_.prev_hook(h)) {
      running.push_back(
          static_cast<detail::task_base&>(*static_cast<detail::pool_hook*>(h)).shared_from_this());
    }
    for (auto it = running.rbegin(); it != running.rend(); ++it) {
      detail::task_base& t = **it;
      if (t.phase == detail::task_phase::pending) {
        t.cancel_start(e);
      } else if (t.phase == detail::task_phase::running) {
        detail::loop::local().interrupt(t.ctx, e);
      }
    }
    join();
  }

  /// How many more tasks the pool admits now.
  ///
  /// Python: `p.free_count()`.
  std::size_t free_count() const noexcept { return size_ - count_; }

  /// How many tasks run in the pool.
  std::size_t size() const noexcept { return count_; }

 private:
  static void task_done(detail::task_base& t) noexcept {
    auto& p = *static_cast<pool*>(t.pool);
    detail::hook_list<detail::pool_hook>::erase(t);
    t.on_done = nullptr;
    t.pool = nullptr;
    --p.count_;
    p.slots_.release();
    if (p.members_.empty()) {
      detail::loop& l = detail::loop::local();
      while (detail::wait_hook* h = p.idle_.pop_front()) l.wake(static_cast<detail::waiter&>(*h));
    }
  }

  std::size_t size_;
  std::size_t count_ = 0;
  semaphore slots_;
  detail::hook_list<detail::pool_hook> members_;
  detail::hook_list<detail::wait_hook> idle_;
  std::thread::id owner_ = std::this_thread::get_id();
};

}  // namespace greenlets

#endif  // GREENLETS_HUB_POOL_HPP
