/*
 * A stand-in main for testing the file subcommands on the host: agent-fileops-test
 * file OP ARGS... | watch PATH [1]. The real binary's main is hangar-agent.c's, which
 * dispatches the same way; agent/build.sh leaves this file out of it (*-test.c).
 */
#include <stdio.h>
#include <string.h>

#include "fileops.h"
#include "watch.h"

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "file") == 0) return hangar_file_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "watch") == 0) return hangar_watch_main(argc - 1, argv + 1);
  fprintf(stderr, "usage: %s file OP ARGS... | watch PATH [1]\n", argc > 0 ? argv[0] : "agent-fileops-test");
  return 2;
}
