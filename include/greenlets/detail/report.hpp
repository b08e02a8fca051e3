// Telling users what went wrong: the messages of misuse errors (an empty handle,
// another thread's greenlet) and the unraisable handler, for exceptions that have
// nowhere to go.
//
// Part of greenlet.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_REPORT_HPP
#define GREENLETS_DETAIL_REPORT_HPP

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/records.hpp"
#include "greenlets/detail/thread_state.hpp"
#include "greenlets/error.hpp"
#include "greenlets/greenlet.hpp"

namespace greenlets::detail {

// ---------------------------------------------------------------------------
// Misuse

inline std::string thread_description(const thread_record* r) {
  std::ostringstream os;
  os << "thread #" << r->number << " (id " << r->id << ")";
  return os.str();
}

// Names `g` (an empty name removes it); a copy, so the record owns it.
inline void set_name(greenlet_impl* g, std::string_view name) {
  if (name.empty()) {
    g->name.reset();
    return;
  }
  std::unique_ptr<char[]> copy(new char[name.size() + 1]);
  std::memcpy(copy.get(), name.data(), name.size());
  copy[name.size()] = '\0';
  g->name = std::move(copy);
}

// `greenlet #3 "reader"`, or `greenlet #3`; the name only on the owner's thread,
// where it cannot change meanwhile.
inline std::string greenlet_description(const greenlet_impl* g) {
  std::string s = "greenlet #" + std::to_string(g->number);
  thread_state* ts = tls_state;
  if (g->name && ts != nullptr && ts->record == g->record) {
    s += " \"";
    s += g->name.get();
    s += '"';
  }
  return s;
}

[[noreturn]] GREENLETS_COLD inline void throw_empty(const char* op) {
  throw error(std::string("greenlets: ") + op + ": empty greenlet handle");
}

[[noreturn]] GREENLETS_COLD inline void throw_foreign(const char* op, const char* who,
                                                      greenlet_impl* g) {
  thread_state* ts = tls_state;
  const bool exited = g->record->exited();
  std::string msg = std::string("greenlets: ") + op + ": " + who + " (" + greenlet_description(g) +
                    ") belongs to another thread: " + thread_description(g->record);
  msg += exited ? ", which has exited" : "";
  if (ts != nullptr) msg += "; the current thread is " + thread_description(ts->record);
  throw error(msg);
}

// Checks that `g` may be switched to (or thrown to) from this thread.
inline thread_state& checked_state(const char* op, greenlet_impl* g) {
  if (GREENLETS_UNLIKELY(g == nullptr)) throw_empty(op);
  thread_state& ts = this_thread();
  if (GREENLETS_UNLIKELY(g->record != ts.record)) throw_foreign(op, "target", g);
  return ts;
}

// ---------------------------------------------------------------------------
// Unraisable exceptions

struct unraisable_state {
  std::mutex mutex;
  unraisable_function fn;
  static unraisable_state& get() {
    static unraisable_state* state = new unraisable_state();  // never destroyed: used at exit
    return *state;
  }
};

inline std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (const greenlet_exit&) {
    return "greenlets::greenlet_exit";
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// True if `e` holds a greenlet_exit (or a type derived from it).
inline bool holds_greenlet_exit(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const greenlet_exit&) {
    return true;
  } catch (...) {
    return false;
  }
}

inline void report_unraisable(greenlet_impl* g, const std::exception_ptr& e,
                              std::string_view what) noexcept {
  try {
    unraisable_function fn;
    {
      std::lock_guard<std::mutex> lock(unraisable_state::get().mutex);
      fn = unraisable_state::get().fn;
    }
    if (fn) {
      fn(g != nullptr ? greenlet_access::share(g) : greenlet(), e, what);
      return;
    }
    std::string line = "greenlets: " + std::string(what);
    char where[64];
    std::snprintf(where, sizeof where, " at %p)", static_cast<void*>(g));
    if (g != nullptr) line += " (" + greenlet_description(g) + where;
    if (e) line += ": " + describe_exception(e);
    std::fprintf(stderr, "%s\n", line.c_str());
  } catch (...) {
    // An unraisable handler that throws has nowhere to report to either.
  }
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_REPORT_HPP
