// The hub's synchronisation primitives: `event`, `async_result<T>`, `semaphore` and
// `mutex`. Waiters are served first come, first served, and each waits in a node on
// its own stack: waiting allocates nothing.
//
//   greenlets::event ready;
//   greenlets::spawn([&] { ready.wait(); std::cout << "go\n"; });
//   greenlets::sleep(10ms);
//   ready.set();                            // wakes every waiter
#ifndef GREENLETS_HUB_SYNC_HPP
#define GREENLETS_HUB_SYNC_HPP

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "greenlets/hub/hub.hpp"

namespace greenlets {

namespace detail {

// Wakes every waiter still in `list` with an error: the object they wait on is gone.
inline void abandon(hook_list<wait_hook>& list, const char* what) noexcept {
  if (list.empty()) return;
  loop& l = loop::local();
  std::exception_ptr e;
  try {
    e = std::make_exception_ptr(
        error(std::string("greenlets: ") + what + " was destroyed while tasks waited on it"));
  } catch (...) {
    e = std::current_exception();
  }
  while (wait_hook* h = list.pop_front()) l.fail(static_cast<waiter&>(*h), e);
}

}  // namespace detail

/// A flag that tasks can wait for: `set()` wakes every waiter.
///
/// Waiters wake in arrival order; each that was waiting when `set()` ran wakes even if
/// `clear()` follows at once. Belongs to the thread that made it.
/// Python: `gevent.event.Event`.
class event {
 public:
  /// An event that is not set.
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  /// Wakes the tasks still waiting with an `error`.
  ~event() { detail::abandon(waiters_, "event"); }

  /// Sets the flag and wakes every waiter.
  ///
  /// Python: `e.set()`.
  void set() {
    detail::check_thread("event::set", owner_);
    flag_ = true;
    detail::loop& l = detail::loop::local();
    while (detail::wait_hook* h = waiters_.pop_front()) l.wake(static_cast<detail::waiter&>(*h));
  }

  /// Clears the flag; later `wait()`s block until the next `set()`.
  ///
  /// Python: `e.clear()`.
  void clear() {
    detail::check_thread("event::clear", owner_);
    flag_ = false;
  }

  /// True while the flag is set.
  ///
  /// Python: `e.is_set()`.
  bool is_set() const noexcept { return flag_; }

  /// Waits until the flag is set (returns at once if it is).
  ///
  /// Python: `e.wait()`.
  void wait() { (void)wait_impl("event::wait", nullptr); }

  /// Waits at most `d`; true if the flag was set meanwhile.
  ///
  /// Python: `e.wait(timeout)`.
  bool wait_for(duration d) { return wait_until(std::chrono::steady_clock::now() + d); }

  /// Waits until `tp` at the latest; true if the flag was set meanwhile.
  bool wait_until(time_point tp) { return wait_impl("event::wait_until", &tp); }

 private:
  bool wait_impl(const char* op, const time_point* until) {
    detail::check_thread(op, owner_);
    if (flag_) return true;
    detail::loop& l = detail::loop::local();
    detail::waiter w(l.current_ctx(op), op, this);
    return detail::wait_in(l, waiters_, w, until);
  }

  detail::hook_list<detail::wait_hook> waiters_;
  std::thread::id owner_ = std::this_thread::get_id();
  bool flag_ = false;
};

/// A value (or exception) delivered once, possibly from another thread, that tasks
/// wait for.
///
/// `set` and `set_exception` may be called from any thread; the rest belongs to the
/// thread that made it. While a task waits for it, the hub counts it as pending work
/// (another thread may set it), so waiting does not end in `loop_exit`. Copies share
/// the same result.
/// `async_result<void>` carries no value: `set()` takes none and `get()` returns nothing.
/// Python: `gevent.event.AsyncResult`.
template <class T>
class async_result {
  // What `set` stores: the value, or nothing at all for `async_result<void>`.
  using stored_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

 public:
  /// An empty result, belonging to the calling thread (and its hub).
  async_result() : st_(std::make_shared<state>()) {}

