// `generator<T, S>`: Python's generators (`yield`, `next`, `send`) on a greenlet.
//
//   greenlets::generator<int> g([](greenlets::yield<int>& yield) {
//     for (int i = 0; i < 3; ++i) yield(i);           // Python: yield i
//   });
//   for (int x : g) std::cout << x << '\n';            // 0 1 2
//
// The body runs on its own stack (a greenlet), so `yield` may be called from any
// depth of nested calls, and a generator may consume other generators.
#ifndef GREENLETS_GENERATOR_HPP
#define GREENLETS_GENERATOR_HPP

#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "greenlets/detail/config.hpp"
#include "greenlets/error.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/value.hpp"

namespace greenlets {

template <class T, class S = void>
class generator;

template <class T, class S = void>
class yield;

namespace detail {

enum class generator_phase : unsigned char { fresh, suspended, running, finished };

// The parameter of send() for a generator that accepts nothing: no one can make one.
class no_send {
  no_send() {}
};

// Everything a generator shares with its body. Heap-allocated once per generator, so
// the generator itself can move while the body keeps a stable pointer to this.
template <class T, class S>
struct generator_state {
  using sent_type = std::conditional_t<std::is_void_v<S>, no_send, S>;

  explicit generator_state() : yielder(this) {}

  std::optional<T> item;               // the last yielded item, until taken
  sent_type* sent = nullptr;           // what send() passes, for the body's yield
  greenlet_impl* consumer = nullptr;   // who resumed the body; set only during a resume
  greenlet_impl* body_impl = nullptr;  // the body's record, kept alive by `body`
  std::exception_ptr failure;          // what the body threw
  generator_phase phase = generator_phase::fresh;
  yield<T, S> yielder;
  greenlet body;  // last, so it is destroyed (and the body unwound) first
};

// The per-item path touches no reference count (each is a locked instruction): the
// two helpers below read the core's per-thread state directly.

// The running greenlet of this thread, without taking a reference as current() does.
GREENLETS_ALWAYS_INLINE greenlet_impl* running_greenlet() { return this_thread().current; }

// True if `g` is the greenlet running on this thread (false if none ever ran here).
GREENLETS_ALWAYS_INLINE bool is_running(const greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  return ts != nullptr && ts->current == g;
}

// This thread's state if `g` may be jumped to directly from here: same thread, no
// kill queued by another thread (those run at a full switch). Null otherwise.
GREENLETS_ALWAYS_INLINE thread_state* direct_jump_state(const greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  if (GREENLETS_UNLIKELY(ts == nullptr || g->record != ts->record ||
                         ts->record->kills_pending.load(std::memory_order_relaxed))) {
    return nullptr;
  }
  return ts;
}

// Jumps from the running greenlet to `to`, which is suspended on this thread. The
// per-item path of a generator: it already knows what switch_to would check.
GREENLETS_ALWAYS_INLINE void direct_jump(thread_state& ts, greenlet_impl* to) {
  value nothing;
  jump(ts, to, trace_event::switch_to, nothing);
}

// The first greenlet of the calling thread's parent chain: a parent that keeps no
// consumer alive between resumes (a suspended consumer must stay killable by dropping).
inline greenlet root_greenlet() {
  greenlet g = current();
  while (!g.is_main()) g = std::move(g).parent();
  return g;
}

}  // namespace detail

/// What a generator's body calls to hand out an item and wait for the next request.
///
/// The body receives it as `yield<T, S>&`. With `S = void`, `yield(x)` returns nothing;
/// otherwise it returns the value passed to `send()`, or `std::nullopt` when the
/// generator was resumed by `next()`.
/// Python: the `yield x` expression (`x = yield 1`).
template <class T, class S>
class yield {
 public:
  /// The type returned by `yield(x)`: `void`, or `std::optional<S>`.
  using result_type = std::conditional_t<std::is_void_v<S>, void, std::optional<S>>;

  yield(const yield&) = delete;
  yield& operator=(const yield&) = delete;

  /// Hands a copy of `item` to the consumer and suspends until the next `next()`/`send()`.
  ///
  /// Python: `yield item` (or `x = yield item`).
  /// Throws: `error` if called from outside this generator's body; `greenlet_exit` when
  /// the generator is destroyed while suspended here (let it propagate).
  template <class U = T, class = std::enable_if_t<std::is_copy_constructible_v<U>>>
  GREENLETS_ALWAYS_INLINE result_type operator()(const T& item) {
    check("yield");
    st_->item.emplace(item);
    return suspend();
  }

