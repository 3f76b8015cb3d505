// fipsproxy command line. See proxy/cli.cc.
#include "proxy/cli.h"

int main(int argc, char** argv) { return fp::proxy::cli_main(argc, argv); }
