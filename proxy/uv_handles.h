#pragma once
// One libuv stream handle that is a TCP socket or a Unix-domain socket, decided at run time.
// The owner initialises exactly one member (uv_tcp_init / uv_pipe_init) and uses `stream` and
// `handle` for the common API; libuv holds its address, so the owner must not move.

#include <uv.h>

namespace fp::proxy {

union StreamHandle {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

}  // namespace fp::proxy
