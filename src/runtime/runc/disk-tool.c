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
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
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

static int make_dir(const char *parent, const char *name, char *path, size_t len) {
  snprintf(path, len, "%s/%s", parent, name);
  if (mkdir(path, 0755) < 0 && errno != EEXIST) return fail("mkdir", path);
  return 0;
}

static int mount_layer(const char *image, const char *layer, const char *rootfs, const char *source, const char *lower) {
  char dev[64], upper[4096], work[4096];
  int loop = attach_loop(image, dev, sizeof dev);
  if (loop < 0) return 1;
  if (mount(dev, layer, "ext4", MS_NOATIME, "") < 0) {
    fail("mount", image);
    close(loop); /* autoclear: closing the last user of an unmounted device detaches it */
    return 1;
  }
  close(loop);
  if (make_dir(layer, "upper", upper, sizeof upper) || make_dir(layer, "work", work, sizeof work)) goto undo;
  size_t need = strlen(lower) + strlen(upper) + strlen(work) + 40;
  char *opts = malloc(need);
  if (opts == NULL) goto undo;
  snprintf(opts, need, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  int rc = mount(source, rootfs, "overlay", 0, opts);
  free(opts);
  if (rc < 0) {
    fail("mount the overlay at", rootfs);
    goto undo;
  }
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

static int usage(void) {
  fputs("usage: disk-tool mount-layer [--clone BLANK] IMAGE LAYER ROOTFS SOURCE LOWERDIRS\n"
        "       disk-tool umount PATH...\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  if (strcmp(argv[1], "umount") == 0) return argc < 3 ? usage() : unmount_all(argc - 2, argv + 2);
  if (strcmp(argv[1], "mount-layer") != 0) return usage();
  int i = 2;
  const char *blank = NULL;
  if (argc > i + 1 && strcmp(argv[i], "--clone") == 0) {
    blank = argv[i + 1];
    i += 2;
  }
  if (argc - i != 5) return usage();
  const char *image = argv[i];
  if (blank != NULL && clone_sparse(blank, image) != 0) return 1;
  int rc = mount_layer(image, argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4]);
  if (rc != 0 && blank != NULL) unlink(image);
  return rc;
}
