/*
 * Oxydra's WASI guest: the bodies of the file tools, run inside wasmtime.
 *
 * The host preopens only the directories the tool class may touch (/shared, /tmp, /vault,
 * read-only or writable) and calls `_start` once per operation. Every path this program
 * opens is resolved by WASI against those preopens, so `..`, absolute host paths and
 * symlinks that lead out of a preopen fail here, inside the sandbox, whatever the host
 * checked before.
 *
 * Framing (all integers little-endian; no JSON parser in C, so nothing to fuzz):
 *   request  = op:u8, then fields, each u32 length + bytes, to the end of the buffer
 *   response = status:u8 (0 ok, 1 error), then fields the same way
 *   error fields: code (an errno name such as "ENOENT", or NOTREG, NLINK, TOOBIG,
 *   TOODEEP, ABORTED, BADREQ), detail
 * Numbers travel as 8-byte fields. The request and the output go through host imports
 * (module "oxydra"), so there is no temp file and the host caps the output as it arrives.
 *
 * Rules kept from the in-process jail (oxydra/security/jail.py):
 *   only regular files are read or written; a file with more than one hard link is
 *   refused; writes never follow a final symlink; search and delete never follow symlinks.
 *
 * Build: `make wasm` (clang --target=wasm32-wasi, wasi-libc), see docs/wasm.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMPORT(name) __attribute__((import_module("oxydra"), import_name(name)))
IMPORT("input_size") int32_t host_input_size(void);
IMPORT("input_read") void host_input_read(uint8_t *dst);
IMPORT("output_write") int32_t host_output_write(const uint8_t *src, int32_t len);
IMPORT("edit") int32_t host_edit(const uint8_t *src, int32_t len);

enum { OP_READ = 1, OP_WRITE = 2, OP_EDIT = 3, OP_DELETE = 4, OP_LIST = 5, OP_SEARCH = 6 };
enum { MAX_FIELDS = 8, MAX_PATH = 8192, MAX_DEPTH = 128, LINE_BYTES = 2000, SNIFF = 8192 };
enum { CHUNK = 1 << 16, MAX_NUMBER = 1 << 30 };

typedef struct {
    const uint8_t *ptr;
    uint32_t len;
} field_t;

typedef struct {
    char **items;
    size_t len, cap;
} names_t;

/* ---- output --------------------------------------------------------------------------- */

/* Output is buffered: every host call costs a trip into Python, so a reply of many small
 * fields goes out in a few large writes. */
static uint8_t out_buf[1 << 16];
static size_t out_len;

static void host_write(const void *src, size_t len) {
    if (host_output_write(src, (int32_t)len) != 0) _Exit(2); /* over the host's cap */
}

static void flush(void) {
    if (out_len) host_write(out_buf, out_len);
    out_len = 0;
}

static void emit_raw(const void *src, size_t len) {
    if (len > sizeof out_buf - out_len) {
        flush();
        if (len >= sizeof out_buf) {
            host_write(src, len);
            return;
        }
    }
    memcpy(out_buf + out_len, src, len);
    out_len += len;
}

static void emit_field(const void *src, size_t len) {
    uint8_t head[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, (len >> 24) & 0xff};
    emit_raw(head, 4);
    if (len) emit_raw(src, len);
}

static void emit_str(const char *text) { emit_field(text, strlen(text)); }

static void emit_u64(uint64_t value) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)(value >> (8 * i));
    emit_field(bytes, 8);
}

static void begin_ok(void) { emit_raw("\0", 1); }

static int fail(const char *code, const char *detail) {
    emit_raw("\1", 1);
    emit_str(code);
    emit_str(detail);
    return 1;
}

static const char *errno_name(int code) {
    switch (code) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTCAPABLE: return "ENOTCAPABLE";
    case ELOOP: return "ELOOP";
    case EXDEV: return "EXDEV";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EEXIST: return "EEXIST";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EFBIG: return "EFBIG";
    case EINVAL: return "EINVAL";
    default: return "EIO";
    }
}

static int fail_errno(int code) { return fail(errno_name(code), strerror(code)); }

/* ---- request -------------------------------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An 8-byte number field, clamped to MAX_NUMBER so `n + 1` never wraps a 32-bit size_t. */
static uint64_t get_u64(field_t f) {
    uint64_t value = 0;
    for (uint32_t i = 0; i < 8 && i < f.len; i++) value |= (uint64_t)f.ptr[i] << (8 * i);
    return value > MAX_NUMBER ? MAX_NUMBER : value;
}

