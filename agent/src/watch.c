/*
 * `hangar-agent watch PATH [1]`: inotify events of a directory as lines (see watch.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fileops-tools.h"

#define EXIT_NOT_FOUND 3
#define EXIT_NOT_DIRECTORY 5
#define EXIT_FAILED 9

#define WATCH_MASK (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_EXCL_UNLINK | IN_ONLYDIR)

/* Pseudo file systems whose inotify events never come (or mean nothing) and whose trees are big. */
#define PROC_MAGIC 0x9fa0
#define SYSFS_MAGIC 0x62656572
#define CGROUP_MAGIC 0x27e0eb
#define CGROUP2_MAGIC 0x63677270

struct watch {
  int fd;
  bool recursive;
  int root_wd;
  char *root;
  /* The path of each watched directory, by watch descriptor (the kernel hands them out
   * small and increasing); NULL for none. */
  char **path;
  size_t cap;
  bool told_limit;
};

/* What handling an event asks of the loop. */
enum step { GO_ON, STOP_OK, STOP_FAILED };

static const char *path_of(const struct watch *w, int wd) { return wd >= 0 && (size_t)wd < w->cap ? w->path[wd] : NULL; }

static void set_path(struct watch *w, int wd, const char *p) {
  if ((size_t)wd >= w->cap) {
    size_t cap = w->cap ? w->cap : 64;
    while (cap <= (size_t)wd) cap *= 2;
    char **v = realloc(w->path, cap * sizeof *v);
    if (!v) fo_oom();
    memset(v + w->cap, 0, (cap - w->cap) * sizeof *v);
    w->path = v;
    w->cap = cap;
  }
  free(w->path[wd]);
  w->path[wd] = fo_xstrdup(p);
}

static void forget(struct watch *w, int wd) {
  if (wd < 0 || (size_t)wd >= w->cap) return;
  free(w->path[wd]);
  w->path[wd] = NULL;
}

static char *join(const char *dir, const char *name) {
  struct fo_path p = {0};
  fo_path_set(&p, dir);
  fo_path_push(&p, name);
  return p.s;
}

/* One event line, in one write. */
static enum step emit(const char *kind, const char *path) {
  size_t n = strlen(kind) + 2 * strlen(path) + 3;
  char *line = fo_xmalloc(n);
  char *o = line;
  for (const char *k = kind; *k;) *o++ = *k++;
  *o++ = '\t';
  for (const char *s = path; *s; s++) {
    if (*s == '\\' || *s == '\n' || *s == '\t') {
      *o++ = '\\';
      *o++ = *s == '\n' ? 'n' : *s == '\t' ? 't' : '\\';
    } else {
      *o++ = *s;
    }
  }
  *o++ = '\n';
  int rc = fo_write_all(1, line, (size_t)(o - line));
  int e = errno;
  free(line);
  if (rc == 0) return GO_ON;
  if (e == EPIPE) return STOP_OK; /* the reader is gone: nothing left to do */
  fo_perror("watch", e, "write error");
  return STOP_FAILED;
}

static bool pseudo_fs(int fd) {
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0) return false;
  return sf.f_type == PROC_MAGIC || sf.f_type == SYSFS_MAGIC || sf.f_type == CGROUP_MAGIC || sf.f_type == CGROUP2_MAGIC;
}

static enum step add_tree(struct watch *w, int parent_fd, const char *name, const char *path, const char *own_kind, bool announce);

/* Say `kind` for `path` now, unless kind is NULL. */
static enum step maybe_emit(const char *kind, const char *path) { return kind ? emit(kind, path) : GO_ON; }

/*
 * Watch the directory `path` (reached as `name` in `parent_fd`, without following a
 * symlink) and, when recursive, everything below it. `own_kind`, if any, is the
 * directory's own line, said once its watch is in place (so whoever reacts to the line
 * finds it watched); `announce` says create for each entry already inside (a directory
 * that just appeared may hold some; one of them may then be told twice).
 */
