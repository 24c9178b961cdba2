/*
 * hangar-agent: the small static program inside every Hangar machine.
 *
 *   hangar-agent launch -- INIT...   the machine's pid 1 at start: forks the agent, then
 *                                    becomes the template's init (exec), so init keeps pid 1
 *   hangar-agent init                a minimal pid 1 (reaps orphans) for templates without one
 *   hangar-agent serve               the agent: connects to the server's socket and runs
 *                                    commands for it (also how the server restarts it)
 *   hangar-agent file OP ARGS...     one file operation (fileops.c)
 *   hangar-agent watch PATH [1]      inotify events of a directory as lines (watch.c)
 *
 * The agent runs with exactly the machine's privileges (its namespaces, cgroup, seccomp
 * filter, capabilities and no_new_privs are those of init, inherited), so a command it
 * starts is as isolated as one `runc exec` starts. It opens no socket of its own: it
 * connects to one the server listens on, in a directory the machine sees read-only, so
 * nothing inside the machine can make the server talk to anything else.
 */
#include <ctype.h>
#include <sched.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fileops.h"
#include "protocol.h"
#include "watch.h"

extern char **environ;

/* Output is forwarded in pieces of up to this size: fewer frames and syscalls for bulk data. */
#define CHUNK (256 * 1024)

static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/*
 * In a session, frames are gathered and written together when the session is about to
 * wait (flush_frames): a command's start, output and exit that are ready at once reach the
 * server in one write, one wakeup of the server instead of one per frame (on a virtual
 * machine, waking the server's idle CPU costs more than the rest of a small command).
 * Elsewhere (the agent's hello) a frame is written at once.
 */
static int batching;
static char *batch;
static size_t batch_len, batch_cap;

/* Write the gathered frames; -1 when the connection failed. */
static int flush_frames(int fd) {
  if (batch_len == 0) return 0;
  int r = write_full(fd, batch, batch_len);
  batch_len = 0;
  return r;
}

/* Header and payload in one write (the reader wakes once). */
static int write_frame(int fd, const unsigned char *head, const void *payload, uint32_t len) {
  struct iovec v[2] = {{(void *)head, 5}, {(void *)payload, len}};
  ssize_t w;
  do w = writev(fd, v, len ? 2 : 1);
  while (w < 0 && errno == EINTR);
  if (w == (ssize_t)(5 + len)) return 0;
  if (w < 0) return -1;
  /* Part of it went: the rest the ordinary way. */
  size_t done = (size_t)w;
  if (done < 5) {
    if (write_full(fd, head + done, 5 - done) < 0) return -1;
    done = 5;
  }
  return write_full(fd, (const char *)payload + (done - 5), len - (done - 5));
}

/* Frames above this size are not gathered (no copy of bulk output): what is gathered goes first, then it. */
#define BATCH_FRAME_MAX (16 * 1024)

static int send_frame(int fd, char type, const void *payload, uint32_t len) {
  unsigned char head[5] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, (len >> 24) & 0xff, (unsigned char)type};
  if (!batching || len > BATCH_FRAME_MAX) return flush_frames(fd) < 0 ? -1 : write_frame(fd, head, payload, len);
  if (batch_len + sizeof head + len > batch_cap) {
    size_t cap = batch_cap * 2 > batch_len + sizeof head + len ? batch_cap * 2 : batch_len + sizeof head + len + 4096;
    char *grown = realloc(batch, cap);
    if (!grown) return flush_frames(fd) < 0 ? -1 : write_frame(fd, head, payload, len);
    batch = grown;
    batch_cap = cap;
  }
  memcpy(batch + batch_len, head, sizeof head);
  if (len) memcpy(batch + batch_len + sizeof head, payload, len);
  batch_len += sizeof head + len;
  return batch_len > 4 * BATCH_FRAME_MAX ? flush_frames(fd) : 0;
}

/* Two NUL-terminated strings as one payload. */
static int send_pair(int fd, char type, const char *a, const char *b) {
  size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;
  char *buf = malloc(la + lb);
  if (!buf) return -1;
  memcpy(buf, a, la);
  if (b) memcpy(buf + la, b, lb);
  int r = send_frame(fd, type, buf, (uint32_t)(la + lb));
  free(buf);
  return r;
}

/*
 * A session's last frame (F_EXIT or F_FAILED: one or two strings) with the "r" that says
 * this spare then serves the connection's next request.
 */
