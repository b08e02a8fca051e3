// `generator<T, S>`: Python's generators (`yield`, `next`, `send`, `throw`, `close`) on
// a greenlet.
//
//   greenlets::generator<int> g([](greenlets::yield<int>& yield) {
//     for (int i = 0; i < 3; ++i) yield(i);           // Python: yield i
//   });
//   for (int x : g) std::cout << x << '\n';            // 0 1 2
//
// `generator<void>` is a generator whose bare `yield()` hands out nothing (Python's
// `yield` with no value); its `next()` returns whether the body yielded.
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
#include <variant>

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

// What the state stores for one item: `std::monostate` stands for a bare `yield()`.
template <class T>
using generator_item = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Everything a generator shares with its body. Heap-allocated once per generator, so
// the generator itself can move while the body keeps a stable pointer to this; and a
// resume in progress keeps using it even if the generator object is destroyed meanwhile.
template <class T, class S>
struct generator_state {
  using sent_type = std::conditional_t<std::is_void_v<S>, no_send, S>;

  explicit generator_state() : yielder(this) {}

  std::optional<generator_item<T>> item;  // the last yielded item, until taken
  // What send() passes, for the body's yield; null but from send() to that yield.
  sent_type* sent = nullptr;
  greenlet_impl* consumer = nullptr;   // who resumed the body; set only during a resume
  greenlet_impl* body_impl = nullptr;  // the body's record, kept alive by `body`
  std::exception_ptr failure;          // what the body threw
  generator_phase phase = generator_phase::fresh;
  // The generator object was destroyed while a resume was in progress: that resume
  // owns this state now, and frees it when the body next yields or finishes.
  bool abandoned = false;
  // The generator is gone and its body could not be unwound there and then (it ignored
  // greenlet_exit, or belongs to another thread): the body frees this state when it ends.
  bool detached = false;
  // Where the consumer and the body wait during the per-item jumps. A jump between them
  // sends nothing, so these stay empty (a switch's inbox must be) without a test each
  // item; only a switch from outside the generator fills one, and the error it raises
  // empties it.
  value consumer_inbox;
  value body_inbox;
  yield<T, S> yielder;
  greenlet body;  // last, so it is destroyed (and the body unwound) first
};

// The per-item path touches no reference count (each is a locked instruction): it
// reads the core's per-thread state directly, and jumps when switchable_here() says the
// other side is started, alive, on this thread, with no kill queued by another thread
// (those run at a full switch); one comparison.

// True if `g` is the greenlet running on this thread (false if none ever ran here).
GREENLETS_ALWAYS_INLINE bool is_running(const greenlet_impl* g) noexcept {
  return tls_switch.current == g;
}

// True if `g` belongs to the calling thread (false once this thread's state is gone).
inline bool on_this_thread(const greenlet_impl* g) noexcept {
  thread_state* ts = tls_state;
  return ts != nullptr && g->record == ts->record;
}

// The first greenlet of the calling thread's parent chain: a parent that keeps no
// consumer alive between resumes (a suspended consumer must stay killable by dropping).
inline greenlet root_greenlet() {
  greenlet g = current();
  while (!g.is_main()) g = std::move(g).parent();
  return g;
}

// What yield<T, S> and yield<void, S> share: the checks and the suspension.
template <class T, class S>
class yield_base {
 public:
  /// The type returned by `yield(...)`: `void`, or `std::optional<S>`.
  using result_type = std::conditional_t<std::is_void_v<S>, void, std::optional<S>>;

  yield_base(const yield_base&) = delete;
  yield_base& operator=(const yield_base&) = delete;

 protected:
  explicit yield_base(generator_state<T, S>* st) noexcept : st_(st) {}
  ~yield_base() = default;

  GREENLETS_ALWAYS_INLINE void check(const char* op) const {
    if (st_->consumer == nullptr || !is_running(st_->body_impl)) {
      throw error(std::string("greenlets: ") + op +
                  ": called outside the body of its generator (a yield belongs to the one "
                  "generator body it was given to)");
    }
  }

