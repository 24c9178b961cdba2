/*
 * disk-tool: a machine's disk and root filesystem set up with system calls, in one
 * process, instead of mkfs.ext4 + mount(8) + mount(8) and umount(8) twice.
 *
 * mount(8) with `-o loop` asks libmount to look through every loop device for one already
 * backed by the same file; with a thousand machines on a host that scan is most of a
 * create. Here the kernel hands out a free device (LOOP_CTL_GET_FREE) and the file is
 * attached in one ioctl (LOOP_CONFIGURE, autoclear: the device goes when the file system
 * is unmounted), so the cost does not grow with the number of machines.
 *
 *   disk-tool mount-layer [--clone BLANK] IMAGE LAYER ROOTFS SOURCE LOWERDIRS
 *       (--clone: first copy BLANK, a formatted sparse ext4 image, to IMAGE, which must
 *       not exist, copying only its allocated extents), then attach IMAGE to a loop
 *       device, mount it (ext4, noatime) at LAYER, make LAYER/upper and LAYER/work, and
 *       mount the overlay SOURCE at ROOTFS with LOWERDIRS (':'-separated, topmost first).
 *       On failure nothing it made is left mounted, and a cloned IMAGE is removed.
 *       With --idmap BASE STAGING, the machine runs in a user namespace whose uid and gid
 *       0..65535 are BASE..BASE+65535 on the host: each lower dir is cloned as a mount
 *       idmapped to that range (so the template's root-owned files are the machine's
 *       root's, while the template on disk stays as it is), attached under STAGING only
 *       long enough for the overlay to take it (overlayfs keeps private clones of its
 *       layers), and a new upper dir is made owned by BASE. The upper dir itself cannot
 *       be idmapped (overlayfs makes its work dirs as the mounter, host root, which such
 *       a mount cannot store), so what the machine writes is stored with host ids in BASE's range.
 *   disk-tool idmap-bind BASE SOURCE TARGET
 *       attach at TARGET a clone of the mount tree at SOURCE, idmapped to BASE's range
 *       as above (a volume as a user-namespaced machine sees it); TARGET must exist.
 *   disk-tool umount PATH...
 *       unmount each PATH in order; a path that is not a mount point is skipped; a busy
 *       one is detached (the kernel frees it once its last user lets go).
 *
 * Exit status 0 on success, 1 with one line on stderr otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
#endif

static int fail(const char *what, const char *arg) {
  fprintf(stderr, "disk-tool: %s %s: %s\n", what, arg, strerror(errno));
  return 1;
}

/* Copy the allocated extents of `src` into a new file `dest` of the same size. */
static int clone_sparse(const char *src, const char *dest) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return fail("open", src);
  struct stat st;
  if (fstat(in, &st) < 0) return fail("stat", src);
  int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) return fail("create", dest);
  if (ftruncate(out, st.st_size) < 0) goto bad;
  off_t at = 0;
  for (;;) {
    off_t data = lseek(in, at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* no data after `at` */
      goto bad;
    }
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) goto bad;
    off_t from = data, to = data;
    while (from < hole) {
      ssize_t n = copy_file_range(in, &from, out, &to, (size_t)(hole - from), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) goto bad;
    }
    at = hole;
  }
  close(in);
  if (close(out) < 0) {
    unlink(dest);
    return fail("close", dest);
  }
  return 0;
bad:
  fail("copy into", dest);
  unlink(dest);
  return 1;
}

/* Attach `image` to a free loop device with autoclear; returns the device's fd (or -1) and its path. */
static int attach_loop(const char *image, char *dev, size_t devlen) {
  int file = open(image, O_RDWR | O_CLOEXEC);
  if (file < 0) return fail("open", image), -1;
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) {
    fail("open", "/dev/loop-control");
    close(file);
    return -1;
  }
  int loop = -1;
  /* Another process may take the free device between asking and configuring: ask again. */
  for (int attempt = 0; attempt < 64 && loop < 0; attempt++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      fail("find a free loop device for", image);
      break;
    }
    snprintf(dev, devlen, "/dev/loop%d", n);
    int fd = -1;
    /* udev-less hosts: the node appears a moment after the device is made. */
    for (int wait = 0; wait < 100 && fd < 0; wait++) {
      fd = open(dev, O_RDWR | O_CLOEXEC);
      if (fd < 0 && errno == ENOENT) usleep(1000);
      else break;
    }
    if (fd < 0) {
      fail("open", dev);
      break;
    }
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (unsigned)file;
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    strncpy((char *)cfg.info.lo_file_name, image, LO_NAME_SIZE - 1);
    if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
      loop = fd;
    } else if (errno == EBUSY) {
      close(fd);
    } else {
      fail("attach a loop device to", image);
      close(fd);
      break;
    }
  }
  close(ctl);
  close(file);
  return loop;
}