  /// Moves `item` to the consumer and suspends until the next `next()`/`send()`.
  ///
  /// Python: `yield item`.
  /// Throws: as the copying overload.
  GREENLETS_ALWAYS_INLINE result_type operator()(T&& item) {
    check("yield");
    st_->item.emplace(std::move(item));
    return suspend();
  }

 private:
  template <class, class>
  friend struct detail::generator_state;

  explicit yield(detail::generator_state<T, S>* st) noexcept : st_(st) {}

  GREENLETS_ALWAYS_INLINE void check(const char* op) const {
    if (st_->consumer == nullptr || !detail::is_running(st_->body_impl)) {
      throw error(std::string("greenlets: ") + op +
                  ": called outside the body of its generator (a yield belongs to the one "
                  "generator body it was given to)");
    }
  }

  GREENLETS_ALWAYS_INLINE result_type suspend() {
    st_->phase = detail::generator_phase::suspended;
    // The consumer waits inside next()/send() on this thread, so it can be jumped to
    // directly (once kills queued by other threads have run: one may have been it).
    detail::thread_state& ts = detail::this_thread();
    if (GREENLETS_LIKELY(st_->consumer != nullptr)) detail::direct_jump(ts, st_->consumer);
    if (GREENLETS_UNLIKELY(st_->consumer == nullptr)) {
      throw error(
          "greenlets: yield: the body was resumed by a switch from outside its "
          "generator");
    }
    if constexpr (!std::is_void_v<S>) {
      // One return object built in place on both paths: g++ 12 at -O3 warns that a
      // separately returned std::nullopt "may be used uninitialized".
      std::optional<S> out;
      if (S* sent = std::exchange(st_->sent, nullptr)) out.emplace(std::move(*sent));
      return out;
    }
  }

  detail::generator_state<T, S>* st_;
};

/// A lazy sequence of `T` computed by a body that calls `yield(x)`; accepts `S` by `send`.
///
/// The body runs in its own greenlet and starts at the first `next()` (or `begin()`).
/// Each `next()`/`send()` resumes it until its next `yield` (the item is returned) or
/// its end (`std::nullopt`). The consumer at each resume becomes the body's parent, so
/// a generator may be consumed from different greenlets and inside other generators.
/// An exception escaping the body reaches the consumer and finishes the generator.
/// Destroying an unfinished generator unwinds its body (its destructors run).
/// Movable, not copyable. An input range: `for (T& x : g)`.
/// Python: a generator object (`g = func()`).
template <class T, class S>
class generator {
  static_assert(!std::is_reference_v<T> && !std::is_void_v<T>,
                "generator<T>: T must be an object type");

  using state = detail::generator_state<T, S>;

 public:
  /// The type of the items.
  using value_type = T;
  /// The type accepted by `send()` (`void`: none).
  using send_type = S;

  /// A generator whose body is `body(yield<T, S>&)`; nothing runs until the first `next()`.
  ///
  /// Python: calling a generator function, `g = func()`.
  template <class F, class = std::enable_if_t<std::is_invocable_v<F&, yield<T, S>&>>>
  explicit generator(F body) : generator(std::move(body), options{}) {}

  /// As `generator(body)`, with the body's stack size and allocator from `opts`.
  ///
  /// `opts.parent` is ignored: the consumer is the parent at each resume.
  /// Python: calling a generator function, `g = func()`.
  template <class F, class = std::enable_if_t<std::is_invocable_v<F&, yield<T, S>&>>>
  generator(F body, options opts) : st_(std::make_unique<state>()) {
    opts.parent = detail::root_greenlet();
    state* st = st_.get();
    st->body = greenlet(
        [st, f = std::move(body)]() mutable {
          try {
            f(st->yielder);
          } catch (...) {
            // No resume in progress: the generator is being dropped and this is its kill.
            if (st->consumer == nullptr) throw;
            st->failure = std::current_exception();
          }
          st->phase = detail::generator_phase::finished;
          // Finishing returns to the parent: make it whoever resumed us this time.
          if (st->consumer != nullptr) {
            current().set_parent(detail::greenlet_access::share(st->consumer));
          }
        },
        std::move(opts));
    st->body_impl = detail::greenlet_access::get(st->body);
  }

  /// Takes `other`'s body; `other` becomes empty.
  generator(generator&& other) noexcept = default;
  /// Destroys this generator's body (unwinding it), then takes `other`'s.
  generator& operator=(generator&& other) noexcept {
    if (this != &other) {
      reset();
      st_ = std::move(other.st_);
    }
    return *this;
  }
  generator(const generator&) = delete;
  generator& operator=(const generator&) = delete;

