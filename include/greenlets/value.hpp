// `value`: what a switch delivers — nothing, one value, or several.
//
//   greenlets::value v = g.switch_to(1, "two");     // several: a std::tuple<int, const char*>
//   auto [n, s] = std::move(v).get<int, std::string>();
//   greenlets::value w = g.switch_to(42);            // one
//   int x = std::move(w).get<int>();
#ifndef GREENLETS_VALUE_HPP
#define GREENLETS_VALUE_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "greenlets/detail/config.hpp"
#include "greenlets/detail/type_name.hpp"
#include "greenlets/detail/value_impl.hpp"
#include "greenlets/error.hpp"

namespace greenlets {

namespace detail {
struct value_access;
}  // namespace detail

/// The payload of a switch: nothing, one value, or several (held as a `std::tuple`).
///
/// Default-constructible (empty), movable, not copyable; it may hold move-only types.
/// Payloads of up to 32 bytes that move without throwing (an `int`, a pointer, a
/// `std::string`) are stored inline, with no heap allocation.
/// Python: the object `g.switch()` returns — `()`, one object, or a tuple.
class value {
 public:
  /// An empty value: `has_value()` is false and `type()` is `typeid(void)`.
  value() noexcept = default;

  /// A value holding `x` (decayed: a string literal is held as `const char*`).
  template <class T, class = std::enable_if_t<!std::is_same_v<std::decay_t<T>, value>>>
  explicit value(T&& x) {
    emplace<std::decay_t<T>>(std::forward<T>(x));
  }

  /// A value holding what `switch_to(args...)` would send: nothing, one value, or a tuple.
  ///
  /// A single `value` argument is passed through rather than nested.
  template <class... Args>
  static value of(Args&&... args) {
    value v;
    v.assign(std::forward<Args>(args)...);
    return v;
  }

  /// Takes `other`'s payload; `other` is left empty.
  value(value&& other) noexcept { take(other); }

  /// Destroys the payload, then takes `other`'s; `other` is left empty.
  value& operator=(value&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }

  value(const value&) = delete;
  value& operator=(const value&) = delete;

  /// Destroys the payload.
  ~value() {
    if (GREENLETS_UNLIKELY(vt_bits_ & destroy_flag)) destroy_payload();
  }

  /// Makes the value empty, destroying its payload.
  void reset() noexcept {
    if (vt_bits_ & destroy_flag) vt()->destroy(buf_);
    vt_bits_ = 0;
  }

  /// Replaces the payload with a `T` built from `args`; returns it.
  template <class T, class... Args>
  T& emplace(Args&&... args) {
    reset();
    return emplace_empty<T>(std::forward<Args>(args)...);
  }

  /// Replaces the payload with what `switch_to(args...)` sends (see `of`).
  template <class... Args>
  void assign(Args&&... args) {
    if constexpr (sizeof...(Args) == 1 && (std::is_same_v<std::decay_t<Args>, value> && ...)) {
      *this = value(std::move(args)...);  // also right for v.assign(std::move(v))
    } else {
      reset();
      assign_empty(std::forward<Args>(args)...);
    }
  }

  /// True unless the value is empty.
  bool has_value() const noexcept { return vt_bits_ != 0; }

  /// True unless the value is empty.
  explicit operator bool() const noexcept { return has_value(); }

  /// The held type: a `std::tuple<...>` for several values, `typeid(void)` when empty.
  const std::type_info& type() const noexcept { return vt_bits_ != 0 ? *vt()->type : typeid(void); }

  /// How many values it carries: 0 when empty, 1, or the size of the held tuple.
  std::size_t size() const noexcept { return vt_bits_ != 0 ? vt()->arity : 0; }

  /// True if `get<T...>()` would succeed.
  template <class T, class... Ts>
  bool holds() const noexcept {
    if constexpr (sizeof...(Ts) > 0) {
      return holds<std::tuple<T, Ts...>>();
    } else {
      if (vt_bits_ == 0) return false;
      if (vt_bits_ == tag_of<T>() || *vt()->type == typeid(T)) return true;
      return convertible<T>();
    }
  }

  /// A pointer to the payload if it is exactly a `T`, else null.
  template <class T>
  T* get_if() noexcept {
    if (vt_bits_ == 0) return nullptr;
    if (vt_bits_ != tag_of<T>() && *vt()->type != typeid(T)) return nullptr;
    return static_cast<T*>(payload());
  }

  /// A pointer to the payload if it is exactly a `T`, else null.
  template <class T>
  const T* get_if() const noexcept {
    return const_cast<value*>(this)->get_if<T>();
  }

