/* test_lvxml: the libvirt driver's pure parts, no libvirt needed: volume
 * file names, target names, aliases, the disk XML it writes and the domain
 * XML it reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "driver/libvirt_xml.h"
#include "driver/volfile.h"

static void file_names(void **state)
{
    (void)state;
    char name[256], again[256], id[300];
    assert_true(volfile_name(".", name));
    assert_string_equal(name, "vol-..img");
    assert_true(volfile_name("..", name));
    assert_string_equal(name, "vol-...img");
    assert_true(volfile_name("a.b~c:d-e_F9", name));
    assert_string_equal(name, "vol-a.b~c:d-e_F9.img");

    memset(id, 'x', sizeof id);
    id[247] = '\0';                     /* the longest that fits "vol-<id>.img" */
    assert_true(volfile_name(id, name));
    assert_int_equal(strlen(name), 255);
    assert_int_equal(strncmp(name, "vol-", 4), 0);
    id[247] = 'x';
    id[248] = '\0';                     /* one more: hashed, stable, distinct */
    assert_true(volfile_name(id, name));
    assert_int_equal(strncmp(name, "vol+", 4), 0);
    assert_true(volfile_name(id, again));
    assert_string_equal(name, again);
    id[247] = 'y';
    assert_true(volfile_name(id, again));
    assert_string_not_equal(name, again);
    memset(id, 'z', 255);
    id[255] = '\0';
    assert_true(volfile_name(id, name));
    assert_true(strlen(name) <= 255);
    assert_null(strchr(name, '/'));

    id[255] = 'z';
    id[256] = '\0';
    assert_false(volfile_name(id, name));       /* 256 characters */
    assert_false(volfile_name("", name));
    assert_false(volfile_name("a/b", name));
    assert_false(volfile_name("a b", name));
}