static enum step add_tree(struct watch *w, int parent_fd, const char *name, const char *path, const char *own_kind, bool announce) {
  int dfd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (dfd < 0) return maybe_emit(own_kind, path); /* gone again, or not a directory any more */
  if (pseudo_fs(dfd)) {
    close(dfd);
    return maybe_emit(own_kind, path);
  }
  int wd = inotify_add_watch(w->fd, path, WATCH_MASK | IN_DONT_FOLLOW);
  if (wd < 0 || path_of(w, wd)) {
    if (wd < 0 && errno == ENOSPC && !w->told_limit) {
      fo_msg("watch", "the inotify watch limit is reached (fs.inotify.max_user_watches): %s and some directories below it are not watched", path);
      w->told_limit = true;
    }
    /* (wd >= 0: already watched under another name, a bind mount of a directory above: once is enough.) */
    close(dfd);
    return maybe_emit(own_kind, path);
  }
  set_path(w, wd, path);
  enum step step = maybe_emit(own_kind, path);
  DIR *dir = step == GO_ON ? fdopendir(dfd) : NULL;
  if (!dir) {
    close(dfd);
    return step;
  }
  struct dirent *de;
  while (step == GO_ON && (de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char *child = join(path, de->d_name);
    bool is_dir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    const char *kind = announce ? "create" : NULL;
    step = is_dir ? add_tree(w, dfd, de->d_name, child, kind, announce) : maybe_emit(kind, child);
    free(child);
  }
  closedir(dir);
  return step;
}

/* Stop watching `path` and everything below it (moved out of where its names are known). */
static void forget_tree(struct watch *w, const char *path) {
  size_t n = strlen(path);
  for (size_t wd = 0; wd < w->cap; wd++) {
    const char *p = w->path[wd];
    if (!p || strncmp(p, path, n) != 0 || (p[n] != '\0' && p[n] != '/')) continue;
    /* EINVAL: the kernel dropped it already (its IN_IGNORED is on the way). */
    (void)inotify_rm_watch(w->fd, (int)wd);
    forget(w, (int)wd);
  }
}

static enum step handle(struct watch *w, const struct inotify_event *ev) {
  if (ev->mask & IN_Q_OVERFLOW) return emit("overflow", w->root);
  const char *dir = path_of(w, ev->wd);
  if (!dir) return GO_ON; /* a watch already forgotten */
  if (ev->mask & IN_IGNORED) {
    if (ev->wd == w->root_wd) return STOP_OK;
    forget(w, ev->wd);
    return GO_ON;
  }
  if (ev->wd == w->root_wd && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))) {
    enum step s = emit(ev->mask & IN_DELETE_SELF ? "remove" : "rename", w->root);
    return s == GO_ON ? STOP_OK : s;
  }
  if (ev->len == 0 || ev->name[0] == '\0') return GO_ON; /* a subdirectory's own removal or move: its parent names it */
  const char *kind = ev->mask & IN_CREATE ? "create"
                     : ev->mask & IN_MODIFY ? "write"
                     : ev->mask & IN_DELETE ? "remove"
                     : ev->mask & (IN_MOVED_FROM | IN_MOVED_TO) ? "rename"
                                                                 : NULL;
  if (!kind) return GO_ON;
  /* `dir` may be freed by forget_tree below: work on a copy of the full path. */
  char *full = join(dir, ev->name);
  enum step step;
  int pfd = -1;
  if (w->recursive && (ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && (pfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    /* A directory that appeared: watched (with what it holds) before its line is said. */
    step = add_tree(w, pfd, ev->name, full, kind, (ev->mask & IN_CREATE) != 0);
    close(pfd);
  } else {
    step = emit(kind, full);
    /* One moved away: its names under `full` are wrong from now on (and it may be outside). */
    if (w->recursive && (ev->mask & IN_ISDIR) && (ev->mask & IN_MOVED_FROM)) forget_tree(w, full);
  }
  free(full);
  return step;
}

/* Events until stdout closes or the directory goes. */
static int run(struct watch *w) {
  char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = 1, .events = 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fo_perror("watch", errno, "poll");
      return EXIT_FAILED;
    }
    /* A pipe whose reader closed shows POLLERR on its writing end; a socket POLLHUP. */
    if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)) return 0;
    if (!(p[0].revents & POLLIN)) continue;
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fo_perror("watch", errno, "read");
      return EXIT_FAILED;
    }
    for (char *at = buf; at < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)at;
      enum step s = handle(w, ev);
      if (s == STOP_OK) return 0;
      if (s == STOP_FAILED) return EXIT_FAILED;
      at += sizeof *ev + ev->len;
    }
  }
}

/* PATH as the events name it: absolute, without trailing slashes. */
static char *root_path(const char *given) {
  char *p;
  if (given[0] == '/') {
    p = fo_xstrdup(given);
  } else {
    char *cwd = getcwd(NULL, 0);
    if (!cwd) return NULL;
    p = join(cwd, given);
    free(cwd);
  }
  for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = '\0';
  return p;
}

int hangar_watch_main(int argc, char **argv) {
  const char *given = argc > 1 ? argv[1] : "";
  struct watch w = {.fd = -1, .recursive = argc > 2 && strcmp(argv[2], "1") == 0, .root_wd = -1};
  struct stat st;
  if (stat(given, &st) < 0) return EXIT_NOT_FOUND;
  if (!S_ISDIR(st.st_mode)) return EXIT_NOT_DIRECTORY;
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    fo_perror("watch", errno, "signal");
    return EXIT_FAILED;
  }
  int rc = EXIT_FAILED;
  w.root = root_path(given);
  if (!w.root) {
    fo_perror("watch", errno, "getcwd");
    goto out;
  }
  w.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (w.fd < 0) {
    fo_perror("watch", errno, "inotify_init1");
    goto out;
  }
  /* The directory named is followed if it is a symlink (as list does); nothing below it is. */
  w.root_wd = inotify_add_watch(w.fd, w.root, WATCH_MASK);
  if (w.root_wd < 0) {
    int e = errno;
    if (e == ENOENT) rc = EXIT_NOT_FOUND;
    else if (e == ENOTDIR) rc = EXIT_NOT_DIRECTORY;
    else if (e == ENOSPC) fo_msg("watch", "cannot watch %s: the inotify watch limit is reached (fs.inotify.max_user_watches)", w.root);
    else fo_perror("watch", e, "cannot watch %s", w.root);
    goto out;
  }
  set_path(&w, w.root_wd, w.root);
  if (w.recursive) {
    int rfd = open(w.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    DIR *dir = rfd < 0 ? NULL : fdopendir(rfd);
    if (!dir && rfd >= 0) close(rfd);
    if (dir) {
      struct dirent *de;
      while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        struct stat cst;
        bool is_dir = de->d_type == DT_DIR ||
                      (de->d_type == DT_UNKNOWN && fstatat(rfd, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(cst.st_mode));
        if (!is_dir) continue;
        char *child = join(w.root, de->d_name);
        (void)add_tree(&w, rfd, de->d_name, child, NULL, false); /* says nothing, so never stops */
        free(child);
      }
      closedir(dir);
    }
  }
  rc = run(&w);
out:
  if (w.fd >= 0) close(w.fd);
  for (size_t i = 0; i < w.cap; i++) free(w.path[i]);
  free(w.path);
  free(w.root);
  return rc;
}
