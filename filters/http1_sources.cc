// fp_module() globs filters/*.cc non-recursively, so the http1/ sources are compiled through
// this one translation unit. When CMakeLists.txt switches fp_module to GLOB_RECURSE, delete this
// file. (Helpers live in per-file namespaces so the included files do not collide.)
#include "filters/http1/head.cc"         // NOLINT(bugprone-suspicious-include)
#include "filters/http1/parser.cc"       // NOLINT(bugprone-suspicious-include)
#include "filters/http1/http_filter.cc"  // NOLINT(bugprone-suspicious-include)
#include "filters/http1/xfcc.cc"         // NOLINT(bugprone-suspicious-include)
#include "filters/http1/forwarded.cc"    // NOLINT(bugprone-suspicious-include)
#include "filters/http1/log_fields.cc"   // NOLINT(bugprone-suspicious-include)
