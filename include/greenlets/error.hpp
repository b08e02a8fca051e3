// The exceptions of greenlets: `error` for misuse, `bad_value_cast` for a value
// read as the wrong type, and `greenlet_exit`, the kill signal.
//
//   try { g.switch_to(); } catch (const greenlets::error& e) { std::cerr << e.what(); }
//   try { ... } catch (const greenlets::greenlet_exit&) { /* being killed */ throw; }
#ifndef GREENLETS_ERROR_HPP
#define GREENLETS_ERROR_HPP

#include <stdexcept>
#include <string>

namespace greenlets {

/// Misuse of the library: switching across threads, a parent cycle, an empty handle...
///
/// The message names the library, the operation and the facts, e.g.
/// `greenlets: switch_to: target belongs to another thread`.
/// Python: `greenlet.error`.
class error : public std::runtime_error {
 public:
  /// Builds an error with the complete message `what`.
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

/// A `value` was read as a type it does not hold; the message names both types.
///
/// Python: the `TypeError` raised when `run` gets arguments it cannot take.
class bad_value_cast : public error {
 public:
  /// Builds the error with the complete message `what`.
  explicit bad_value_cast(const std::string& what) : error(what) {}
};

/// Thrown into a greenlet to kill it; escaping `run`, it is not an error.
///
/// Deliberately not derived from `std::exception`, so `catch (const std::exception&)`
/// cannot swallow a kill. When it escapes `run`, the parent receives a `value`
/// holding a `greenlet_exit` instead of an exception. Derive from it to carry data.
/// Python: `greenlet.GreenletExit` (a `BaseException`).
struct greenlet_exit {};

}  // namespace greenlets

#endif  // GREENLETS_ERROR_HPP
