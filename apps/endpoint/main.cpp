// The local endpoint program: see `endpoint --help`.
#include "podworker/endpoint/server.h"

int main(int argc, char** argv) { return podworker::endpoint::endpoint_main(argc, argv); }
