/*
 * The busybox tools of the file scripts (rm, mkdir -p, mv -T, cat) done natively; see
 * fileops-tools.h. Behaviour facts come from busybox 1.35 as Debian's busybox-static
 * builds it (the `base` template's): POSIX cp semantics (no FEATURE_NON_POSIX_CP),
 * verbose cp messages, hard links preserved by cross-device moves.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fileops-tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ================================================================ memory, strings */

/* Out of memory in a one-shot tool: say so and stop; no half-done step is worth more. */
void fo_oom(void) {
  static const char msg[] = "hangar-agent: out of memory\n";
  (void)!write(2, msg, sizeof msg - 1);
  abort();
}

void *fo_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fo_oom();
  return p;
}

char *fo_xstrndup(const char *s, size_t n) {
  char *p = fo_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *fo_xstrdup(const char *s) { return fo_xstrndup(s, strlen(s)); }

int fo_write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        /* A descriptor left non-blocking by whoever made it: wait instead of failing. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return -1;
        continue;
      }
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void path_reserve(struct fo_path *p, size_t extra) {
  if (p->len + extra + 1 <= p->cap) return;
  size_t cap = p->cap ? p->cap : 256;
  while (cap < p->len + extra + 1) cap *= 2;
  char *s = realloc(p->s, cap);
  if (!s) fo_oom();
  p->s = s;
  p->cap = cap;
}

void fo_path_set(struct fo_path *p, const char *s) {
  size_t n = strlen(s);
  p->len = 0;
  path_reserve(p, n);
  memcpy(p->s, s, n + 1);
  p->len = n;
}

size_t fo_path_push(struct fo_path *p, const char *name) {
  size_t old = p->len;
  while (*name == '/') name++;
  size_t n = strlen(name);
  path_reserve(p, n + 1);
  if (p->len == 0 || p->s[p->len - 1] != '/') p->s[p->len++] = '/';
  memcpy(p->s + p->len, name, n + 1);
  p->len += n;
  return old;
}

void fo_path_pop(struct fo_path *p, size_t old_len) {
  p->len = old_len;
  p->s[old_len] = '\0';
}

void fo_path_free(struct fo_path *p) {
  free(p->s);
  p->s = NULL;
  p->len = p->cap = 0;
}

static bool dot_or_dotdot(const char *s) { return s[0] == '.' && (s[1] == '\0' || (s[1] == '.' && s[2] == '\0')); }

/* ================================================================ stderr */

/* One write per message, like busybox's, so concurrent writers never interleave a line. */
static void emit(const char *applet, const char *text, const char *tail) {
  size_t n = (applet ? strlen(applet) + 2 : 0) + strlen(text) + (tail ? strlen(tail) + 2 : 0) + 1;
  char *line = fo_xmalloc(n + 1);
  snprintf(line, n + 1, "%s%s%s%s%s\n", applet ? applet : "", applet ? ": " : "", text, tail ? ": " : "", tail ? tail : "");
  /* A failed write to stderr has nowhere left to be told. */
  (void)fo_write_all(2, line, strlen(line));
  free(line);
}

static void vemit(const char *applet, const char *tail, const char *fmt, va_list ap) {
  char *text = NULL;
  if (vasprintf(&text, fmt, ap) < 0) return;
  emit(applet, text, tail);
  free(text);
}

void fo_msg(const char *applet, const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  vemit(applet, NULL, fmt, ap);
  va_end(ap);
  errno = saved;
}

void fo_perror(const char *applet, int err, const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  vemit(applet, strerror(err), fmt, ap);
  va_end(ap);
  errno = saved;
}

/* ================================================================ stdout */

static struct {
  char buf[64 * 1024];
  size_t len;
  int err; /* the errno of the first failed write; nothing more is written after it */
} out;

void fo_out_reset(void) {
  out.len = 0;
  out.err = 0;
}

int fo_out_flush(void) {
  if (out.err) {
    errno = out.err;
    return -1;
  }
  if (out.len && fo_write_all(1, out.buf, out.len) < 0) {
    out.err = errno ? errno : EIO;
    return -1;
  }
  out.len = 0;
  return 0;
}

void fo_out(const void *data, size_t n) {
  if (out.err) return;
  if (out.len + n > sizeof out.buf) {
    if (fo_out_flush() < 0) return;
    if (n > sizeof out.buf) {
      if (fo_write_all(1, data, n) < 0) out.err = errno ? errno : EIO;
      return;
    }
  }
  memcpy(out.buf + out.len, data, n);
  out.len += n;
}

void fo_out_str(const char *s) { fo_out(s, strlen(s)); }

int fo_out_stat_line(const struct stat *st) {
  /* busybox: "%lx" of st_mode, "%llu" of st_size, then strftime("%Y-%m-%d %H:%M:%S")
   * ".%09u %z" of the mtime in local time, which TZ=UTC0 makes UTC and "+0000". */
  struct tm tm;
  time_t sec = st->st_mtim.tv_sec;
  char when[64];
  if (!gmtime_r(&sec, &tm) || strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm) == 0) return -1;
  char line[160];
  int n = snprintf(line, sizeof line, "%lx %llu %s.%09u +0000\n", (unsigned long)st->st_mode, (unsigned long long)st->st_size, when,
                   (unsigned)st->st_mtim.tv_nsec);
  if (n < 0 || (size_t)n >= sizeof line) return -1;
  fo_out(line, (size_t)n);
  return 0;
}

