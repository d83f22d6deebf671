/* volfile.h: volume files in the volume directory, for the libvirt driver.
 *
 * Plain POSIX, no libvirt: the file a volume id maps to, making it (sparse,
 * all or nothing), removing it, and sizing a file or block device to adopt.
 */
#ifndef ATTACHD_DRIVER_VOLFILE_H
#define ATTACHD_DRIVER_VOLFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver/driver.h"

/* The file name (no directory) of a volume id's file: "vol-<id>.img", or
 * for ids too long for that "vol+<first 100 characters>+<sha256 hex>.img".
 * false when the id is not 1-255 characters of [A-Za-z0-9._~:-]. */
bool volfile_name(const char *volume_id, char out[256]);

/* Make `dir` (0755, parents too) if missing, and check that hv_user (the
 * user the hypervisor opens files as, "libvirt-qemu"; NULL: nobody to
 * check) can reach it. */
enum driver_rc volfile_dir(const char *dir, const char *hv_user, struct driver_error *err);
/* Make `dir` (0755, parents too) if missing, then the volume's sparse file
 * of `bytes` in it; its path into path[]. An existing file of that size is
 * fine; of another size: DRIVER_REFUSED. A failure leaves no file behind.
 * hv_user: the user the hypervisor opens files as ("libvirt-qemu"), or NULL
 * not to check that it can reach the directory. */
enum driver_rc volfile_create(const char *dir, const char *volume_id, int64_t bytes,
                              const char *hv_user, char *path, size_t path_size,
                              struct driver_error *err);
/* Unlink a file volfile_create() made in `dir`; refuses any other path.
 * Gone already is fine. */
enum driver_rc volfile_delete(const char *dir, const char *path, struct driver_error *err);
/* Size of a regular file or block device, and which it is. */
enum driver_rc volfile_probe(const char *path, int64_t *bytes, bool *block,
                             struct driver_error *err);
/* Whether files under `dir` can be opened with O_DIRECT (cache='none'
 * needs it; ramfs refuses it, and tmpfs
 * before Linux 6.6). false with the reason in why[]. */
bool volfile_direct_ok(const char *path, char *why, size_t why_size);

#endif
