/* libvirt_xml.c: the XML the libvirt driver writes (one <disk>, shaped as
 * Nova writes it; a server's whole <domain>) and reads (every <disk> of a
 * domain, its console log, attachd's metadata; via XPath).
 *
 * Invariants: every value written into XML is escaped; reading never
 * trusts the XML's shape (a missing element or attribute reads as "").
 */
#include "driver/libvirt_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <string.h>

bool lvxml_alias_ok(const char *alias)
{
    static const char chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    return strncmp(alias, "ua-", 3) == 0 && strspn(alias, chars) == strlen(alias);
}

void lvxml_target_name(const char *prefix, int index, char out[DRIVER_TARGET_MAX])
{
    char rev[8];
    int n = 0;
    for (int i = index; i >= 0 && n < (int)sizeof rev; i = i / 26 - 1)
        rev[n++] = (char)('a' + i % 26);
    int p = snprintf(out, DRIVER_TARGET_MAX, "%s", prefix);
    while (n > 0 && p < DRIVER_TARGET_MAX - 1)
        out[p++] = rev[--n];
    out[p] = '\0';
}

int lvxml_target_index(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0 || !name[pl] || strlen(name + pl) > 4)
        return -1;
    int idx = 0;
    for (const char *s = name + pl; *s; s++) {
        if (*s < 'a' || *s > 'z')
            return -1;
        idx = idx * 26 + (*s - 'a' + 1);
    }
    return idx - 1;
}