/* uids (and gids) a user-namespaced machine has: 0..65535 inside. */
#define IDMAP_SIZE 65536UL

/*
 * A user namespace whose ids 0..IDMAP_SIZE-1 are base.. on the host, as an fd: a child
 * unshares one and waits while its maps are written, the namespace is opened through
 * /proc, and the child exits (the fd keeps the namespace). -1 on failure.
 */
static int userns_fd(unsigned long base) {
  int ready[2], done[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return fail("make a pipe", "for the user namespace"), -1;
  if (pipe2(done, O_CLOEXEC) < 0) {
    close(ready[0]), close(ready[1]);
    return fail("make a pipe", "for the user namespace"), -1;
  }
  pid_t pid = fork();
  if (pid < 0) return fail("fork", "for the user namespace"), -1;
  if (pid == 0) {
    close(ready[0]);
    close(done[1]);
    char c = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'x';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    (void)!read(done[0], &c, 1); /* until the parent has opened the namespace (or exits) */
    _exit(0);
  }
  close(ready[1]);
  close(done[0]);
  int ns = -1;
  char c = 0, path[64], map[64];
  if (read(ready[0], &c, 1) != 1 || c != 'u') {
    errno = EPERM;
    fail("unshare", "a user namespace");
    goto out;
  }
  snprintf(map, sizeof map, "0 %lu %lu\n", base, IDMAP_SIZE);
  const char *files[] = {"uid_map", "gid_map"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, files[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map)) {
      fail("write", path);
      if (fd >= 0) close(fd);
      goto out;
    }
    close(fd);
  }
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) fail("open", path);
out:
  close(done[1]); /* the child reads end-of-file and exits */
  close(ready[0]);
  waitpid(pid, NULL, 0);
  return ns;
}

/* Attach at `target` a clone of the mount tree at `source`, idmapped through the user namespace `ns`. */
static int idmapped_clone(int ns, const char *source, const char *target) {
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return fail("clone the mount at", source);
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (unsigned long long)ns;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
    close(tree);
    return fail("idmap the mount of", source);
  }
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    close(tree);
    return fail("attach an idmapped mount at", target);
  }
  close(tree);
  return 0;
}

static int make_dir(const char *parent, const char *name, char *path, size_t len) {
  snprintf(path, len, "%s/%s", parent, name);
  if (mkdir(path, 0755) < 0 && errno != EEXIST) return fail("mkdir", path);
  return 0;
}

/* Detach and remove the staging mount points 0..n-1 under `staging`, and `staging`. */
static void clear_staging(const char *staging, int n) {
  char path[4096];
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%d", staging, i);
    umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
    rmdir(path);
  }
  rmdir(staging);
}

/*
 * Idmapped clones of each ':'-separated dir of `lower`, attached at staging/0, staging/1…;
 * writes the overlay's lowerdir option for them into `out`. Returns how many were
 * attached, or -1 (with none left attached).
 */
static int stage_idmapped_lowers(int ns, const char *lower, const char *staging, char *out, size_t outlen) {
  if (mkdir(staging, 0700) < 0 && errno != EEXIST) return fail("mkdir", staging), -1;
  char *dirs = strdup(lower);
  if (dirs == NULL) return -1;
  int n = 0;
  size_t used = 0;
  out[0] = 0;
  for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d", staging, n);
    if ((mkdir(path, 0700) < 0 && errno != EEXIST) || idmapped_clone(ns, dir, path) != 0) {
      clear_staging(staging, n + 1);
      free(dirs);
      return -1;
    }
    n++;
    int w = snprintf(out + used, outlen - used, "%s%s", used == 0 ? "" : ":", path);
    if (w < 0 || (size_t)w >= outlen - used) {
      clear_staging(staging, n);
      free(dirs);
      errno = ENAMETOOLONG;
      return fail("stage", "the lower dirs"), -1;
    }
    used += (size_t)w;
  }
  free(dirs);
  return n;
}

