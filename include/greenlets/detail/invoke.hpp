// Calling a greenlet's `run` with the value of the first switch: no parameters,
// one `value`, or concrete parameters converted from the value.
#ifndef GREENLETS_DETAIL_INVOKE_HPP
#define GREENLETS_DETAIL_INVOKE_HPP

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "greenlets/value.hpp"

namespace greenlets::detail {

template <class... A>
struct param_list {
  static constexpr std::size_t size = sizeof...(A);
};

template <class T, class = void>
struct callable_params {
  static constexpr bool known = false;
};

// QUALS is a list of qualifiers; it cannot be parenthesised.
#define GREENLETS_DETAIL_MEMFN_PARAMS(QUALS) /* NOLINT(bugprone-macro-parentheses) */ \
  template <class R, class C, class... A>                                             \
  struct callable_params<R (C::*)(A...) QUALS> {                                      \
    static constexpr bool known = true;                                               \
    using type = param_list<A...>;                                                    \
  };
GREENLETS_DETAIL_MEMFN_PARAMS()
GREENLETS_DETAIL_MEMFN_PARAMS(const)
GREENLETS_DETAIL_MEMFN_PARAMS(&)
GREENLETS_DETAIL_MEMFN_PARAMS(const&)
GREENLETS_DETAIL_MEMFN_PARAMS(noexcept)
GREENLETS_DETAIL_MEMFN_PARAMS(const noexcept)
GREENLETS_DETAIL_MEMFN_PARAMS(&noexcept)
GREENLETS_DETAIL_MEMFN_PARAMS(const& noexcept)
#undef GREENLETS_DETAIL_MEMFN_PARAMS

template <class R, class... A>
struct callable_params<R (*)(A...)> {
  static constexpr bool known = true;
  using type = param_list<A...>;
};
template <class R, class... A>
struct callable_params<R (*)(A...) noexcept> {
  static constexpr bool known = true;
  using type = param_list<A...>;
};
template <class R, class... A>
struct callable_params<R(A...)> : callable_params<R (*)(A...)> {};
template <class F>
struct callable_params<F, std::void_t<decltype(&F::operator())>>
    : callable_params<decltype(&F::operator())> {};

// Calls `f(a...)` and puts what it returns in `result` (nothing for void).
template <class F, class... A>
void call_into(value& result, F& f, A&&... a) {
  using R = std::invoke_result_t<F&, A...>;
  if constexpr (std::is_void_v<R>) {
    std::invoke(f, std::forward<A>(a)...);
  } else if constexpr (std::is_same_v<std::decay_t<R>, value>) {
    result = std::invoke(f, std::forward<A>(a)...);
  } else {
    result.emplace<std::decay_t<R>>(std::invoke(f, std::forward<A>(a)...));
  }
}

template <class F, class... P, std::size_t... I>
void call_with_params(F& f, value&& args, value& result, param_list<P...>,
                      std::index_sequence<I...>) {
  if constexpr (sizeof...(P) == 1) {
    using P0 = std::tuple_element_t<0, std::tuple<P...>>;
    std::decay_t<P0> a = std::move(args).template get<std::decay_t<P0>>();
    call_into(result, f, std::forward<P0>(a));
  } else {
    auto t = std::move(args).template get<std::tuple<std::decay_t<P>...>>();
    call_into(result, f, std::forward<P>(std::get<I>(t))...);
  }
}

// Runs `f` with what the first switch sent, putting its result in `result`: a `run`
// taking no parameters gets nothing (anything sent is a bad_value_cast), one taking a
// `value` gets it whole, and one with concrete parameters gets them converted
// (bad_value_cast on mismatch).
template <class F>
void invoke_run(F& f, value&& args, value& result) {
  if constexpr (std::is_invocable_v<F&>) {
    if (args.has_value()) {
      throw bad_value_cast(
          "greenlets: bad_value_cast: run takes no arguments, but the first "
          "switch_to sent " +
          type_name(args.type()));
    }
    call_into(result, f);
  } else if constexpr (std::is_invocable_v<F&, value&&>) {
    call_into(result, f, std::move(args));
  } else {
    static_assert(callable_params<F>::known,
                  "greenlets: run must take no parameters, a greenlets::value, or concrete "
                  "parameters (a generic or overloaded call operator cannot be deduced)");
    using params = typename callable_params<F>::type;
    call_with_params(f, std::move(args), result, params{},
                     std::make_index_sequence<params::size>{});
  }
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_INVOKE_HPP
