/*
 * sample_adapter.c - a sample `lib:` adapter for the WCIFS anti-virus conformance suite.
 *
 * It decides like the suite's reference adapter (reference/adapter.py) at level
 * signature-current, asking for a proactive scan after every signature update, behind
 * the C ABI of conformance/include/wcifs_adapter.h. Certified, it reaches all three
 * levels:
 *
 *   cc -shared -fPIC -O2 -I conformance/include -o sample_adapter.so \
 *      conformance/samples/sample_adapter.c
 *   wcifs-conformance certify --adapter lib:./sample_adapter.so \
 *      --require conformant,signature-current,optimized
 *
 * The policy. One cache, keyed by the backing file's complete identity FileId +
 * VolumeGuid (32 bytes: exactly bytes 4..36 of the ECP, and what a host file's own ids
 * give), holds the signature version of the file's last clean scan; an entry counts only
 * under the current version. Every scan feeds it (install-time, on-access, proactive); a
 * write or delete of the file drops it. Files a scan found infected are never skipped.
 * Registered and remote layers are trusted only after a proactive scan completed under
 * the current signature version.
 *
 * Plain C99 and the standard library; every instance owns its state (the suite keeps
 * several alive at once).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wcifs_adapter.h"

#define LAYER WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_LAYER
#define REGISTERED WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_REGISTERED_LAYER
#define REMOTE WCIFS_REDIRECTION_FLAGS_CREATE_SERVICED_FROM_REMOTE_LAYER

/* FileId + VolumeGuid, in the ECP's order. */
#define ID_BYTES 16
#define KEY_BYTES (2 * ID_BYTES)

static const uint8_t ZERO_ID[ID_BYTES];

/* ---- A set of identities, each with a signature version ----------------------------
 * Open addressing with linear probing, at most half full; deletion shifts the entries
 * after the hole back, so no tombstones are needed. */
typedef struct {
    uint8_t key[KEY_BYTES];
    int64_t version;
    int used;
} slot;

typedef struct {
    slot *slots;
    size_t mask; /* capacity - 1 (capacity a power of two), or 0 before the first entry */
    size_t count;
} table;

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Every byte counts: ReFS ids can share their low 64 bits, volumes hand out equal ids. */
static size_t hash_key(const uint8_t *key)
{
    uint64_t h = 0x243F6A8885A308D3u;
    for (int i = 0; i < KEY_BYTES; i += 8) {
        h = (h ^ load64(key + i)) * 0x9E3779B97F4A7C15u;
        h ^= h >> 29;
    }
    return (size_t)h;
}

static slot *table_find(const table *t, const uint8_t *key)
{
    if (t->count == 0)
        return NULL;
    for (size_t i = hash_key(key) & t->mask;; i = (i + 1) & t->mask) {
        slot *s = &t->slots[i];
        if (!s->used)
            return NULL;
        if (memcmp(s->key, key, KEY_BYTES) == 0)
            return s;
    }
}

static void table_insert_new(table *t, const uint8_t *key, int64_t version)
{
    size_t i = hash_key(key) & t->mask;
    while (t->slots[i].used)
        i = (i + 1) & t->mask;
    memcpy(t->slots[i].key, key, KEY_BYTES);
    t->slots[i].version = version;
    t->slots[i].used = 1;
    t->count++;
}

/* Set `key`'s version, adding it if absent. Returns 0, or -1 out of memory. */
static int table_put(table *t, const uint8_t *key, int64_t version)
{
    slot *s = table_find(t, key);
    if (s != NULL) {
        s->version = version;
        return 0;
    }
    size_t capacity = t->slots ? t->mask + 1 : 0;
    if ((t->count + 1) * 2 > capacity) {
        size_t grown = capacity ? capacity * 2 : 16;
        slot *slots = calloc(grown, sizeof *slots);
        if (slots == NULL)
            return -1;
        table old = *t;
        t->slots = slots;
        t->mask = grown - 1;
        t->count = 0;
        for (size_t i = 0; i < capacity; i++)
            if (old.slots[i].used)
                table_insert_new(t, old.slots[i].key, old.slots[i].version);
        free(old.slots);
    }
    table_insert_new(t, key, version);
    return 0;
}

static void table_remove(table *t, const uint8_t *key)
{
    slot *s = table_find(t, key);
    if (s == NULL)
        return;
    size_t hole = (size_t)(s - t->slots);
    for (size_t j = (hole + 1) & t->mask; t->slots[j].used; j = (j + 1) & t->mask) {
        size_t home = hash_key(t->slots[j].key) & t->mask;
        /* Entry j may fill the hole unless its home lies cyclically in (hole, j]. */
        int stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole].used = 0;
    t->count--;
}