static int mount_layer(const char *image, const char *layer, const char *rootfs, const char *source, const char *lower,
                       long idmap_base, const char *staging) {
  char dev[64], upper[4096], work[4096];
  int loop = attach_loop(image, dev, sizeof dev);
  if (loop < 0) return 1;
  if (mount(dev, layer, "ext4", MS_NOATIME, "") < 0) {
    fail("mount", image);
    close(loop); /* autoclear: closing the last user of an unmounted device detaches it */
    return 1;
  }
  close(loop);
  snprintf(upper, sizeof upper, "%s/upper", layer);
  int fresh = mkdir(upper, 0755) == 0;
  if (!fresh && errno != EEXIST) {
    fail("mkdir", upper);
    goto undo;
  }
  /* A new machine's root directory is its root's (an old one's keeps whatever it has). */
  if (fresh && idmap_base >= 0 && chown(upper, (uid_t)idmap_base, (gid_t)idmap_base) < 0) {
    fail("chown", upper);
    goto undo;
  }
  if (make_dir(layer, "work", work, sizeof work)) goto undo;
  int staged = 0;
  char *lowers = (char *)lower;
  if (idmap_base >= 0) {
    int ns = userns_fd((unsigned long)idmap_base);
    if (ns < 0) goto undo;
    size_t layers = 1;
    for (const char *c = lower; *c; c++) layers += *c == ':';
    size_t cap = layers * (strlen(staging) + 24) + 1;
    lowers = malloc(cap);
    if (lowers == NULL) {
      close(ns);
      goto undo;
    }
    staged = stage_idmapped_lowers(ns, lower, staging, lowers, cap);
    close(ns);
    if (staged < 0) {
      free(lowers);
      goto undo;
    }
  }
  size_t need = strlen(lowers) + strlen(upper) + strlen(work) + 40;
  char *opts = malloc(need);
  int rc = -1;
  if (opts != NULL) {
    snprintf(opts, need, "lowerdir=%s,upperdir=%s,workdir=%s", lowers, upper, work);
    rc = mount(source, rootfs, "overlay", 0, opts);
    if (rc < 0) fail("mount the overlay at", rootfs);
    free(opts);
  }
  /* The overlay holds its own clones of the staged layers: their mount points can go now. */
  if (idmap_base >= 0) {
    clear_staging(staging, staged);
    free(lowers);
  }
  if (rc < 0) goto undo;
  return 0;
undo:
  if (umount2(layer, 0) < 0) umount2(layer, MNT_DETACH);
  return 1;
}

static int unmount_all(int n, char **paths) {
  int rc = 0;
  for (int i = 0; i < n; i++) {
    if (umount2(paths[i], UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) continue; /* not a mount point: nothing to do */
    if (errno == EBUSY && umount2(paths[i], UMOUNT_NOFOLLOW | MNT_DETACH) == 0) continue;
    rc = fail("unmount", paths[i]);
  }
  return rc;
}

/* A range's first host id: a decimal number above 0 whose range fits below 2^32-1; -1 if not. */
static long parse_base(const char *s) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != 0 || v == 0 || v + IDMAP_SIZE > 4294967295ULL) return -1;
  return (long)v;
}

static int usage(void) {
  fputs("usage: disk-tool mount-layer [--clone BLANK] [--idmap BASE STAGING] IMAGE LAYER ROOTFS SOURCE LOWERDIRS\n"
        "       disk-tool idmap-bind BASE SOURCE TARGET\n"
        "       disk-tool umount PATH...\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  if (strcmp(argv[1], "umount") == 0) return argc < 3 ? usage() : unmount_all(argc - 2, argv + 2);
  if (strcmp(argv[1], "idmap-bind") == 0) {
    long base = argc == 5 ? parse_base(argv[2]) : -1;
    if (base < 0) return usage();
    int ns = userns_fd((unsigned long)base);
    if (ns < 0) return 1;
    int rc = idmapped_clone(ns, argv[3], argv[4]);
    close(ns);
    return rc;
  }
  if (strcmp(argv[1], "mount-layer") != 0) return usage();
  int i = 2;
  const char *blank = NULL, *staging = NULL;
  long idmap_base = -1;
  if (argc > i + 1 && strcmp(argv[i], "--clone") == 0) {
    blank = argv[i + 1];
    i += 2;
  }
  if (argc > i + 2 && strcmp(argv[i], "--idmap") == 0) {
    idmap_base = parse_base(argv[i + 1]);
    staging = argv[i + 2];
    if (idmap_base < 0) return usage();
    i += 3;
  }
  if (argc - i != 5) return usage();
  const char *image = argv[i];
  if (blank != NULL && clone_sparse(blank, image) != 0) return 1;
  int rc = mount_layer(image, argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4], idmap_base, staging);
  if (rc != 0 && blank != NULL) unlink(image);
  return rc;
}