  /// Unwinds an unfinished body: `greenlet_exit` is thrown at its pending `yield`.
  ///
  /// Do not destroy a generator while its body runs (from the body itself, or while it
  /// is switched away in the middle of a `next()`): that `next()` is still running on
  /// this object, as with any object destroyed during one of its member functions.
  /// Python: `g.close()` (run when a generator is collected).
  ~generator() { reset(); }

  /// Resumes the body until its next `yield`; returns that item, or `std::nullopt` once
  /// the body has finished.
  ///
  /// Python: `next(g)` (where `std::nullopt` is `StopIteration`).
  /// Throws: what the body throws (once; the generator is finished afterwards);
  /// `error` if the generator is empty (moved from) or already running.
  GREENLETS_ALWAYS_INLINE std::optional<T> next() {
    if (!resume("next", nullptr)) return std::nullopt;
    return take();
  }

  /// Resumes the body, making its pending `yield` return `x`; returns the next item,
  /// or `std::nullopt` once the body has finished.
  ///
  /// Only for a generator that accepts values (`S` is not `void`); sending a type that
  /// does not convert to `S` does not compile.
  /// Python: `g.send(x)`.
  /// Throws: `error` before the first `next()` (nothing waits for the value yet), on a
  /// finished generator, or if empty or already running; what the body throws.
  std::optional<T> send(typename state::sent_type x) {
    state& st = checked("send");
    if (st.phase == detail::generator_phase::fresh) {
      throw error(
          "greenlets: generator::send: the generator has not started, so no yield "
          "is waiting for the value; call next() first");
    }
    if (st.phase == detail::generator_phase::finished) {
      throw error("greenlets: generator::send: the generator has finished");
    }
    if (!resume("send", &x)) return std::nullopt;
    return take();
  }

  /// `send(value::of(args...))`, for a generator whose body accepts any `value`
  /// (`S = value`): the type is checked at run time, when the body reads it with
  /// `get<U>()`, which throws `bad_value_cast` naming both types.
  ///
  /// Python: `g.send(x)`.
  template <class... Args, class U = S,
            class = std::enable_if_t<std::is_same_v<U, value> &&
                                     !(sizeof...(Args) == 1 &&
                                       (std::is_same_v<std::decay_t<Args>, value> && ...))>>
  std::optional<T> send(Args&&... args) {
    return send(value::of(std::forward<Args>(args)...));
  }

  /// True once the body has finished (returned or thrown); `next()` then gives nullopt.
  ///
  /// Python: `inspect.getgeneratorstate(g) == GEN_CLOSED`.
  bool finished() const noexcept { return !st_ || st_->phase == detail::generator_phase::finished; }

  /// True once the body has started.
  ///
  /// Python: `inspect.getgeneratorstate(g) != GEN_CREATED`.
  bool started() const noexcept { return st_ && st_->phase != detail::generator_phase::fresh; }

  /// An input iterator over the items; `*it` is the current item, `++it` resumes the body.
  ///
  /// Python: the iterator a `for` loop gets from `iter(g)` (which is `g` itself).
  class iterator {
   public:
    /// Input iterator: each item is seen once.
    using iterator_category = std::input_iterator_tag;
    /// The type of the items.
    using value_type = T;
    /// Unused, as for any input iterator.
    using difference_type = std::ptrdiff_t;
    /// A pointer to the current item.
    using pointer = T*;
    /// The current item, owned by the generator until the next resume.
    using reference = T&;

    /// The end iterator.
    iterator() noexcept = default;

    /// The current item; valid until the iterator is incremented.
    T& operator*() const noexcept { return *gen_->st_->item; }
    /// The current item's address.
    T* operator->() const noexcept { return &*gen_->st_->item; }

    /// Resumes the body for the next item (becoming the end iterator when it finishes).
    ///
    /// Python: `next(g)` inside a `for` loop.
    /// Throws: what the body throws.
    GREENLETS_ALWAYS_INLINE iterator& operator++() {
      if (!gen_->resume("iterator::operator++", nullptr)) gen_ = nullptr;
      return *this;
    }

    /// The current item, taken out before resuming the body (for `*it++`).
    struct proxy {
      /// The item that was current.
      T item;
      /// The item that was current.
      T& operator*() noexcept { return item; }
    };

    /// Takes the current item, then resumes the body.
    proxy operator++(int) {
      proxy p{std::move(**this)};
      ++*this;
      return p;
    }

    /// Equal when both are the end, or both iterate the same unfinished generator.
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.gen_ == b.gen_;
    }
    /// Not equal.
    friend bool operator!=(const iterator& a, const iterator& b) noexcept {
      return a.gen_ != b.gen_;
    }

