// `queue<T>`: a FIFO for tasks of one thread, bounded or not; `queue<T>(0)` is a
// rendezvous where `put` waits for a `get`.
//
//   greenlets::queue<int> q(2);
//   greenlets::spawn([&] { for (int i = 0; i < 5; ++i) q.put(i); });  // waits when full
//   for (int i = 0; i < 5; ++i) std::cout << q.get() << '\n';
#ifndef GREENLETS_HUB_QUEUE_HPP
#define GREENLETS_HUB_QUEUE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <thread>
#include <utility>

#include "greenlets/hub/hub.hpp"
#include "greenlets/hub/sync.hpp"

namespace greenlets {

/// A FIFO queue of `T` for the tasks of one thread.
///
/// `put` waits while the queue is full, `get` while it is empty. Blocked getters and
/// putters are served in arrival order, and an item goes straight from a putter to a
/// waiting getter. The storage is a ring that only grows, so a steady stream of
/// put/get allocates nothing.
/// Python: `gevent.queue.Queue(maxsize)`; `queue(0)` is `gevent.queue.Channel`.
template <class T>
class queue {
 public:
  /// No limit on the size.
  static constexpr std::size_t unbounded = SIZE_MAX;

  /// A queue holding at most `maxsize` items (0: a rendezvous).
  explicit queue(std::size_t maxsize = unbounded) : maxsize_(maxsize) {}
  queue(const queue&) = delete;
  queue& operator=(const queue&) = delete;
  /// Wakes the tasks still waiting with an `error`.
  ~queue() {
    detail::abandon(getters_, "queue");
    detail::abandon(putters_, "queue");
    while (count_ > 0) (void)pop();
  }

  /// Appends `v`, waiting while the queue is full.
  ///
  /// Python: `q.put(v)`.
  void put(T v) { (void)put_impl("queue::put", v, nullptr); }

  /// Appends `v` if there is room now (for `queue(0)`: if a getter waits).
  ///
  /// Python: `q.put_nowait(v)` (raising `Full` there).
  bool try_put(T v) {
    detail::check_thread("queue::try_put", owner_);
    return offer(v);
  }

  /// Waits at most `d` for room; true if `v` went in.
  ///
  /// Python: `q.put(v, timeout=d)`.
  bool put_for(T v, duration d) {
    const time_point tp = std::chrono::steady_clock::now() + d;
    return put_impl("queue::put_for", v, &tp);
  }

  /// Removes and returns the first item, waiting while the queue is empty.
  ///
  /// Python: `q.get()`.
  T get() { return *get_impl("queue::get", nullptr); }

  /// The first item if there is one now.
  ///
  /// Python: `q.get_nowait()` (raising `Empty` there).
  std::optional<T> try_get() {
    detail::check_thread("queue::try_get", owner_);
    return take();
  }

  /// Waits at most `d` for an item.
  ///
  /// Python: `q.get(timeout=d)`.
  std::optional<T> get_for(duration d) {
    const time_point tp = std::chrono::steady_clock::now() + d;
    return get_impl("queue::get_for", &tp);
  }

  /// Items in the queue (not counting those blocked putters hold).
  ///
  /// Python: `q.qsize()`.
  std::size_t size() const noexcept { return count_; }
  /// True if no item is in the queue.
  bool empty() const noexcept { return count_ == 0; }
  /// True if a `put` would wait now.
  bool full() const noexcept { return count_ >= maxsize_; }

 private:
  // Puts `v` somewhere without waiting, or returns false.
  bool offer(T& v) {
    if (detail::waiter* g = detail::first_waiting(getters_)) {
      detail::hook_list<detail::wait_hook>::erase(*g);
      static_cast<std::optional<T>*>(g->slot)->emplace(std::move(v));
      detail::loop::local().wake(*g);
      return true;
    }
    if (count_ < maxsize_) {
      push(std::move(v));
      return true;
    }
    return false;
  }

  // Takes an item without waiting.
  std::optional<T> take() {
    std::optional<T> out;
    if (count_ > 0) {
      out.emplace(pop());
      // Room now: the first blocked putter's item goes in.
      if (detail::waiter* p = detail::first_waiting(putters_)) {
        detail::hook_list<detail::wait_hook>::erase(*p);
        push(std::move(*static_cast<T*>(p->slot)));
        p->granted = true;
        detail::loop::local().wake(*p);
      }
    } else if (detail::waiter* p = detail::first_waiting(putters_)) {
      // A rendezvous: straight from the putter.
      detail::hook_list<detail::wait_hook>::erase(*p);
      out.emplace(std::move(*static_cast<T*>(p->slot)));
      p->granted = true;
      detail::loop::local().wake(*p);
    }
    return out;
  }

  bool put_impl(const char* op, T& v, const time_point* until) {
    detail::check_thread(op, owner_);
    if (detail::first_waiting(putters_) == nullptr && offer(v)) return true;
    detail::loop& l = detail::loop::local();
    detail::waiter w(l.current_ctx(op), op, this);
    w.slot = &v;
    detail::wait_in(l, putters_, w, until);
    return w.granted;
  }

  std::optional<T> get_impl(const char* op, const time_point* until) {
    detail::check_thread(op, owner_);
    if (detail::first_waiting(getters_) == nullptr) {
      if (std::optional<T> v = take()) return v;
    }
    detail::loop& l = detail::loop::local();
    detail::waiter w(l.current_ctx(op), op, this);
    std::optional<T> slot;
    w.slot = &slot;
    try {
      detail::wait_in(l, getters_, w, until);
    } catch (...) {
      if (slot) offer(*slot);  // handed over, then unwound: pass it on
      throw;
    }
    return slot;
  }

  void push(T&& v) {
    if (count_ == capacity_) grow();
    std::size_t i = head_ + count_;
    if (i >= capacity_) i -= capacity_;
    ::new (static_cast<void*>(&ring_[i])) T(std::move(v));
    ++count_;
  }

  T pop() {
    T* p = std::launder(reinterpret_cast<T*>(&ring_[head_]));
    T v = std::move(*p);
    p->~T();
    head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
    --count_;
    return v;
  }

  void grow() {
    const std::size_t cap = capacity_ == 0 ? 8 : capacity_ * 2;
    auto next = std::make_unique<slot_t[]>(cap);
    for (std::size_t k = 0; k < count_; ++k) {
      std::size_t i = head_ + k;
      if (i >= capacity_) i -= capacity_;
      T* p = std::launder(reinterpret_cast<T*>(&ring_[i]));
      ::new (static_cast<void*>(&next[k])) T(std::move(*p));
      p->~T();
    }
    ring_ = std::move(next);
    capacity_ = cap;
    head_ = 0;
  }

  struct alignas(T) slot_t {
    unsigned char bytes[sizeof(T)];
  };

  std::unique_ptr<slot_t[]> ring_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t maxsize_;
  detail::hook_list<detail::wait_hook> getters_;
  detail::hook_list<detail::wait_hook> putters_;
  std::thread::id owner_ = std::this_thread::get_id();
};

}  // namespace greenlets

#endif  // GREENLETS_HUB_QUEUE_HPP