/* ================================================================ copying bytes */

#define COPY_BUF (1024 * 1024)
/* Per sendfile/splice call; large so a big file takes few calls. */
#define COPY_BIG (16 * 1024 * 1024)

/* Waits for fd to become ready (a descriptor someone left non-blocking). */
static bool wait_ready(int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events};
  for (;;) {
    if (poll(&pfd, 1, -1) >= 0) return true;
    if (errno != EINTR) return false;
  }
}

/*
 * The kernel moves the bytes where it can: sendfile from a regular file (to a pipe, a
 * socket or a file), splice when either side is a pipe. Returns 1 at end of file, 0 when
 * the fast path does not apply or failed (the caller goes on with read/write, which meets
 * the same error again and can tell a read error from a write error, as busybox does
 * after a failed sendfile).
 */
static int copy_fast(int in, int out_fd) {
  struct stat si, so;
  if (fstat(in, &si) < 0 || fstat(out_fd, &so) < 0) return 0;
  bool use_sendfile = S_ISREG(si.st_mode);
  if (!use_sendfile && !S_ISFIFO(si.st_mode) && !S_ISFIFO(so.st_mode)) return 0;
  if (S_ISFIFO(si.st_mode)) {
    /* A bigger pipe means fewer wake-ups per MiB; refused sizes are fine as they are. */
    (void)fcntl(in, F_SETPIPE_SZ, COPY_BUF);
  }
  for (;;) {
    ssize_t n = use_sendfile ? sendfile(out_fd, in, NULL, COPY_BIG) : splice(in, NULL, out_fd, NULL, COPY_BIG, SPLICE_F_MOVE | SPLICE_F_MORE);
    if (n > 0) continue;
    if (n == 0) return 1;
    if (errno == EINTR) continue;
    return 0;
  }
}

enum fo_copy_result fo_copy_fd(int in, int out_fd) {
  if (copy_fast(in, out_fd)) return FO_COPY_OK;
  char *buf = fo_xmalloc(COPY_BUF);
  enum fo_copy_result result = FO_COPY_OK;
  for (;;) {
    ssize_t r = read(in, buf, COPY_BUF);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN && wait_ready(in, POLLIN)) continue;
      result = FO_COPY_READ_ERROR;
      break;
    }
    if (r == 0) break;
    if (fo_write_all(out_fd, buf, (size_t)r) < 0) {
      result = FO_COPY_WRITE_ERROR;
      break;
    }
  }
  int saved = errno;
  free(buf);
  errno = saved;
  return result;
}

/* ================================================================ rm */

/*
 * busybox remove_file() for one entry `name` in `dirfd`, `shown` being the path busybox
 * would have built for it (its messages name it). Directories are entered with
 * O_NOFOLLOW through the descriptor of their parent, so a symlink met anywhere below is
 * removed itself and never followed, even one swapped in while the tree is removed.
 */
