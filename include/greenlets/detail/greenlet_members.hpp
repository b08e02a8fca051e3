// The definitions of `greenlet`'s members and of the free functions declared in
// greenlet.hpp (current(), settrace(), gettrace(), set_unraisable_handler()).
//
// Part of greenlet.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_GREENLET_MEMBERS_HPP
#define GREENLETS_DETAIL_GREENLET_MEMBERS_HPP

#include <exception>
#include <mutex>
#include <type_traits>
#include <utility>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/lifetime.hpp"
#include "greenlets/detail/records.hpp"
#include "greenlets/detail/report.hpp"
#include "greenlets/detail/switch.hpp"
#include "greenlets/detail/thread_state.hpp"
#include "greenlets/error.hpp"
#include "greenlets/greenlet.hpp"
#include "greenlets/stack.hpp"
#include "greenlets/value.hpp"

namespace greenlets {

template <class F, class>
greenlet::greenlet(F&& run) {
  detail::thread_state& ts = detail::this_thread();
  auto* g = new detail::user_greenlet<std::decay_t<F>>(std::forward<F>(run), ts.record,
                                                       detail::tls_switch.current);
  detail::share_current(ts);  // the new greenlet's reference to its parent
  g->number = ++ts.created;
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
  p_->number = ++ts.created;
}

template <class F>
greenlet::greenlet(F&& run, options opts) {
  detail::thread_state& ts = detail::this_thread();
  detail::greenlet_impl* p =
      opts.parent.p_ != nullptr ? opts.parent.p_ : detail::tls_switch.current;
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
  g->number = ++ts.created;
  if (opts.name != nullptr) detail::set_name(g, opts.name);
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
  detail::greenlet_impl* t = p_;
  detail::thread_state* ts;
  // One comparison stands for the thread check (rule 7), the target being started and
  // alive, no kill queued by another thread (rule 6) and no slow work; see
  // switchable_here(). The fast path reads no thread_state: only tls_switch.
  if (GREENLETS_LIKELY(t != nullptr && detail::switchable_here(t))) {
    if constexpr (sizeof...(Args) == 0) {
      if (GREENLETS_LIKELY(detail::jump_fast(t, result))) return result;
    } else if (GREENLETS_LIKELY(t != detail::tls_switch.current)) {
      // The inbox is empty: each suspension has a fresh one, written once, just before
      // the jump that resumes it.
      detail::value_access::assign_empty(*t->inbox, std::forward<Args>(args)...);
      detail::jump_fast<true>(t, result);
      return result;
    }
  }
  if (t == nullptr) detail::throw_empty("switch_to");
  ts = &detail::checked_state("switch_to", t);  // runs the kills queued here
  if (t->status.load(std::memory_order_relaxed) == 0) {
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

inline std::uint64_t greenlet::id() const {
  if (p_ == nullptr) detail::throw_empty("id");
  return p_->number;
}

inline std::string greenlet::name() const {
  if (p_ == nullptr) detail::throw_empty("name");
  if (p_->record != detail::this_thread().record) detail::throw_foreign("name", "the greenlet", p_);
  return p_->name ? std::string(p_->name.get()) : std::string();
}

inline void greenlet::set_name(std::string_view name) {
  if (p_ == nullptr) detail::throw_empty("set_name");
  if (p_->record != detail::this_thread().record) {
    detail::throw_foreign("set_name", "the greenlet", p_);
  }
  detail::set_name(p_, name);
}

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
    ts.event = trace_event::switch_to;  // a throw's event is left behind when no one traced it
    ts.slow |= detail::slow_tracing;
  } else {
    ts.slow &= ~static_cast<unsigned>(detail::slow_tracing);
  }
  detail::sync_switch_key(ts);
  return old;
}

inline trace_function gettrace() { return detail::this_thread().trace; }

inline unraisable_function set_unraisable_handler(unraisable_function fn) {
  auto& state = detail::unraisable_state::get();
  std::lock_guard<std::mutex> lock(state.mutex);
  return std::exchange(state.fn, std::move(fn));
}

}  // namespace greenlets

#endif  // GREENLETS_DETAIL_GREENLET_MEMBERS_HPP
