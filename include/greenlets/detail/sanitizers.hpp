// Announcing stack switches to AddressSanitizer, ThreadSanitizer and valgrind.
//
// Debian's Boost.Context is the fcontext build with none of these hooks, so the
// library makes the announcements itself around every jump. Each hook compiles to
// nothing unless its tool is active.
#ifndef GREENLETS_DETAIL_SANITIZERS_HPP
#define GREENLETS_DETAIL_SANITIZERS_HPP

#include <cstddef>

#include <boost/context/stack_context.hpp>

namespace greenlets::detail {

// Per-greenlet bookkeeping of the tools (empty when none is active).
struct tool_state {};

// A stack was allocated for a greenlet / is about to be given back.
inline void tool_stack_allocated(tool_state&, const boost::context::stack_context&) noexcept {}
inline void tool_stack_freed(tool_state&) noexcept {}

// Called just before jumping from `from` to `to`; `from_finished` when `from`
// will never run again (its stack is about to be freed).
inline void tool_before_switch(tool_state&, tool_state&, bool) noexcept {}

// Called first thing after a jump lands in `self`.
inline void tool_after_switch(tool_state&) noexcept {}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_SANITIZERS_HPP