static const char *escape(struct arena *ar, const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += strchr("&<>'\"", *p) ? 6 : 1;
    char *out = arena_alloc(ar, n + 1), *o = out;
    for (const char *p = s; *p; p++) {
        const char *e = NULL;
        switch (*p) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '\'': e = "&apos;"; break;
        case '"': e = "&quot;"; break;
        }
        if (e) {
            strcpy(o, e);
            o += strlen(e);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

char *lvxml_disk_xml(struct arena *ar, const struct driver_disk *disk, const char *target,
                     bool direct)
{
    return arena_printf(ar,
        "<disk type='%s' device='disk'>\n"
        "  <driver name='qemu' type='raw' %s/>\n"
        "  <source %s='%s'/>\n"
        "  <target dev='%s' bus='%s'/>\n"
        "  <serial>%s</serial>\n"
        "  <alias name='%s'/>\n"
        "</disk>\n",
        disk->block ? "block" : "file",
        direct ? "cache='none' io='native'" : "cache='writeback' io='threads'",
        disk->block ? "dev" : "file", escape(ar, disk->path),
        escape(ar, target), disk->bus == BUS_VIRTIO ? "virtio" : "scsi",
        escape(ar, disk->serial), escape(ar, disk->alias));
}

/* How many PCIe root ports a server's domain gets: one for the virtio-scsi
 * controller, one for the root disk, the rest free for hot-plugged
 * virtio-blk volumes (libvirt cannot add root ports to a running q35
 * domain). */
#define ROOT_PORTS 8

char *lvxml_domain_xml(struct arena *ar, const struct lvxml_domain *d)
{
    const struct driver_domain_spec *s = d->spec;
    const char *boot = "    <boot dev='hd'/>\n";
    if (s->kernel && *s->kernel)
        boot = arena_printf(ar, "    <kernel>%s</kernel>\n%s%s", escape(ar, s->kernel),
                            s->initrd && *s->initrd
                                ? arena_printf(ar, "    <initrd>%s</initrd>\n",
                                               escape(ar, s->initrd))
                                : "",
                            s->cmdline && *s->cmdline
                                ? arena_printf(ar, "    <cmdline>%s</cmdline>\n",
                                               escape(ar, s->cmdline))
                                : "");
    const char *root;
    if (d->overlay)
        root = arena_printf(ar,
            "<disk type='file' device='disk'>\n"
            "  <driver name='qemu' type='qcow2' %s/>\n"
            "  <source file='%s'/>\n"
            "  <target dev='vda' bus='virtio'/>\n"
            "</disk>\n",
            d->direct ? "cache='none' io='native'" : "cache='writeback' io='threads'",
            escape(ar, d->overlay));
    else {
        struct driver_disk vda = *s->root_volume;
        vda.bus = BUS_VIRTIO;               /* "vda": virtio-blk, whatever the volumes' bus */
        root = lvxml_disk_xml(ar, &vda, "vda", d->direct);
    }
    char *ports = arena_alloc(ar, ROOT_PORTS * 64 + 1);
    ports[0] = '\0';
    for (int i = 1, n = 0; i <= ROOT_PORTS; i++)
        n += snprintf(ports + n, 64, "    <controller type='pci' index='%d' "
                                     "model='pcie-root-port'/>\n", i);
    return arena_printf(ar,
        "<domain type='%s'>\n"
        "  <name>%s</name>\n"
        "  <uuid>%s</uuid>\n"
        "  <metadata>\n"
        "    <attachd:server xmlns:attachd='%s' id='%s' owner='%s'/>\n"
        "  </metadata>\n"
        "  <memory unit='MiB'>%lld</memory>\n"
        "  <vcpu>%d</vcpu>\n"
        "  <os>\n"
        "    <type arch='x86_64' machine='q35'>hvm</type>\n"
        "%s"
        "  </os>\n"
        "  <features><acpi/></features>\n"
        "  <clock offset='utc'/>\n"
        "  <on_poweroff>destroy</on_poweroff>\n"
        "  <on_reboot>restart</on_reboot>\n"
        "  <on_crash>destroy</on_crash>\n"
        "  <devices>\n"
        "    <controller type='pci' index='0' model='pcie-root'/>\n"
        "%s"
        "    <controller type='scsi' index='0' model='virtio-scsi'/>\n"
        "    <controller type='usb' model='none'/>\n"
        "%s"
        "    <serial type='pty'>\n"
        "      <log file='%s' append='on'/>\n"
        "      <target port='0'/>\n"
        "    </serial>\n"
        "    <console type='pty'><target type='serial' port='0'/></console>\n"
        "    <video><model type='none'/></video>\n"
        "    <memballoon model='none'/>\n"
        "  </devices>\n"
        "</domain>\n",
        d->type, escape(ar, d->name), escape(ar, s->uuid), LVXML_NS, escape(ar, s->server),
        escape(ar, d->owner), (long long)s->ram_mb, s->vcpus, boot, ports, root,
        escape(ar, d->console));
}

/* The string value of an XPath expression relative to node, in the arena. */
static const char *xstr(struct arena *ar, xmlXPathContextPtr ctx, xmlNodePtr node,
                        const char *expr)
{
    ctx->node = node;
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    const char *s = "";
    if (o && o->type == XPATH_STRING && o->stringval)
        s = arena_strdup(ar, (const char *)o->stringval);
    xmlXPathFreeObject(o);
    return s;
}

bool lvxml_disks(const char *xml, struct arena *ar, struct lvxml_disk **out, int *n)
{
    bool active;
    return lvxml_domain_disks(xml, ar, out, n, &active);
}

bool lvxml_domain_disks(const char *xml, struct arena *ar, struct lvxml_disk **out, int *n,
                        bool *active)
{
    *out = NULL;
    *n = 0;
    *active = false;
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return false;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr set = ctx ? xmlXPathEvalExpression(
        (const xmlChar *)"/domain/devices/disk", ctx) : NULL;
    bool ok = set != NULL;
    if (ok)
        *active = xstr(ar, ctx, (xmlNodePtr)doc, "string(/domain/@id)")[0] != '\0';
    if (ok && set->nodesetval && set->nodesetval->nodeNr > 0) {
        int count = set->nodesetval->nodeNr;
        struct lvxml_disk *d = arena_alloc(ar, sizeof *d * (size_t)count);
        for (int i = 0; i < count; i++) {
            xmlNodePtr node = set->nodesetval->nodeTab[i];
            const char *alias = xstr(ar, ctx, node, "string(alias/@name)");
            d[i].alias = strncmp(alias, "ua-", 3) == 0 ? alias : "";
            d[i].target = xstr(ar, ctx, node, "string(target/@dev)");
            d[i].serial = xstr(ar, ctx, node, "string(serial)");
            d[i].path = xstr(ar, ctx, node,
                             "string((source/@file | source/@dev | source/@name)[1])");
        }
        *out = d;
        *n = count;
    }
    xmlXPathFreeObject(set);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return ok;
}

/* The string value of an XPath expression on a whole document; false when
 * the XML does not parse. */
static bool doc_string(const char *xml, struct arena *ar, const char *expr, const char **out)
{
    *out = "";
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return false;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    if (ctx)
        *out = xstr(ar, ctx, xmlDocGetRootElement(doc), expr);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return ctx != NULL;
}

bool lvxml_console_path(const char *xml, struct arena *ar, const char **path)
{
    /* a chardev's log, or the file a file chardev writes: serial first */
    return doc_string(xml, ar,
                      "string((/domain/devices/serial/log/@file"
                      " | /domain/devices/serial[@type='file']/source/@path"
                      " | /domain/devices/console/log/@file"
                      " | /domain/devices/console[@type='file']/source/@path)[1])", path);
}

bool lvxml_metadata(const char *xml, struct arena *ar, const char **server, const char **owner)
{
    return doc_string(xml, ar, "string(/*/@id)", server) &&
           doc_string(xml, ar, "string(/*/@owner)", owner);
}