static int send_last(int fd, char type, const char *a, const char *b) {
  size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;
  char *buf = malloc(la + lb + 2);
  if (!buf) return -1;
  memcpy(buf, a, la);
  if (b) memcpy(buf + la, b, lb);
  memcpy(buf + la + lb, "r", 2);
  int r = send_frame(fd, type, buf, (uint32_t)(la + lb + 2));
  free(buf);
  return r;
}

/* Read one frame into a malloc'd buffer (NUL-terminated for convenience). -1 on EOF or a bad frame. */
static int recv_frame(int fd, char *type, char **payload, uint32_t *len) {
  unsigned char head[5];
  if (read_full(fd, head, sizeof head) < 0) return -1;
  uint32_t n = head[0] | (head[1] << 8) | (head[2] << 16) | ((uint32_t)head[3] << 24);
  if (n > FRAME_MAX) return -1;
  char *buf = malloc(n + 1);
  if (!buf) return -1;
  if (n && read_full(fd, buf, n) < 0) {
    free(buf);
    return -1;
  }
  buf[n] = 0;
  *type = (char)head[4];
  *payload = buf;
  *len = n;
  return 0;
}

/* Split a payload of NUL-terminated strings; returns how many there are (at most max). */
static int split_strings(char *p, uint32_t len, char **out, int max) {
  int n = 0;
  uint32_t at = 0;
  while (at < len && n < max) {
    out[n++] = p + at;
    at += (uint32_t)strlen(p + at) + 1;
  }
  return at > len ? -1 : n;
}

/* The agent's environment with the request's variables set over it (a later KEY= replaces an earlier one). */
static char **merged_env(char **extra, int n) {
  int base = 0;
  while (environ[base]) base++;
  char **env = calloc((size_t)(base + n + 1), sizeof *env);
  if (!env) return NULL;
  int count = 0;
  for (int i = 0; i < base; i++) env[count++] = environ[i];
  for (int i = 0; i < n; i++) {
    const char *eq = strchr(extra[i], '=');
    size_t key = eq ? (size_t)(eq - extra[i]) + 1 : strlen(extra[i]);
    int j = 0;
    for (; j < count; j++)
      if (strncmp(env[j], extra[i], key) == 0) break;
    env[j] = extra[i];
    if (j == count) count++;
  }
  env[count] = NULL;
  return env;
}

/* What a failed start reports, written by the child to the parent over a close-on-exec pipe. */
struct start_error {
  int stage; /* 0 chdir, 1 exec, 2 terminal, 3 other */
  int err;
};

/* The session's command. */
struct command {
  pid_t pid;
  int in, out, err; /* pipes (our ends); with a terminal, out is the master and in == out */
  int tty;
  int exited;
  int status;
  int done; /* the file tool run in a thread of the session (run_in_thread): its status arrives here; -1 for a process */
  char **env; /* the merged environment (merged_env), freed with the session */
};

static void child_fail(int errfd, int stage) {
  struct start_error e = {stage, errno};
  (void)!write(errfd, &e, sizeof e);
  _exit(stage == 1 ? 127 : 126);
}

/* What the command needs set up before its exec (see child_main). */
struct child_setup {
  int tty;
  const char *slave;
  int in, out, err; /* the command's ends of the pipes (without a terminal) */
  int errfd;        /* the start-error pipe's write end */
  const char *cwd;
  char **argv;
  int builtin;      /* the agent's own file tool, run in the child instead of exec'd */
};

/*
 * The command's side, in the process spawn_command started (a clone that shares the
 * session's memory until its exec: only system calls here; or, for the file tool on a
 * terminal, a fork): its terminal or pipes, its session, its directory, then the exec
 * (or the file tool, run here). Never returns.
 */
static int child_main(void *arg) {
  struct child_setup *a = arg;
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGUSR1, SIG_DFL);
  setsid();
  if (a->tty) {
    /* The first terminal a session leader opens becomes its controlling terminal. */
    int s = open(a->slave, O_RDWR);
    if (s < 0) child_fail(a->errfd, 2);
    ioctl(s, TIOCSCTTY, 0);
    dup2(s, 0);
    dup2(s, 1);
    dup2(s, 2);
    if (s > 2) close(s);
  } else {
    dup2(a->in, 0);
    dup2(a->out, 1);
    dup2(a->err, 2);
  }
  if (chdir(a->cwd) < 0) child_fail(a->errfd, 0);
  if (a->builtin) {
    /* What an exec would have closed: the session's socket, the pipes' other ends (stdin's
     * end of file depends on it) and the start-error pipe, whose end tells the parent it runs. */
    close_range(3, ~0U, 0);
    int argc = 0;
    while (a->argv[argc]) argc++;
    _exit(hangar_file_main(argc - 1, a->argv + 1));
  }
  /* execvp looks the name up in PATH of the environment it runs in: the merged one (set by the session). */
  execvp(a->argv[0], a->argv);
  child_fail(a->errfd, 1);
  return 0;
}

