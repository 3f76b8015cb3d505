// fp_module() globs filters/*.cc non-recursively, so the http1/ sources are compiled through
// this one translation unit. When CMakeLists.txt switches fp_module to GLOB_RECURSE, delete this
// file. (Each included file keeps its helpers in its own namespace so they do not collide.)
#include "filters/http1/head.cc"              // NOLINT(bugprone-suspicious-include)
#include "filters/http1/parser.cc"            // NOLINT(bugprone-suspicious-include)
