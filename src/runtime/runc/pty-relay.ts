import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './command.js';

/**
 * The terminal relay, a small C program. `runc exec --tty --console-socket` hands the
 * pty's master side over a unix socket as an SCM_RIGHTS message, which Node cannot
 * receive. The relay listens on that socket, takes the master, and copies bytes between
 * its stdin/stdout and the master; lines "cols rows" on fd 3 set the window size
 * (TIOCSWINSZ, so the command gets SIGWINCH). It exits when the terminal closes (read
 * gives EIO once every holder of the pty's other side has exited).
 *
 * Protocol: argv = socket path, cols, rows. stderr: "ready" once listening, "attached"
 * once it holds the master, or one error line.
 */
const RELAY_SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <socket> <cols> <rows>\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof addr.sun_path) {
    fprintf(stderr, "socket path too long\n");
    return 1;
  }
  strcpy(addr.sun_path, argv[1]);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(argv[1]);
  if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 1) < 0) {
    fprintf(stderr, "cannot listen on %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  fprintf(stderr, "ready\n");
  int conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
  unlink(argv[1]);
  close(ls);
  if (conn < 0) {
    fprintf(stderr, "accept: %s\n", strerror(errno));
    return 1;
  }
  int master = recv_fd(conn);
  close(conn);
  if (master < 0) {
    fprintf(stderr, "no terminal was received\n");
    return 1;
  }
  set_size(master, atoi(argv[2]), atoi(argv[3]));
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  fprintf(stderr, "attached\n");

  static char out[65536], in[65536];
  size_t in_len = 0, in_off = 0;
  char ctl[256];
  size_t ctl_len = 0;
  int in_open = 1, ctl_open = 1;
  for (;;) {
    /* Input is read only once the previous input reached the terminal: a command that
       does not read its terminal must not block the output going the other way. */
    struct pollfd p[3] = {
      { master, (short)(POLLIN | (in_len > in_off ? POLLOUT : 0)), 0 },
      { (in_open && in_len == in_off) ? 0 : -1, POLLIN, 0 },
      { ctl_open ? 3 : -1, POLLIN, 0 },
    };
    if (poll(p, 3, -1) < 0) {
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
          if (sscanf(ctl, "%d %d", &cols, &rows) == 2) set_size(master, cols, rows);
          size_t used = (size_t)(nl - ctl) + 1;
          memmove(ctl, nl + 1, ctl_len - used);
          ctl_len -= used;
        }
        if (ctl_len == sizeof ctl - 1) ctl_len = 0;
      }
    }
  }
  return 0;
}
`;

/** The relay could not be built on this host. */
export class PtyRelayUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PtyRelayUnavailableError';
  }
}

/**
 * Path of the compiled relay under `toolsDir`, compiling it with the host's C compiler
 * the first time (named by a hash of its source, so a changed relay is rebuilt).
 */
export async function ensurePtyRelay(toolsDir: string, cc = 'cc'): Promise<string> {
  const hash = createHash('sha256').update(RELAY_SOURCE).digest('hex').slice(0, 12);
  const binary = join(toolsDir, `pty-relay-${hash}`);
  if (await access(binary).then(() => true, () => false)) return binary;
  await mkdir(toolsDir, { recursive: true });
  const tmp = `${binary}.${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(`${tmp}.c`, RELAY_SOURCE);
    await run(cc, ['-O2', '-Wall', '-o', tmp, `${tmp}.c`], 60_000);
    await rename(tmp, binary);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new PtyRelayUnavailableError(`the terminal relay could not be compiled (${why.split('\n')[0]}); install a C compiler: apt-get install gcc libc6-dev`);
  } finally {
    await rm(`${tmp}.c`, { force: true });
    await rm(tmp, { force: true });
  }
  return binary;
}
