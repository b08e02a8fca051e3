// The patch: gevent's `monkey.patch_all()` for C++. Unmodified blocking code (`sleep`,
// `read`, `recv`, `connect`, `poll`, libcurl...) becomes cooperative inside hub tasks:
// a call that would block parks the calling task on the hub instead of the thread.
//
// Opt-in, once per program. Either link the CMake target `greenlets::patch`, or define
// the macro in exactly one source file of the executable:
//
//   #define GREENLETS_PATCH_IMPLEMENTATION
//   #include <greenlets/patch.hpp>
//
// (and link with `-Wl,--dynamic-list=<greenlets>/cmake/greenlets_patch.dynlist`, which
// the target adds, so that shared libraries such as libcurl reach the patched calls).
// Without either, nothing is interposed and the library stays header-only. Which calls
// are covered, and the limits: README's "The patch" and docs/semantics.md.
#ifndef GREENLETS_PATCH_HPP
#define GREENLETS_PATCH_HPP

#include "greenlets/detail/sys.hpp"

namespace greenlets {

/// True if this program links the patch (the C library's blocking calls are cooperative
/// in hub tasks).
///
/// Python: `gevent.monkey.is_anything_patched()`; turning it on is
/// `gevent.monkey.patch_all()`, done here at link time (`greenlets::patch`).
inline bool patched() noexcept { return detail::sys::patched(); }

}  // namespace greenlets

#endif  // GREENLETS_PATCH_HPP

#ifdef GREENLETS_PATCH_IMPLEMENTATION
#include "greenlets/detail/patch_impl.hpp"
#endif
