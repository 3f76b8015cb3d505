#include "proxy/base/error.h"

namespace fp::base {

std::string_view token(Code code) noexcept {
  switch (code) {
#define FP_X(name, tok, sentence) \
  case Code::name:                \
    return tok;
    FP_ERROR_CODES(FP_X)
#undef FP_X
  }
  return "unknown";
}

std::string_view describe(Code code) noexcept {
  switch (code) {
#define FP_X(name, tok, sentence) \
  case Code::name:                \
    return sentence;
    FP_ERROR_CODES(FP_X)
#undef FP_X
  }
  return "unknown error";
}

std::string_view side_name(Side side) noexcept {
  switch (side) {
    case Side::Downstream:
      return "downstream";
    case Side::Upstream:
      return "upstream";
    case Side::Internal:
      return "internal";
  }
  return "internal";
}

std::string Error::message() const {
  std::string out(token(code));
  out += ": ";
  out += detail.empty() ? std::string(describe(code)) : detail;
  return out;
}

}  // namespace fp::base
