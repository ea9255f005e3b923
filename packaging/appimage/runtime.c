/*
 * Layerdeck's AppImage runtime (AppImage specification, type 2).
 *
 * An AppImage is this program followed by a squashfs image of an AppDir. The image starts
 * right where this ELF file ends (the end of its section header table or of its last
 * section, whichever is later), so the runtime finds it by reading its own ELF header.
 * packaging/build.sh writes the type-2 magic ('A', 'I', 0x02) at file offset 8, in the
 * ELF identification padding that loaders ignore.
 *
 * Run, it mounts the image read-only with squashfuse's FUSE operations on a fresh
 * directory under $TMPDIR, starts $APPDIR/AppRun with the arguments in a child process,
 * serves the file system until that child exits, then unmounts, removes the directory
 * and exits as the child did. Serving from the parent (rather than from a forked
 * daemon) means the mount is gone by the time the AppImage's own process has exited.
 *
 *   --appimage-extract [PATTERN]  extract (the entries matching PATTERN) to ./squashfs-root
 *   --appimage-extract-and-run    extract to a temporary directory, run AppRun, remove it
 *                                 (also APPIMAGE_EXTRACT_AND_RUN=1; needs no FUSE)
 *   --appimage-offset             print the offset of the squashfs image
 *   --appimage-help, --appimage-version
 *
 * Extraction walks the image with libsquashfuse's own traversal API, so the runtime needs
 * no other program. AppRun gets APPIMAGE (the AppImage file's absolute path), APPDIR (the
 * mount point or extracted directory), ARGV0 (argv[0] as invoked) and OWD (the directory
 * the AppImage was started from).
 */
#define _GNU_SOURCE

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* squashfuse's config.h defines _POSIX_C_SOURCE; the system headers are already in. */
#undef _POSIX_C_SOURCE
#include <squashfuse/ll.h>
#include <squashfuse/squashfuse.h>

#define RUNTIME_VERSION "1.0"
#define IMAGE_MAGIC "hsqs"
#define EXTRACT_DIR "squashfs-root"
#define COPY_CHUNK (128 * 1024)

/*
 * Sections that AppImage tools read and write: update information, a signature and its
 * key, and an MD5 digest. Layerdeck publishes no updates and signs nothing yet, so they are
 * left zeroed, but their presence lets those tools work on the file.
 */
__attribute__((section(".digest_md5"), used)) static char digest_md5[16] = {0};
__attribute__((section(".upd_info"), used)) static char update_information[1024] = {0};
__attribute__((section(".sha256_sig"), used)) static char sha256_signature[1024] = {0};
__attribute__((section(".sig_key"), used)) static char signature_key[8192] = {0};

/* The signals the runtime passes on to AppRun while it waits for it. */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* A half-extracted temporary tree that a failure must not leave behind, when there is one. */
static const char *abandoned_tree = NULL;

static void remove_tree(const char *path);

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("AppImage runtime: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    if (abandoned_tree != NULL) {
        remove_tree(abandoned_tree);
    }
    exit(1);
}

/* Read exactly size bytes at offset, or fail with the file's name in the message. */
static void read_at(int fd, const char *path, void *buffer, size_t size, off_t offset) {
    ssize_t got = pread(fd, buffer, size, offset);
    if (got < 0) {
        die("cannot read %s: %s", path, strerror(errno));
    }
    if ((size_t)got != size) {
        die("cannot read %s: the file ends at byte %lld, inside its ELF headers", path,
            (long long)(offset + got));
    }
}

/*
 * Where the ELF image ends and the appended squashfs image starts: the later of the end of
 * the section header table and the end of the last section, as appimagetool computes it,
 * and also of the program header table so that an unusual layout cannot place the offset
 * inside the headers. The runtime is built for this machine, so its byte order is native.
 */
