/* config.h: a small INI reader for `--config FILE`.
 *
 * Syntax: `[section]` headers, `key = value` lines, `#` or `;` comments,
 * blank lines. Keys before the first header belong to section "". Values are
 * trimmed; surrounding double quotes are removed. A later duplicate wins.
 */
#ifndef ATTACHD_CONFIG_H
#define ATTACHD_CONFIG_H

struct config_entry {
    char *section, *key, *value;
};

struct config {
    struct config_entry *entries;
    int count;
};

/* Load FILE; on error return -1 and write a one-line reason into err. */
int config_load(struct config *cfg, const char *path, char *err, int errlen);
/* The value of section.key, or NULL. */
const char *config_get(const struct config *cfg, const char *section, const char *key);
void config_free(struct config *cfg);

#endif