/* A request, parsed: pointers into its payload. */
struct request {
  char mode;
  const char *cwd;
  int rows, cols;
  char **argv;
  char **extra;
  int envc;
};

/* Split an F_EXEC payload (see protocol.h); -1 when it is malformed. */
static int parse_request(char *req, uint32_t len, struct request *r) {
  char *f[4];
  if (split_strings(req, len, f, 4) != 4) return -1;
  r->mode = f[0][0];
  r->cwd = f[1];
  r->rows = atoi(f[2]);
  r->cols = atoi(f[3]);
  char *rest = f[3] + strlen(f[3]) + 1;
  if (rest >= req + len) return -1;
  int argc = atoi(rest);
  rest += strlen(rest) + 1;
  if (argc <= 0 || argc > 65536) return -1;
  r->argv = calloc((size_t)argc + 1, sizeof *r->argv);
  if (!r->argv) return -1;
  for (int i = 0; i < argc; i++) {
    if (rest >= req + len) return -1;
    r->argv[i] = rest;
    rest += strlen(rest) + 1;
  }
  if (rest >= req + len) return -1;
  r->envc = atoi(rest);
  rest += strlen(rest) + 1;
  if (r->envc < 0 || r->envc > 65536) return -1;
  r->extra = calloc((size_t)r->envc + 1, sizeof *r->extra);
  if (!r->extra) return -1;
  for (int i = 0; i < r->envc; i++) {
    if (rest >= req + len) return -1;
    r->extra[i] = rest;
    rest += strlen(rest) + 1;
  }
  return 0;
}

/* The agent's own file tool: run by the agent itself instead of being exec'd. */
static int is_builtin(char **argv) {
  return strcmp(argv[0], HANGAR_AGENT_BINARY) == 0 && argv[1] && strcmp(argv[1], "file") == 0;
}

/* A started command's process and the session's ends of its pipes. */
struct spawned {
  pid_t pid;
  int in, out, err; /* unused (closed by the caller) for a terminal */
  int ep;           /* the start-error pipe's read end */
};

/* The stack of a command started by a clone until its exec (child_main makes only system calls; execvp's PATH search uses a path's length of it). */
static char child_stack[64 * 1024] __attribute__((aligned(16)));

/*
 * Start the command: an exec'd one by a clone that shares this process's memory until
 * its exec (CLONE_VM | CLONE_VFORK, as posix_spawn does), some 0.05 ms where a fork
 * copies the memory's mappings for about 1 ms here; the file tool on a terminal (the
 * one case that needs memory of its own) by a fork. Fills `sp`; -1 (errno set) when it
 * could not.
 */
static int spawn_command(struct spawned *sp, const char *slave, const struct request *r, char **env) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2] = {-1, -1};
  int *all[] = {in, out, err, ep};
  pid_t pid = -1;
  if (pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0 && pipe2(ep, O_CLOEXEC) == 0) {
    /* execvp looks the name up in PATH of the environment it runs in: the merged one (this session serves one command). */
    environ = env;
    struct child_setup setup = {
        .tty = r->mode == 't', .slave = slave, .in = in[0], .out = out[1], .err = err[1], .errfd = ep[1], .cwd = r->cwd, .argv = r->argv,
        .builtin = is_builtin(r->argv),
    };
    if (setup.builtin) {
      pid = fork();
      if (pid == 0) child_main(&setup);
    } else {
      pid = clone(child_main, child_stack + sizeof child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &setup);
    }
  }
  if (pid < 0) {
    int saved = errno;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      for (int j = 0; j < 2; j++)
        if (all[i][j] >= 0) close(all[i][j]);
    errno = saved;
    return -1;
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(ep[1]);
  *sp = (struct spawned){.pid = pid, .in = in[1], .out = out[0], .err = err[0], .ep = ep[0]};
  return 0;
}

/* Point fds 0, 1 and 2 at /dev/null (whatever they held is closed). */
static void stdio_to_null(void) {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  dup2(null, 0);
  dup2(null, 1);
  dup2(null, 2);
  close(null);
}

/* The size asked for the file tool's stdin and stdout pipes (pipe-max-size is 1 MiB by default). */
#define TOOL_PIPE_BYTES (1024 * 1024)

/* The file tool in a thread of the session, and where its exit status goes. */
struct tool_run {
  char **argv;
  int done;
};

