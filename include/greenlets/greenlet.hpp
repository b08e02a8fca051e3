// `greenlet`: a stackful coroutine that switches explicitly, as Python's greenlet.
//
//   greenlets::greenlet g([](int x) { return x + greenlets::current().parent()
//                                                  .switch_to().get<int>(); });
//   greenlets::value v = g.switch_to(1);   // runs g until it switches back to us
//   int r = g.switch_to(2).get<int>();     // g resumes, returns 1 + 2 to its parent
//
// Also here: `current()`, tracing (`settrace`), the unraisable hook, and `options`.
#ifndef GREENLETS_GREENLET_HPP
#define GREENLETS_GREENLET_HPP

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "greenlets/error.hpp"
#include "greenlets/stack.hpp"
#include "greenlets/value.hpp"

namespace greenlets {

namespace detail {
struct greenlet_impl;
struct thread_state;
struct greenlet_access;
}  // namespace detail

struct options;

/// A handle to a greenlet: a function running on its own stack, switched to explicitly.
///
/// Copies refer to the same greenlet; `==` compares identity. Dropping the last handle
/// of a suspended greenlet unwinds it (throws `greenlet_exit` into it). A greenlet
/// belongs to the thread that created it.
/// Python: `greenlet.greenlet`.
class greenlet {
 public:
  /// An empty handle: not started, not dead, not active; switching to it is an `error`.
  greenlet() noexcept = default;

  /// A greenlet that will run `run`, with the current greenlet as parent.
  ///
  /// `run` may take no parameters, one `value`, or concrete parameters converted from
  /// the first `switch_to`'s arguments. It starts at the first switch.
  /// Python: `greenlet(run)`.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, greenlet> &&
                                              !std::is_same_v<std::decay_t<F>, options>>>
  explicit greenlet(F&& run);

  /// A greenlet that will run `run`, with `parent` as its parent.
  ///
  /// Python: `greenlet(run, parent)`.
  /// Throws: `error` if `parent` is empty or belongs to another thread.
  template <class F>
  greenlet(F&& run, greenlet parent);

  /// A greenlet that will run `run`, with the stack size, allocator and parent of `opts`.
  ///
  /// Throws: `error` if `opts.parent` belongs to another thread.
  template <class F>
  greenlet(F&& run, options opts);