/* Split `buf` into the op and its fields; -1 when the framing is broken. */
static int parse(const uint8_t *buf, uint32_t size, int *op, field_t *fields) {
    if (size < 1) return -1;
    *op = buf[0];
    uint32_t pos = 1;
    int count = 0;
    while (pos < size) {
        if (count == MAX_FIELDS || size - pos < 4) return -1;
        uint32_t len = get_u32(buf + pos);
        pos += 4;
        if (len > size - pos) return -1;
        fields[count].ptr = buf + pos;
        fields[count].len = len;
        pos += len;
        count++;
    }
    return count;
}

/* A NUL-terminated copy of a path field, or NULL if it holds a NUL or is too long. */
static char *path_of(field_t f) {
    if (f.len == 0 || f.len >= MAX_PATH || memchr(f.ptr, 0, f.len)) return NULL;
    char *path = malloc(f.len + 1);
    if (!path) return NULL;
    memcpy(path, f.ptr, f.len);
    path[f.len] = 0;
    return path;
}

/* ---- files ---------------------------------------------------------------------------- */

/* Rule 4 of the jail: regular files only, and never one with several hard links. */
static int check_regular(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return fail_errno(errno);
    if (S_ISDIR(st.st_mode)) return fail("EISDIR", "is a directory");
    if (!S_ISREG(st.st_mode)) return fail("NOTREG", "not a regular file");
    if (st.st_nlink > 1) {
        char count[24];
        snprintf(count, sizeof count, "%llu", (unsigned long long)st.st_nlink);
        return fail("NLINK", count);
    }
    return 0;
}

/* Read up to `limit` bytes into a growing buffer; NULL (errno set) on failure. */
static uint8_t *read_upto(int fd, size_t limit, size_t *got) {
    size_t cap = limit < CHUNK ? limit : CHUNK, len = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    while (buf && len < limit) {
        if (len == cap) {
            size_t grown = cap > limit / 2 ? limit : cap * 2;
            uint8_t *bigger = realloc(buf, grown);
            if (!bigger) break;
            buf = bigger;
            cap = grown;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            int code = errno;
            free(buf);
            errno = code;
            return NULL;
        }
        if (n == 0) {
            *got = len;
            return buf;
        }
        len += (size_t)n;
    }
    if (buf && len == limit) {
        *got = len;
        return buf;
    }
    free(buf);
    errno = ENOMEM;
    return NULL;
}

static int write_all(int fd, const uint8_t *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int op_read(field_t *f, int n) {
    char *path = n == 2 ? path_of(f[0]) : NULL;
    if (!path) return fail("BADREQ", "read needs a path and a limit");
    uint64_t max = get_u64(f[1]);
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return fail_errno(errno);
    if (check_regular(fd)) return 1;
    size_t got = 0;
    uint8_t *data = read_upto(fd, (size_t)max + 1, &got);
    if (!data) return fail_errno(errno);
    begin_ok();
    emit_field(data, got > max ? (size_t)max : got);
    emit_field(got > max ? "\1" : "\0", 1);
    return 0;
}

/* mkdir every missing parent of `path` below its preopen ("/shared/a/b/f" -> a, a/b). */
static int make_parents(char *path) {
    char *slash = strchr(path + 1, '/');
    while (slash && (slash = strchr(slash + 1, '/'))) {
        *slash = 0;
        int rc = mkdir(path, 0755);
        int code = errno;
        *slash = '/';
        if (rc != 0 && code != EEXIST) return fail_errno(code);
    }
    return 0;
}

static int op_write(field_t *f, int n) {
    char *path = n == 2 ? path_of(f[0]) : NULL;
    if (!path) return fail("BADREQ", "write needs a path and data");
    if (make_parents(path)) return 1;
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) return fail_errno(errno);
    if (check_regular(fd)) return 1;
    if (ftruncate(fd, 0) != 0 || write_all(fd, f[1].ptr, f[1].len) != 0) return fail_errno(errno);
    begin_ok();
    emit_u64(f[1].len);
    return 0;
}