static void table_clear(table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = t->count = 0;
}

/* ---- The adapter -------------------------------------------------------------------- */

/* An on-access scan in flight: the identity its result will be for. `live` drops to 0
 * when the file is written meanwhile: the result then covers the old content only. */
typedef struct {
    int64_t create_id;
    uint8_t key[KEY_BYTES];
    int live;
} pending_scan;

typedef struct {
    table cache;    /* identity -> signature version of its last clean scan */
    table infected; /* identities a scan found infected (version unused) */
    /* Scans in flight: a handful at a time, so a list searched end to end will do. */
    pending_scan *pending;
    size_t n_pending, cap_pending;
    int64_t version; /* the current signature version */
    int trusted;     /* registered and remote layers may be trusted right now */
    const char *error;
} adapter;

static int fail(adapter *a, const char *why)
{
    a->error = why;
    return WCIFS_ERROR;
}

static int is_zero(const uint8_t *id)
{
    return memcmp(id, ZERO_ID, ID_BYTES) == 0;
}

static void identity(uint8_t key[KEY_BYTES], const uint8_t *file_id,
                     const uint8_t *volume_guid)
{
    memcpy(key, file_id, ID_BYTES);
    memcpy(key + ID_BYTES, volume_guid, ID_BYTES);
}

static int cached_now(const adapter *a, const uint8_t *key)
{
    const slot *s = table_find(&a->cache, key);
    return s != NULL && s->version == a->version;
}

/* Remember whose scan `create_id` is, and answer SCAN (or fail out of memory). */
static int scan_for(adapter *a, int64_t create_id, const uint8_t *key)
{
    for (size_t i = 0; i < a->n_pending; i++)
        if (a->pending[i].create_id == create_id) {
            memcpy(a->pending[i].key, key, KEY_BYTES);
            a->pending[i].live = 1;
            return WCIFS_VERDICT_SCAN;
        }
    if (a->n_pending == a->cap_pending) {
        size_t cap = a->cap_pending ? a->cap_pending * 2 : 8;
        pending_scan *grown = realloc(a->pending, cap * sizeof *grown);
        if (grown == NULL)
            return fail(a, "out of memory for the scans in flight");
        a->pending = grown;
        a->cap_pending = cap;
    }
    pending_scan *p = &a->pending[a->n_pending++];
    p->create_id = create_id;
    memcpy(p->key, key, KEY_BYTES);
    p->live = 1;
    return WCIFS_VERDICT_SCAN;
}

/* Take `create_id`'s scan off the list: 1 with its identity in `key` if it still says
 * something about the file, else 0. */