  /// Another handle to the same greenlet.
  greenlet(const greenlet& other) noexcept;
  /// Takes `other`'s greenlet; `other` becomes empty.
  greenlet(greenlet&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  /// Refers to `other`'s greenlet, dropping the current one.
  greenlet& operator=(const greenlet& other) noexcept;
  /// Takes `other`'s greenlet, dropping the current one.
  greenlet& operator=(greenlet&& other) noexcept;
  /// Drops this handle; the last handle of a suspended greenlet unwinds it.
  ~greenlet();

  /// Switches to this greenlet, sending it `args`.
  ///
  /// The first switch starts `run(args...)`; later switches resume the greenlet, and
  /// `args` become the result of its own pending `switch_to`. Returns what is sent back
  /// when control next returns here. A dead target passes the switch to its parent
  /// (or the first live ancestor).
  /// Python: `g.switch(*args)`.
  /// Throws: `error` if the handle is empty or the greenlet belongs to another thread;
  /// whatever a greenlet that dies with an exception sends to this one.
  template <class... Args>
  value switch_to(Args&&... args);

  /// Throws `greenlet_exit` into this greenlet (kills it); returns what it sends back.
  ///
  /// Python: `g.throw()`.
  value throw_to();

  /// Raises `exception` inside this greenlet at its suspension point and switches to it.
  ///
  /// Into an unstarted greenlet: `run` never runs, the greenlet is dead, and the
  /// exception goes to its parent. Returns what is sent back to this greenlet.
  /// Python: `g.throw(exception)`.
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
  value throw_to(E&& exception) {
    return throw_to(std::make_exception_ptr(std::forward<E>(exception)));
  }

  /// Raises the exception in `exception` inside this greenlet; see `throw_to(E)`.
  value throw_to(std::exception_ptr exception);

  /// True once `run` has begun (stays true after death; false if killed before starting).
  ///
  /// Python: `g.gr_frame is not None or g.dead` (roughly).
  bool started() const noexcept;
  /// True once the greenlet has finished (or was killed before starting).
  ///
  /// Python: `g.dead`.
  bool dead() const noexcept;
  /// True while started and not dead: running or suspended.
  ///
  /// Python: `bool(g)`.
  bool active() const noexcept;
  /// Same as `active()`.
  explicit operator bool() const noexcept { return active(); }
  /// True for a thread's main greenlet (the one running on the thread's own stack).
  bool is_main() const noexcept;
  /// True for an empty handle.
  bool empty() const noexcept { return p_ == nullptr; }

  /// A number for this greenlet, unique among its thread's greenlets; 0 for the main one.
  ///
  /// Numbers count up in creation order; `run_info()`, the error messages and the gdb
  /// commands (tools/gdb/greenlets.py) show greenlets by it.
  /// Python: `id(g)` (roughly).
  /// Throws: `error` if the handle is empty.
  std::uint64_t id() const;

  /// The name given by `options::name` or `set_name` (empty if none).
  ///
  /// Python: gevent's `g.name` (for a `Greenlet`).
  /// Throws: `error` if the handle is empty or the greenlet belongs to another thread.
  std::string name() const;

  /// Names this greenlet for `run_info()`, the stack overflow report, error messages
  /// and the gdb commands; an empty name removes it.
  ///
  /// Python: gevent's `g.name = name`.
  /// Throws: `error` if the handle is empty or the greenlet belongs to another thread.
  void set_name(std::string_view name);

  /// The parent, which receives the value or exception when this greenlet ends.
  ///
  /// An empty handle for a main greenlet.
  /// Python: `g.parent`.
  /// Throws: `error` if the handle is empty or the greenlet belongs to another thread.
  greenlet parent() const&;

  /// The parent; this handle is emptied first, since it is a temporary.
  ///
  /// So `current().parent().switch_to(x)` does not keep a reference to the current
  /// greenlet on its own stack while it is suspended (which would stop dropping its
  /// other handles from unwinding it).
  greenlet parent() &&;

  /// Makes `new_parent` this greenlet's parent.
  ///
  /// Python: `g.parent = new_parent`.
  /// Throws: `error` on a cycle, on a main greenlet, on an empty handle, or when either
  /// greenlet belongs to another thread.
  void set_parent(greenlet new_parent);

  /// Identity: true when both handles refer to the same greenlet (or both are empty).
  friend bool operator==(const greenlet& a, const greenlet& b) noexcept { return a.p_ == b.p_; }
  /// Not the same greenlet.
  friend bool operator!=(const greenlet& a, const greenlet& b) noexcept { return a.p_ != b.p_; }

 private:
  friend struct detail::greenlet_access;
  friend struct std::hash<greenlet>;
  explicit greenlet(detail::greenlet_impl* adopted) noexcept : p_(adopted) {}

  detail::greenlet_impl* p_ = nullptr;
};

/// How to create a greenlet: its stack and its parent.
struct options {
  /// Usable stack bytes (rounded up to whole pages, at least 16 KiB).
  std::size_t stack_size = default_stack_size;
  /// Where the stack comes from; empty means `pooled_stacks()`.
  stack_allocator allocator;
  /// The parent; empty means the current greenlet.
  greenlet parent;
  /// A name for `run_info()`, error messages, the overflow report and the gdb commands;
  /// null or empty for none. The greenlet keeps a copy: the string need only outlive
  /// the constructor. (A pointer rather than a `std::string`: every `spawn` passes
  /// options, and an empty string would cost it a construction, a move and two
  /// destructions.)
  const char* name = nullptr;
};

/// The greenlet running now on this thread (its main greenlet if no other runs).
///
/// Python: `greenlet.getcurrent()`.
greenlet current();

/// What a trace function is told: a switch (including a death returning to the
/// parent) or a throw.
enum class trace_event { switch_to, throw_to };

/// Called in the target greenlet just after each switch, with (event, origin, target).
using trace_function =
    std::function<void(trace_event event, const greenlet& origin, const greenlet& target)>;

/// Installs `fn` as this thread's trace function; returns the previous one.
///
/// An exception thrown by the trace function turns tracing off and is raised in the
/// target greenlet.
/// Python: `greenlet.settrace(fn)`.
trace_function settrace(trace_function fn);

/// This thread's trace function (empty if none).
///
/// Python: `greenlet.gettrace()`.
trace_function gettrace();

/// Told about an exception that cannot be raised anywhere: unwinding a dropped greenlet
/// raised something other than `greenlet_exit`, or a greenlet swallowed its kill.
using unraisable_function =
    std::function<void(const greenlet& where, std::exception_ptr exception, std::string_view what)>;

/// Installs `fn` for the whole process (empty: print to stderr); returns the previous one.
///
/// Python: `sys.unraisablehook`.
unraisable_function set_unraisable_handler(unraisable_function fn);

}  // namespace greenlets

/// Hashes a greenlet handle by identity.
template <>
struct std::hash<greenlets::greenlet> {
  std::size_t operator()(const greenlets::greenlet& g) const noexcept {
    return std::hash<const void*>()(g.p_);
  }
};

// The definitions. greenlet_members.hpp includes the inside it builds on, one part
// per header: records.hpp, thread_state.hpp, report.hpp, switch.hpp, lifetime.hpp
// (docs/architecture.md shows how they fit). The stack overflow handler comes last:
// it reads the running greenlet.
#include "greenlets/detail/greenlet_members.hpp"
#include "greenlets/detail/overflow.hpp"

#endif  // GREENLETS_GREENLET_HPP
