// `run_in_thread`: runs a blocking call on one of the hub's worker threads while the
// calling task waits cooperatively, so the other tasks keep running.
//
//   auto n = greenlets::run_in_thread([] { return blocking_lookup("example.org"); });
#ifndef GREENLETS_HUB_THREAD_POOL_HPP
#define GREENLETS_HUB_THREAD_POOL_HPP

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "greenlets/hub/hub.hpp"

namespace greenlets {

namespace detail {

template <class R>
struct thread_call {
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  std::exception_ptr failure;
  waiter* w = nullptr;  // null once the caller stopped waiting
};

}  // namespace detail

/// Runs `f()` on one of this hub's worker threads and waits for it cooperatively;
/// returns what `f` returns, or rethrows what it threw.
///
/// The pool has `hub::thread_pool_size()` threads (10 by default), started on demand.
/// While the call is pending the hub counts it as work (no `loop_exit`). If the caller
/// is killed or times out, `f` still runs to its end and its result is dropped. `f`
/// must not touch hub objects (they belong to the hub's thread).
/// Python: `gevent.get_hub().threadpool.apply(f)`.
template <class F>
auto run_in_thread(F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  detail::loop& l = detail::loop::local();
  detail::waiter w(l.current_ctx("run_in_thread"), "run_in_thread");
  auto call = std::make_shared<detail::thread_call<R>>();
  w.object = call.get();
  call->w = &w;
  l.workers().submit([call, fn = std::decay_t<F>(std::forward<F>(f)), &l]() mutable {
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        call->result = true;
      } else {
        call->result.emplace(fn());
      }
    } catch (...) {
      call->failure = std::current_exception();
    }
    // The hub's thread drops the last reference: whatever the result holds (an
    // exception the caller is still reading) is destroyed on the thread that uses it.
    l.post([call = std::move(call), &l] {
      l.remove_foreign();
      if (call->w != nullptr) l.wake(*call->w);
    });
  });
  l.add_foreign();
  struct leave {
    detail::thread_call<R>& c;
    ~leave() { c.w = nullptr; }
  } guard{*call};
  l.block(w);
  if (call->failure) std::rethrow_exception(call->failure);
  if constexpr (!std::is_void_v<R>) return std::move(*call->result);
}

}  // namespace greenlets

#endif  // GREENLETS_HUB_THREAD_POOL_HPP
