// Compiler helpers used across the library.
#ifndef GREENLETS_DETAIL_CONFIG_HPP
#define GREENLETS_DETAIL_CONFIG_HPP

#include <cstddef>
#include <cstdio>
#include <cstdlib>

#if defined(__GNUC__) || defined(__clang__)
#define GREENLETS_LIKELY(x) __builtin_expect(!!(x), 1)
#define GREENLETS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GREENLETS_NOINLINE __attribute__((noinline))
#define GREENLETS_COLD __attribute__((cold))
#define GREENLETS_ALWAYS_INLINE inline __attribute__((always_inline))
// For what is inlined into a greenlet's bottom frame, which stays live under every
// suspended greenlet: an unoptimised build keeps a stack slot for each local of each
// function inlined there (clang -O0: 880 bytes), so there these get frames of their own.
#if defined(__OPTIMIZE__)
#define GREENLETS_INLINE_WHEN_OPTIMIZED inline __attribute__((always_inline))
#else
#define GREENLETS_INLINE_WHEN_OPTIMIZED __attribute__((noinline)) inline
#endif
#else
#define GREENLETS_INLINE_WHEN_OPTIMIZED inline
#define GREENLETS_LIKELY(x) (x)
#define GREENLETS_UNLIKELY(x) (x)
#define GREENLETS_NOINLINE
#define GREENLETS_COLD
#define GREENLETS_ALWAYS_INLINE inline
#endif

// Internal invariants only: never for anything a user can trigger.
#ifdef NDEBUG
#define GREENLETS_ASSERT(cond, msg) ((void)0)
#else
#define GREENLETS_ASSERT(cond, msg)                                                        \
  ((cond) ? (void)0                                                                        \
          : (std::fprintf(stderr, "%s:%d: greenlets: internal error: %s (%s)\n", __FILE__, \
                          __LINE__, msg, #cond),                                           \
             std::abort()))
#endif

// How many free stack slots each thread's pool may give back lazily (MADV_FREE: resident
// until the kernel needs the memory, reused without a page fault); see stack_pool.hpp.
#ifndef GREENLETS_LAZY_FREE_STACKS
#define GREENLETS_LAZY_FREE_STACKS 131072
#endif

// How many bytes of spare small blocks (greenlet records, hub task states) each thread
// keeps for reuse; see thread_state.hpp.
#ifndef GREENLETS_BLOCK_CACHE_BYTES
#define GREENLETS_BLOCK_CACHE_BYTES (std::size_t{8} << 20)
#endif

#endif  // GREENLETS_DETAIL_CONFIG_HPP