static off_t elf_size(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        die("cannot open %s: %s", path, strerror(errno));
    }
    unsigned char ident[EI_NIDENT];
    read_at(fd, path, ident, sizeof ident, 0);
    if (memcmp(ident, ELFMAG, SELFMAG) != 0) {
        die("%s is not an ELF file", path);
    }
    uint64_t table_end;
    uint64_t section_end;
    uint64_t program_end;
    if (ident[EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr header;
        Elf64_Shdr last;
        read_at(fd, path, &header, sizeof header, 0);
        table_end = header.e_shoff + (uint64_t)header.e_shentsize * header.e_shnum;
        program_end = header.e_phoff + (uint64_t)header.e_phentsize * header.e_phnum;
        section_end = 0;
        if (header.e_shnum > 0) {
            off_t at = (off_t)(header.e_shoff + (uint64_t)header.e_shentsize *
                                                    (header.e_shnum - 1U));
            read_at(fd, path, &last, sizeof last, at);
            section_end = last.sh_offset + (last.sh_type == SHT_NOBITS ? 0 : last.sh_size);
        }
    } else if (ident[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr header;
        Elf32_Shdr last;
        read_at(fd, path, &header, sizeof header, 0);
        table_end = header.e_shoff + (uint64_t)header.e_shentsize * header.e_shnum;
        program_end = header.e_phoff + (uint64_t)header.e_phentsize * header.e_phnum;
        section_end = 0;
        if (header.e_shnum > 0) {
            off_t at = (off_t)(header.e_shoff + (uint64_t)header.e_shentsize *
                                                    (header.e_shnum - 1U));
            read_at(fd, path, &last, sizeof last, at);
            section_end = last.sh_offset + (last.sh_type == SHT_NOBITS ? 0 : last.sh_size);
        }
    } else {
        die("%s has an unknown ELF class %u", path, ident[EI_CLASS]);
    }
    close(fd);
    uint64_t end = table_end;
    if (section_end > end) {
        end = section_end;
    }
    if (program_end > end) {
        end = program_end;
    }
    return (off_t)end;
}

/* Fail unless the squashfs image really starts at offset. */
static void check_image(const char *appimage, off_t offset) {
    int fd = open(appimage, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        die("cannot open %s: %s", appimage, strerror(errno));
    }
    char magic[4] = {0};
    ssize_t got = pread(fd, magic, sizeof magic, offset);
    close(fd);
    if (got != (ssize_t)sizeof magic || memcmp(magic, IMAGE_MAGIC, sizeof magic) != 0) {
        die("%s has no squashfs image at offset %lld (was one appended to the runtime?)",
            appimage, (long long)offset);
    }
}

/* Set an environment variable for AppRun, or fail saying which. */
static void export_variable(const char *name, const char *value) {
    if (setenv(name, value, 1) != 0) {
        die("cannot set %s: %s", name, strerror(errno));
    }
}

/* ---- extraction ---------------------------------------------------------------------- */

/* A regular file with more than one link, extracted once and linked to after that. */
typedef struct {
    sqfs_inode_num inode;
    char *path;
} extracted_link;

typedef struct {
    int root_fd;          /* the directory extracted into */
    const char *root;     /* its name, for messages */
    extracted_link *links;
    size_t link_count;
    size_t link_capacity;
    size_t entries;
} extraction;

/* Create the directories above path (relative to the extraction root), as mkdir -p does. */
static void make_parents(extraction *target, const char *path) {
    char partial[PATH_MAX];
    size_t length = strlen(path);
    if (length >= sizeof partial) {
        die("path too long in the image: %s", path);
    }
    memcpy(partial, path, length + 1);
    for (char *slash = strchr(partial, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdirat(target->root_fd, partial, 0755) != 0 && errno != EEXIST) {
            die("cannot create %s/%s: %s", target->root, partial, strerror(errno));
        }
        *slash = '/';
    }
}

/* Whether every component of a path from the image is an ordinary name. */
static bool safe_path(const char *path) {
    const char *component = path;
    while (*component != '\0') {
        const char *end = strchrnul(component, '/');
        size_t length = (size_t)(end - component);
        if (length == 0 || (length == 1 && component[0] == '.') ||
            (length == 2 && component[0] == '.' && component[1] == '.')) {
            return false;
        }
        component = *end == '/' ? end + 1 : end;
    }
    return true;
}

static void extract_regular(extraction *target, sqfs *fs, sqfs_inode *inode, const char *path,
                            mode_t mode) {
    if (inode->nlink > 1) {
        for (size_t i = 0; i < target->link_count; i++) {
            if (target->links[i].inode == inode->base.inode_number) {
                unlinkat(target->root_fd, path, 0);
                if (linkat(target->root_fd, target->links[i].path, target->root_fd, path, 0)
                    != 0) {
                    die("cannot link %s/%s: %s", target->root, path, strerror(errno));
                }
                return;
            }
        }
    }
    /* Replace rather than write through: an earlier extraction may have left a symlink. */
    unlinkat(target->root_fd, path, 0);
    int fd = openat(target->root_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        die("cannot create %s/%s: %s", target->root, path, strerror(errno));
    }
    static char chunk[COPY_CHUNK];
    uint64_t size = inode->xtra.reg.file_size;
    for (uint64_t done = 0; done < size;) {
        sqfs_off_t want = (sqfs_off_t)(size - done < COPY_CHUNK ? size - done : COPY_CHUNK);
        if (sqfs_read_range(fs, inode, (sqfs_off_t)done, &want, chunk) != SQFS_OK || want <= 0) {
            die("cannot read %s from the image (corrupt or truncated AppImage?)", path);
        }
        for (sqfs_off_t written = 0; written < want;) {
            ssize_t n = write(fd, chunk + written, (size_t)(want - written));
            if (n < 0) {
                die("cannot write %s/%s: %s", target->root, path, strerror(errno));
            }
            written += n;
        }
        done += (uint64_t)want;
    }
    if (fchmod(fd, mode) != 0 || close(fd) != 0) {
        die("cannot finish %s/%s: %s", target->root, path, strerror(errno));
    }
    if (inode->nlink > 1) {
        if (target->link_count == target->link_capacity) {
            target->link_capacity = target->link_capacity ? 2 * target->link_capacity : 16;
            target->links = realloc(target->links, target->link_capacity * sizeof *target->links);
            if (target->links == NULL) {
                die("out of memory");
            }
        }
        char *copy = strdup(path);
        if (copy == NULL) {
            die("out of memory");
        }
        target->links[target->link_count].inode = inode->base.inode_number;
        target->links[target->link_count].path = copy;
        target->link_count++;
    }
}

static void extract_symlink(extraction *target, sqfs *fs, sqfs_inode *inode, const char *path) {
    size_t size = 0;
    if (sqfs_readlink(fs, inode, NULL, &size) != SQFS_OK) {
        die("cannot read the link %s from the image", path);
    }
    char *destination = malloc(size + 1);
    size += 1;
    if (destination == NULL || sqfs_readlink(fs, inode, destination, &size) != SQFS_OK) {
        die("cannot read the link %s from the image", path);
    }
    unlinkat(target->root_fd, path, 0);
    if (symlinkat(destination, target->root_fd, path) != 0) {
        die("cannot create the link %s/%s: %s", target->root, path, strerror(errno));
    }
    free(destination);
}

/*
 * Extract the image at offset of appimage into the directory root_fd (named root), only
 * the entries whose path matches pattern when one is given. Returns the entries extracted.
 */
static size_t extract_image(const char *appimage, off_t offset, int root_fd, const char *root,
                            const char *pattern) {
    sqfs fs;
    memset(&fs, 0, sizeof fs);
    if (sqfs_open_image(&fs, appimage, (size_t)offset) != SQFS_OK) {
        die("cannot read the squashfs image in %s at offset %lld", appimage,
            (long long)offset);
    }
    extraction target = {.root_fd = root_fd, .root = root};
    sqfs_traverse walk;
    if (sqfs_traverse_open(&walk, &fs, sqfs_inode_root(&fs)) != SQFS_OK) {
        die("cannot list the squashfs image in %s", appimage);
    }
    sqfs_err error = SQFS_OK;
    while (sqfs_traverse_next(&walk, &error)) {
        if (walk.dir_end) {
            continue;
        }
        const char *path = walk.path;
        if (!safe_path(path)) {
            die("refusing to extract %s: it leaves the extraction directory", path);
        }
        /* FNM_LEADING_DIR: a pattern naming a directory extracts all that is in it. */
        if (pattern != NULL && fnmatch(pattern, path, FNM_PATHNAME | FNM_LEADING_DIR) != 0) {
            continue;
        }
        sqfs_inode inode;
        if (sqfs_inode_get(&fs, &inode, sqfs_dentry_inode(&walk.entry)) != SQFS_OK) {
            die("cannot read the inode of %s from the image", path);
        }
        make_parents(&target, path);
        mode_t mode = inode.base.mode & 07777;
        switch (inode.base.inode_type) {
        case SQUASHFS_DIR_TYPE:
        case SQUASHFS_LDIR_TYPE:
            /* Owner rwx so the files inside can be written and the tree later removed. */
            if (mkdirat(root_fd, path, 0700) != 0 && errno != EEXIST) {
                die("cannot create %s/%s: %s", root, path, strerror(errno));
            }
            if (fchmodat(root_fd, path, mode | S_IRWXU, 0) != 0) {
                die("cannot set the mode of %s/%s: %s", root, path, strerror(errno));
            }
            break;
        case SQUASHFS_REG_TYPE:
        case SQUASHFS_LREG_TYPE:
            extract_regular(&target, &fs, &inode, path, mode);
            break;
        case SQUASHFS_SYMLINK_TYPE:
        case SQUASHFS_LSYMLINK_TYPE:
            extract_symlink(&target, &fs, &inode, path);
            break;
        default:
            /* Devices, fifos and sockets have no place in an AppDir. */
            fprintf(stderr, "AppImage runtime: skipping special file %s\n", path);
            continue;
        }
        target.entries++;
    }
    if (error != SQFS_OK) {
        die("cannot list the squashfs image in %s (corrupt or truncated AppImage?)", appimage);
    }
    sqfs_traverse_close(&walk);
    for (size_t i = 0; i < target.link_count; i++) {
        free(target.links[i].path);
    }
    free(target.links);
    sqfs_destroy(&fs);
    return target.entries;
}

static int remove_entry(const char *path, const struct stat *status, int kind, struct FTW *walk) {
    (void)status;
    (void)walk;
    if ((kind == FTW_DP ? rmdir(path) : unlink(path)) != 0) {
        fprintf(stderr, "AppImage runtime: cannot remove %s: %s\n", path, strerror(errno));
    }
    return 0;
}

/* Remove a directory tree, without following symlinks out of it. */
static void remove_tree(const char *path) {
    nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

/* ---- running AppRun ------------------------------------------------------------------ */

/*
 * Start $appdir/AppRun with args in a child, pass signals on to it, serve session (when
 * not NULL) until it exits, and return its wait status. The FUSE device and the signals
 * are polled together so that the child's exit cannot slip in unnoticed between a check
 * and a blocking read.
 */
static int run_apprun(const char *appdir, int argc, char **argv, struct fuse_session *session) {
    char apprun[PATH_MAX];
    if (snprintf(apprun, sizeof apprun, "%s/AppRun", appdir) >= (int)sizeof apprun) {
        die("path too long: %s/AppRun", appdir);
    }
    sigset_t watched;
    sigset_t previous;
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof *forwarded_signals; i++) {
        sigaddset(&watched, forwarded_signals[i]);
    }
    if (sigprocmask(SIG_BLOCK, &watched, &previous) != 0) {
        die("cannot block signals: %s", strerror(errno));
    }
    int signals = signalfd(-1, &watched, SFD_CLOEXEC);
    if (signals < 0) {
        die("cannot watch signals: %s", strerror(errno));
    }
    pid_t child = fork();
    if (child < 0) {
        die("cannot start AppRun: fork: %s", strerror(errno));
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &previous, NULL);
        /* _exit, not exit: the parent's stdio buffers must not be flushed twice. */
        char **child_argv = calloc((size_t)argc + 2, sizeof *child_argv);
        if (child_argv == NULL) {
            fputs("AppImage runtime: out of memory\n", stderr);
            _exit(127);
        }
        child_argv[0] = apprun;
        for (int i = 0; i < argc; i++) {
            child_argv[i + 1] = argv[i];
        }
        execv(apprun, child_argv);
        fprintf(stderr, "AppImage runtime: cannot run %s: %s\n", apprun, strerror(errno));
        _exit(127);
    }

    struct fuse_buf request = {0};
    bool serving = session != NULL;
    int status = 0;
    for (;;) {
        struct pollfd watch[2] = {{.fd = signals, .events = POLLIN}};
        if (serving) {
            watch[1] = (struct pollfd){.fd = fuse_session_fd(session), .events = POLLIN};
        }
        if (poll(watch, serving ? 2 : 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("cannot wait for AppRun: %s", strerror(errno));
        }
        if (serving && (watch[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            int got = fuse_session_receive_buf(session, &request);
            if (got > 0) {
                fuse_session_process_buf(session, &request);
            } else if (got != -EINTR && got != -EAGAIN) {
                /* Unmounted from outside (fusermount -u): nothing left to serve. */
                serving = false;
            }
        }
        if ((watch[0].revents & POLLIN) == 0) {
            continue;
        }
        struct signalfd_siginfo received;
        if (read(signals, &received, sizeof received) != (ssize_t)sizeof received) {
            continue;
        }
        if (received.ssi_signo == SIGCHLD) {
            if (waitpid(child, &status, WNOHANG) == child) {
                break;
            }
        } else if ((received.ssi_signo == SIGINT || received.ssi_signo == SIGQUIT) &&
                   received.ssi_code == SI_KERNEL) {
            /* A key at the terminal: the whole foreground group, AppRun too, had it. */
        } else {
            kill(child, (int)received.ssi_signo);
        }
    }
    free(request.mem);
    close(signals);
    sigprocmask(SIG_SETMASK, &previous, NULL);
    return status;
}

/* Exit the way AppRun did: with its code, or by the signal that ended it. */
static void exit_like(int status) {
    if (WIFSIGNALED(status)) {
        int signal_number = WTERMSIG(status);
        signal(signal_number, SIG_DFL);
        raise(signal_number);
        exit(128 + signal_number);
    }
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* A fresh directory under $TMPDIR named prefix followed by six random characters. */
static char *make_temporary_directory(const char *prefix) {
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0') {
        tmp = "/tmp";
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%sXXXXXX", tmp, prefix) < 0) {
        die("out of memory");
    }
    if (mkdtemp(path) == NULL) {
        die("cannot create a directory in %s: %s", tmp, strerror(errno));
    }
    return path;
}

static void extract_and_run(const char *appimage, off_t offset, int argc, char **argv) {
    char *appdir = make_temporary_directory("appimage_extracted_");
    int root_fd = open(appdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        die("cannot open %s: %s", appdir, strerror(errno));
    }
    abandoned_tree = appdir;
    extract_image(appimage, offset, root_fd, appdir, NULL);
    abandoned_tree = NULL;
    close(root_fd);
    export_variable("APPDIR", appdir);
    int status = run_apprun(appdir, argc, argv, NULL);
    remove_tree(appdir);
    free(appdir);
    exit_like(status);
}

static void mount_and_run(const char *appimage, off_t offset, int argc, char **argv) {
    /* Fail early with advice: libfuse's own message does not mention the way around. */
    int device = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (device < 0) {
        die("cannot open /dev/fuse: %s — try --appimage-extract-and-run "
            "(or APPIMAGE_EXTRACT_AND_RUN=1), which needs no FUSE",
            strerror(errno));
    }
    close(device);

    /* The mount point is named after the AppImage, as other runtimes do: .mount_NAMEXXXXXX. */
    const char *name = strrchr(appimage, '/');
    name = name != NULL ? name + 1 : appimage;
    char prefix[32];
    snprintf(prefix, sizeof prefix, ".mount_%.6s", name);
    char *mountpoint = make_temporary_directory(prefix);

    sqfs_ll *image = sqfs_ll_open(appimage, (size_t)offset);
    if (image == NULL) {
        rmdir(mountpoint);
        die("cannot read the squashfs image in %s at offset %lld", appimage, (long long)offset);
    }
    struct fuse_lowlevel_ops operations;
    memset(&operations, 0, sizeof operations);
    operations.getattr = sqfs_ll_op_getattr;
    operations.opendir = sqfs_ll_op_opendir;
    operations.releasedir = sqfs_ll_op_releasedir;
    operations.readdir = sqfs_ll_op_readdir;
    operations.lookup = sqfs_ll_op_lookup;
    operations.open = sqfs_ll_op_open;
    operations.create = sqfs_ll_op_create;
    operations.release = sqfs_ll_op_release;
    operations.read = sqfs_ll_op_read;
    operations.readlink = sqfs_ll_op_readlink;
    operations.listxattr = sqfs_ll_op_listxattr;
    operations.getxattr = sqfs_ll_op_getxattr;
    operations.forget = sqfs_ll_op_forget;
    operations.statfs = stfs_ll_op_statfs;

    char *fuse_argv[] = {"appimage", "-o", "ro,nodev,nosuid,fsname=appimage,subtype=squashfuse",
                         NULL};
    struct fuse_args fuse_arguments = FUSE_ARGS_INIT(3, fuse_argv);
    sqfs_ll_chan channel;
    if (sqfs_ll_mount(&channel, mountpoint, &fuse_arguments, &operations, sizeof operations,
                      image) != SQFS_OK) {
        rmdir(mountpoint);
        die("cannot mount %s on %s (see the FUSE message above) — try "
            "--appimage-extract-and-run (or APPIMAGE_EXTRACT_AND_RUN=1), which needs no FUSE",
            appimage, mountpoint);
    }
    /* AppRun must not inherit the FUSE device or the image. */
    fcntl(fuse_session_fd(channel.session), F_SETFD, FD_CLOEXEC);
    fcntl(image->fs.fd, F_SETFD, FD_CLOEXEC);

    export_variable("APPDIR", mountpoint);
    int status = run_apprun(mountpoint, argc, argv, channel.session);

    /* A lazy unmount: processes AppRun left behind lose the files, not the caller's shell. */
    sqfs_ll_unmount(&channel, mountpoint);
    sqfs_ll_destroy(image);
    free(image);
    if (rmdir(mountpoint) != 0) {
        fprintf(stderr, "AppImage runtime: cannot remove %s: %s\n", mountpoint, strerror(errno));
    }
    free(mountpoint);
    exit_like(status);
}

static void print_help(const char *argv0) {
    printf("Usage: %s [--appimage-OPTION | ARGUMENTS FOR THE APPLICATION...]\n\n"
           "Without an --appimage- option the AppImage mounts its image with FUSE and starts\n"
           "the application with the arguments given.\n\n"
           "  --appimage-extract [PATTERN]  extract the image (or the paths matching the\n"
           "                                shell PATTERN) into ./" EXTRACT_DIR "\n"
           "  --appimage-extract-and-run ARGS...\n"
           "                                extract to a temporary directory, run the\n"
           "                                application there, remove it (no FUSE needed;\n"
           "                                also APPIMAGE_EXTRACT_AND_RUN=1)\n"
           "  --appimage-offset             print the byte offset of the squashfs image\n"
           "  --appimage-help               print this help\n"
           "  --appimage-version            print the runtime's version\n",
           argv0);
}

int main(int argc, char **argv) {
    char appimage[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", appimage, sizeof appimage - 1);
    if (length < 0) {
        die("cannot find this AppImage's own file: /proc/self/exe: %s", strerror(errno));
    }
    appimage[length] = '\0';
    off_t offset = elf_size(appimage);

    const char *invoked_as = argv[0];
    const char *option = argc > 1 ? argv[1] : "";
    if (strcmp(option, "--appimage-offset") == 0) {
        printf("%lld\n", (long long)offset);
        return 0;
    }
    if (strcmp(option, "--appimage-help") == 0) {
        print_help(argv[0]);
        return 0;
    }
    if (strcmp(option, "--appimage-version") == 0) {
        printf("Layerdeck AppImage runtime %s (type 2; squashfuse, libfuse %s)\n",
               RUNTIME_VERSION, fuse_pkgversion());
        return 0;
    }
    check_image(appimage, offset);

    if (strcmp(option, "--appimage-extract") == 0) {
        if (argc > 3) {
            die("--appimage-extract takes at most one PATTERN");
        }
        if (mkdir(EXTRACT_DIR, 0755) != 0 && errno != EEXIST) {
            die("cannot create ./%s: %s", EXTRACT_DIR, strerror(errno));
        }
        int root_fd = open(EXTRACT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
            die("cannot open ./%s: %s", EXTRACT_DIR, strerror(errno));
        }
        size_t entries = extract_image(appimage, offset, root_fd, EXTRACT_DIR,
                                       argc == 3 ? argv[2] : NULL);
        close(root_fd);
        printf("extracted %zu entries into %s\n", entries, EXTRACT_DIR);
        return 0;
    }
    bool extract_first = false;
    if (strcmp(option, "--appimage-extract-and-run") == 0) {
        extract_first = true;
        argc--;
        argv++;
    } else if (strncmp(option, "--appimage-", 11) == 0) {
        die("unknown option %s (see --appimage-help)", option);
    }
    const char *from_environment = getenv("APPIMAGE_EXTRACT_AND_RUN");
    if (from_environment != NULL && strcmp(from_environment, "1") == 0) {
        extract_first = true;
    }

    char owd[PATH_MAX];
    if (getcwd(owd, sizeof owd) == NULL) {
        die("cannot read the current directory: %s", strerror(errno));
    }
    export_variable("APPIMAGE", appimage);
    export_variable("ARGV0", invoked_as);
    export_variable("OWD", owd);
    if (extract_first) {
        extract_and_run(appimage, offset, argc - 1, argv + 1);
    }
    mount_and_run(appimage, offset, argc - 1, argv + 1);
}