  /// Moves the payload out as a `T` (or, with several types, as a `std::tuple<T, Ts...>`).
  ///
  /// A held `const char*` can be read as `std::string` or `std::string_view`.
  /// The value is empty afterwards.
  /// Throws: `bad_value_cast` naming the held and the requested type.
  template <class T, class... Ts>
  auto get() && {
    if constexpr (sizeof...(Ts) > 0) {
      return std::move(*this).template get<std::tuple<T, Ts...>>();
    } else {
      static_assert(!std::is_reference_v<T>, "get<T>() returns T by value");
      if (GREENLETS_LIKELY(vt_bits_ == tag_of<T>())) {
        // The type is known here: no need to ask the vtable where or how it lives.
        T* p = detail::value_ops<T>::payload(buf_);
        T out(std::move(*p));
        destroy_known<T>(p);
        return out;
      }
      if (vt_bits_ != 0 && *vt()->type == typeid(T)) {
        T out(std::move(*static_cast<T*>(payload())));
        reset();
        return out;
      }
      T out = convert<T, true>();
      reset();
      return out;
    }
  }

  /// Copies the payload out as a `T` (or a `std::tuple<T, Ts...>`); the value keeps it.
  ///
  /// Throws: `bad_value_cast` naming the held and the requested type.
  template <class T, class... Ts>
  auto get() const& {
    if constexpr (sizeof...(Ts) > 0) {
      return get<std::tuple<T, Ts...>>();
    } else {
      static_assert(std::is_copy_constructible_v<T>,
                    "get<T>() on an lvalue copies; use std::move(v).get<T>() for move-only types");
      auto* self = const_cast<value*>(this);
      if (vt_bits_ != 0 && (vt_bits_ == tag_of<T>() || *vt()->type == typeid(T))) {
        return T(*static_cast<const T*>(self->payload()));
      }
      return self->template convert<T, false>();
    }
  }

 private:
  friend struct detail::value_access;

  // emplace() and assign() into a value known to be empty (a switch's inbox is).
  template <class T, class... Args>
  T& emplace_empty(Args&&... args) {
    static_assert(!std::is_reference_v<T> && !std::is_array_v<T>, "value holds decayed types");
    if constexpr (detail::value_inline<T> && std::is_trivially_copyable_v<T> &&
                  std::is_trivially_destructible_v<T> && sizeof(T) <= sizeof(std::uint64_t) &&
                  alignof(T) <= alignof(std::uint64_t)) {
      // A word and a zero word: a whole 16-byte lane (see below), built in registers.
      const T x(std::forward<Args>(args)...);
      std::uint64_t lane[2] = {0, 0};
      std::memcpy(lane, &x, sizeof(T));
      std::memcpy(buf_, lane, sizeof lane);
      vt_bits_ = tag_of<T>();
      return *detail::value_ops<T>::payload(buf_);
    } else if constexpr (detail::value_inline<T> && std::is_trivially_copyable_v<T> &&
                         std::is_trivially_destructible_v<T>) {
      // Built aside and stored as whole 16-byte lanes: moving the value copies the
      // buffer with 16-byte loads, which stall when they follow a narrower store.
      constexpr std::size_t lanes = (sizeof(T) + 15) / 16 * 16;
      alignas(std::max_align_t) unsigned char chunk[lanes] = {};
      ::new (static_cast<void*>(chunk)) T(std::forward<Args>(args)...);
      std::memcpy(buf_, chunk, lanes);
      vt_bits_ = tag_of<T>();
      return *detail::value_ops<T>::payload(buf_);
    } else if constexpr (detail::value_inline<T>) {
      T* p = ::new (static_cast<void*>(buf_)) T(std::forward<Args>(args)...);
      vt_bits_ = tag_of<T>();
      return *p;
    } else {
      T* p = new T(std::forward<Args>(args)...);
      std::memcpy(buf_, &p, sizeof p);
      vt_bits_ = tag_of<T>();
      return *p;
    }
  }

  template <class... Args>
  void assign_empty(Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      // Nothing to send: the value stays empty.
    } else if constexpr (sizeof...(Args) == 1 &&
                         (std::is_same_v<std::decay_t<Args>, value> && ...)) {
      (take(args), ...);
    } else if constexpr (sizeof...(Args) == 1) {
      (emplace_empty<std::decay_t<Args>>(std::forward<Args>(args)), ...);
    } else {
      emplace_empty<std::tuple<std::decay_t<Args>...>>(std::forward<Args>(args)...);
    }
  }

