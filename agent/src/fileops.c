// `hangar-agent file OP ARGS...`: the file scripts of src/service/file-scripts.ts, done
// natively. Each op_* function below follows its script line by line (the line is quoted
// beside the code that does it), with the shell's own semantics:
//
//   - `[ -e P ]`, `[ -d P ]`, `[ -f P ]` stat P (following symlinks), `[ -L P ]` lstats it;
//     `exists P` is `[ -e P ] || [ -L P ]`;
//   - `${X%/*}` drops the last "/..." (X unchanged when it has no slash), `${X##*/}` keeps
//     what follows the last slash;
//   - `cd` is ash's logical cd: the directory is entered once, and what follows names
//     entries relative to it (here: a directory descriptor and the *at calls), so a parent
//     symlink flipped meanwhile cannot split the operation across two directories;
//   - the tools (stat, rm, mkdir -p, mv -T, cat, chmod) are fileops-tools.c's.
//
// The messages ash itself prints carry "hangar-files" (the $0 file-service.ts gives the
// scripts) and the line numbers ash reports for those scripts.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fileops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileops-tools.h"

/* SCRIPT_EXIT of file-scripts.ts */
enum {
  EXIT_NOT_FOUND = 3,
  EXIT_IS_DIRECTORY = 4,
  EXIT_NOT_DIRECTORY = 5,
  EXIT_NOT_REGULAR = 6,
  EXIT_EXISTS = 7,
  EXIT_SHORT_BODY = 8,
  EXIT_TOOL_FAILED = 9,
  EXIT_PARENT_MISSING = 10,
  EXIT_PARENT_NOT_DIRECTORY = 11,
};

/* ash's name for the script in its messages: file-service.ts runs `sh -c SCRIPT hangar-files ARGS`. */
#define SH_NAME "hangar-files"
/* The line numbers ash gives the scripts' commands that can fail with a message of its own. */
#define LINE_LIST_CD 5
#define LINE_WRITE_CD 12
#define LINE_WRITE_CAT 16
#define LINE_READ_EXEC 6

/* ================================================================ the shell's tests and expansions */

static bool test_e(int base, const char *p) {
  struct stat st;
  return fstatat(base, p, &st, 0) == 0;
}

static bool test_type(int base, const char *p, mode_t type) {
  struct stat st;
  return fstatat(base, p, &st, 0) == 0 && (st.st_mode & S_IFMT) == type;
}

