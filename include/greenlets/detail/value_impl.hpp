// How a `value` holds its payload: one static table of operations per held type,
// and the rules for reading one element as another type (a C string as std::string).
//
// Part of value.hpp, which includes it; include that instead.
#ifndef GREENLETS_DETAIL_VALUE_IMPL_HPP
#define GREENLETS_DETAIL_VALUE_IMPL_HPP

#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace greenlets::detail {

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

// What a `value` needs to know about the type it holds. One static instance per type.
struct value_vtable {
  const std::type_info* type;
  std::size_t arity;                                // 1 for one value, N for a std::tuple of N
  bool tuple;                                       // several values, held as a std::tuple
  bool on_heap;                                     // the buffer holds a pointer to the payload
  bool relocate_by_memcpy;                          // moving the buffer bytes moves the payload
  bool trivial_destroy;                             // nothing to do to destroy it
  void (*relocate)(void* dst, void* src) noexcept;  // move-construct dst, destroy src
  void (*destroy)(void* storage) noexcept;
  const std::type_info& (*element_type)(std::size_t i) noexcept;
  void* (*element)(void* payload, std::size_t i) noexcept;
};

inline constexpr std::size_t value_buffer_size = 32;

template <class T>
inline constexpr bool value_inline =
    sizeof(T) <= value_buffer_size &&
    alignof(T) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<T>;

template <class T>
struct value_ops {
  static constexpr bool inline_ = value_inline<T>;

  static T* payload(void* storage) noexcept {
    if constexpr (inline_) {
      return std::launder(static_cast<T*>(storage));
    } else {
      return *static_cast<T**>(storage);
    }
  }
  static void relocate(void* dst, void* src) noexcept {
    if constexpr (inline_) {
      T* from = payload(src);
      ::new (dst) T(std::move(*from));
      from->~T();
    } else {
      std::memcpy(dst, src, sizeof(T*));
    }
  }
  static void destroy(void* storage) noexcept {
    if constexpr (inline_) {
      payload(storage)->~T();
    } else {
      delete payload(storage);
    }
  }
  template <std::size_t... I>
  static const std::type_info& element_type_impl(std::size_t i,
                                                 std::index_sequence<I...>) noexcept {
    static const std::type_info* const types[] = {&typeid(std::tuple_element_t<I, T>)...};
    return *types[i];
  }
  static const std::type_info& element_type(std::size_t i) noexcept {
    if constexpr (is_tuple<T>::value) {
      if constexpr (std::tuple_size_v<T> == 0) {
        return typeid(void);
      } else {
        return element_type_impl(i, std::make_index_sequence<std::tuple_size_v<T>>{});
      }
    } else {
      return typeid(T);
    }
  }
  template <std::size_t... I>
  static void* element_impl(T* p, std::size_t i, std::index_sequence<I...>) noexcept {
    void* const elements[] = {static_cast<void*>(&std::get<I>(*p))...};
    return elements[i];
  }
  static void* element(void* payload_ptr, std::size_t i) noexcept {
    T* p = static_cast<T*>(payload_ptr);
    if constexpr (is_tuple<T>::value) {
      if constexpr (std::tuple_size_v<T> == 0) {
        return nullptr;
      } else {
        return element_impl(p, i, std::make_index_sequence<std::tuple_size_v<T>>{});
      }
    } else {
      return p;
    }
  }

  static constexpr value_vtable vtable{
      &typeid(T),
      [] {
        if constexpr (is_tuple<T>::value) {
          return std::tuple_size_v<T>;
        } else {
          return std::size_t{1};
        }
      }(),
      is_tuple<T>::value,
      !inline_,
      !inline_ || std::is_trivially_copyable_v<T>,
      // clang-format 14 reads `inline_ &&` as an rvalue-reference declarator.
      // clang-format off
      inline_ && std::is_trivially_destructible_v<T>,
      // clang-format on
      &relocate,
      &destroy,
      &element_type,
      &element,
  };
};

// Reading one element of type `from` (stored at `p`) as a `T`: the exact type, or a
// C string read as std::string / std::string_view (string literals travel as const char*).
template <class T>
bool element_convertible(const std::type_info& from) noexcept {
  if (from == typeid(T)) return true;
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    return from == typeid(const char*) || from == typeid(char*);
  }
  return false;
}

template <class T, bool Move>
T element_convert(const std::type_info& from, void* p) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    if (from != typeid(T)) {
      const char* s = *static_cast<const char* const*>(p);
      return s ? T(s) : T();
    }
  }
  (void)from;
  if constexpr (Move) {
    return std::move(*static_cast<T*>(p));
  } else {
    return *static_cast<const T*>(p);
  }
}

}  // namespace greenlets::detail

#endif  // GREENLETS_DETAIL_VALUE_IMPL_HPP