  void* payload() noexcept {
    if (vt()->on_heap) {
      void* p;
      std::memcpy(&p, buf_, sizeof p);
      return p;
    }
    return buf_;
  }

  // Inlined: a spawn makes two moves of a value that is most often empty.
  GREENLETS_ALWAYS_INLINE void take(value& other) noexcept {
    vt_bits_ = other.vt_bits_;
    if (vt_bits_ != 0) {
      if (vt_bits_ & memcpy_flag) {
        std::memcpy(buf_, other.buf_, sizeof buf_);
      } else {
        vt()->relocate(buf_, other.buf_);
      }
      other.vt_bits_ = 0;
    }
  }

  // Kept in the low bits of the vtable's address (a vtable is aligned to 8) so that
  // moving and destroying a value need not load from its vtable, and destroying an
  // empty or trivially destroyed one tests one word (a switch does both).
  static constexpr std::uintptr_t memcpy_flag = 1;
  static constexpr std::uintptr_t destroy_flag = 2;  // the payload has a destructor to run
  static constexpr std::uintptr_t flag_mask = 3;

  template <class T>
  static std::uintptr_t tag_of() noexcept {
    static_assert(alignof(detail::value_vtable) > flag_mask);
    constexpr const detail::value_vtable& vt = detail::value_ops<T>::vtable;
    // Added, not or-ed: the compiler folds it into the symbol's address.
    return reinterpret_cast<std::uintptr_t>(&vt) + (vt.relocate_by_memcpy ? memcpy_flag : 0) +
           (vt.trivial_destroy ? 0 : destroy_flag);
  }

  // Out of line so that the destructor tests the word in memory and loads nothing.
  GREENLETS_NOINLINE void destroy_payload() noexcept { vt()->destroy(buf_); }

  const detail::value_vtable* vt() const noexcept {
    return reinterpret_cast<const detail::value_vtable*>(vt_bits_ & ~flag_mask);
  }

  template <class T>
  void destroy_known(T* p) noexcept {
    if constexpr (detail::value_inline<T>) {
      p->~T();
    } else {
      delete p;
    }
    vt_bits_ = 0;
  }

  template <class T>
  bool convertible() const noexcept {
    if constexpr (detail::is_tuple<T>::value) {
      return tuple_convertible<T>(std::make_index_sequence<std::tuple_size_v<T>>{});
    } else {
      return vt()->arity == 1 && !vt()->tuple && detail::element_convertible<T>(*vt()->type);
    }
  }

  template <class Tuple, std::size_t... I>
  bool tuple_convertible(std::index_sequence<I...>) const noexcept {
    if (vt()->arity != sizeof...(I) || !vt()->tuple) return false;
    return (detail::element_convertible<std::tuple_element_t<I, Tuple>>(vt()->element_type(I)) &&
            ...);
  }

  template <class T, bool Move>
  T convert() {
    if (vt_bits_ == 0 || !convertible<T>()) fail(typeid(T));
    if constexpr (detail::is_tuple<T>::value) {
      return convert_tuple<T, Move>(std::make_index_sequence<std::tuple_size_v<T>>{});
    } else {
      return detail::element_convert<T, Move>(*vt()->type, payload());
    }
  }

  template <class Tuple, bool Move, std::size_t... I>
  Tuple convert_tuple(std::index_sequence<I...>) {
    void* p = payload();
    return Tuple(detail::element_convert<std::tuple_element_t<I, Tuple>, Move>(
        vt()->element_type(I), vt()->element(p, I))...);
  }

  [[noreturn]] void fail(const std::type_info& requested) const {
    throw bad_value_cast("greenlets: bad_value_cast: value holds " + detail::type_name(type()) +
                         ", requested " + detail::type_name(requested));
  }

  alignas(std::max_align_t) unsigned char buf_[detail::value_buffer_size];
  std::uintptr_t vt_bits_ = 0;  // the vtable's address and flags; 0 when empty
};

namespace detail {

// What the switch may do that users may not.
struct value_access {
  // Puts what `switch_to(args...)` sends into `v`, which must be empty.
  template <class... Args>
  static void assign_empty(value& v, Args&&... args) {
    v.assign_empty(std::forward<Args>(args)...);
  }
  // Moves the payload of `from` into the empty `to`, a different value.
  GREENLETS_ALWAYS_INLINE static void take(value& to, value& from) noexcept { to.take(from); }
  // `to = std::move(from)` for two different values.
  GREENLETS_ALWAYS_INLINE static void replace(value& to, value& from) noexcept {
    to.reset();
    to.take(from);
  }
};

}  // namespace detail

}  // namespace greenlets

#endif  // GREENLETS_VALUE_HPP
