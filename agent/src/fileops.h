/*
 * hangar-agent's file subcommands: `hangar-agent file OP ARGS...`.
 *
 * Each OP is a native reproduction of the shell script of the same name in
 * src/service/file-scripts.ts (FILE_SCRIPTS) as the machine's busybox runs it: the same
 * positional arguments (a missing one is ""), the same use of stdin, the same bytes on
 * stdout, the same exit statuses (SCRIPT_EXIT) and the same messages on stderr, so the
 * server parses and classifies both alike. OP is one of stat, list, mkdir, remove, move,
 * write, cleanup, read (archive and extract stay scripts: they need tar).
 *
 * Where it deliberately does otherwise (agent/test/fileops.test.ts shows the first two):
 *   - write of a relative path whose first name is missing: the script loops for ever;
 *     this answers 3. (The API only sends absolute, normalised paths.)
 *   - trees deeper than PATH_MAX: busybox's rm (and mv's copy across file systems) fails
 *     with "File name too long"; this works through directory descriptors and succeeds.
 *   - races: a directory replaced by a symlink while rm -rf or a cross-device copy walks
 *     it is removed (or copied) as the symlink, never followed; a list entry that vanishes
 *     meanwhile is skipped where the script could print "-" (which the reader skips); a
 *     FIFO put in place of a file being read is refused (6) instead of blocking the open.
 *   - a failing close() of the uploaded file (a network file system's late write error)
 *     fails the write (9) instead of being ignored; stdin or stdout left non-blocking are
 *     waited on instead of failing with EAGAIN; /proc is not needed by read.
 *   - times are always printed in UTC, whatever TZ says (the scripts get TZ=UTC0).
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