static int remove_entry(int dirfd, const char *name, struct fo_path *shown, int flags, const char *applet) {
  for (int attempt = 0;; attempt++) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT) {
        fo_perror(applet, errno, "can't stat '%s'", shown->s);
        return -1;
      }
      if (!(flags & FO_RM_FORCE)) {
        fo_perror(applet, errno, "can't remove '%s'", shown->s);
        return -1;
      }
      return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (unlinkat(dirfd, name, 0) < 0) {
        fo_perror(applet, errno, "can't remove '%s'", shown->s);
        return -1;
      }
      return 0;
    }
    if (!(flags & FO_RM_RECUR)) {
      fo_msg(applet, "'%s' is a directory", shown->s);
      return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      /* Not a directory any more (something else was put in its place since the lstat):
       * remove what is there now rather than follow it. */
      if ((errno == ENOTDIR || errno == ELOOP) && attempt < 3) continue;
      return -1; /* busybox says nothing when it cannot open a directory */
    }
    DIR *dir = fdopendir(fd);
    if (!dir) {
      close(fd);
      return -1;
    }
    int status = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
      if (dot_or_dotdot(de->d_name)) continue;
      size_t old = fo_path_push(shown, de->d_name);
      if (remove_entry(fd, de->d_name, shown, flags, applet) < 0) status = -1;
      fo_path_pop(shown, old);
    }
    closedir(dir); /* closes fd; busybox 1.35 ignores its result too */
    if (status == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0) {
      fo_perror(applet, errno, "can't remove '%s'", shown->s);
      return -1;
    }
    return status;
  }
}

int fo_remove_file(int base, const char *path, int flags, const char *applet) {
  struct fo_path shown = {0};
  fo_path_set(&shown, path);
  /* Enter the parent once, so the entry removed is the one that was looked at even if a
   * symlink above it is flipped meanwhile. Failing to reach the parent fails the same way
   * (same errno) as busybox's lstat of the whole path. */
  const char *slash = strrchr(path, '/');
  int dirfd = base, pfd = -1;
  const char *name = path;
  if (slash && slash[1] && !dot_or_dotdot(slash + 1) && strlen(path) < PATH_MAX) {
    char *parent = slash == path ? fo_xstrdup("/") : fo_xstrndup(path, (size_t)(slash - path));
    pfd = openat(base, parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(parent);
    if (pfd < 0) {
      int rc = 0;
      if (errno != ENOENT) {
        fo_perror(applet, errno, "can't stat '%s'", path);
        rc = -1;
      } else if (!(flags & FO_RM_FORCE)) {
        fo_perror(applet, errno, "can't remove '%s'", path);
        rc = -1;
      }
      fo_path_free(&shown);
      return rc;
    }
    dirfd = pfd;
    name = slash + 1;
  }
  int rc = remove_entry(dirfd, name, &shown, flags, applet);
  if (pfd >= 0) close(pfd);
  fo_path_free(&shown);
  return rc;
}

int fo_rm(int base, const char *path, bool recursive) {
  /* rm_main: trailing slashes go (the string itself is changed), then "." and ".." are refused. */
  char *p = fo_xstrdup(path);
  size_t n = strlen(p);
  if (n > 0 && p[n - 1] == '/') {
    char *s = p + n - 1;
    while (*s == '/' && s != p) *s-- = '\0';
  }
  const char *last = strrchr(p, '/');
  const char *basename = (!last || (last == p && !last[1])) ? p : last + 1;
  int status = 0;
  if (dot_or_dotdot(basename)) {
    fo_msg("rm", "can't remove '.' or '..'");
    status = 1;
  } else if (fo_remove_file(base, p, FO_RM_FORCE | (recursive ? FO_RM_RECUR : 0), "rm") < 0) {
    status = 1;
  }
  free(p);
  return status;
}

/* ================================================================ mkdir -p */

int fo_mkdir_p(const char *path) {
  if (strcmp(path, "/") == 0 || strcmp(path, ".") == 0) return 0;
  /* busybox makes each parent with the umask less u+wx (so it can go on inside it) and the
   * last directory with the umask as it is; "/a/b" is made as "/", "/a/", "/a/b". */
  mode_t org = umask(0);
  umask(org);
  mode_t cur = org;
  char *p = fo_xstrdup(path);
  char *s = p;
  int status = 0;
  for (;;) {
    char c = '\0';
    while (*s) {
      if (*s == '/') {
        do ++s;
        while (*s == '/');
        c = *s;
        *s = '\0';
        break;
      }
      ++s;
    }
    mode_t want = c ? (org & ~(mode_t)0300) : org;
    if (want != cur) {
      umask(want);
      cur = want;
    }
    if (mkdir(p, 0777) < 0) {
      int e = errno;
      struct stat st;
      if (e != EEXIST && e != EISDIR) {
        fo_perror("mkdir", e, "can't create directory '%s'", p);
        status = 1;
        break;
      }
      if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
        /* busybox reports the errno in force: the stat's when it failed, else EEXIST. */
        fo_perror("mkdir", errno, "can't create directory '%s'", p);
        status = 1;
        break;
      }
    }
    if (!c) break;
    *s = c;
  }
  if (cur != org) umask(org);
  free(p);
  return status;
}

