/*
 * wcifs_adapter.h - the C ABI of a `lib:PATH` adapter (SPEC §10), version 1.
 *
 * A shared library that exports the functions below is a decision adapter the WCIFS
 * conformance suite can check: `wcifs-conformance certify --adapter lib:./adapter.so`.
 * It mirrors the Python contract of SPEC §4 hook for hook; build the library from the
 * same decision code as the minifilter, so that the suite checks what ships.
 *
 * Rules that hold for every function:
 * - The suite calls one function at a time per instance, never re-entrantly; different
 *   instances may be alive at once (one per generated example, plus replays), so keep
 *   all state in the instance, none in globals.
 * - Everything passed by pointer is valid only during the call: copy what you keep.
 *   Never write through a const pointer.
 * - Hooks return an int. A negative value means the hook failed: the suite reports a
 *   SAFE-13 violation naming the hook, with wcifs_adapter_last_error()'s message.
 * - Ids (FILE_ID_128, volume GUIDs) are 16 bytes exactly as the ECP lays them out
 *   (little-endian; GUIDs in Windows layout). Strings are NUL-terminated UTF-8.
 *
 * Required exports: wcifs_adapter_abi_version, wcifs_adapter_new, wcifs_adapter_free,
 * wcifs_adapter_pre_create, wcifs_adapter_post_create. The suite refuses a library that
 * lacks one or returns another ABI version. Every other export is optional; a missing
 * hook behaves like Python's BaseAdapter (does nothing; signature_updated answers 0).
 */
#ifndef WCIFS_ADAPTER_H
#define WCIFS_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WCIFS_ADAPTER_ABI_VERSION 1

#if defined(_WIN32)
#define WCIFS_ADAPTER_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define WCIFS_ADAPTER_EXPORT __attribute__((visibility("default")))
#else
#define WCIFS_ADAPTER_EXPORT
#endif

/* ---- The redirection ECP (SPEC §2) --------------------------------------------------
 * Defined here unless the platform's own headers already did (same layout: no padding,
 * 36 bytes, 2-byte aligned). */
#ifndef WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_LAYER
#define WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_LAYER 0x0001
#define WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_SCRATCH 0x0002
#define WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_REGISTERED_LAYER 0x0004
#define WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_REMOTE_LAYER 0x0008
/* CREATE_REDIRECTION_FLAGS_SERVICED_FROM_USER_MODE: provenance unknown, scan it. */
#define WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_USER_MODE 0x0010

typedef struct WCIFS_REDIRECTION_ECP_CONTEXT {
    uint16_t Size;          /* in: set by the filter; sizeof = 36 */
    uint16_t Flags;         /* out: WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_* */
    uint8_t FileId[16];     /* out: FILE_ID_128 of the backing layer file */
    uint8_t VolumeGuid[16]; /* out: GUID of the backing file's volume */
} WCIFS_REDIRECTION_ECP_CONTEXT;
#endif

/* sizeof(WCIFS_REDIRECTION_ECP_CONTEXT): the Size an ECP request should carry. */
#define WCIFS_ECP_SIZE 36

/* ---- Answers and enumerations ------------------------------------------------------- */
#define WCIFS_VERDICT_SCAN 0
#define WCIFS_VERDICT_SKIP 1

#define WCIFS_OK 0
#define WCIFS_ERROR (-1) /* any negative value is a failure */

#define WCIFS_OUTCOME_CLEAN 0
#define WCIFS_OUTCOME_INFECTED 1
#define WCIFS_OUTCOME_ERROR 2 /* the engine failed (timeout, I/O): not a clean scan */

#define WCIFS_ORIGIN_ON_ACCESS 0
#define WCIFS_ORIGIN_PROACTIVE 1

#define WCIFS_CHANGE_WRITE 0
#define WCIFS_CHANGE_DELETE 1

/* ---- Events (SPEC §4). Fields are ordered so that no padding is implied; `reserved`
 * fields are zero. `silo` is meaningful only when `has_silo` is non-zero: has_silo == 0
 * is what IoGetSiloParameters returning NULL means, an open outside a container. ------- */

/* A create before it reaches wcifs. */
typedef struct wcifs_pre_create {
    int64_t create_id;
    int64_t silo;
    const char *path;
    uint8_t volume_guid[16];
    int32_t has_silo;
    int32_t reserved;
} wcifs_pre_create;

/* A completed create. `file_id` is the opened file's own id on `volume_guid` (for a
 * placeholder the container-side id, not the backing one); the two are adjacent, so
 * `file_id` starts the 32-byte identity FileId + VolumeGuid, in the ECP's order.
 *
 * `ecp` is NULL when no ECP was attached. Otherwise it points to 36 readable bytes:
 * the first `ecp_length` (0..36) are what the filter found, the rest are zero (an ECP
 * shorter than 36 bytes carries no complete ids). `ecp_acknowledged` is non-zero when
 * wcifs acknowledged the ECP; an unacknowledged ECP carries no information at all. */
typedef struct wcifs_post_create {
    int64_t create_id;
    int64_t silo;
    const char *path;
    const WCIFS_REDIRECTION_ECP_CONTEXT *ecp;
    uint8_t file_id[16];
    uint8_t volume_guid[16];
    int32_t has_silo;
    int32_t ecp_acknowledged;
    uint32_t ecp_length;
    int32_t reserved;
} wcifs_post_create;

