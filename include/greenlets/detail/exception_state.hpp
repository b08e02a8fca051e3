// The C++ runtime's per-thread exception globals, saved and restored on every
// switch so that each greenlet sees only its own caught and in-flight exceptions.
#ifndef GREENLETS_DETAIL_EXCEPTION_STATE_HPP
#define GREENLETS_DETAIL_EXCEPTION_STATE_HPP

#include <cxxabi.h>

namespace greenlets::detail {

// The leading fields of the Itanium C++ ABI's __cxa_eh_globals, shared by libstdc++
// and libc++abi: the stack of caught exceptions (std::current_exception(), `throw;`)
// and the count behind std::uncaught_exceptions().
struct exception_state {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

inline exception_state* exception_globals() noexcept {
  return reinterpret_cast<exception_state*>(abi::__cxa_get_globals());
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_EXCEPTION_STATE_HPP