/* ================================================================ mv -T (and its cross-device copy) */

/* busybox cp_mv_stat2: 3 a directory, 1 something else, 0 absent, -1 failed (said). */
static int cp_mv_stat(int base, const char *path, struct stat *st, bool follow) {
  if (fstatat(base, path, st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) {
      if (errno == ENOTDIR)
        fo_msg("mv", "can't stat '%s': Path has non-directory component", path);
      else
        fo_perror("mv", errno, "can't stat '%s'", path);
      return -1;
    }
    return 0;
  }
  return S_ISDIR(st->st_mode) ? 3 : 1;
}

/* The (dev, inode)s a copy made or copied: directories against copying a tree into itself,
 * files so that hard links stay hard links (busybox's ino_dev_hashtable). */
struct inode_seen {
  struct inode_seen *next;
  dev_t dev;
  ino_t ino;
  bool isdir;
  char name[]; /* the copy's path, relative to the copy's base */
};

#define INODE_BUCKETS 1024

struct copy {
  int base;
  struct inode_seen *bucket[INODE_BUCKETS];
};

static struct inode_seen *inode_find(struct copy *c, const struct stat *st) {
  for (struct inode_seen *e = c->bucket[st->st_ino % INODE_BUCKETS]; e; e = e->next)
    if (e->ino == st->st_ino && e->dev == st->st_dev && e->isdir == !!S_ISDIR(st->st_mode)) return e;
  return NULL;
}

static void inode_add(struct copy *c, const struct stat *st, const char *name) {
  size_t n = strlen(name);
  struct inode_seen *e = fo_xmalloc(sizeof *e + n + 1);
  e->dev = st->st_dev;
  e->ino = st->st_ino;
  e->isdir = S_ISDIR(st->st_mode);
  memcpy(e->name, name, n + 1);
  size_t b = st->st_ino % INODE_BUCKETS;
  e->next = c->bucket[b];
  c->bucket[b] = e;
}

static void copy_free(struct copy *c) {
  for (size_t b = 0; b < INODE_BUCKETS; b++) {
    struct inode_seen *e = c->bucket[b];
    while (e) {
      struct inode_seen *next = e->next;
      free(e);
      e = next;
    }
  }
}

/* cp -p's last step: times (whole seconds, atime = mtime), owner, then mode; failures are said, not fatal. */
static void preserve_status(int ddir, const char *dname, const char *shown, const struct stat *ss) {
  struct timespec times[2] = {{.tv_sec = ss->st_mtime, .tv_nsec = 0}, {.tv_sec = ss->st_mtime, .tv_nsec = 0}};
  if (utimensat(ddir, dname, times, 0) < 0) fo_perror("mv", errno, "can't preserve %s of '%s'", "times", shown);
  mode_t mode = ss->st_mode;
  if (fchownat(ddir, dname, ss->st_uid, ss->st_gid, 0) < 0) {
    mode &= ~(mode_t)(S_ISUID | S_ISGID);
    fo_perror("mv", errno, "can't preserve %s of '%s'", "ownership", shown);
  }
  if (fchmodat(ddir, dname, mode & 07777, 0) < 0) fo_perror("mv", errno, "can't preserve %s of '%s'", "permissions", shown);
}

static char *read_link_at(int dirfd, const char *name) {
  size_t cap = 256;
  for (;;) {
    char *buf = fo_xmalloc(cap);
    ssize_t n = readlinkat(dirfd, name, buf, cap);
    if (n < 0) {
      int e = errno;
      free(buf);
      errno = e;
      return NULL;
    }
    if ((size_t)n < cap) {
      buf[n] = '\0';
      return buf;
    }
    free(buf);
    cap *= 2;
  }
}

static int copy_entry(struct copy *c, int sdir, const char *sname, struct fo_path *sp, int ddir, const char *dname, struct fo_path *dp);