/* Read, hand the text to the host's `edit`, write the answer back through the same fd. */
static int op_edit(field_t *f, int n) {
    char *path = n == 2 ? path_of(f[0]) : NULL;
    if (!path) return fail("BADREQ", "edit needs a path and a limit");
    uint64_t max = get_u64(f[1]);
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return fail_errno(errno);
    if (check_regular(fd)) return 1;
    size_t got = 0;
    uint8_t *text = read_upto(fd, (size_t)max + 1, &got);
    if (!text) return fail_errno(errno);
    if (got > max) return fail("TOOBIG", "file is larger than the edit limit");
    int32_t size = host_edit(text, (int32_t)got);
    free(text);
    if (size < 0) return fail("ABORTED", "the change was refused");
    uint8_t *updated = malloc(size ? (size_t)size : 1);
    if (!updated) return fail_errno(ENOMEM);
    host_input_read(updated);
    if (lseek(fd, 0, SEEK_SET) != 0 || ftruncate(fd, 0) != 0) return fail_errno(errno);
    if (write_all(fd, updated, (size_t)size) != 0) return fail_errno(errno);
    begin_ok();
    return 0;
}

/* ---- directories ---------------------------------------------------------------------- */

static int names_add(names_t *names, const char *name) {
    if (names->len == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 32;
        char **grown = realloc(names->items, cap * sizeof *grown);
        if (!grown) return -1;
        names->items = grown;
        names->cap = cap;
    }
    names->items[names->len] = strdup(name);
    return names->items[names->len++] ? 0 : -1;
}

static void names_free(names_t *names) {
    for (size_t i = 0; i < names->len; i++) free(names->items[i]);
    free(names->items);
    names->items = NULL;
    names->len = names->cap = 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    if (a + b + 2 > MAX_PATH) return NULL;
    char *path = malloc(a + b + 2);
    if (!path) return NULL;
    memcpy(path, dir, a);
    path[a] = '/';
    memcpy(path + a + 1, name, b + 1);
    return path;
}

/* The type of an entry without following it: d_type, or fstatat when the host gave none. */
static int entry_type(int dirfd, const struct dirent *entry) {
    if (entry->d_type != DT_UNKNOWN) return entry->d_type;
    struct stat st;
    if (fstatat(dirfd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return DT_UNKNOWN;
    if (S_ISDIR(st.st_mode)) return DT_DIR;
    if (S_ISREG(st.st_mode)) return DT_REG;
    return S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
}

/* Names in `path` split into directories and regular files; symlinks and others dropped. */
static int scan(const char *path, int flags, names_t *dirs, names_t *files, names_t *all) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | flags);
    if (fd < 0) return -1;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -1;
    }
    struct dirent *entry;
    int rc = 0;
    while (rc == 0 && (entry = readdir(dir))) {
        const char *name = entry->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        int type = entry_type(fd, entry);
        if (all) rc = names_add(all, name);
        if (rc == 0 && type == DT_DIR && dirs) rc = names_add(dirs, name);
        if (rc == 0 && type == DT_REG && files) rc = names_add(files, name);
    }
    int code = errno;
    closedir(dir);
    errno = rc ? ENOMEM : code;
    return rc;
}

static int op_list(field_t *f, int n) {
    char *path = n == 1 ? path_of(f[0]) : NULL;
    if (!path) return fail("BADREQ", "list needs a path");
    names_t all = {0}, dirs = {0};
    if (scan(path, 0, &dirs, NULL, &all) != 0) return fail_errno(errno);
    begin_ok();
    qsort(dirs.items, dirs.len, sizeof *dirs.items, by_name);
    for (size_t i = 0; i < all.len; i++) {
        const char *name = all.items[i];
        int is_dir = bsearch(&name, dirs.items, dirs.len, sizeof *dirs.items, by_name) != NULL;
        size_t len = strlen(name);
        char *shown = malloc(len + 2);
        if (!shown) _Exit(3);
        memcpy(shown, name, len);
        shown[len] = '/';
        emit_field(shown, len + is_dir);
        free(shown);
    }
    return 0;
}

/* Remove a directory tree without following any symlink inside it. */
static int remove_tree(const char *path, int depth) {
    if (depth > MAX_DEPTH) return fail("TOODEEP", "directory tree is too deep");
    names_t dirs = {0}, all = {0};
    if (scan(path, O_NOFOLLOW, &dirs, NULL, &all) != 0) return fail_errno(errno);
    qsort(dirs.items, dirs.len, sizeof *dirs.items, by_name);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < all.len; i++) {
        char *child = join(path, all.items[i]);
        if (!child) rc = fail("ENAMETOOLONG", "path is too long");
        else if (bsearch(&all.items[i], dirs.items, dirs.len, sizeof(char *), by_name))
            rc = remove_tree(child, depth + 1);
        else if (unlink(child) != 0)
            rc = fail_errno(errno);
        free(child);
    }
    names_free(&dirs);
    names_free(&all);
    if (rc == 0 && rmdir(path) != 0) rc = fail_errno(errno);
    return rc;
}