  GREENLETS_ALWAYS_INLINE result_type suspend() {
    st_->phase = generator_phase::suspended;
    // The consumer waits inside next()/send() on this thread, so it can be jumped to
    // directly (once kills queued by other threads have run: one may have been it).
    if (GREENLETS_LIKELY(switchable_here(st_->consumer))) {
      jump_direct(st_->body_impl, st_->consumer, st_->body_inbox);
    } else {
      thread_state& full = this_thread();
      if (st_->consumer != nullptr) {
        value nothing;
        jump(full, st_->consumer, trace_event::switch_to, nothing);
      }
    }
    if (GREENLETS_UNLIKELY(st_->consumer == nullptr)) outside_switch();
    if constexpr (!std::is_void_v<S>) {
      // One return object built in place on both paths: g++ 12 at -O3 warns that a
      // separately returned std::nullopt "may be used uninitialized".
      std::optional<S> out;
      if (S* sent = std::exchange(st_->sent, nullptr)) out.emplace(std::move(*sent));
      return out;
    }
  }

  [[noreturn]] GREENLETS_COLD GREENLETS_NOINLINE void outside_switch() {
    st_->body_inbox.reset();  // what that switch sent
    throw error(
        "greenlets: yield: the body was resumed by a switch from outside its "
        "generator");
  }

  generator_state<T, S>* st_;
};

}  // namespace detail

/// What a generator's body calls to hand out an item and wait for the next request.
///
/// The body receives it as `yield<T, S>&`. With `S = void`, `yield(x)` returns nothing;
/// otherwise it returns the value passed to `send()`, or `std::nullopt` when the
/// generator was resumed by `next()`.
/// Python: the `yield x` expression (`x = yield 1`).
template <class T, class S>
class yield : public detail::yield_base<T, S> {
  using base = detail::yield_base<T, S>;

 public:
  /// The type returned by `yield(x)`: `void`, or `std::optional<S>`.
  using result_type = typename base::result_type;

  /// Hands a copy of `item` to the consumer and suspends until the next `next()`/`send()`.
  ///
  /// Python: `yield item` (or `x = yield item`).
  /// Throws: `error` if called from outside this generator's body; `greenlet_exit` when
  /// the generator is closed or destroyed while suspended here (let it propagate); the
  /// exception passed to `generator::throw_to`.
  template <class U = T, class = std::enable_if_t<std::is_copy_constructible_v<U>>>
  GREENLETS_ALWAYS_INLINE result_type operator()(const T& item) {
    this->check("yield");
    this->st_->item.emplace(item);
    return this->suspend();
  }

  /// Moves `item` to the consumer and suspends until the next `next()`/`send()`.
  ///
  /// Python: `yield item`.
  /// Throws: as the copying overload.
  GREENLETS_ALWAYS_INLINE result_type operator()(T&& item) {
    this->check("yield");
    this->st_->item.emplace(std::move(item));
    return this->suspend();
  }

 private:
  template <class, class>
  friend struct detail::generator_state;

  explicit yield(detail::generator_state<T, S>* st) noexcept : base(st) {}
};

/// What the body of a `generator<void, S>` calls to suspend without handing out an item.
///
/// `yield()` returns nothing with `S = void`; otherwise the value passed to `send()`, or
/// `std::nullopt` when the generator was resumed by `next()`.
/// Python: a bare `yield` (`x = yield`).
template <class S>
class yield<void, S> : public detail::yield_base<void, S> {
  using base = detail::yield_base<void, S>;

 public:
  /// The type returned by `yield()`: `void`, or `std::optional<S>`.
  using result_type = typename base::result_type;

  /// Suspends until the next `next()`/`send()`; the consumer's `next()` returns true.
  ///
  /// Python: `yield` (or `x = yield`).
  /// Throws: `error` if called from outside this generator's body; `greenlet_exit` when
  /// the generator is closed or destroyed while suspended here (let it propagate); the
  /// exception passed to `generator::throw_to`.
  GREENLETS_ALWAYS_INLINE result_type operator()() {
    this->check("yield");
    this->st_->item.emplace();
    return this->suspend();
  }

 private:
  template <class, class>
  friend struct detail::generator_state;

