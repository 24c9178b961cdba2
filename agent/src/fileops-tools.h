/*
 * The busybox tools that the file scripts run (rm, mkdir -p, mv -T, cat) and the pieces
 * of the shell they rely on, done natively for fileops.c. Each reproduces the tool's
 * observable behaviour: the same system calls on the same names in the same order, the
 * same exit status and the same stderr messages (so scriptFailure() classifies them
 * alike). Below the path it is given, a tool reaches entries through directory
 * descriptors and never follows a symlink the tool would not.
 */
#ifndef HANGAR_FILEOPS_TOOLS_H
#define HANGAR_FILEOPS_TOOLS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- stderr, as busybox words it ---- */

/* "APPLET: MESSAGE\n" in one write. errno is kept. */
void fo_msg(const char *applet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "APPLET: MESSAGE: strerror(err)\n" in one write. errno is kept. */
void fo_perror(const char *applet, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- stdout, buffered ---- */

/* Forgets what is buffered and any earlier write error (a new operation starts). */
void fo_out_reset(void);
/* Appends to the stdout buffer (flushed when full and by fo_out_flush). */
void fo_out(const void *data, size_t n);
void fo_out_str(const char *s);
/* Writes what is buffered; 0, or -1 with errno (also remembered for later calls). */
int fo_out_flush(void);
/* Appends `%f %s %y\n` of st as busybox stat prints it under TZ=UTC0; -1 if the time cannot be shown. */
int fo_out_stat_line(const struct stat *st);

/* ---- small helpers ---- */

/* Out of memory in a one-shot tool: says so and aborts (no half-done step is worth more). */
void fo_oom(void) __attribute__((noreturn));
void *fo_xmalloc(size_t n); /* fo_oom() when there is none */
char *fo_xstrdup(const char *s);
char *fo_xstrndup(const char *s, size_t n);
/* write(2) until done; 0 or -1 with errno. */
int fo_write_all(int fd, const void *buf, size_t n);

/* A growable string, used for the paths busybox would print. */
struct fo_path {
  char *s;
  size_t len, cap;
};
void fo_path_set(struct fo_path *p, const char *s);
/* Appends "/name" (no doubled slash, as busybox's concat_path_file) and returns the old length. */
size_t fo_path_push(struct fo_path *p, const char *name);
void fo_path_pop(struct fo_path *p, size_t old_len);
void fo_path_free(struct fo_path *p);

/* ---- the copy loop of cat / busybox bb_copyfd_eof ---- */

enum fo_copy_result { FO_COPY_OK = 0, FO_COPY_READ_ERROR, FO_COPY_WRITE_ERROR };
/* Copies `in` to `out` until end of file; on failure errno says why. */
enum fo_copy_result fo_copy_fd(int in, int out);

/* ---- the tools ---- */

/* flags of fo_remove_file, as busybox's FILEUTILS_* */
#define FO_RM_FORCE 1
#define FO_RM_RECUR 2

/* busybox remove_file(path, flags): 0 removed (or already gone under FORCE), -1 failed (said on stderr). */
int fo_remove_file(int base, const char *path, int flags, const char *applet);
/* `rm -f [-r] -- PATH` run with its cwd at `base`: the exit status (0 or 1). */
int fo_rm(int base, const char *path, bool recursive);
/* `mkdir -p -- PATH`: the exit status (0 or 1). */
int fo_mkdir_p(const char *path);
/* `mv [-f] -T -- SRC DST` run with its cwd at `base`: the exit status (0 or 1). */
int fo_mv_no_target_dir(int base, const char *src, const char *dst);

#endif
