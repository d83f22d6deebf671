/* fuzz_config.c: config_load() (src/util/config.c) on a temp file.
 *
 * The input is written to one file per process (in /dev/shm when it exists)
 * and loaded. The first byte picks the size of the error buffer (1..64, a heap
 * buffer of exactly that size so that ASan sees a write past it); the rest
 * is the file.
 *
 * On success: every entry has non-NULL section, key and value; the key is
 * non-empty, has no '=' and no leading or trailing white space; the section
 * has no leading or trailing white space; there are no more entries than
 * lines; config_get() of each entry's section and key gives the value of the
 * last entry with that pair. On failure: count 0, entries NULL, and a
 * NUL-terminated, non-empty reason in the error buffer. config_free() leaves
 * an empty config (and LeakSanitizer checks that it frees everything).
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_config: CHECK FAILED (%s): ", #cond);     \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

static char path[128];

static void cleanup(void)
{
    if (*path)
        unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/attachd-fuzz-config-XXXXXX", base);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    close(fd);
    atexit(cleanup);
    return 0;
}

static bool blank_edges(const char *s)
{
    size_t n = strlen(s);
    return n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int errlen = data[0] % 64 + 1;
    data++;
    size--;
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    CHECK(fwrite(data, 1, size, f) == size, "short write");
    fclose(f);

    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';

    char *err = malloc((size_t)errlen);
    memset(err, 0x5a, (size_t)errlen);
    struct config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    int rc = config_load(&cfg, path, err, errlen);
    CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc == 0) {
        CHECK(cfg.count >= 0 && (size_t)cfg.count <= lines, "%d entries from %zu lines",
              cfg.count, lines);
        CHECK(cfg.count == 0 || cfg.entries != NULL, "entries NULL with a count");
        for (int i = 0; i < cfg.count; i++) {
            struct config_entry *e = &cfg.entries[i];
            CHECK(e->section && e->key && e->value, "entry %d has a NULL", i);
            CHECK(*e->key, "entry %d: empty key", i);
            CHECK(!strchr(e->key, '='), "entry %d: key \"%s\" has '='", i, e->key);
            CHECK(!strchr(e->key, '\n') && !strchr(e->value, '\n') && !strchr(e->section, '\n'),
                  "entry %d: a newline inside", i);
            CHECK(!blank_edges(e->key), "entry %d: key \"%s\" not trimmed", i, e->key);
            CHECK(!blank_edges(e->section), "entry %d: section \"%s\" not trimmed", i,
                  e->section);
            CHECK(strlen(e->section) < 256, "entry %d: section too long", i);
            const char *v = config_get(&cfg, e->section, e->key);
            const char *want = NULL;
            for (int k = cfg.count - 1; k >= 0 && !want; k--)
                if (!strcmp(cfg.entries[k].section, e->section) &&
                    !strcmp(cfg.entries[k].key, e->key))
                    want = cfg.entries[k].value;
            CHECK(v == want, "config_get(%s, %s) is not the last duplicate", e->section, e->key);
        }
    } else {
        CHECK(cfg.count == 0 && cfg.entries == NULL, "a failed load left entries");
        CHECK(memchr(err, '\0', (size_t)errlen) != NULL, "error not NUL-terminated");
        CHECK(errlen == 1 || *err != '\0', "empty error reason");
    }
    config_free(&cfg);
    CHECK(cfg.count == 0 && cfg.entries == NULL, "config_free left entries");
    free(err);
    return 0;
}
