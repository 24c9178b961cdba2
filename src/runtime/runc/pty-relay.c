/*
 * The terminal relay. `runc exec --tty --console-socket` hands the pty's master side
 * over a unix socket as an SCM_RIGHTS message, which Node cannot receive. The relay
 * listens on that socket, takes the master, and copies bytes between its stdin/stdout
 * and the master; lines "cols rows" on fd 3 set the window size (TIOCSWINSZ, so the
 * command gets SIGWINCH), a line "hangup" closes the terminal. It exits when the
 * terminal closes (read gives EIO once every holder of the pty's other side has exited).
 *
 * It also runs runc itself, as a child subreaper: `--detach` leaves the command orphaned,
 * so it is adopted, reaped, and its exit status reported.
 *
 * Protocol: argv = socket path, cols, rows, runc's pid file, then runc's argv. stderr:
 * "started" once the command runs, or runc's message then "start-failed"; at the end
 * "exit <code>" (128 + n for signal n) when the command's status is known.
 *
 * Built by `npm run build` (see package.json's build:relay) next to pty-relay.js in dist/.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

static int recv_fd(int conn) {
  char data[256];
  struct iovec iov = { data, sizeof data };
  union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = u.b;
  msg.msg_controllen = sizeof u.b;
  if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) < 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void set_size(int fd, int cols, int rows) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  if (cols < 1 || rows < 1 || cols > 1000 || rows > 1000) return;
  ws.ws_col = (unsigned short)cols;
  ws.ws_row = (unsigned short)rows;
  ioctl(fd, TIOCSWINSZ, &ws);
}

static pid_t runc_pid = -1, cmd_pid = 0;
static int runc_status = -1, cmd_status = -1;
static const char *pid_file;

static void read_cmd_pid(void) {
  FILE *f = fopen(pid_file, "r");
  if (f == NULL) return;
  long v = 0;
  if (fscanf(f, "%ld", &v) == 1 && v > 0) cmd_pid = (pid_t)v;
  fclose(f);
}

/* Reap every child: runc, then (as the subreaper) the command and what it leaves behind. */
static void reap(void) {
  int st;
  pid_t w;
  while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
    if (w == runc_pid) {
      runc_status = st;
      /* The command becomes our child now; learn its pid before it can be reaped. */
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) read_cmd_pid();
    } else if (w == cmd_pid) {
      cmd_status = st;
    }
  }
}

static int runc_failed(void) {
  return runc_status != -1 && !(WIFEXITED(runc_status) && WEXITSTATUS(runc_status) == 0);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s <socket> <cols> <rows> <pid-file> <runc> [args...]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pid_file = argv[4];
  /* runc exec --detach leaves the command orphaned: as subreaper we adopt it, reap it, and learn its status. */
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  fcntl(3, F_SETFD, FD_CLOEXEC);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof addr.sun_path) {
    fprintf(stderr, "socket path too long\nstart-failed\n");
    return 1;
  }
  strcpy(addr.sun_path, argv[1]);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(argv[1]);
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 1) < 0) {
    fprintf(stderr, "cannot listen on %s: %s\nstart-failed\n", argv[1], strerror(errno));
    return 1;
  }
  runc_pid = fork();
  if (runc_pid == 0) {
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0);
    dup2(nul, 1);
    execvp(argv[5], argv + 5);
    fprintf(stderr, "cannot run %s: %s\n", argv[5], strerror(errno));
    _exit(127);
  }
  /* Until runc connects, it may fail instead (its message is on our stderr already). */
  for (;;) {
    struct pollfd lp = { ls, POLLIN, 0 };
    int r = poll(&lp, 1, 50);
    if (r > 0) break;
    reap();
    if (runc_status != -1) {
      unlink(argv[1]);
      fprintf(stderr, "\nstart-failed\n");
      return 1;
    }
  }
  int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  unlink(argv[1]);
  close(ls);
  if (conn < 0) {
    fprintf(stderr, "accept: %s\nstart-failed\n", strerror(errno));
    return 1;
  }
  int master = recv_fd(conn);
  close(conn);
  if (master < 0) {
    fprintf(stderr, "no terminal was received\nstart-failed\n");
    return 1;
  }
  set_size(master, atoi(argv[2]), atoi(argv[3]));
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  /* runc exits once the command runs (or fails to start it after sending the terminal). */
  while (runc_status == -1) {
    reap();
    if (runc_status == -1) usleep(5000);
  }
  if (runc_failed()) {
    fprintf(stderr, "\nstart-failed\n");
    return 1;
  }
  fprintf(stderr, "started\n");

  static char out[65536], in[65536];
  size_t in_len = 0, in_off = 0;
  char ctl[256];
  size_t ctl_len = 0;
  int in_open = 1, ctl_open = 1, hangup = 0;
  while (!hangup) {
    /* Input is read only once the previous input reached the terminal: a command that
       does not read its terminal must not block the output going the other way. */
    struct pollfd p[3] = {
      { master, (short)(POLLIN | (in_len > in_off ? POLLOUT : 0)), 0 },
      { (in_open && in_len == in_off) ? 0 : -1, POLLIN, 0 },
      { ctl_open ? 3 : -1, POLLIN, 0 },
    };
    int ready = poll(p, 3, 200);
    reap();
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, out, sizeof out);
      if (n > 0) {
        if (write_all(1, out, (size_t)n) < 0) break;
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        break; /* EIO: the terminal closed */
      }
    }
    if ((p[0].revents & POLLOUT) && in_len > in_off) {
      ssize_t n = write(master, in + in_off, in_len - in_off);
      if (n > 0) in_off += (size_t)n;
      if (in_off == in_len) in_off = in_len = 0;
    }
    if (p[1].revents) {
      ssize_t n = read(0, in, sizeof in);
      if (n > 0) {
        in_len = (size_t)n;
        in_off = 0;
      } else if (n == 0 || errno != EINTR) {
        in_open = 0;
      }
    }
    if (p[2].revents) {
      ssize_t n = read(3, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
      if (n <= 0) {
        ctl_open = 0;
      } else {
        ctl_len += (size_t)n;
        char *nl;
        while ((nl = memchr(ctl, '\n', ctl_len)) != NULL) {
          *nl = 0;
          int cols = 0, rows = 0;
          if (strcmp(ctl, "hangup") == 0) hangup = 1;
          else if (sscanf(ctl, "%d %d", &cols, &rows) == 2) set_size(master, cols, rows);
          size_t used = (size_t)(nl - ctl) + 1;
          memmove(ctl, nl + 1, ctl_len - used);
          ctl_len -= used;
        }
        if (ctl_len == sizeof ctl - 1) ctl_len = 0;
      }
    }
  }
  /* Closing the master hangs the terminal up: the kernel sends SIGHUP to its session. */
  close(master);
  /* The terminal closed: the command has exited or is about to; report how, when known. */
  for (int i = 0; i < 200 && cmd_pid > 0 && cmd_status == -1; i++) {
    reap();
    if (cmd_status == -1) usleep(5000);
  }
  if (cmd_status != -1) {
    int code = WIFEXITED(cmd_status) ? WEXITSTATUS(cmd_status) : 128 + WTERMSIG(cmd_status);
    fprintf(stderr, "exit %d\n", code);
  }
  return 0;
}