static void *tool_thread(void *arg) {
  struct tool_run *t = arg;
  int argc = 0;
  while (t->argv[argc]) argc++;
  int status = hangar_file_main(argc - 1, t->argv + 1);
  /* Its stdio back to /dev/null: the pipes' last write ends close, which is the end of file the session waits for. */
  stdio_to_null();
  (void)!write(t->done, &status, sizeof status);
  return NULL;
}

/*
 * The agent's file tool, run in a thread of this session instead of a process of its
 * own: no fork (about 1 ms of CPU here) for a file call. It was written for this
 * (fileops.h: reads fd 0, writes 1 and 2, exits nothing, leaves no descriptor open), and
 * the session serves only it, so its stdio, directory and environment are the tool's.
 * The command's pid is the session's; a signal that would end a process ends the session
 * with that status (see run_session). Fills `c`; -1 (errno set) when it could not start.
 */
static int run_in_thread(struct command *c, const struct request *r, char **env, int *chdir_failed) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, done[2] = {-1, -1};
  int *all[] = {in, out, err, done};
  static struct tool_run run;
  *chdir_failed = 0;
  if (chdir(r->cwd) < 0) {
    *chdir_failed = 1;
    return -1;
  }
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0) goto fail;
  /*
   * A file's bytes pass through these pipes: at the default 64 KiB the tool and the session
   * take turns 16 times a MiB, each turn a wakeup of the other's CPU (slow on a virtual
   * machine whose idle CPUs halt). Larger where the kernel allows; the default otherwise.
   */
  fcntl(in[1], F_SETPIPE_SZ, TOOL_PIPE_BYTES);
  fcntl(out[1], F_SETPIPE_SZ, TOOL_PIPE_BYTES);
  if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) goto fail;
  close(in[0]);
  close(out[1]);
  close(err[1]);
  environ = env;
  run = (struct tool_run){.argv = r->argv, .done = done[1]};
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&thread, &attr, tool_thread, &run);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    errno = e;
    in[0] = out[1] = err[1] = -1;
    goto fail;
  }
  c->pid = getpid();
  c->in = in[1];
  c->out = out[0];
  c->err = err[0];
  c->done = done[0];
  return 0;
fail:;
  int saved = errno;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    for (int j = 0; j < 2; j++)
      if (all[i][j] >= 0) close(all[i][j]);
  /* The session's stdio back to /dev/null: none of those pipes stays open through it. */
  stdio_to_null();
  errno = saved;
  return -1;
}

/* Start the request's command; on failure tells the server why (F_FAILED) and returns -1. */
static int start_command(int sock, struct command *c, const struct request *r) {
  char slave[128] = "";
  c->tty = r->mode == 't';
  c->done = -1;
  char **env = merged_env(r->extra, r->envc);
  c->env = env;
  if (!env) {
    send_last(sock, F_FAILED, "cannot_start", strerror(errno));
    return -1;
  }
  int chdir_failed = 0;
  /* Where no thread can be made (under gVisor pthread_create fails with EPERM), the tool gets a process as a command does. */
  if (!c->tty && is_builtin(r->argv) && (run_in_thread(c, r, env, &chdir_failed) == 0 || chdir_failed)) {
    if (!chdir_failed) return 0;
    char msg[4200], why[256];
    /* In the words runc uses (lower case), which clients already match on. */
    snprintf(why, sizeof why, "%s", strerror(errno));
    why[0] = (char)tolower((unsigned char)why[0]);
    snprintf(msg, sizeof msg, "cannot change directory to %s: %s", r->cwd, why);
    send_last(sock, F_FAILED, "cannot_start", msg);
    return -1;
  }
  int master = -1;
  if (c->tty) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, slave, sizeof slave) != 0) {
      if (master >= 0) close(master);
      send_last(sock, F_FAILED, "cannot_start", "this machine cannot open a terminal (/dev/ptmx)");
      return -1;
    }
    struct winsize ws = {.ws_row = (unsigned short)r->rows, .ws_col = (unsigned short)r->cols};
    ioctl(master, TIOCSWINSZ, &ws);
  }
  struct spawned sp;
  if (spawn_command(&sp, slave, r, env) < 0) {
    if (master >= 0) close(master);
    send_last(sock, F_FAILED, "cannot_start", strerror(errno));
    return -1;
  }
  if (c->tty) {
    close(sp.in);
    close(sp.out);
    close(sp.err);
    c->in = c->out = master;
    c->err = -1;
  } else {
    c->in = sp.in;
    c->out = sp.out;
    c->err = sp.err;
  }
  struct start_error e;
  ssize_t n;
  do n = read(sp.ep, &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(sp.ep);
  if (n == (ssize_t)sizeof e) {
    char msg[4200], why[256];
    /* In the words runc uses (lower case), which clients already match on. */
    snprintf(why, sizeof why, "%s", strerror(e.err));
    why[0] = (char)tolower((unsigned char)why[0]);
    if (e.stage == 0) snprintf(msg, sizeof msg, "cannot change directory to %s: %s", r->cwd, why);
    else if (e.stage == 1) snprintf(msg, sizeof msg, "exec: \"%s\": %s", r->argv[0], e.err == ENOENT ? "executable file not found in $PATH" : why);
    else snprintf(msg, sizeof msg, "cannot open the terminal: %s", why);
    int not_found = e.stage == 1 && (e.err == ENOENT || e.err == ENOTDIR);
    send_last(sock, F_FAILED, not_found ? "not_found" : "cannot_start", msg);
    waitpid(sp.pid, NULL, 0);
    if (c->tty) close(master);
    else {
      close(sp.in);
      close(sp.out);
      close(sp.err);
    }
    c->in = c->out = c->err = -1;
    return -1;
  }
  c->pid = sp.pid;
  return 0;
}

