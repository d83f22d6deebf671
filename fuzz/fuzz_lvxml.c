/* fuzz_lvxml.c: the disk XML of the libvirt driver (src/driver/libvirt_xml.c):
 * what it reads from libvirtd (a domain's XML, over a socket, from another
 * host with a qemu+ssh:// URI) and what it writes into it.
 *
 * Byte 0 % 3 picks the mode; the rest is its input.
 *  0. lvxml_disks() on the rest as a domain's XML: no crash, no leak; when
 *     it parses, every field of every disk is a string, and an alias is ""
 *     or a user alias ("ua-...").
 *  1. lvxml_disk_xml() of a disk made of the rest's '\n'-separated fields
 *     (path, target, serial, alias; byte 1: block, virtio, direct), put into
 *     a domain and read back with lvxml_disks(): one disk, with the same
 *     path, target, serial and alias (the alias when it is a user alias)
 *     whenever every field is text XML can hold (valid UTF-8 without control
 *     characters or U+FFFE/U+FFFF): the escaping loses and adds nothing.
 *  2. Target names: lvxml_target_index() of the rest with a prefix ("sd",
 *     "vd", "hd" or "") is -1 or an index whose lvxml_target_name() is the
 *     name again; and lvxml_target_name() of an index below 475254 (names
 *     of 1-4 letters) fits DRIVER_TARGET_MAX and reads back as that index.
 */
#include <libxml/parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/libvirt_xml.h"
#include "util/arena.h"

#include "ref_utf8.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_lvxml: CHECK FAILED (%s): ", #cond);      \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Names of 1-4 letters: 26 + 26^2 + 26^3 + 26^4. */
#define TARGET_NAMES 475254

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xmlInitParser();
    return 0;
}

/* Text XML 1.0 can hold as it is (2.2 Char), without the blanks attribute
 * values normalise: valid UTF-8, no control character, no U+FFFE/U+FFFF. */
static bool xml_text(const char *s)
{
    size_t n = strlen(s);
    if (!ref_utf8((const unsigned char *)s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == 0xef && i + 2 < n && (unsigned char)s[i + 1] == 0xbf &&
            ((unsigned char)s[i + 2] == 0xbe || (unsigned char)s[i + 2] == 0xbf))
            return false;
    }
    return true;
}

static void parse_any(struct arena *ar, const char *xml)
{
    struct lvxml_disk *d;
    int n;
    if (!lvxml_disks(xml, ar, &d, &n)) {
        CHECK(n == 0 && d == NULL, "a failed parse left %d disks", n);
        return;
    }
    CHECK(n >= 0 && (n == 0 || d), "%d disks", n);
    for (int i = 0; i < n; i++) {
        CHECK(d[i].alias && d[i].target && d[i].serial && d[i].path, "disk %d: a NULL field", i);
        CHECK(!*d[i].alias || !strncmp(d[i].alias, "ua-", 3), "disk %d: alias \"%s\"", i,
              d[i].alias);
    }
}

static void round_trip(struct arena *ar, uint8_t opts, const char *text)
{
    const char *f[4] = {"", "", "", ""};
    char *copy = arena_strdup(ar, text), *p = copy;
    for (int i = 0; i < 4 && p; i++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl++ = '\0';
        f[i] = p;
        p = nl;
    }
    struct driver_disk disk = {.domain = "00000000-0000-4000-8000-000000000000",
                               .path = f[0], .serial = f[2], .alias = f[3],
                               .block = opts & 1, .bus = opts & 2 ? BUS_VIRTIO : BUS_SCSI};
    char *xml = lvxml_disk_xml(ar, &disk, f[1], opts & 4);
    char *domain = arena_printf(ar, "<domain type='kvm'><name>x</name><devices>%s</devices>"
                                    "</domain>", xml);
    struct lvxml_disk *d;
    int n;
    bool parsed = lvxml_disks(domain, ar, &d, &n);
    bool representable = xml_text(f[0]) && xml_text(f[1]) && xml_text(f[2]) && xml_text(f[3]);
    if (!representable)
        return;
    CHECK(parsed && n == 1, "the disk XML does not read back (parsed %d, %d disks):\n%s", parsed,
          n, xml);
    const char *alias = !strncmp(f[3], "ua-", 3) ? f[3] : "";
    CHECK(!strcmp(d[0].path, f[0]) && !strcmp(d[0].target, f[1]) &&
              !strcmp(d[0].serial, f[2]) && !strcmp(d[0].alias, alias),
          "read back as path \"%s\" target \"%s\" serial \"%s\" alias \"%s\" from:\n%s",
          d[0].path, d[0].target, d[0].serial, d[0].alias, xml);
}

static void targets(const uint8_t *data, size_t size, const char *text)
{
    static const char *const prefixes[] = {"sd", "vd", "hd", ""};
    const char *prefix = prefixes[size ? data[0] % 4 : 0];
    int idx = lvxml_target_index(text, prefix);
    CHECK(idx >= -1 && idx < TARGET_NAMES, "index %d of \"%s\"", idx, text);
    if (idx >= 0) {
        char name[DRIVER_TARGET_MAX];
        lvxml_target_name(prefix, idx, name);
        CHECK(!strcmp(name, text), "\"%s\" is index %d, whose name is \"%s\"", text, idx, name);
    }
    uint32_t v = 0;
    memcpy(&v, data, size < 4 ? size : 4);
    int i = (int)(v % TARGET_NAMES);
    char name[DRIVER_TARGET_MAX];
    lvxml_target_name(prefix, i, name);
    CHECK(strlen(name) < DRIVER_TARGET_MAX, "name too long");
    CHECK(lvxml_target_index(name, prefix) == i, "index %d is named \"%s\", which reads as %d", i,
          name, lvxml_target_index(name, prefix));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct arena ar;
    arena_init(&ar);
    /* the rest as a C string: exactly its size, so that ASan sees a read past it */
    char *text = malloc(size - 1);
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';
    switch (data[0] % 3) {
    case 0: parse_any(&ar, text); break;
    case 1: round_trip(&ar, data[1], text); break;
    case 2: targets(data + 1, size - 1, text); break;
    }
    free(text);
    arena_release(&ar);
    return 0;
}
