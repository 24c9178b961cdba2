/*
 * hangar-agent's file subcommands: `hangar-agent file OP ARGS...`.
 *
 * Each OP is a native reproduction of the shell script of the same name in
 * src/service/file-scripts.ts (FILE_SCRIPTS) as the machine's busybox runs it: the same
 * positional arguments (a missing one is ""), the same use of stdin, the same bytes on
 * stdout, the same exit statuses (SCRIPT_EXIT) and the same messages on stderr, so the
 * server parses and classifies both alike. OP is one of stat, list, mkdir, remove, move,
 * write, cleanup, read.
 */
#ifndef HANGAR_FILEOPS_H
#define HANGAR_FILEOPS_H

/*
 * argv[0] is the subcommand's name ("file"), argv[1] the operation, argv[2...] its
 * arguments. Returns the exit status. Reads fd 0, writes fds 1 and 2; exits nothing,
 * leaves no descriptor open and the umask as it found it.
 */
int hangar_file_main(int argc, char **argv);

#endif