/*
 * Whether any process of session `sid` is still alive (it may hold the terminal). Asked
 * only once a terminal's command has exited and its master stayed quiet: Linux reports
 * the master's hang-up (EIO) when the last holder closes it, gVisor's pty never does.
 */
static int session_alive(pid_t sid) {
  DIR *d = opendir("/proc");
  if (!d) return 1;
  int alive = 0;
  struct dirent *e;
  while (!alive && (e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    char path[288], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = 0;
    /* After the command name (which may hold spaces): state ppid pgrp session. */
    char *rp = strrchr(buf, ')');
    char state;
    int ppid, pgrp, session;
    if (rp && sscanf(rp + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) == 4 && session == sid && state != 'Z') alive = 1;
  }
  closedir(d);
  return alive;
}

/* Forward one chunk from fd to the server; 0 when the fd ended (a terminal's EIO included). */
static int forward(int sock, int fd, char type) {
  static char buf[CHUNK];
  ssize_t n;
  do n = read(fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return 1;
  if (n <= 0) return 0;
  if (send_frame(sock, type, buf, (uint32_t)n) < 0) return -1;
  return 1;
}

/*
 * After the last frame: keep the connection until the server closes it, reading and
 * dropping what it still sends (stdin for a command that has exited). Closing first
 * would make the server's next write fail, and its socket would drop the frames not yet
 * read, the exit status among them. Bounded, for a server that never closes.
 */
static void linger(int sock) {
  static char sink[CHUNK];
  if (flush_frames(sock) < 0) return;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left = 10000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
    if (left <= 0) return;
    struct pollfd p = {sock, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    ssize_t n = read(sock, sink, sizeof sink);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

/* The agent's own environment, which every session's merged one is made from (a session sets `environ` for its command). */
static char **base_environ;

/* A parsed request and the buffer it points into. */
static void free_request(char *req, struct request *r) {
  free(r->argv);
  free(r->extra);
  free(req);
}

/*
 * Undo what a session did to this process, so the next one on the connection starts as a
 * fresh spare would: its descriptors, environment, directory and children.
 */
static void end_session(struct command *c, int stdin_open) {
  if (c->in >= 0 && stdin_open) close(c->in);
  if (c->out >= 0 && c->out != c->in) close(c->out);
  if (c->err >= 0) close(c->err);
  if (c->done >= 0) close(c->done);
  environ = base_environ;
  free(c->env);
  if (chdir("/") < 0) {
    /* Nothing holds a directory of the machine's open longer than a session: "/" always exists. */
  }
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

/*
 * One session: the request `req` (a frame of `type`, read from `sock`, freed here), the
 * command, its streams, until it exited and its output ended. 1 when the connection then
 * serves another request, 0 when it ends. `*taken` is told on the spare's first
 * request, then set to -1.
 */
static int run_session(int sock, int sfd, int *taken, char type, char *req, uint32_t len) {
  struct request r = {0};
  if (type != F_EXEC || parse_request(req, len, &r) < 0) {
    free_request(req, &r);
    return 0;
  }
  if (*taken >= 0) {
    /* The agent makes the next idle connection (and its spare) now. */
    (void)!write(*taken, "1", 1);
    close(*taken);
    *taken = -1;
  }

  struct command c = {.in = -1, .out = -1, .err = -1, .done = -1};
  if (start_command(sock, &c, &r) < 0) {
    end_session(&c, 1);
    free_request(req, &r);
    return flush_frames(sock) == 0;
  }
  char pid[24];
  snprintf(pid, sizeof pid, "%d", (int)c.pid);
  if (send_pair(sock, F_STARTED, pid, NULL) < 0) goto gone;
  fcntl(c.in, F_SETFL, fcntl(c.in, F_GETFL) | O_NONBLOCK);
  if (c.out >= 0) fcntl(c.out, F_SETFL, fcntl(c.out, F_GETFL) | O_NONBLOCK);
  if (c.err >= 0) fcntl(c.err, F_SETFL, fcntl(c.err, F_GETFL) | O_NONBLOCK);

  char *pending = NULL;
  size_t pending_len = 0, pending_at = 0;
  int stdin_eof = 0, stdin_open = 1;
  int out_open = 1, err_open = !c.tty;
  for (;;) {
    if (c.exited && !out_open && !err_open) break;
    struct pollfd p[5];
    int n = 0, isock, iout = -1, ierr = -1, isig, iin = -1, idone = -1;
    isock = n;
    /* Always read: signals and resizes must get through; the server's window bounds the stdin. */
    p[n++] = (struct pollfd){sock, POLLIN | POLLRDHUP, 0};
    isig = n;
    p[n++] = (struct pollfd){sfd, POLLIN, 0};
    if (c.done >= 0 && !c.exited) {
      idone = n;
      p[n++] = (struct pollfd){c.done, POLLIN, 0};
    }
    if (out_open) {
      iout = n;
      p[n++] = (struct pollfd){c.out, POLLIN, 0};
    }
    if (err_open) {
      ierr = n;
      p[n++] = (struct pollfd){c.err, POLLIN, 0};
    }
    if (stdin_open && pending_at < pending_len) {
      iin = n;
      p[n++] = (struct pollfd){c.in, POLLOUT, 0};
    }
    /* A terminal whose command exited is polled with a timeout: see session_alive. */
    int quiet_ms = c.tty && c.exited ? 100 : -1;
    if (flush_frames(sock) < 0) goto gone;
    int ready = poll(p, (nfds_t)n, quiet_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      goto gone;
    }
    if (ready == 0) {
      if (!session_alive(c.pid)) out_open = 0;
      continue;
    }
    int got_stdin = 0;
    if (p[isock].revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) {
      char t, *data;
      uint32_t dl;
      if (!(p[isock].revents & POLLIN) || recv_frame(sock, &t, &data, &dl) < 0) goto gone;
      if (t == F_STDIN) {
        if (dl == 0) stdin_eof = !c.tty;
        else if (!stdin_open) {
          if (send_frame(sock, F_STDIN_GONE, NULL, 0) < 0) goto gone;
        } else {
          if (pending_at > 0) {
            /* What the command took is dropped from the front, so the buffer holds only what waits. */
            memmove(pending, pending + pending_at, pending_len - pending_at);
            pending_len -= pending_at;
            pending_at = 0;
          }
          if (pending_len + dl > STDIN_WINDOW_MAX) goto gone;
          char *grown = realloc(pending, pending_len + dl);
          if (!grown) goto gone;
          pending = grown;
          memcpy(pending + pending_len, data, dl);
          pending_len += dl;
          got_stdin = 1;
        }
      } else if (t == F_SIGNAL) {
        int sig = atoi(data);
        if (c.done >= 0) {
          /* The file tool is a thread: a signal that would end its process ends the session, with that status. */
          int ignored = sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH || sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
          if (!c.exited && sig > 0 && sig < 65 && !ignored) {
            char code[16];
            snprintf(code, sizeof code, "%d", 128 + sig);
            if (send_pair(sock, F_EXIT, code, NULL) == 0) linger(sock);
            _exit(0);
          }
        } else if (sig > 0 && sig < 65 && kill(-c.pid, sig) < 0) kill(c.pid, sig);
      } else if (t == F_RESIZE && c.tty) {
        char *rc[2];
        if (split_strings(data, dl, rc, 2) == 2) {
          struct winsize ws = {.ws_row = (unsigned short)atoi(rc[0]), .ws_col = (unsigned short)atoi(rc[1])};
          ioctl(c.out, TIOCSWINSZ, &ws);
        }
      }
      free(data);
    }
    /* Stdin just received is written at once (the pipe is non-blocking), not after one more poll. */
    if (stdin_open && pending_at < pending_len && (got_stdin || (iin >= 0 && (p[iin].revents & (POLLOUT | POLLERR | POLLHUP))))) {
      ssize_t w = write(c.in, pending + pending_at, pending_len - pending_at);
      if (w > 0) {
        pending_at += (size_t)w;
        char acked[24];
        snprintf(acked, sizeof acked, "%zd", w);
        if (send_pair(sock, F_ACK, acked, NULL) < 0) goto gone;
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        /* The command closed its stdin: what it did not read is dropped, as a pipe does. */
        pending_at = pending_len;
        if (!c.tty) {
          close(c.in);
          stdin_open = 0;
          if (send_frame(sock, F_STDIN_GONE, NULL, 0) < 0) goto gone;
        }
      }
    }
    if (!c.tty && stdin_open && stdin_eof && pending_at == pending_len) {
      close(c.in);
      stdin_open = 0;
    }
    if (iout >= 0 && (p[iout].revents & (POLLIN | POLLHUP | POLLERR))) {
      int r = forward(sock, c.out, F_STDOUT);
      if (r < 0) goto gone;
      if (r == 0) out_open = 0;
    }
    if (ierr >= 0 && (p[ierr].revents & (POLLIN | POLLHUP | POLLERR))) {
      int r = forward(sock, c.err, F_STDERR);
      if (r < 0) goto gone;
      if (r == 0) err_open = 0;
    }
    if (idone >= 0 && (p[idone].revents & (POLLIN | POLLHUP | POLLERR))) {
      int status;
      ssize_t k;
      do k = read(c.done, &status, sizeof status);
      while (k < 0 && errno == EINTR);
      c.exited = 1;
      c.status = k == (ssize_t)sizeof status ? status : 126;
    }
    if (p[isig].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
      }
      int status;
      if (c.done < 0 && !c.exited && waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = 1;
        c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      /* Reap anything else that ended (grandchildren re-parented here do not: init has them). */
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    }
  }
  char code[16];
  snprintf(code, sizeof code, "%d", c.status);
  free(pending);
  end_session(&c, stdin_open);
  free_request(req, &r);
  return send_last(sock, F_EXIT, code, NULL) == 0 && flush_frames(sock) == 0;

gone:
  /* The server went away (or the session broke): the command and its group go with it. */
  kill(-c.pid, SIGKILL);
  kill(c.pid, SIGKILL);
  return 0;
}

static volatile sig_atomic_t nudged;
static void on_nudge(int sig) {
  (void)sig;
  nudged = 1;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* SIGUSR1 (the server's nudge after a restore) cuts it short */
}

/* The agent's argv[1] ("serve"), retitled in its spares: the server nudges, and tests count, the agent alone. */
static char *serve_title;
static pid_t agent_pid;

/*
 * The spare of cmd_serve: wait for a request on the idle connection `fd`, then tell the
 * agent (`taken`, on the first one) and serve it; then wait for the connection's next
 * request, for as long as the server keeps the connection. It dies with the agent while idle, so
 * a killed agent's connections close and the server notices (it starts a new agent); a
 * session it serves outlives the agent, as a command does, and its connection then ends.
 */
static int spare(int fd, int taken) {
  /* The server's nudge is meant for the agent's loop; a session ignores it (its command gets the default back). */
  signal(SIGUSR1, SIG_IGN);
  if (serve_title && strlen(serve_title) == 5) memcpy(serve_title, "spare", 5);
  /* The command's end is seen through a signalfd; the agent's own SIGCHLD setting (reap unseen) must not apply to it. */
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  signal(SIGCHLD, SIG_DFL);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 1;
  base_environ = environ;
  batching = 1;
  for (;;) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The agent may have gone before the line above (or during the last session): then this spare goes too. */
    if (getppid() != agent_pid) return 0;
    char type, *req;
    uint32_t len;
    if (recv_frame(fd, &type, &req, &len) < 0) return 0;
    /* On a connection that served before, anything but a request is what the server sent the
     * last session before it read that session's end: dropped. */
    if (type != F_EXEC && taken < 0) {
      free(req);
      continue;
    }
    prctl(PR_SET_PDEATHSIG, 0);
    if (!run_session(fd, sfd, &taken, type, req, len)) return 0;
  }
}

/*
 * Keep one idle connection to the server; when a request arrives on it, a child (the
 * spare forked for it) serves that session and a new idle connection is made.
 * Reconnects with a short backoff when the server is away (restarting, or closed the
 * socket around a checkpoint).
 */
static int cmd_serve(void) {
  /*
   * Started by `runc exec` (the server restarting a killed agent), the parent is outside
   * the machine: such a process is not in init's tree, which is what a checkpoint dumps.
   * Forking once and letting the parent go makes init adopt the agent.
   */
  if (getppid() == 0) {
    pid_t pid = fork();
    if (pid > 0) _exit(0);
    if (pid == 0) setsid();
  }
  agent_pid = getpid();
  /* Nothing reads the agent's own stdio (a relaunch by `runc exec -d` hands it the server's pipes). */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  signal(SIGPIPE, SIG_IGN);
  /*
   * Stdin and output frames of up to 256 KiB are buffers of their own: kept in the heap,
   * not mapped and unmapped for each (page faults cost here), nor handed back between frames.
   */
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
  /* Session children are reaped by the kernel: nothing here waits for them. */
  struct sigaction ign = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
  sigaction(SIGCHLD, &ign, NULL);
  struct sigaction nudge = {.sa_handler = on_nudge};
  sigaction(SIGUSR1, &nudge, NULL);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, HANGAR_AGENT_SOCKET, sizeof addr.sun_path - 1);
  long backoff = 1, away_ms = 0;
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      sleep_ms(100);
      continue;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
      close(fd);
      if (nudged) backoff = 1;
      nudged = 0;
      sleep_ms(backoff);
      away_ms += backoff;
      /* Quick while the server is only briefly away (a checkpoint), slow after. */
      backoff = backoff * 2 > (away_ms > 10000 ? 1000 : 50) ? (away_ms > 10000 ? 1000 : 50) : backoff * 2;
      continue;
    }
    backoff = 1;
    away_ms = 0;
    if (send_pair(fd, F_HELLO, HANGAR_AGENT_VERSION, NULL) < 0) {
      close(fd);
      continue;
    }
    /*
     * A spare process waits on the idle connection and serves the session that arrives
     * on it: forked now, while nothing waits for it, instead of once a request came (a
     * fork costs about 1 ms here). It tells this loop over `taken` when a request
     * arrived, so a new idle connection is made at once.
     */
    int taken[2];
    if (pipe2(taken, O_CLOEXEC) < 0) {
      close(fd);
      sleep_ms(10);
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(taken[0]);
      _exit(spare(fd, taken[1]));
    }
    close(fd);
    close(taken[1]);
    if (pid < 0) {
      close(taken[0]);
      sleep_ms(10);
      continue;
    }
    char got;
    ssize_t r;
    do r = read(taken[0], &got, 1);
    while (r < 0 && errno == EINTR);
    close(taken[0]);
    /* Nothing read: the connection ended idle (the server closed it, or is away); reconnect as usual. */
  }
}

/*
 * pid 1 at the machine's start: fork the agent into its own session, then become the
 * template's init, which keeps pid 1 (busybox init insists on it) and reaps the agent.
 */
static int cmd_launch(int argc, char **argv) {
  int i = 2;
  if (i < argc && strcmp(argv[i], "--") == 0) i++;
  if (i >= argc) {
    fprintf(stderr, "usage: hangar-agent launch -- INIT [ARG...]\n");
    return 2;
  }
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      if (null > 2) close(null);
    }
    char *args[] = {argv[0], "serve", NULL};
    execv(argv[0], args);
    _exit(cmd_serve());
  }
  /* A failed fork leaves a machine without an agent: the server falls back to runc exec. */
  execvp(argv[i], &argv[i]);
  fprintf(stderr, "hangar-agent: cannot start %s: %s\n", argv[i], strerror(errno));
  return 127;
}

/*
 * A minimal pid 1 for templates that bring no init of their own (Debian and OCI image
 * templates): it reaps every orphan and ends on SIGTERM, SIGINT or SIGHUP. Every signal is
 * taken synchronously, so no handler runs in the middle of a reap.
 */
static int cmd_init(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) return 0;
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    }
  }
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "launch") == 0) return cmd_launch(argc, argv);
  if (strcmp(cmd, "serve") == 0) {
    serve_title = argv[1];
    return cmd_serve();
  }
  if (strcmp(cmd, "init") == 0) return cmd_init();
  if (strcmp(cmd, "file") == 0) return hangar_file_main(argc - 1, argv + 1);
  if (strcmp(cmd, "watch") == 0) return hangar_watch_main(argc - 1, argv + 1);
  if (strcmp(cmd, "version") == 0) {
    printf("hangar-agent %s\n", HANGAR_AGENT_VERSION);
    return 0;
  }
  fprintf(stderr, "usage: hangar-agent launch -- INIT... | init | serve | file OP ARGS... | watch PATH [1] | version\n");
  return 2;
}
