// A stack_resource that counts and records what it hands out and gets back, on top of
// another allocator: tests use it to prove that every stack comes back, what size was
// asked for, and on which thread.
//
//   auto stacks = std::make_shared<test_support::counting_stacks>();
//   greenlet g(run, test_support::with_resource(stacks));
//   ...
//   CHECK(stacks->allocated == stacks->deallocated);
#ifndef GREENLETS_TESTS_SUPPORT_COUNTING_STACKS_HPP
#define GREENLETS_TESTS_SUPPORT_COUNTING_STACKS_HPP

#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <greenlets/stack.hpp>

namespace test_support {

// Forwards to `inner` (by default guarded stacks, so that a stack used after it came
// back faults), counting and recording each call.
class counting_stacks final : public greenlets::stack_resource {
 public:
  explicit counting_stacks(greenlets::stack_allocator inner = greenlets::guarded_stacks())
      : inner_(std::move(inner)) {}

  greenlets::stack_context allocate(std::size_t size) override {
    greenlets::stack_context sc = inner_.resource()->allocate(size);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requested_.push_back(size);
      given_.push_back(sc);
      threads_.push_back(std::this_thread::get_id());
    }
    ++allocated;
    return sc;
  }
  void deallocate(greenlets::stack_context sc) noexcept override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      threads_.push_back(std::this_thread::get_id());
    }
    ++deallocated;
    inner_.resource()->deallocate(sc);
  }

  // The stacks handed out and not yet given back.
  int out() const noexcept { return allocated - deallocated; }

  // The sizes asked of `allocate`, in call order.
  std::vector<std::size_t> requested() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requested_;
  }
  // The stacks `allocate` returned, in call order.
  std::vector<greenlets::stack_context> given() {
    std::lock_guard<std::mutex> lock(mutex_);
    return given_;
  }
  // The thread of each call, `allocate` and `deallocate` alike, in call order.
  std::vector<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

  std::atomic<int> allocated{0};
  std::atomic<int> deallocated{0};

 private:
  greenlets::stack_allocator inner_;
  std::mutex mutex_;
  std::vector<std::size_t> requested_;
  std::vector<greenlets::stack_context> given_;
  std::vector<std::thread::id> threads_;
};

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_COUNTING_STACKS_HPP