  /// Stores `v` and wakes the waiters. Any thread may call it.
  ///
  /// Python: `r.set(v)`.
  /// Throws: `error` if a value or exception was already set.
  template <class U = T, std::enable_if_t<!std::is_void_v<U>, int> = 0>
  void set(stored_type v) {
    store(std::move(v));
  }

  /// Marks an `async_result<void>` done and wakes the waiters. Any thread may call it.
  ///
  /// Python: `r.set()`.
  /// Throws: `error` if it was already set.
  template <class U = T, std::enable_if_t<std::is_void_v<U>, int> = 0>
  void set() {
    store(std::monostate{});
  }

  /// Stores `e`, which `get()` rethrows, and wakes the waiters. Any thread may call it.
  ///
  /// Python: `r.set_exception(e)`.
  /// Throws: `error` if a value or exception was already set, or `e` is null.
  void set_exception(std::exception_ptr e) {
    if (!e) throw error("greenlets: async_result::set_exception: the exception_ptr is null");
    std::lock_guard<std::mutex> lock(st_->mutex);
    check_unset("async_result::set_exception");
    st_->failure = std::move(e);
    publish();
  }

  /// Waits for the result; returns a copy of the value or rethrows the exception.
  ///
  /// Python: `r.get()`.
  T get() {
    wait_impl("async_result::get", nullptr);
    std::lock_guard<std::mutex> lock(st_->mutex);
    if (st_->failure) std::rethrow_exception(st_->failure);
    if constexpr (!std::is_void_v<T>) return *st_->value;
  }

  /// True once a value or exception was set.
  ///
  /// Python: `r.ready()`.
  bool ready() const {
    std::lock_guard<std::mutex> lock(st_->mutex);
    return st_->ready;
  }

  /// Waits until a value or exception was set.
  ///
  /// Python: `r.wait()`.
  void wait() { wait_impl("async_result::wait", nullptr); }

  /// Waits at most `d`; true if the result is ready.
  ///
  /// Python: `r.wait(timeout)` then `r.ready()`.
  bool wait_for(duration d) {
    const time_point tp = std::chrono::steady_clock::now() + d;
    return wait_impl("async_result::wait_for", &tp);
  }

 private:
  struct state {
    std::mutex mutex;
    std::optional<stored_type> value;
    std::exception_ptr failure;
    bool ready = false;
    detail::hook_list<detail::wait_hook> waiters;  // hub thread only, under `mutex`
    detail::loop* loop = &detail::loop::local();
    std::thread::id owner = std::this_thread::get_id();
  };

  void store(stored_type v) {
    std::lock_guard<std::mutex> lock(st_->mutex);
    check_unset("async_result::set");
    st_->value.emplace(std::move(v));
    publish();
  }

  void check_unset(const char* op) const {
    if (st_->ready) throw error(std::string("greenlets: ") + op + ": the result was already set");
  }

  // Under the lock: marks ready and has the owner's hub wake the waiters.
  void publish() {
    st_->ready = true;
    if (st_->waiters.empty()) return;
    if (std::this_thread::get_id() == st_->owner) {
      wake_all(*st_);
    } else {
      // Posting under the lock: a waiter (whose hub is thus alive) cannot leave first.
      std::shared_ptr<state> st = st_;
      st_->loop->post([st] {
        std::lock_guard<std::mutex> lock(st->mutex);
        wake_all(*st);
      });
    }
  }

  static void wake_all(state& st) noexcept {
    while (detail::wait_hook* h = st.waiters.pop_front()) {
      st.loop->wake(static_cast<detail::waiter&>(*h));
    }
  }

  bool wait_impl(const char* op, const time_point* until) {
    detail::check_thread(op, st_->owner);
    detail::loop& l = *st_->loop;
    detail::waiter w(l.current_ctx(op), op, st_.get());
    {
      std::lock_guard<std::mutex> lock(st_->mutex);
      if (st_->ready) return true;
      st_->waiters.push_back(w);
    }
    l.add_foreign();
    struct leave {
      state& st;
      detail::loop& l;
      detail::waiter& w;
      ~leave() {
        l.remove_foreign();
        std::lock_guard<std::mutex> lock(st.mutex);
        if (static_cast<detail::wait_hook&>(w).linked()) st.waiters.erase(w);
      }
    } guard{*st_, l, w};
    l.block_for(w, until);
    std::lock_guard<std::mutex> lock(st_->mutex);
    return st_->ready;
  }