static void targets(void **state)
{
    (void)state;
    static const struct { int idx; const char *name; } cases[] = {
        {0, "sda"}, {1, "sdb"}, {25, "sdz"}, {26, "sdaa"}, {27, "sdab"}, {701, "sdzz"},
        {702, "sdaaa"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[DRIVER_TARGET_MAX];
        lvxml_target_name("sd", cases[i].idx, out);
        assert_string_equal(out, cases[i].name);
        assert_int_equal(lvxml_target_index(cases[i].name, "sd"), cases[i].idx);
    }
    assert_int_equal(lvxml_target_index("vdc", "vd"), 2);
    assert_int_equal(lvxml_target_index("vdc", "sd"), -1);
    assert_int_equal(lvxml_target_index("sd", "sd"), -1);
    assert_int_equal(lvxml_target_index("sd1", "sd"), -1);
}

static void aliases(void **state)
{
    (void)state;
    assert_true(lvxml_alias_ok("ua-0f6e1c2a-5c3b-4a7e-9d61-2f1b8f0c9e77"));
    assert_true(lvxml_alias_ok("ua-A_b-9"));
    assert_false(lvxml_alias_ok("ua-a.b"));
    assert_false(lvxml_alias_ok("ua-a~b"));
    assert_false(lvxml_alias_ok("ua-a:b"));
    assert_false(lvxml_alias_ok("scsi0-0-0-0"));
}

static void disk_xml(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    struct driver_disk d = {.domain = "x", .alias = "ua-1", .serial = "s<&>'\"",
                            .path = "/v/it's&<.img", .bus = BUS_VIRTIO};
    const char *x = lvxml_disk_xml(&ar, &d, "vdb", true);
    assert_non_null(strstr(x, "<disk type='file' device='disk'>"));
    assert_non_null(strstr(x, "cache='none' io='native'"));
    assert_non_null(strstr(x, "<source file='/v/it&apos;s&amp;&lt;.img'/>"));
    assert_non_null(strstr(x, "<target dev='vdb' bus='virtio'/>"));
    assert_non_null(strstr(x, "<serial>s&lt;&amp;&gt;&apos;&quot;</serial>"));
    assert_non_null(strstr(x, "<alias name='ua-1'/>"));

    /* what it writes, it reads back */
    char *dom = arena_printf(&ar, "<domain><devices>%s</devices></domain>", x);
    struct lvxml_disk *disks;
    int n;
    assert_true(lvxml_disks(dom, &ar, &disks, &n));
    assert_int_equal(n, 1);
    assert_string_equal(disks[0].path, "/v/it's&<.img");
    assert_string_equal(disks[0].serial, "s<&>'\"");

    d.block = true;
    d.bus = BUS_SCSI;
    x = lvxml_disk_xml(&ar, &d, "sdc", false);
    assert_non_null(strstr(x, "<disk type='block' device='disk'>"));
    assert_non_null(strstr(x, "<source dev="));
    assert_non_null(strstr(x, "cache='writeback' io='threads'"));
    assert_non_null(strstr(x, "bus='scsi'"));
    arena_release(&ar);
}

static void domain_disks(void **state)
{
    (void)state;
    static const char xml[] =
        "<domain type='qemu'><name>d</name><devices>"
        "<disk type='file' device='disk'><source file='/a.img'/>"
        "<target dev='sda' bus='scsi'/><serial>S1</serial><alias name='ua-one'/></disk>"
        "<disk type='block' device='disk'><source dev='/dev/loop3'/>"
        "<target dev='vdb' bus='virtio'/><alias name='virtio-disk1'/></disk>"
        "<disk type='network' device='disk'><source protocol='rbd' name='pool/img'/>"
        "<target dev='vdc' bus='virtio'/></disk>"
        "<controller type='scsi' index='0'/>"
        "</devices></domain>";
    struct arena ar;
    arena_init(&ar);
    struct lvxml_disk *d;
    int n;
    assert_true(lvxml_disks(xml, &ar, &d, &n));
    assert_int_equal(n, 3);
    assert_string_equal(d[0].alias, "ua-one");
    assert_string_equal(d[0].target, "sda");
    assert_string_equal(d[0].serial, "S1");
    assert_string_equal(d[0].path, "/a.img");
    assert_string_equal(d[1].alias, "");        /* libvirt's own alias: not a user one */
    assert_string_equal(d[1].path, "/dev/loop3");
    assert_string_equal(d[1].serial, "");
    assert_string_equal(d[2].path, "pool/img");
    assert_true(lvxml_disks("<domain/>", &ar, &d, &n));
    assert_int_equal(n, 0);
    assert_false(lvxml_disks("<domain", &ar, &d, &n));
    arena_release(&ar);
}

/* Whether the XML is a running domain's: libvirt writes <domain id='N'>
 * only then (the driver reads the state from the XML it needs anyway). */
static void domain_active(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    struct lvxml_disk *d;
    int n;
    bool active = true;
    assert_true(lvxml_domain_disks("<domain type='qemu'><name>d</name><devices>"
                                   "<disk device='disk'><target dev='sda'/></disk></devices>"
                                   "</domain>", &ar, &d, &n, &active));
    assert_false(active);
    assert_int_equal(n, 1);
    assert_true(lvxml_domain_disks("<domain type='qemu' id='7'><name>d</name></domain>", &ar, &d,
                                   &n, &active));
    assert_true(active);
    assert_int_equal(n, 0);
    assert_true(lvxml_domain_disks("<domain type='qemu' id=''/>", &ar, &d, &n, &active));
    assert_false(active);
    /* an id elsewhere is not the domain's */
    assert_true(lvxml_domain_disks("<domain><devices><disk id='3'/></devices></domain>", &ar, &d,
                                   &n, &active));
    assert_false(active);
    active = true;
    assert_false(lvxml_domain_disks("<domain id='1'", &ar, &d, &n, &active));
    assert_false(active);
    assert_int_equal(n, 0);
    arena_release(&ar);
}

/* A server's domain: the root disk (an overlay, or the root volume), the
 * console logged to a file, attachd's metadata, every value escaped. */
static void server_domain(void **state)
{
    (void)state;
    struct arena ar;
    arena_init(&ar);
    struct driver_domain_spec spec = {
        .uuid = "0a1b2c3d-0000-4000-8000-000000000001", .server = "web<1>", .vcpus = 2,
        .ram_mb = 256, .image = "/img/base.raw", .image_format = "raw",
        .kernel = "/img/k&1", .initrd = "/img/i", .cmdline = "console=ttyS0 x='y'"};
    struct lvxml_domain x = {.spec = &spec, .name = "attachd-web<1>", .owner = "/db/a'b.db",
                             .type = "qemu", .overlay = "/inst/disk.qcow2",
                             .console = "/inst/console.log", .direct = true};
    const char *xml = lvxml_domain_xml(&ar, &x);
    assert_non_null(strstr(xml, "<domain type='qemu'>"));
    assert_non_null(strstr(xml, "<name>attachd-web&lt;1&gt;</name>"));
    assert_non_null(strstr(xml, "<memory unit='MiB'>256</memory>"));
    assert_non_null(strstr(xml, "<vcpu>2</vcpu>"));
    assert_non_null(strstr(xml, "<kernel>/img/k&amp;1</kernel>"));
    assert_non_null(strstr(xml, "<cmdline>console=ttyS0 x=&apos;y&apos;</cmdline>"));
    assert_non_null(strstr(xml, "<controller type='scsi' index='0' model='virtio-scsi'/>"));
    assert_null(strstr(xml, "<interface"));         /* no network */
    struct lvxml_disk *d;
    int n;
    assert_true(lvxml_disks(xml, &ar, &d, &n));
    assert_int_equal(n, 1);
    assert_string_equal(d[0].path, "/inst/disk.qcow2");
    assert_string_equal(d[0].target, "vda");
    assert_non_null(strstr(xml, "type='qcow2' cache='none'"));
    const char *path;
    assert_true(lvxml_console_path(xml, &ar, &path));
    assert_string_equal(path, "/inst/console.log");
    /* the metadata element, as virDomainGetMetadata gives it back */
    const char *server, *owner;
    assert_true(lvxml_metadata("<server xmlns=\"" LVXML_NS "\" id=\"web&lt;1&gt;\" "
                               "owner=\"/db/a'b.db\"/>", &ar, &server, &owner));
    assert_string_equal(server, "web<1>");
    assert_string_equal(owner, "/db/a'b.db");
    assert_non_null(strstr(xml, "id='web&lt;1&gt;' owner='/db/a&apos;b.db'"));

    /* booted by the firmware, from the root volume: virtio-blk vda, even
     * when the volumes' bus is scsi */
    struct driver_disk root = {.alias = "ua-r", .serial = "vol1", .path = "/dev/vg/v",
                               .block = true, .bus = BUS_SCSI};
    spec = (struct driver_domain_spec){.uuid = "u", .server = "s", .vcpus = 1, .ram_mb = 128,
                                       .root_volume = &root};
    x.overlay = NULL;
    xml = lvxml_domain_xml(&ar, &x);
    assert_non_null(strstr(xml, "<boot dev='hd'/>"));
    assert_null(strstr(xml, "<kernel>"));
    assert_true(lvxml_disks(xml, &ar, &d, &n));
    assert_int_equal(n, 1);
    assert_string_equal(d[0].path, "/dev/vg/v");
    assert_string_equal(d[0].alias, "ua-r");
    assert_string_equal(d[0].serial, "vol1");
    assert_string_equal(d[0].target, "vda");
    assert_non_null(strstr(xml, "<target dev='vda' bus='virtio'/>"));
    assert_null(strstr(xml, "bus='scsi'"));
    /* a file console (an adopted domain's), and none */
    assert_true(lvxml_console_path("<domain><devices><serial type='file'><source path='/c.log'/>"
                                   "</serial></devices></domain>", &ar, &path));
    assert_string_equal(path, "/c.log");
    assert_true(lvxml_console_path("<domain><devices><serial type='pty'/></devices></domain>",
                                   &ar, &path));
    assert_string_equal(path, "");
    assert_false(lvxml_console_path("<domain", &ar, &path));
    arena_release(&ar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_names), cmocka_unit_test(targets), cmocka_unit_test(aliases),
        cmocka_unit_test(disk_xml), cmocka_unit_test(domain_disks),
        cmocka_unit_test(server_domain),
        cmocka_unit_test(domain_active),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