static bool test_L(int base, const char *p) {
  struct stat st;
  return fstatat(base, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* exists() { [ -e "$1" ] || [ -L "$1" ]; } */
static bool sh_exists(int base, const char *p) { return test_e(base, p) || test_L(base, p); }

// ${X%/*}
static char *sh_drop_last(const char *x) {
  const char *slash = strrchr(x, '/');
  return slash ? fo_xstrndup(x, (size_t)(slash - x)) : fo_xstrdup(x);
}

// ${X%/*} with an empty result made "/", as `[ -n "$p" ] || p=/`
static char *sh_parent(const char *x) {
  char *p = sh_drop_last(x);
  if (*p) return p;
  free(p);
  return fo_xstrdup("/");
}

// ${X##*/}
static const char *sh_last(const char *x) {
  const char *slash = strrchr(x, '/');
  return slash ? slash + 1 : x;
}

static char *concat(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = fo_xmalloc(na + nb + 1);
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  return s;
}

/* ash's errmsg(): its own words for "missing" in redirection messages, strerror otherwise. */
static const char *sh_errmsg(int e, const char *missing) { return (e == ENOENT || e == ENOTDIR) ? missing : strerror(e); }

/*
 * The directory ash's logical `cd DEST` enters: DEST (relative ones against the current
 * directory) with "." and ".." resolved by name, not through symlinks. NULL when a
 * relative DEST meets an unknown current directory (ash then uses DEST as it is).
 */
static char *sh_logical_dir(const char *dest) {
  struct fo_path p = {0};
  if (dest[0] == '/') {
    fo_path_set(&p, "/");
  } else {
    char *cwd = getcwd(NULL, 0);
    if (!cwd) return NULL;
    fo_path_set(&p, cwd);
    free(cwd);
  }
  for (const char *s = dest; *s;) {
    while (*s == '/') s++;
    const char *e = s;
    while (*e && *e != '/') e++;
    size_t n = (size_t)(e - s);
    if (n == 2 && s[0] == '.' && s[1] == '.') {
      char *slash = strrchr(p.s, '/');
      fo_path_pop(&p, slash && slash != p.s ? (size_t)(slash - p.s) : 1);
    } else if (n > 0 && !(n == 1 && s[0] == '.')) {
      char *name = fo_xstrndup(s, n);
      fo_path_push(&p, name);
      free(name);
    }
    s = e;
  }
  return p.s;
}

/*
 * `cd -- DEST`: a descriptor of the directory, or -1 after ash's message. chdir's own check
 * (search permission on the directory) is made by looking "." up through the descriptor.
 */
static int sh_cd(const char *dest, int line) {
  if (!*dest) dest = ".";
  char *logical = sh_logical_dir(dest);
  int fd = open(logical ? logical : dest, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st;
    if (fstatat(fd, ".", &st, 0) < 0) {
      int e = errno;
      close(fd);
      fd = -1;
      errno = e;
    }
  }
  if (fd < 0) fo_perror(SH_NAME, errno, "cd: line %d: can't cd to %s", line, dest);
  free(logical);
  return fd;
}

/* `> FILE` under `set -C` (ash's noclobber open): an fd, or -1 after ash's message. */
static int sh_create_noclobber(int base, const char *name, int line) {
  struct stat st;
  int fd;
  if (fstatat(base, name, &st, 0) < 0) {
    fd = openat(base, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  } else if (!S_ISREG(st.st_mode)) {
    fd = openat(base, name, O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      close(fd);
      fd = -1;
      errno = EEXIST;
    }
  } else {
    fd = -1;
    errno = EEXIST;
  }
  if (fd < 0) fo_msg(SH_NAME, "line %d: can't create %s: %s", line, name, sh_errmsg(errno, "nonexistent directory"));
  return fd;
}

/* `stat -c '%f %s %y' -- P || exit 9` (busybox stat lstats) */
static int stat_or_fail(int base, const char *p) {
  struct stat st;
  if (fstatat(base, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    fo_perror("stat", errno, "can't stat '%s'", p);
    return EXIT_TOOL_FAILED;
  }
  if (fo_out_stat_line(&st) < 0) {
    fo_msg("stat", "can't show the time of '%s'", p);
    return EXIT_TOOL_FAILED;
  }
  return 0;
}

/* ================================================================ stat */

static int op_stat(char **arg) {
  const char *p = arg[0];
  if (!sh_exists(AT_FDCWD, p)) return EXIT_NOT_FOUND; /* exists "$1" || exit 3 */
  return stat_or_fail(AT_FDCWD, p);                    /* stat ... -- "$1" || exit 9 */
}

/* ================================================================ list */

struct names {
  char **v;
  size_t n, cap;
};

static void names_add(struct names *l, const char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    char **v = realloc(l->v, l->cap * sizeof *v);
    if (!v) fo_oom();
    l->v = v;
  }
  l->v[l->n++] = fo_xstrdup(s);
}

static void names_free(struct names *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
 * `for f in .* *` in the directory: ash's glob reads the directory, `.*` takes the names
 * that begin with a dot ("." and ".." too), `*` the others, each sorted by strcmp; a
 * pattern that matches nothing (or a directory that cannot be read) stays as it is.
 */
static void glob_dot_star(int dfd, struct names *words) {
  struct names dots = {0}, rest = {0};
  int rfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
  DIR *dir = rfd < 0 ? NULL : fdopendir(rfd);
  if (!dir && rfd >= 0) close(rfd);
  if (dir) {
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) names_add(de->d_name[0] == '.' ? &dots : &rest, de->d_name);
    closedir(dir);
  }
  if (dots.n > 1) qsort(dots.v, dots.n, sizeof *dots.v, cmp_names);
  if (rest.n > 1) qsort(rest.v, rest.n, sizeof *rest.v, cmp_names);
  if (dots.n == 0) names_add(&dots, ".*");
  if (rest.n == 0) names_add(&rest, "*");
  for (size_t i = 0; i < dots.n; i++) names_add(words, dots.v[i]);
  for (size_t i = 0; i < rest.n; i++) names_add(words, rest.v[i]);
  names_free(&dots);
  names_free(&rest);
}

static int op_list(char **arg) {
  const char *p = arg[0];
  if (!test_e(AT_FDCWD, p)) return EXIT_NOT_FOUND;              /* [ -e "$1" ] || exit 3 */
  if (!test_type(AT_FDCWD, p, S_IFDIR)) return EXIT_NOT_DIRECTORY; /* [ -d "$1" ] || exit 5 */
  int dfd = sh_cd(p, LINE_LIST_CD);                                 /* cd -- "$1" || exit 9 */
  if (dfd < 0) return EXIT_TOOL_FAILED;
  struct names words = {0};
  glob_dot_star(dfd, &words); /* for f in .* *; do */
  for (size_t i = 0; i < words.n; i++) {
    const char *f = words.v[i];
    if (strcmp(f, ".") == 0 || strcmp(f, "..") == 0) continue; /* case $f in .|..) continue */
    /* `exists "$f" || continue` then `stat -- "$f"`: one lstat answers both (an entry that
     * lstat sees exists for the shell too). One that vanished is skipped; the script would
     * print "-" instead when it vanished between its two looks, which the reader skips too. */
    struct stat st;
    if (fstatat(dfd, f, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (fo_out_stat_line(&st) < 0) fo_out_str("-\n");
    fo_out(f, strlen(f) + 1); /* printf '%s\0' "$f" */
  }
  names_free(&words);
  close(dfd);
  return 0;
}

/* ================================================================ mkdir */

static int op_mkdir(char **arg) {
  const char *p = arg[0];
  /* if exists "$1" && [ ! -d "$1" ]; then exit 5; fi */
  if (sh_exists(AT_FDCWD, p) && !test_type(AT_FDCWD, p, S_IFDIR)) return EXIT_NOT_DIRECTORY;
  if (fo_mkdir_p(p) != 0) return EXIT_TOOL_FAILED; /* mkdir -p -- "$1" || exit 9 */
  return stat_or_fail(AT_FDCWD, p);
}

/* ================================================================ remove, cleanup */

static int op_remove(char **arg) {
  const char *p = arg[0];
  if (!sh_exists(AT_FDCWD, p)) return EXIT_NOT_FOUND;                /* exists "$1" || exit 3 */
  return fo_rm(AT_FDCWD, p, true) != 0 ? EXIT_TOOL_FAILED : 0;        /* rm -rf -- "$1" || exit 9 */
}

static int op_cleanup(char **arg) { return fo_rm(AT_FDCWD, arg[0], false); /* rm -f -- "$1" */ }

/* ================================================================ move */

static int op_move(char **arg) {
  const char *from = arg[0], *to = arg[1];
  if (!sh_exists(AT_FDCWD, from)) return EXIT_NOT_FOUND; /* exists "$1" || exit 3 */
  if (sh_exists(AT_FDCWD, to)) return EXIT_EXISTS;       /* exists "$2" && exit 7 */
  char *p = sh_parent(to);                               // p=${2%/*}; [ -n "$p" ] || p=/
  int rc;
  if (!sh_exists(AT_FDCWD, p))
    rc = EXIT_PARENT_MISSING; /* exists "$p" || exit 10 */
  else if (!test_type(AT_FDCWD, p, S_IFDIR))
    rc = EXIT_PARENT_NOT_DIRECTORY; /* [ -d "$p" ] || exit 11 */
  else if (fo_mv_no_target_dir(AT_FDCWD, from, to) != 0)
    rc = EXIT_TOOL_FAILED; /* mv -T -- "$1" "$2" || exit 9 */
  else
    rc = stat_or_fail(AT_FDCWD, to);
  free(p);
  return rc;
}

/* ================================================================ write */

struct write_state {
  int dfd;     /* the directory entered (cd -- "$d") */
  char *first; /* the topmost directory this call creates, or NULL */
  char *t;     /* ./$2 */
};

/* clean() { rm -f -- "$t"; [ -z "$first" ] || rm -rf -- "$first"; }   (run after the cd) */
static void write_clean(const struct write_state *w) {
  (void)fo_rm(w->dfd, w->t, false);
  if (w->first) (void)fo_rm(w->dfd, w->first, true);
}

/* cat > "$t": stdin into the new temporary file; false after cat's or ash's message. */
static bool write_body(const struct write_state *w) {
  int fd = sh_create_noclobber(w->dfd, w->t, LINE_WRITE_CAT);
  if (fd < 0) return false;
  bool ok = true;
  enum fo_copy_result r = fo_copy_fd(0, fd);
  if (r != FO_COPY_OK) {
    fo_perror("cat", errno, r == FO_COPY_READ_ERROR ? "read error" : "write error");
    ok = false;
  }
  /* The shell would not look at close(); a late write error (a network file system's)
   * still means the bytes are not all there, so it fails the write here. */
  if (close(fd) < 0 && ok) {
    fo_perror("cat", errno, "write error");
    ok = false;
  }
  return ok;
}

/* [ -n "$3" ] && [ "$(stat -c %s -- "$t")" != "$3" ]: true when the size is not the one expected. */
static bool write_size_differs(const struct write_state *w, const char *expected) {
  if (!*expected) return false;
  char size[32] = "";
  struct stat st;
  if (fstatat(w->dfd, w->t, &st, AT_SYMLINK_NOFOLLOW) < 0)
    fo_perror("stat", errno, "can't stat '%s'", w->t);
  else
    snprintf(size, sizeof size, "%llu", (unsigned long long)st.st_size);
  return strcmp(size, expected) != 0;
}

/* if [ -f "$b" ] && [ ! -L "$b" ]; then chmod "$(stat -c %a -- "$b")" -- "$t" 2>/dev/null; fi */
static void write_keep_mode(const struct write_state *w, const char *b) {
  if (!test_type(w->dfd, b, S_IFREG) || test_L(w->dfd, b)) return;
  struct stat st;
  if (fstatat(w->dfd, b, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    fo_perror("stat", errno, "can't stat '%s'", b);
    return; /* then `chmod ""` fails, quietly */
  }
  /* chmod's failure goes to /dev/null and the script goes on: so does this. */
  (void)fchmodat(w->dfd, w->t, st.st_mode & 07777, 0);
}

static int op_write(char **arg) {
  const char *path = arg[0], *tmp = arg[1], *expected = arg[2];
  if (test_type(AT_FDCWD, path, S_IFDIR)) return EXIT_IS_DIRECTORY; /* [ -d "$1" ] && exit 4 */
  struct write_state w = {.dfd = -1};
  char *d = sh_parent(path); // d=${1%/*}; [ -n "$d" ] || d=/
  char *a = fo_xstrdup(d);   /* first=; a=$d */
  char *b = NULL;
  int rc = 0;
  // while ! exists "$a"; do first=$a; a=${a%/*}; [ -n "$a" ] || a=/; done
  while (!sh_exists(AT_FDCWD, a)) {
    free(w.first);
    w.first = a;
    a = sh_parent(w.first);
    if (strcmp(a, w.first) == 0) {
      /* A relative path whose first name is missing: the script loops here for ever (until
       * the server's timeout). Say what is missing instead. */
      fo_perror(SH_NAME, ENOENT, "can't find a directory above %s", path);
      rc = EXIT_NOT_FOUND;
      goto out;
    }
  }
  if (!test_type(AT_FDCWD, a, S_IFDIR)) { /* [ -d "$a" ] || exit 5 */
    rc = EXIT_NOT_DIRECTORY;
    goto out;
  }
  if (w.first && fo_mkdir_p(d) != 0) { /* if [ -n "$first" ]; then mkdir -p -- "$d" || exit 9; fi */
    rc = EXIT_TOOL_FAILED;
    goto out;
  }
  w.dfd = sh_cd(d, LINE_WRITE_CD); /* cd -- "$d" || exit 9 */
  if (w.dfd < 0) {
    rc = EXIT_TOOL_FAILED;
    goto out;
  }
  b = concat("./", sh_last(path)); // b=./${1##*/}
  w.t = concat("./", tmp);         /* t=./$2 */
  if (!write_body(&w)) {           /* cat > "$t" || { clean; exit 9; } */
    write_clean(&w);
    rc = EXIT_TOOL_FAILED;
  } else if (write_size_differs(&w, expected)) { /* ... then clean; exit 8; fi */
    write_clean(&w);
    rc = EXIT_SHORT_BODY;
  } else {
    write_keep_mode(&w, b);
    if (fo_mv_no_target_dir(w.dfd, w.t, b) != 0) { /* mv -f -T -- "$t" "$b" || { clean; exit 9; } */
      write_clean(&w);
      rc = EXIT_TOOL_FAILED;
    } else {
      rc = stat_or_fail(w.dfd, b);
    }
  }
out:
  if (w.dfd >= 0) close(w.dfd);
  free(w.first);
  free(w.t);
  free(a);
  free(b);
  free(d);
  return rc;
}

/* ================================================================ read */

static int op_read(char **arg) {
  const char *p = arg[0];
  if (!test_e(AT_FDCWD, p)) return EXIT_NOT_FOUND;                  /* [ -e "$1" ] || exit 3 */
  if (test_type(AT_FDCWD, p, S_IFDIR)) return EXIT_IS_DIRECTORY;    /* [ -d "$1" ] && exit 4 */
  if (!test_type(AT_FDCWD, p, S_IFREG)) return EXIT_NOT_REGULAR;    /* [ -f "$1" ] || exit 6 */
  /* exec 3< "$1" || exit 9: a failed redirection of `exec` ends ash at once, with status 1.
   * O_NONBLOCK: should a FIFO be put there meanwhile, the open must not wait for a writer
   * (the check below then refuses it). */
  int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    fo_msg(SH_NAME, "line %d: can't open %s: %s", LINE_READ_EXEC, p, sh_errmsg(errno, "no such file"));
    return 1;
  }
  /* [ -f /proc/self/fd/3 ] || { [ -d /proc/self/fd/3 ] && exit 4; exit 6; } */
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) { /* neither test can then be true */
    rc = EXIT_NOT_REGULAR;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = S_ISDIR(st.st_mode) ? EXIT_IS_DIRECTORY : EXIT_NOT_REGULAR;
    goto out;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
    fo_perror("cat", errno, "read error");
    rc = 1;
    goto out;
  }
  /* n=$(stat -L -c %s /proc/self/fd/3); printf '%s\n' "$n": the size of the file opened */
  char head[32];
  int n = snprintf(head, sizeof head, "%llu\n", (unsigned long long)st.st_size);
  fo_out(head, (size_t)n);
  if (fo_out_flush() < 0) {
    fo_perror("cat", errno, "write error");
    rc = 1;
    goto out;
  }
  /* exec cat <&3: to the end of the file (more than the size if it grew; the reader keeps the size) */
  enum fo_copy_result r = fo_copy_fd(fd, 1);
  if (r != FO_COPY_OK) {
    fo_perror("cat", errno, r == FO_COPY_READ_ERROR ? "read error" : "write error");
    rc = 1;
  }
out:
  close(fd);
  return rc;
}

/* ================================================================ dispatch */

static const struct {
  const char *name;
  int (*run)(char **arg);
} OPS[] = {
    {"stat", op_stat}, {"list", op_list}, {"mkdir", op_mkdir}, {"remove", op_remove},
    {"move", op_move}, {"write", op_write}, {"cleanup", op_cleanup}, {"read", op_read},
};

/* The most positional arguments an operation reads ($1..$3). */
#define MAX_ARGS 3

int hangar_file_main(int argc, char **argv) {
  if (argc < 2) {
    fo_msg("hangar-agent file", "usage: hangar-agent file stat|list|mkdir|remove|move|write|cleanup|read ARGS...");
    return 2;
  }
  /* Like "$1".."$3": an argument not given is the empty string. */
  char *arg[MAX_ARGS];
  for (int i = 0; i < MAX_ARGS; i++) arg[i] = 2 + i < argc ? argv[2 + i] : "";
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
    if (strcmp(argv[1], OPS[i].name) != 0) continue;
    fo_out_reset();
    int rc = OPS[i].run(arg);
    if (fo_out_flush() < 0 && rc == 0) {
      /* The reader went away: the answer cannot arrive, so it is not a success. */
      fo_perror("hangar-agent file", errno, "write error");
      if (rc == 0) rc = strcmp(argv[1], "read") == 0 ? 1 : EXIT_TOOL_FAILED;
    }
    return rc;
  }
  fo_msg("hangar-agent file", "unknown operation '%s'", argv[1]);
  return 2;
}
