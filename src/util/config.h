/* config.h: a small INI reader for `--config FILE`.
 *
 * Syntax: `[section]` headers, `key = value` lines, `#` or `;` comments,
 * blank lines. Keys before the first header belong to section "". Values are
 * trimmed; surrounding double quotes are removed. A later duplicate wins
 * here; what the keys mean, and whether a duplicate is allowed, is the
 * reader's business (src/cli/options.c refuses unknown keys and repeats,
 * naming the file and the line, which is why each entry keeps its line).
 */
#ifndef ATTACHD_CONFIG_H
#define ATTACHD_CONFIG_H

struct config_entry {
    char *section, *key, *value;
    int line;                   /* 1-based, in the file */
};

struct config_section {
    char *name;
    int line;                   /* of its [header] */
};

struct config {
    struct config_entry *entries;
    int count;
    /* every [section] header, so that one without keys is seen too */
    struct config_section *sections;
    int n_sections;
};

/* Load FILE; on error return -1 and write a one-line reason into err. */
int config_load(struct config *cfg, const char *path, char *err, int errlen);
/* The value of section.key, or NULL. */
const char *config_get(const struct config *cfg, const char *section, const char *key);
void config_free(struct config *cfg);

#endif