static int copy_dir(struct copy *c, int sdir, const char *sname, struct fo_path *sp, int ddir, const char *dname, struct fo_path *dp,
                    const struct stat *ss, bool dest_exists, const struct stat *ds_in) {
  struct stat ds = *ds_in;
  if (inode_find(c, ss)) {
    fo_msg("mv", "recursion detected, omitting directory '%s'", sp->s);
    return -1;
  }
  mode_t saved_umask = 0;
  if (dest_exists) {
    if (!S_ISDIR(ds.st_mode)) {
      fo_msg("mv", "target '%s' is not a directory", dp->s);
      return -1;
    }
  } else {
    /* Made with the source's mode plus u+rwx (so it can be filled), umask off, as busybox. */
    saved_umask = umask(0);
    int rc = mkdirat(ddir, dname, (ss->st_mode & 07777) | S_IRWXU);
    int e = errno;
    umask(saved_umask);
    if (rc < 0) {
      fo_perror("mv", e, "can't create directory '%s'", dp->s);
      return -1;
    }
    if (fstatat(ddir, dname, &ds, AT_SYMLINK_NOFOLLOW) < 0) {
      fo_perror("mv", errno, "can't stat '%s'", dp->s);
      return -1;
    }
  }
  inode_add(c, &ds, "");
  int retval = 0;
  int sfd = openat(sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  DIR *dir = sfd < 0 ? NULL : fdopendir(sfd);
  if (!dir) {
    if (sfd >= 0) close(sfd);
    retval = -1; /* busybox: silent, and the directory's times, owner and mode still copied */
  } else {
    int dfd = openat(ddir, dname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
      fo_perror("mv", errno, "can't create directory '%s'", dp->s);
      retval = -1;
    } else {
      struct dirent *de;
      while ((de = readdir(dir)) != NULL) {
        if (dot_or_dotdot(de->d_name)) continue;
        size_t sold = fo_path_push(sp, de->d_name), dold = fo_path_push(dp, de->d_name);
        if (copy_entry(c, sfd, de->d_name, sp, dfd, de->d_name, dp) < 0) retval = -1;
        fo_path_pop(sp, sold);
        fo_path_pop(dp, dold);
      }
      close(dfd);
    }
    closedir(dir);
    if (!dest_exists && fchmodat(ddir, dname, ss->st_mode & 07777 & ~saved_umask, 0) < 0)
      fo_perror("mv", errno, "can't preserve %s of '%s'", "permissions", dp->s);
  }
  preserve_status(ddir, dname, dp->s, ss);
  return retval;
}

static int copy_regular(struct copy *c, int sdir, const char *sname, struct fo_path *sp, int ddir, const char *dname, struct fo_path *dp,
                        const struct stat *ss) {
  struct inode_seen *seen = inode_find(c, ss);
  if (seen) {
    if (linkat(c->base, seen->name, ddir, dname, 0) < 0) {
      fo_perror("mv", errno, "can't create '%s'", dp->s);
      return -1;
    }
    return 0;
  }
  inode_add(c, ss, dp->s);
  int sfd = openat(sdir, sname, O_RDONLY | O_CLOEXEC);
  if (sfd < 0) {
    fo_perror("mv", errno, "can't open '%s'", sp->s);
    return -1;
  }
  /* POSIX cp: create or truncate, with the source's mode (umask applies; the final chmod fixes it). */
  int dfd = openat(ddir, dname, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, ss->st_mode & 07777);
  if (dfd < 0) {
    fo_perror("mv", errno, "can't create '%s'", dp->s);
    close(sfd);
    return -1;
  }
  int retval = 0;
  enum fo_copy_result r = fo_copy_fd(sfd, dfd);
  if (r != FO_COPY_OK) {
    fo_perror("mv", errno, r == FO_COPY_READ_ERROR ? "read error" : "write error");
    retval = -1;
  }
  if (close(dfd) < 0) {
    fo_perror("mv", errno, "error writing to '%s'", dp->s);
    retval = -1;
  }
  close(sfd);
  preserve_status(ddir, dname, dp->s, ss);
  return retval;
}

static int copy_special(int sdir, const char *sname, struct fo_path *sp, int ddir, const char *dname, struct fo_path *dp, const struct stat *ss,
                        bool dest_exists) {
  if (dest_exists) {
    fo_perror("mv", EEXIST, "can't create '%s'", dp->s);
    return -1;
  }
  if (S_ISLNK(ss->st_mode)) {
    char *target = read_link_at(sdir, sname);
    if (!target) {
      /* busybox reports it and counts the copy as made */
      fo_msg("mv", "%s: cannot read link: %s", sp->s, errno == EINVAL ? "not a symlink" : strerror(errno));
      return 0;
    }
    int rc = 0;
    if (symlinkat(target, ddir, dname) < 0) {
      fo_perror("mv", errno, "can't create %slink '%s' to '%s'", "sym", dp->s, target);
      rc = -1;
    } else if (fchownat(ddir, dname, ss->st_uid, ss->st_gid, AT_SYMLINK_NOFOLLOW) < 0) {
      fo_perror("mv", errno, "can't preserve %s of '%s'", "ownership", dp->s);
    }
    free(target);
    return rc; /* a symlink's times and mode are not copied */
  }
  if (S_ISBLK(ss->st_mode) || S_ISCHR(ss->st_mode) || S_ISSOCK(ss->st_mode) || S_ISFIFO(ss->st_mode)) {
    if (mknodat(ddir, dname, ss->st_mode, ss->st_rdev) < 0) {
      fo_perror("mv", errno, "can't create '%s'", dp->s);
      return -1;
    }
  } else {
    fo_msg("mv", "unrecognized file '%s' with mode %x", sp->s, (unsigned)ss->st_mode);
    return -1;
  }
  preserve_status(ddir, dname, dp->s, ss);
  return 0;
}

/* busybox copy_file(src, dst, FILEUTILS_RECUR | FILEUTILS_PRESERVE_STATUS). */
static int copy_entry(struct copy *c, int sdir, const char *sname, struct fo_path *sp, int ddir, const char *dname, struct fo_path *dp) {
  struct stat ss, ds;
  if (fstatat(sdir, sname, &ss, AT_SYMLINK_NOFOLLOW) < 0) {
    fo_perror("mv", errno, "can't stat '%s'", sp->s);
    return -1;
  }
  bool dest_exists = false;
  if (fstatat(ddir, dname, &ds, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) {
      fo_perror("mv", errno, "can't stat '%s'", dp->s);
      return -1;
    }
  } else {
    if (ss.st_dev == ds.st_dev && ss.st_ino == ds.st_ino) {
      fo_msg("mv", "'%s' and '%s' are the same file", sp->s, dp->s);
      return -1;
    }
    dest_exists = true;
  }
  if (S_ISDIR(ss.st_mode)) return copy_dir(c, sdir, sname, sp, ddir, dname, dp, &ss, dest_exists, &ds);
  if (S_ISREG(ss.st_mode)) return copy_regular(c, sdir, sname, sp, ddir, dname, dp, &ss);
  return copy_special(sdir, sname, sp, ddir, dname, dp, &ss, dest_exists);
}

int fo_mv_no_target_dir(int base, const char *src, const char *dst) {
  struct stat dst_st, src_st;
  int dest_exists = cp_mv_stat(base, dst, &dst_st, true);
  if (dest_exists < 0) return 1;
  if ((dest_exists & 2) && fstatat(base, src, &src_st, 0) == 0 && !S_ISDIR(src_st.st_mode)) {
    fo_msg("mv", "'%s' is a directory", dst);
    return 1;
  }
  /* mv asks before replacing only when its stdin is a terminal; a file operation's never is. */
  if (renameat(base, src, base, dst) == 0) return 0;
  if (errno != EXDEV) {
    fo_perror("mv", errno, "can't rename '%s'", src);
    return 1;
  }
  /* Another file system: copy everything (times, owners, modes, hard links), then remove the source. */
  int source_exists = cp_mv_stat(base, src, &src_st, false);
  if (source_exists < 1) {
    fo_perror("mv", errno, "can't rename '%s'", src);
    return 1;
  }
  if (dest_exists) {
    if (dest_exists == 3 && source_exists != 3) {
      fo_msg("mv", "can't overwrite %sdirectory with %sdirectory", "", "non-");
      return 1;
    }
    if (dest_exists != 3 && source_exists == 3) {
      fo_msg("mv", "can't overwrite %sdirectory with %sdirectory", "non-", "");
      return 1;
    }
    if (unlinkat(base, dst, 0) < 0) {
      fo_perror("mv", errno, "can't remove '%s'", dst);
      return 1;
    }
  }
  struct copy *c = fo_xmalloc(sizeof *c);
  memset(c, 0, sizeof *c);
  c->base = base;
  struct fo_path sp = {0}, dp = {0};
  fo_path_set(&sp, src);
  fo_path_set(&dp, dst);
  int status = 1;
  if (copy_entry(c, base, src, &sp, base, dst, &dp) >= 0 && fo_remove_file(base, src, FO_RM_RECUR | FO_RM_FORCE, "mv") >= 0) status = 0;
  fo_path_free(&sp);
  fo_path_free(&dp);
  copy_free(c);
  free(c);
  return status;
}