   private:
    friend class generator;
    explicit iterator(generator* g) noexcept : gen_(g) {}
    generator* gen_ = nullptr;
  };

  /// Resumes the body for its next item and returns an iterator to it (the end iterator
  /// if the body has finished). On a partly consumed generator it continues from where
  /// the body is.
  ///
  /// Python: `iter(g)` followed by the first `next(g)` of a `for` loop.
  /// Throws: what the body throws; `error` if empty or already running.
  iterator begin() {
    if (!resume("begin", nullptr)) return iterator();
    return iterator(this);
  }

  /// The end iterator, reached when the body has finished.
  ///
  /// Python: the `StopIteration` that ends a `for` loop.
  iterator end() noexcept { return iterator(); }

 private:
  state& checked(const char* op) const {
    if (GREENLETS_UNLIKELY(!st_ || st_->phase == detail::generator_phase::running)) {
      unusable(op);
    }
    return *st_;
  }

  [[noreturn]] GREENLETS_COLD GREENLETS_NOINLINE void unusable(const char* op) const {
    if (!st_) {
      throw error(std::string("greenlets: generator::") + op +
                  ": the generator is empty (moved from)");
    }
    throw error(std::string("greenlets: generator::") + op +
                ": the generator is already running (its body resumed itself, or is "
                "waiting in a switch elsewhere)");
  }

  // Runs the body until it yields (true: the item is in st.item) or ends (false).
  GREENLETS_ALWAYS_INLINE bool resume(const char* op, typename state::sent_type* sent) {
    state* st = st_.get();
    detail::thread_state* ts;
    if (GREENLETS_UNLIKELY(st == nullptr || st->phase != detail::generator_phase::suspended ||
                           (ts = detail::direct_jump_state(st->body_impl)) == nullptr)) {
      return resume_slow(op, sent);
    }
    st->item.reset();
    st->consumer = ts->current;
    st->sent = sent;
    st->phase = detail::generator_phase::running;
    try {
      detail::direct_jump(*ts, st->body_impl);
    } catch (...) {
      // Not from the body (it catches everything): something threw into the consumer.
      st->consumer = nullptr;
      st->sent = nullptr;
      if (st->phase == detail::generator_phase::running)
        st->phase = detail::generator_phase::suspended;
      throw;
    }
    st->consumer = nullptr;
    st->sent = nullptr;
    if (GREENLETS_UNLIKELY(st->phase != detail::generator_phase::suspended)) return finish(op);
    return true;
  }

  // The first resume, errors, and resumes that must go through a full switch.
  GREENLETS_NOINLINE bool resume_slow(const char* op, typename state::sent_type* sent) {
    state& st = checked(op);
    if (st.phase == detail::generator_phase::finished) return false;
    st.item.reset();
    st.consumer = detail::running_greenlet();
    st.sent = sent;
    const detail::generator_phase before = st.phase;
    st.phase = detail::generator_phase::running;
    try {
      (void)st.body.switch_to();
    } catch (...) {
      // Not from the body (it catches everything): the switch itself failed.
      st.consumer = nullptr;
      st.sent = nullptr;
      if (st.phase == detail::generator_phase::running) st.phase = before;
      throw;
    }
    st.consumer = nullptr;
    st.sent = nullptr;
    if (GREENLETS_UNLIKELY(st.phase != detail::generator_phase::suspended)) {
      return finish(op);
    }
    return true;
  }

  GREENLETS_COLD bool finish(const char* op) {
    state& st = *st_;
    if (st.phase == detail::generator_phase::running) {
      throw error(std::string("greenlets: generator::") + op +
                  ": the consumer was resumed by a switch from outside the generator while "
                  "its body was running");
    }
    // The dead body keeps a reference to its last parent (us): drop it now, so a
    // consumer that is itself a greenlet can still be unwound by dropping it.
    st.body = greenlet();
    if (st.failure) std::rethrow_exception(std::exchange(st.failure, nullptr));
    return false;
  }

  GREENLETS_ALWAYS_INLINE std::optional<T> take() {
    // Reads the item alone, as yield wrote it: copying the whole optional would load
    // the item and its flag at once, which stalls behind the two separate stores.
    std::optional<T> out(std::in_place, std::move(*st_->item));
    st_->item.reset();
    return out;
  }

  void reset() noexcept {
    if (st_) st_->body = greenlet();  // unwinds the body while its state is still alive
    st_.reset();
  }

  std::unique_ptr<state> st_;
};

}  // namespace greenlets

#endif  // GREENLETS_GENERATOR_HPP
