/*
 * `hangar-agent watch PATH [1]`: the changes in a directory, as lines on stdout.
 *
 * One line per event, written as it happens (one write each):
 *
 *     KIND \t PATH \n
 *
 * KIND is create, write, remove or rename (rename for both the name moved away and the
 * name moved to), or overflow when the kernel dropped events (PATH is then the watched
 * directory: rescan it). PATH is the absolute machine path of the entry, under PATH as
 * given (a relative one is made absolute against the current directory). In a PATH a
 * backslash, a tab and a newline are written as \\, \t and \n, so every line is one event.
 *
 * With "1", subdirectories are watched too, and new ones as they appear (what a new
 * directory already holds when its watch starts is announced as create). Symlinks are
 * never followed below PATH; /proc, /sys and cgroup file systems below it are not entered.
 *
 * Exit status: 3 PATH does not exist, 5 it is not a directory, 9 inotify failed (said on
 * stderr); 0 once stdout is closed, or once PATH itself is removed or renamed (after its
 * remove or rename line). SIGPIPE is ignored from the start.
 */
#ifndef HANGAR_WATCH_H
#define HANGAR_WATCH_H

/* argv[0] is the subcommand's name ("watch"), argv[1] the directory, argv[2] "1" for recursive. */
int hangar_watch_main(int argc, char **argv);

#endif