static int take_pending(adapter *a, int64_t create_id, uint8_t key[KEY_BYTES])
{
    for (size_t i = 0; i < a->n_pending; i++)
        if (a->pending[i].create_id == create_id) {
            int live = a->pending[i].live;
            memcpy(key, a->pending[i].key, KEY_BYTES);
            a->pending[i] = a->pending[--a->n_pending];
            return live;
        }
    return 0;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_abi_version(void)
{
    return WCIFS_ADAPTER_ABI_VERSION;
}

WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_name(void)
{
    return "WCIFS sample C adapter";
}

WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_version(void)
{
    return "1.0";
}

WCIFS_ADAPTER_EXPORT void *wcifs_adapter_new(void)
{
    return calloc(1, sizeof(adapter));
}

WCIFS_ADAPTER_EXPORT void wcifs_adapter_free(void *handle)
{
    adapter *a = handle;
    if (a == NULL)
        return;
    table_clear(&a->cache);
    table_clear(&a->infected);
    free(a->pending);
    free(a);
}

WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_last_error(void *handle)
{
    return ((adapter *)handle)->error;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_start(void *handle, const wcifs_services *services)
{
    adapter *a = handle;
    a->version = services->signature_version(services->context);
    return WCIFS_OK;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_pre_create(void *handle, const wcifs_pre_create *create,
                                                  uint16_t *ecp_size)
{
    (void)handle;
    if (!create->has_silo)
        return 0;
    *ecp_size = WCIFS_ECP_SIZE;
    return 1;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_post_create(void *handle, const wcifs_post_create *create)
{
    adapter *a = handle;
    const WCIFS_REDIRECTION_ECP_CONTEXT *ecp = create->ecp;
    if (ecp != NULL) {
        /* Never acknowledged, or truncated: it tells nothing. */
        if (!create->ecp_acknowledged || create->ecp_length < WCIFS_ECP_SIZE)
            return WCIFS_VERDICT_SCAN;
        /* FileId + VolumeGuid: the backing identity, 32 contiguous bytes of the ECP. */
        const uint8_t *key =
            (const uint8_t *)ecp + offsetof(WCIFS_REDIRECTION_ECP_CONTEXT, FileId);
        switch (ecp->Flags) {
        case LAYER:
            /* A plain local-layer open: the cache alone decides. The hot path (SPEC §9). */
            if (cached_now(a, key))
                return WCIFS_VERDICT_SKIP;
            return scan_for(a, create->create_id, key);
        case LAYER | REGISTERED: {
            /* Trust needs ids: without them an infected file could not be recognised. A
             * finding may also stand under the id the container sees (a scan done while
             * the ids were withheld, or a non-container open of the volume). */
            uint8_t own[KEY_BYTES];
            identity(own, create->file_id, create->volume_guid);
            if (a->trusted && !is_zero(key) && table_find(&a->infected, key) == NULL &&
                table_find(&a->infected, own) == NULL)
                return WCIFS_VERDICT_SKIP;
            if (cached_now(a, key))
                return WCIFS_VERDICT_SKIP;
            return scan_for(a, create->create_id, key);
        }
        case LAYER | REMOTE:
        case LAYER | REMOTE | REGISTERED:
            return a->trusted ? WCIFS_VERDICT_SKIP : WCIFS_VERDICT_SCAN;
        default:
            return WCIFS_VERDICT_SCAN; /* scratch, user mode, unknown bits, contradictions */
        }
    }
    if (!create->has_silo) {
        /* An ordinary open: remember the result under the file's own identity, which is
         * the backing identity later ECPs will name if this is a layer file. */
        uint8_t own[KEY_BYTES];
        identity(own, create->file_id, create->volume_guid);
        return scan_for(a, create->create_id, own);
    }
    return WCIFS_VERDICT_SCAN;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_scan_completed(void *handle,
                                                      const wcifs_scan_result *result)
{
    adapter *a = handle;
    uint8_t key[KEY_BYTES];
    if (!result->has_create_id) {
        identity(key, result->file_id, result->volume_guid); /* a proactive scan */
    } else {
        int live = take_pending(a, result->create_id, key);
        if (result->outcome == WCIFS_OUTCOME_INFECTED) {
            uint8_t scanned[KEY_BYTES];
            identity(scanned, result->file_id, result->volume_guid);
            if (table_put(&a->infected, scanned, 0) != 0)
                return fail(a, "out of memory for the infected files");
        }
        if (!live)
            return WCIFS_OK;
    }
    if (is_zero(key) || is_zero(key + ID_BYTES))
        return WCIFS_OK; /* unset ids name nothing */
    if (result->outcome == WCIFS_OUTCOME_CLEAN) {
        slot *s = table_find(&a->cache, key);
        if (s == NULL) {
            if (table_put(&a->cache, key, result->signature_version) != 0)
                return fail(a, "out of memory for the cache");
        } else if (s->version < result->signature_version) {
            s->version = result->signature_version;
        }
    } else if (result->outcome == WCIFS_OUTCOME_INFECTED) {
        if (table_put(&a->infected, key, 0) != 0)
            return fail(a, "out of memory for the infected files");
        table_remove(&a->cache, key);
    }
    return WCIFS_OK;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_file_changed(void *handle,
                                                    const wcifs_file_change *change)
{
    adapter *a = handle;
    uint8_t key[KEY_BYTES];
    identity(key, change->file_id, change->volume_guid);
    table_remove(&a->cache, key);
    table_remove(&a->infected, key);
    /* Written while its scan is in flight: the result will cover the old content. */
    for (size_t i = 0; i < a->n_pending; i++)
        if (memcmp(a->pending[i].key, key, KEY_BYTES) == 0)
            a->pending[i].live = 0;
    return WCIFS_OK;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_signature_updated(void *handle, int64_t version)
{
    adapter *a = handle;
    a->version = version;
    a->trusted = 0;
    return 1; /* run a proactive scan now */
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_proactive_scan_completed(void *handle, int64_t version)
{
    adapter *a = handle;
    if (version == a->version)
        a->trusted = 1;
    return WCIFS_OK;
}