/* A scan finished. On access, `create_id` names the post_create that asked for it; a
 * proactive scan has has_create_id == 0 and names the host file. `file_id` and
 * `volume_guid` (adjacent, as above) are the file actually scanned; `signature_version`
 * is the version the scan started under. */
typedef struct wcifs_scan_result {
    int64_t create_id;
    int64_t signature_version;
    uint8_t file_id[16];
    uint8_t volume_guid[16];
    int32_t has_create_id;
    int32_t outcome; /* WCIFS_OUTCOME_* */
    int32_t origin;  /* WCIFS_ORIGIN_* */
    int32_t reserved;
} wcifs_scan_result;

/* A file was written to or deleted, on any volume. */
typedef struct wcifs_file_change {
    int64_t silo;
    const char *path;
    uint8_t file_id[16];
    uint8_t volume_guid[16];
    int32_t has_silo;
    int32_t kind; /* WCIFS_CHANGE_* */
} wcifs_file_change;

/* ---- Services (SPEC §4), handed to wcifs_adapter_start ---------------------------------
 * The struct and its callbacks stay valid until wcifs_adapter_free: keep the pointer and
 * call them from any hook. Every registry read is recorded; reading LayerRootLocations,
 * under any spelling, is a violation (SAFE-12) whatever it returns. */
typedef struct wcifs_services {
    void *context; /* pass it back as the first argument */
    /* Reads registry value `key`. Writes at most `size` bytes of its value into `buffer`
     * as NUL-terminated UTF-8 text (a non-string value in its text form) and returns the
     * value's full length in bytes, without the NUL: a result >= size means it was cut
     * short (call again with a larger buffer). Returns -1 when there is no such value,
     * -2 when the host failed. `buffer` may be NULL when `size` is 0. */
    int64_t (*read_registry)(void *context, const char *key, char *buffer, size_t size);
    /* The product's current signature version (later changes come through
     * wcifs_adapter_signature_updated). */
    int64_t (*signature_version)(void *context);
} wcifs_services;

/* ---- Exports ------------------------------------------------------------------------ */

/* Required: return WCIFS_ADAPTER_ABI_VERSION. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_abi_version(void);

/* Optional: who made the adapter (recorded in the certificate). Static strings. */
WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_name(void);
WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_version(void);

/* Required: a fresh instance with empty state, or NULL on failure; and its release. */
WCIFS_ADAPTER_EXPORT void *wcifs_adapter_new(void);
WCIFS_ADAPTER_EXPORT void wcifs_adapter_free(void *adapter);

/* Optional: called once before any other hook, and once after the last event. No
 * proactive scan has completed at start. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_start(void *adapter, const wcifs_services *services);
WCIFS_ADAPTER_EXPORT int wcifs_adapter_stop(void *adapter);

/* Required: return 1 to attach a redirection ECP and write the Size to give it to
 * `*ecp_size` (it starts at 0), 0 to attach none. Attach one in every container context
 * (has_silo), with Size WCIFS_ECP_SIZE. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_pre_create(void *adapter,
                                                  const wcifs_pre_create *create,
                                                  uint16_t *ecp_size);

/* Required: return WCIFS_VERDICT_SCAN or WCIFS_VERDICT_SKIP. Any other non-negative
 * value is an invalid answer (SAFE-13). This is the hot path of SPEC §9. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_post_create(void *adapter,
                                                   const wcifs_post_create *create);

/* Optional: a scan finished; a file changed. Return WCIFS_OK. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_scan_completed(void *adapter,
                                                      const wcifs_scan_result *result);
WCIFS_ADAPTER_EXPORT int wcifs_adapter_file_changed(void *adapter,
                                                    const wcifs_file_change *change);

/* Optional: new signatures are in force. Return 1 to run a proactive scan now, else 0;
 * any other non-negative value is an invalid answer. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_signature_updated(void *adapter, int64_t version);

/* Optional: a proactive scan that started under `version` scanned every layer file, or
 * stopped part-way (an aborted scan does not count as completed). Return WCIFS_OK. */
WCIFS_ADAPTER_EXPORT int wcifs_adapter_proactive_scan_completed(void *adapter,
                                                                int64_t version);
WCIFS_ADAPTER_EXPORT int wcifs_adapter_proactive_scan_aborted(void *adapter, int64_t version);

/* Optional: why the last hook of this instance failed, or NULL. Valid until the next
 * call on the instance. */
WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_last_error(void *adapter);

/* Function types of the exports, for hosts that resolve them with dlsym. */
typedef int (*wcifs_abi_version_fn)(void);
typedef const char *(*wcifs_info_fn)(void);
typedef void *(*wcifs_new_fn)(void);
typedef void (*wcifs_free_fn)(void *adapter);
typedef int (*wcifs_start_fn)(void *adapter, const wcifs_services *services);
typedef int (*wcifs_stop_fn)(void *adapter);
typedef int (*wcifs_pre_create_fn)(void *adapter, const wcifs_pre_create *create,
                                   uint16_t *ecp_size);
typedef int (*wcifs_post_create_fn)(void *adapter, const wcifs_post_create *create);
typedef int (*wcifs_scan_completed_fn)(void *adapter, const wcifs_scan_result *result);
typedef int (*wcifs_file_changed_fn)(void *adapter, const wcifs_file_change *change);
typedef int (*wcifs_version_hook_fn)(void *adapter, int64_t version);
typedef const char *(*wcifs_last_error_fn)(void *adapter);

#ifdef __cplusplus
}
#endif

#endif /* WCIFS_ADAPTER_H */
