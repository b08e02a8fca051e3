// Small probes shared by the tests: counting live copies of a capture, and naming
// the exception an exception_ptr holds.
#ifndef GREENLETS_TESTS_SUPPORT_TRACKING_HPP
#define GREENLETS_TESTS_SUPPORT_TRACKING_HPP

#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>

#include <greenlets/error.hpp>

namespace test_support {

// Counts live copies of `tracked`: a greenlet's `run` that captures one shows whether
// its captures were destroyed.
struct live_counter {
  std::atomic<int> live{0};
};

class tracked {
 public:
  explicit tracked(live_counter& c) noexcept : c_(&c) { ++c_->live; }
  tracked(const tracked& other) noexcept : c_(other.c_) { ++c_->live; }
  tracked& operator=(const tracked&) = delete;
  ~tracked() { --c_->live; }

 private:
  live_counter* c_;
};

// What `e` holds: a std::exception's what(), "greenlet_exit", "other", or `none` when
// it is null. Rethrowing and catching here leaves the caller's exception state as it was.
inline std::string describe(const std::exception_ptr& e, const char* none = "none") {
  if (!e) return none;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (const greenlets::greenlet_exit&) {
    return "greenlet_exit";
  } catch (...) {
    return "other";
  }
}

}  // namespace test_support

#endif  // GREENLETS_TESTS_SUPPORT_TRACKING_HPP