static int op_delete(field_t *f, int n) {
    char *path = n == 1 ? path_of(f[0]) : NULL;
    if (!path) return fail("BADREQ", "delete needs a path");
    struct stat st;
    if (lstat(path, &st) != 0) return fail_errno(errno);
    const char *kind = S_ISDIR(st.st_mode) ? "directory" : S_ISLNK(st.st_mode) ? "symlink" : "file";
    if (S_ISDIR(st.st_mode) ? remove_tree(path, 0) : unlink(path) != 0 ? fail_errno(errno) : 0)
        return 1;
    begin_ok();
    emit_str(kind);
    return 0;
}

/* ---- search --------------------------------------------------------------------------- */

typedef struct {
    field_t query;
    uint64_t max_matches, max_file_bytes, hits;
} search_t;

/* Emit each line (split on \n, as Python's str.split) that contains the query. */
static void grep(search_t *s, const char *path, const uint8_t *data, size_t len) {
    if (memchr(data, 0, len < SNIFF ? len : SNIFF)) return;
    size_t start = 0;
    for (uint64_t line = 1; start <= len && s->hits < s->max_matches; line++) {
        const uint8_t *nl = memchr(data + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t width = end - start;
        if (memmem(data + start, width, s->query.ptr, s->query.len)) {
            emit_str(path);
            emit_u64(line);
            emit_field(data + start, width < LINE_BYTES ? width : LINE_BYTES);
            s->hits++;
        }
        start = end + 1;
    }
}

static void grep_file(search_t *s, const char *path, int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink > 1) return;
    size_t got = 0;
    uint8_t *data = read_upto(fd, (size_t)s->max_file_bytes, &got);
    if (!data) return;
    grep(s, path, data, got);
    free(data);
}

static void walk(search_t *s, const char *path, int flags, int depth) {
    names_t dirs = {0}, files = {0};
    if (depth > MAX_DEPTH || scan(path, flags, &dirs, &files, NULL) != 0) return;
    qsort(files.items, files.len, sizeof *files.items, by_name);
    qsort(dirs.items, dirs.len, sizeof *dirs.items, by_name);
    for (size_t i = 0; i < files.len && s->hits < s->max_matches; i++) {
        char *child = join(path, files.items[i]);
        int fd = child ? open(child, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) : -1;
        if (fd >= 0) {
            grep_file(s, child, fd);
            close(fd);
        }
        free(child);
    }
    for (size_t i = 0; i < dirs.len && s->hits < s->max_matches; i++) {
        char *child = join(path, dirs.items[i]);
        if (child) walk(s, child, O_NOFOLLOW, depth + 1);
        free(child);
    }
    names_free(&dirs);
    names_free(&files);
}

static int op_search(field_t *f, int n) {
    char *path = n == 4 ? path_of(f[0]) : NULL;
    if (!path) return fail("BADREQ", "search needs a path, query and two limits");
    search_t s = {f[1], get_u64(f[2]), get_u64(f[3]), 0};
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return fail_errno(errno);
    struct stat st;
    if (fstat(fd, &st) != 0) return fail_errno(errno);
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        begin_ok();
        walk(&s, path, 0, 0);
        return 0;
    }
    if (check_regular(fd)) return 1;
    size_t got = 0;
    uint8_t *data = read_upto(fd, (size_t)s.max_file_bytes, &got);
    if (!data) return fail_errno(errno);
    begin_ok();
    grep(&s, path, data, got);
    return 0;
}

/* ---- entry ---------------------------------------------------------------------------- */

int main(void) {
    int32_t size = host_input_size();
    uint8_t *request = size > 0 ? malloc((size_t)size) : NULL;
    if (!request) {
        fail(size > 0 ? "ENOMEM" : "BADREQ", "no request");
        flush();
        return 0;
    }
    host_input_read(request);
    field_t fields[MAX_FIELDS];
    int op = 0, n = parse(request, (uint32_t)size, &op, fields);
    if (n < 0) {
        fail("BADREQ", "broken framing");
        flush();
        return 0;
    }
    switch (op) {
    case OP_READ: op_read(fields, n); break;
    case OP_WRITE: op_write(fields, n); break;
    case OP_EDIT: op_edit(fields, n); break;
    case OP_DELETE: op_delete(fields, n); break;
    case OP_LIST: op_list(fields, n); break;
    case OP_SEARCH: op_search(fields, n); break;
    default: fail("BADREQ", "unknown op");
    }
    flush();
    return 0;
}
