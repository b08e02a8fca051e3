// Builders for the greenlets::options the tests pass to greenlets: a stack size, an
// allocator or a resource of the test's own, in one expression.
//
//   greenlet g(run, test_support::with_stack(64 * 1024, greenlets::guarded_stacks()));
//   greenlet h(run, test_support::with_resource(counting));
#ifndef GREENLETS_TESTS_SUPPORT_OPTIONS_HPP
#define GREENLETS_TESTS_SUPPORT_OPTIONS_HPP

#include <cstddef>
#include <memory>
#include <utility>

#include <greenlets/greenlet.hpp>
#include <greenlets/stack.hpp>

namespace test_support {

// Stacks of `bytes` from `allocator` (empty: the thread's pool).
inline greenlets::options with_stack(std::size_t bytes, greenlets::stack_allocator allocator = {}) {
  greenlets::options opts;
  opts.stack_size = bytes;
  opts.allocator = std::move(allocator);
  return opts;
}

// Stacks of the default size from `allocator`.
inline greenlets::options with_allocator(greenlets::stack_allocator allocator) {
  return with_stack(greenlets::default_stack_size, std::move(allocator));
}

// Stacks of `bytes` from `resource`, which every greenlet made with these options keeps
// alive.
inline greenlets::options with_resource(std::shared_ptr<greenlets::stack_resource> resource,
                                        std::size_t bytes = greenlets::default_stack_size) {
  return with_stack(bytes, greenlets::stack_allocator(std::move(resource)));
}

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_OPTIONS_HPP
