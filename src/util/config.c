/* config.c: see config.h. */
#include "util/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int add(struct config *cfg, const char *section, const char *key, const char *value,
               int line)
{
    struct config_entry *n = realloc(cfg->entries, (size_t)(cfg->count + 1) * sizeof *n);
    if (!n)
        return -1;
    cfg->entries = n;
    struct config_entry *e = &cfg->entries[cfg->count];
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = line;
    if (!e->section || !e->key || !e->value) {
        free(e->section);
        free(e->key);
        free(e->value);
        return -1;
    }
    cfg->count++;
    return 0;
}

static int add_section(struct config *cfg, const char *name, int line)
{
    struct config_section *n =
        realloc(cfg->sections, (size_t)(cfg->n_sections + 1) * sizeof *n);
    if (!n)
        return -1;
    cfg->sections = n;
    if (!(n[cfg->n_sections].name = strdup(name)))
        return -1;
    n[cfg->n_sections++].line = line;
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, int errlen)
{
    cfg->entries = NULL;
    cfg->count = 0;
    cfg->sections = NULL;
    cfg->n_sections = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, (size_t)errlen, "cannot read config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096], section[256] = "";
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, (size_t)errlen, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1] != '\0' || end - s - 1 >= (long)sizeof section) {
                snprintf(err, (size_t)errlen, "%s:%d: bad section header", path, lineno);
                goto fail;
            }
            *end = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            if (add_section(cfg, section, lineno) < 0) {
                snprintf(err, (size_t)errlen, "out of memory");
                goto fail;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, (size_t)errlen, "%s:%d: expected key = value", path, lineno);
            goto fail;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (*key == '\0') {
            snprintf(err, (size_t)errlen, "%s:%d: empty key", path, lineno);
            goto fail;
        }
        if (add(cfg, section, key, value, lineno) < 0) {
            snprintf(err, (size_t)errlen, "out of memory");
            goto fail;
        }
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    config_free(cfg);
    return -1;
}

const char *config_get(const struct config *cfg, const char *section, const char *key)
{
    for (int i = cfg->count - 1; i >= 0; i--)
        if (!strcmp(cfg->entries[i].section, section) && !strcmp(cfg->entries[i].key, key))
            return cfg->entries[i].value;
    return NULL;
}

void config_free(struct config *cfg)
{
    for (int i = 0; i < cfg->count; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    cfg->entries = NULL;
    cfg->count = 0;
    for (int i = 0; i < cfg->n_sections; i++)
        free(cfg->sections[i].name);
    free(cfg->sections);
    cfg->sections = NULL;
    cfg->n_sections = 0;
}
