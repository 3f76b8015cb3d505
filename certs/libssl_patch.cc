#include "certs/libssl_patch.h"

#include <dlfcn.h>

namespace fp::certs {
namespace {

template <class Fn>
Fn resolve(const char* name) {
  // RTLD_DEFAULT: the libssl the process actually loaded (our rpath, or LD_LIBRARY_PATH).
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

struct PatchApi {
  decltype(&FIPSPROXY_libssl_patch_marker) marker = resolve<decltype(marker)>("FIPSPROXY_libssl_patch_marker");
  decltype(&FIPSPROXY_SSL_CTX_set_policy) set_policy = resolve<decltype(set_policy)>("FIPSPROXY_SSL_CTX_set_policy");
  decltype(&FIPSPROXY_SSL_CTX_get_policy) get_policy = resolve<decltype(get_policy)>("FIPSPROXY_SSL_CTX_get_policy");
  decltype(&FIPSPROXY_SSL_get_refusal) get_refusal = resolve<decltype(get_refusal)>("FIPSPROXY_SSL_get_refusal");
};

const PatchApi& api() {
  static const PatchApi a;  // thread-safe static init; the loaded libraries never change
  return a;
}

}  // namespace

const char* patch_marker() { return api().marker ? api().marker() : nullptr; }

int patch_set_policy(SSL_CTX* ctx, uint32_t bits) {
  return api().set_policy ? api().set_policy(ctx, bits) : 0;
}

uint32_t patch_get_policy(const SSL_CTX* ctx) { return api().get_policy ? api().get_policy(ctx) : 0; }

int patch_get_refusal(const SSL* ssl) { return api().get_refusal ? api().get_refusal(ssl) : 0; }

}  // namespace fp::certs
