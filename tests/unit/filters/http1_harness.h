#pragma once
// Drives a RequestParser/ResponseParser like the proxy will: feeds pieces, forwards heads
// (serialized), body ranges (slices of the fed buffer) and tails, and records what happened.

#include <string>
#include <string_view>
#include <vector>

#include "filters/http1/parser.h"

namespace fp::filters::http1::test {

struct Outcome {
  std::string forwarded;            // what would reach the upstream (or the client)
  std::vector<EventKind> events;    // every event but NeedMore
  size_t heads = 0;
  size_t messages = 0;
  size_t body_events = 0;
  bool error = false;
  ParseError err;
  size_t discarded = 0;
  std::vector<std::string> methods;  // request methods / response statuses, in order
  std::vector<Framing> framings;
};

// Feeds `input` in pieces of `piece` bytes (0 = all at once). Stops at the first error.
template <class P>
Outcome drive(P& p, std::string_view input, size_t piece = 0, bool eof = false) {
  Outcome o;
  if (piece == 0) piece = input.size() ? input.size() : 1;
  auto handle = [&](std::string_view in) -> bool {
    for (;;) {
      Event ev = p.next(in);
      if (ev.kind != EventKind::NeedMore) o.events.push_back(ev.kind);
      switch (ev.kind) {
        case EventKind::NeedMore: return true;
        case EventKind::Head:
          ++o.heads;
          if constexpr (requires { p.request(); }) {
            p.request().serialize_to(o.forwarded);
            o.methods.push_back(p.request().method);
            o.framings.push_back(p.request().framing);
          } else {
            p.response().serialize_to(o.forwarded);
            o.methods.push_back(std::to_string(p.response().status));
            o.framings.push_back(p.response().framing);
          }
          break;
        case EventKind::Body:
          ++o.body_events;
          o.forwarded.append(in.substr(ev.offset, ev.length));
          break;
        case EventKind::MessageComplete:
          ++o.messages;
          o.forwarded.append(ev.tail);
          break;
        case EventKind::Error:
          o.error = true;
          o.err = p.error();
          return false;
        case EventKind::Discard:
          o.discarded += ev.consumed;
          break;
      }
      in.remove_prefix(ev.consumed);
      if (in.empty() && ev.kind != EventKind::Head && ev.kind != EventKind::Body) {
        // A completed message may still have a MessageComplete to report (consumed 0).
        if (ev.kind == EventKind::MessageComplete || ev.kind == EventKind::Discard) return true;
      }
    }
  };
  for (size_t off = 0; off < input.size(); off += piece) {
    if (!handle(input.substr(off, piece))) return o;
  }
  if (input.empty() && !handle({})) return o;
  // Drain a pending MessageComplete (no body) with an empty buffer.
  if (!handle({})) return o;
  if (eof) {
    Event ev = p.finish();
    if (ev.kind == EventKind::Error) {
      o.error = true;
      o.err = p.error();
    } else if (ev.kind == EventKind::MessageComplete) {
      ++o.messages;
      o.forwarded.append(ev.tail);
    }
  }
  return o;
}

inline Outcome request(std::string_view input, size_t piece = 0, const Limits& limits = Limits{}) {
  RequestParser p(limits);
  return drive(p, input, piece);
}

}  // namespace fp::filters::http1::test