  std::shared_ptr<state> st_;
};

/// A counter of permits: `acquire` takes one, waiting while there is none.
///
/// Waiters are served in arrival order: a released permit goes straight to the first
/// waiter, so no later caller can take it first.
/// Python: `gevent.lock.Semaphore`.
class semaphore {
 public:
  /// A semaphore holding `n` permits.
  explicit semaphore(std::size_t n) : count_(n) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  /// Wakes the tasks still waiting with an `error`.
  ~semaphore() { detail::abandon(waiters_, "semaphore"); }

  /// Takes a permit, waiting for one if none is free.
  ///
  /// Python: `s.acquire()`.
  void acquire() { (void)acquire_impl("semaphore::acquire", nullptr); }

  /// Takes a permit if one is free now.
  ///
  /// Python: `s.acquire(blocking=False)`.
  bool try_acquire() {
    detail::check_thread("semaphore::try_acquire", owner_);
    if (count_ == 0 || !waiters_.empty()) return false;
    --count_;
    return true;
  }

  /// Waits at most `d` for a permit; true if it took one.
  ///
  /// Python: `s.acquire(timeout=d)`.
  bool try_acquire_for(duration d) {
    const time_point tp = std::chrono::steady_clock::now() + d;
    return acquire_impl("semaphore::try_acquire_for", &tp);
  }

  /// Returns a permit: to the first waiter if any.
  ///
  /// Python: `s.release()`.
  void release() {
    detail::check_thread("semaphore::release", owner_);
    release_one();
  }

  /// Free permits now.
  std::size_t count() const noexcept { return count_; }

 protected:
  void release_one() noexcept {
    if (detail::waiter* w = detail::first_waiting(waiters_)) {
      detail::hook_list<detail::wait_hook>::erase(*w);
      w->granted = true;
      detail::loop::local().wake(*w);
    } else {
      ++count_;
    }
  }

  bool acquire_impl(const char* op, const time_point* until) {
    detail::check_thread(op, owner_);
    if (count_ > 0 && waiters_.empty()) {
      --count_;
      return true;
    }
    detail::loop& l = detail::loop::local();
    detail::waiter w(l.current_ctx(op), op, this);
    try {
      detail::wait_in(l, waiters_, w, until);
    } catch (...) {
      if (w.granted) release_one();  // handed over, then unwound: pass it on
      throw;
    }
    return w.granted;
  }

  detail::hook_list<detail::wait_hook> waiters_;
  std::size_t count_;
  std::thread::id owner_ = std::this_thread::get_id();
};

/// A lock for tasks of one thread; `std::unique_lock` and `std::lock_guard` work on it.
///
/// Not reentrant; waiters are served in arrival order.
/// Python: `gevent.lock.Semaphore(1)` (what gevent gives for `threading.Lock`).
class mutex : private semaphore {
 public:
  /// An unlocked mutex.
  mutex() : semaphore(1) {}

  /// Locks, waiting while another task holds it.
  ///
  /// Python: `lock.acquire()`.
  void lock() { (void)acquire_impl("mutex::lock", nullptr); }

  /// Locks if it is free now.
  bool try_lock() {
    detail::check_thread("mutex::try_lock", owner_);
    return semaphore::try_acquire();
  }

  /// Waits at most `d` for the lock; true if it was taken.
  bool try_lock_for(duration d) {
    const time_point tp = std::chrono::steady_clock::now() + d;
    return acquire_impl("mutex::try_lock_for", &tp);
  }

  /// Unlocks; the first waiter, if any, gets the lock.
  ///
  /// Throws: `error` if it is not locked.
  void unlock() {
    detail::check_thread("mutex::unlock", owner_);
    if (count_ != 0) throw error("greenlets: mutex::unlock: the mutex is not locked");
    release_one();
  }
};

}  // namespace greenlets

#endif  // GREENLETS_HUB_SYNC_HPP