  explicit yield(detail::generator_state<void, S>* st) noexcept : base(st) {}
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
///
/// `generator<void, S>`: the body calls a bare `yield()`; `next()`, `send()` and
/// `throw_to()` return `bool` (true: the body yielded; false: it has finished), and
/// the range's items are `std::monostate` (`for ([[maybe_unused]] auto _ : g)` runs the
/// body once per yield).
/// Python: a generator object (`g = func()`).
template <class T, class S>
class generator {
  static_assert(!std::is_reference_v<T> && (!std::is_void_v<T> || std::is_same_v<T, void>),
                "generator<T>: T must be an object type or (unqualified) void");

  using state = detail::generator_state<T, S>;
  using item_type = detail::generator_item<T>;

 public:
  /// The type of the items (`std::monostate` for `generator<void>`).
  using value_type = item_type;
  /// The type accepted by `send()` (`void`: none).
  using send_type = S;
  /// What `next()`, `send()` and `throw_to()` return: `std::optional<T>`, or `bool` for
  /// `generator<void>` (true: the body yielded).
  using next_type = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

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
          // Runs last, however the body ends: a detached state belongs to the body.
          struct free_if_detached {
            state* st;
            ~free_if_detached() {
              if (st->detached) delete st;
            }
          } guard{st};
          try {
            f(st->yielder);
          } catch (...) {
            st->phase = detail::generator_phase::finished;
            // No resume in progress: the greenlet is being killed (its last handle went).
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
  ///
  /// From inside this generator's own body, the old body is unwound as the destructor
  /// describes, and this generator then runs `other`'s body.
  generator& operator=(generator&& other) noexcept {
    if (this != &other) {
      reset();
      st_ = std::move(other.st_);
    }
    return *this;
  }
  generator(const generator&) = delete;
  generator& operator=(const generator&) = delete;

  /// Unwinds an unfinished body as `close()` does: `greenlet_exit` is thrown at its
  /// pending `yield`, so its destructors run (and those of generators it consumes).
  ///
  /// What `close()` would throw goes to the unraisable handler instead: an exception
  /// other than `greenlet_exit` escaping the body, or "generator ignored greenlet_exit"
  /// (that body is then killed as a dropped greenlet is). Destroyed on another thread,
  /// the body is unwound on its own thread, at that thread's next switch.
  ///
  /// Destroying a generator while its body runs (from the body itself, or while the
  /// body is switched away in the middle of a resume) cannot unwind the body at once:
  /// the body runs on, and when it next yields or finishes, the `next()` (or `send()`,
  /// `throw_to()`, `close()`, iterator increment) that resumed it unwinds it there,
  /// frees it, and returns as for a finished generator (`std::nullopt`, `false`, the
  /// end iterator), or throws what the body threw.
  /// Python: `g.close()`, run when a generator is collected.
  ~generator() { reset(); }

  /// Resumes the body until its next `yield`; returns that item, or `std::nullopt` once
  /// the body has finished (for `generator<void>`: true if it yielded, false once finished).
  ///
  /// Python: `next(g)` (where `std::nullopt` is `StopIteration`).
  /// Throws: what the body throws (once; the generator is finished afterwards);
  /// `error` if the generator is empty (moved from) or already executing (called from
  /// its own body, or while the body is switched away in the middle of a resume).
  GREENLETS_ALWAYS_INLINE next_type next() {
    state* st = resume("next", nullptr);
    if (st == nullptr) return next_type();
    return take(st);
  }

  /// Resumes the body, making its pending `yield` return `x`; returns the next item,
  /// or `std::nullopt` once the body has finished (`bool` for `generator<void, S>`).
  ///
  /// Only for a generator that accepts values (`S` is not `void`); sending a type that
  /// does not convert to `S` does not compile.
  /// Python: `g.send(x)`.
  /// Throws: `error` before the first `next()` (nothing waits for the value yet), on a
  /// finished generator, or if empty or already executing; what the body throws.
  next_type send(typename state::sent_type x) {
    state& st = checked("send");
    if (st.phase == detail::generator_phase::fresh) {
      throw error(
          "greenlets: generator::send: the generator has not started, so no yield "
          "is waiting for the value; call next() first");
    }
    if (st.phase == detail::generator_phase::finished) {
      throw error("greenlets: generator::send: the generator has finished");
    }
    state* s = resume("send", &x);
    if (s == nullptr) return next_type();
    return take(s);
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
  next_type send(Args&&... args) {
    return send(value::of(std::forward<Args>(args)...));
  }

  /// Raises `exception` inside the body at its pending `yield`; returns the item it
  /// yields next, or `std::nullopt` if it then finishes (`bool` for `generator<void>`).
  ///
  /// If the body does not catch it, the same exception object comes out of `throw_to`
  /// and the generator is finished. An unstarted generator is finished without running
  /// its body, and a finished one stays finished; both throw `exception` at once.
  /// Python: `g.throw(exception)`.
  /// Throws: `exception`, or what the body throws instead; `error` if `exception` is
  /// null, or the generator is empty or already executing.
  next_type throw_to(std::exception_ptr exception) {
    if (!exception) throw error("greenlets: generator::throw_to: the exception_ptr is null");
    state& st = checked("throw_to");
    if (st.phase != detail::generator_phase::suspended) {
      mark_finished(st);
      std::rethrow_exception(std::move(exception));
    }
    state* s = &st;
    raise_in_body(s, std::move(exception));
    s = resumed(s, "throw_to");
    if (s == nullptr) return next_type();
    return take(s);
  }

  /// Raises a copy of `exception` inside the body; see `throw_to(std::exception_ptr)`.
  ///
  /// Python: `g.throw(exception)`.
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
  next_type throw_to(E&& exception) {
    return throw_to(std::make_exception_ptr(std::forward<E>(exception)));
  }

  /// Finishes the generator: raises `greenlet_exit` inside the body at its pending
  /// `yield`, so that it unwinds (its destructors run, as do those of generators it was
  /// consuming).
  ///
  /// The body may catch `greenlet_exit` and return, or let it escape: either way
  /// `close()` returns and the generator is finished. An unstarted generator is
  /// finished without running its body; closing a finished one does nothing.
  /// Python: `g.close()`.
  /// Throws: `error` ("generator ignored greenlet_exit") if the body yields again (it
  /// stays suspended at that yield); another exception that escapes the body (the
  /// generator is then finished); `error` if empty or already executing.
  void close() {
    state& st = checked("close");
    if (st.phase != detail::generator_phase::suspended) {
      mark_finished(st);
      return;
    }
    state* s = &st;
    raise_in_body(s, std::make_exception_ptr(greenlet_exit{}));
    if (s->phase == detail::generator_phase::suspended && !s->abandoned) {
      s->item.reset();
      throw error("greenlets: generator::close: generator ignored greenlet_exit");
    }
    try {
      (void)resumed(s, "close");
    } catch (const greenlet_exit&) {
      // The body let it escape: closed as asked. (Only the body's own failure is
      // rethrown by resumed(), never an exception thrown into this consumer.)
    }
  }

  /// True once the body has finished (returned or thrown) or the generator was closed;
  /// `next()` then gives nullopt. Also true for an empty (moved-from) generator.
  ///
  /// Python: `inspect.getgeneratorstate(g) == GEN_CLOSED`.
  bool finished() const noexcept { return !st_ || st_->phase == detail::generator_phase::finished; }

  /// True once the body has started, or the generator was finished before it started
  /// (by `close()` or `throw_to()`).
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
    /// The type of the items (`std::monostate` for `generator<void>`).
    using value_type = item_type;
    /// Unused, as for any input iterator.
    using difference_type = std::ptrdiff_t;
    /// A pointer to the current item.
    using pointer = item_type*;
    /// The current item, owned by the generator until the next resume.
    using reference = item_type&;

    /// The end iterator.
    iterator() noexcept = default;

    /// The current item; valid until the iterator is incremented.
    item_type& operator*() const noexcept { return *gen_->st_->item; }
    /// The current item's address.
    item_type* operator->() const noexcept { return &*gen_->st_->item; }

    /// Resumes the body for the next item (becoming the end iterator when it finishes).
    ///
    /// Python: `next(g)` inside a `for` loop.
    /// Throws: what the body throws; `error` if the generator is already executing.
    GREENLETS_ALWAYS_INLINE iterator& operator++() {
      if (gen_->resume("iterator::operator++", nullptr) == nullptr) gen_ = nullptr;
      return *this;
    }

    /// The current item, taken out before resuming the body (for `*it++`).
    struct proxy {
      /// The item that was current.
      item_type item;
      /// The item that was current.
      item_type& operator*() noexcept { return item; }
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
  /// Throws: what the body throws; `error` if empty or already executing.
  iterator begin() {
    if (resume("begin", nullptr) == nullptr) return iterator();
    return iterator(this);
  }

  /// The end iterator, reached when the body has finished.
  ///
  /// Python: the `StopIteration` that ends a `for` loop.
  iterator end() noexcept { return iterator(); }

 private:
  // Everything from a resume's jump on uses only the state, never `this`: the body may
  // have destroyed or moved this generator meanwhile (see ~generator).

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
    throw error(std::string("greenlets: generator::") + op + ": generator already executing");
  }

  // Runs the body until it yields (returns the state: the item is in `item`) or ends
  // (returns null).
  GREENLETS_ALWAYS_INLINE state* resume(const char* op, typename state::sent_type* sent) {
    state* st = st_.get();
    if (GREENLETS_UNLIKELY(st == nullptr || st->phase != detail::generator_phase::suspended ||
                           !detail::switchable_here(st->body_impl))) {
      return resume_slow(op, sent);
    }
    drop_item(st);
    st->consumer = detail::tls_switch.current;
    if (sent != nullptr) st->sent = sent;  // next() passes none, and `sent` is null then
    st->phase = detail::generator_phase::running;
    try {
      detail::jump_direct(st->consumer, st->body_impl, st->consumer_inbox);
    } catch (...) {
      // Not from the body (it catches everything): something threw into the consumer.
      interrupted(st, detail::generator_phase::suspended);
      throw;
    }
    st->consumer = nullptr;
    // `sent` needs no clearing here: a yield took it. A body that ended or switched
    // away without one left it, and resumed() clears it.
    if (GREENLETS_UNLIKELY(st->phase != detail::generator_phase::suspended || st->abandoned)) {
      return resumed(st, op);
    }
    return st;
  }

  // The first resume, errors, and resumes that must go through a full switch.
  GREENLETS_NOINLINE state* resume_slow(const char* op, typename state::sent_type* sent) {
    state* st = &checked(op);
    if (st->phase == detail::generator_phase::finished) return nullptr;
    st->item.reset();
    st->consumer = detail::running_greenlet();
    st->sent = sent;
    const detail::generator_phase before = st->phase;
    st->phase = detail::generator_phase::running;
    try {
      (void)st->body.switch_to();
    } catch (...) {
      // Not from the body (it catches everything): the switch itself failed.
      interrupted(st, before);
      throw;
    }
    st->consumer = nullptr;
    st->sent = nullptr;
    return resumed(st, op);
  }

  // Resumes the suspended body by raising `e` at its pending yield; the caller then
  // calls resumed() (or reads the state as close() does).
  GREENLETS_NOINLINE static void raise_in_body(state* st, std::exception_ptr e) {
    st->item.reset();
    st->consumer = detail::running_greenlet();
    st->sent = nullptr;
    st->phase = detail::generator_phase::running;
    try {
      (void)st->body.throw_to(std::move(e));
    } catch (...) {
      interrupted(st, detail::generator_phase::suspended);
      throw;
    }
    st->consumer = nullptr;
  }

  // A resume's jump threw into the consumer: the body has not moved on.
  GREENLETS_COLD static void interrupted(state* st, detail::generator_phase before) noexcept {
    st->consumer = nullptr;
    st->sent = nullptr;
    st->consumer_inbox.reset();
    if (st->phase == detail::generator_phase::running) st->phase = before;
    if (st->abandoned) dispose(st);
  }

  // After a resume: the body yielded (returns `st`), finished (null, or throws what it
  // threw), or its generator was destroyed meanwhile (the same, after freeing it).
  GREENLETS_COLD static state* resumed(state* st, const char* op) {
    st->sent = nullptr;
    st->consumer_inbox.reset();  // filled only by a switch from outside the generator
    if (st->abandoned) {
      std::exception_ptr failure = std::exchange(st->failure, nullptr);
      dispose(st);
      if (failure) std::rethrow_exception(failure);
      return nullptr;
    }
    if (st->phase == detail::generator_phase::suspended) return st;
    if (st->phase == detail::generator_phase::running) {
      throw error(std::string("greenlets: generator::") + op +
                  ": the consumer was resumed by a switch from outside the generator while "
                  "its body was running");
    }
    // The dead body keeps a reference to its last parent (us): drop it now, so a
    // consumer that is itself a greenlet can still be unwound by dropping it.
    st->body = greenlet();
    if (st->failure) std::rethrow_exception(std::exchange(st->failure, nullptr));
    return nullptr;
  }

  // Frees a state no generator owns any more. A body suspended at a yield is unwound
  // first, as close() does; what close() would throw goes to the unraisable handler, as
  // Python reports an exception raised while collecting a generator.
  static void dispose(state* st) noexcept {
    st->abandoned = false;  // owned here now, whatever happens below
    if (st->body.started() && !st->body.dead()) {
      if (st->phase == detail::generator_phase::suspended &&
          detail::on_this_thread(st->body_impl) && !detail::is_running(st->body_impl)) {
        close_for_drop(st);
      }
      if (!st->body.dead()) {
        // Not unwound: it ignored greenlet_exit, belongs to another thread, or is not at
        // a yield. Dropping the handle lets the core kill it (here, or queued to its
        // thread); the body frees this state when it ends.
        st->detached = true;
        greenlet body = std::move(st->body);
        return;
      }
    }
    delete st;  // an unstarted body is destroyed without running; a finished one freed
  }

  // close() on a body suspended at a yield, from a destructor: nothing is thrown.
  GREENLETS_COLD static void close_for_drop(state* st) noexcept {
    try {
      raise_in_body(st, std::make_exception_ptr(greenlet_exit{}));
    } catch (...) {
      // Thrown into this greenlet while it waited for the body: nowhere to raise it.
      detail::report_unraisable(st->body_impl, std::current_exception(),
                                "destroying a generator: an exception was raised in the "
                                "destroying greenlet while the body unwound");
      return;
    }
    st->item.reset();
    if (st->phase == detail::generator_phase::suspended) {
      detail::report_unraisable(st->body_impl, nullptr,
                                "destroying a generator: generator ignored greenlet_exit");
      return;
    }
    if (st->phase != detail::generator_phase::finished) return;
    std::exception_ptr failure = std::exchange(st->failure, nullptr);
    if (failure && !detail::holds_greenlet_exit(failure)) {
      detail::report_unraisable(st->body_impl, failure,
                                "destroying a generator: unwinding the body raised an "
                                "exception other than greenlet_exit");
    }
  }

  static void mark_finished(state& st) noexcept {
    st.phase = detail::generator_phase::finished;
    st.body = greenlet();  // an unstarted body is destroyed without running
  }

  GREENLETS_ALWAYS_INLINE static next_type take(state* st) {
    if constexpr (std::is_void_v<T>) {
      drop_item(st);
      return true;
    } else {
      // Reads the item alone, as yield wrote it: copying the whole optional would load
      // the item and its flag at once, which stalls behind the two separate stores.
      std::optional<T> out(std::in_place, std::move(*st->item));
      drop_item(st);
      return out;
    }
  }

  // Destroys the item taken or seen (a resume must not keep it while the body runs).
  // One whose destruction does nothing stays: the next yield overwrites it, and
  // nothing reads it before (a test and a store less per item).
  GREENLETS_ALWAYS_INLINE static void drop_item(state* st) noexcept {
    if constexpr (!std::is_trivially_destructible_v<detail::generator_item<T>>) st->item.reset();
  }

  void reset() noexcept {
    if (!st_) return;
    if (GREENLETS_UNLIKELY(st_->phase == detail::generator_phase::running &&
                           st_->consumer != nullptr)) {
      // A resume is in progress (this is called from the body, or while it is switched
      // away): that resume takes the state over and frees it (see resumed()). A body
      // that runs with no resume waiting (its consumer was woken by a switch from
      // outside) is dropped below, as any greenlet is: killed, it frees the state.
      st_->abandoned = true;
      (void)st_.release();
      return;
    }
    dispose(st_.release());
  }

  std::unique_ptr<state> st_;
};

}  // namespace greenlets

#endif  // GREENLETS_GENERATOR_HPP
