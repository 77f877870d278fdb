/*
 * A stub lib: adapter for the suite's own tests: it scans everything, and the -D macros
 * below make it wrong in one way each.
 *
 *   ABI=N              wcifs_adapter_abi_version returns N
 *   NO_POST_CREATE     the required wcifs_adapter_post_create is missing
 *   POST_ANSWER=N      post_create answers N (-1: fails, with a reason in last_error)
 *   READ_KEY="..."     start reads that registry value (and ignores it)
 *   REGISTRY_PROBE     start reads a few values and fails, reporting what it read
 *   ECHO               post_create fails, reporting what it was handed
 *
 * stub_live_instances() counts the instances not yet freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wcifs_adapter.h"

#ifndef ABI
#define ABI WCIFS_ADAPTER_ABI_VERSION
#endif
#ifndef POST_ANSWER
#define POST_ANSWER WCIFS_VERDICT_SCAN
#endif

typedef struct {
    char error[512];
} stub;

static int live;

WCIFS_ADAPTER_EXPORT int stub_live_instances(void);
int stub_live_instances(void)
{
    return live;
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_abi_version(void)
{
    return ABI;
}

WCIFS_ADAPTER_EXPORT void *wcifs_adapter_new(void)
{
    live++;
    return calloc(1, sizeof(stub));
}

WCIFS_ADAPTER_EXPORT void wcifs_adapter_free(void *adapter)
{
    live--;
    free(adapter);
}

WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_last_error(void *adapter)
{
    stub *s = adapter;
    return s->error[0] ? s->error : "the engine is on fire";
}

#if defined(READ_KEY) || defined(REGISTRY_PROBE)
WCIFS_ADAPTER_EXPORT int wcifs_adapter_start(void *adapter, const wcifs_services *services)
{
#ifdef READ_KEY
    char value[256];
    (void)adapter;
    services->read_registry(services->context, READ_KEY, value, sizeof value);
    return WCIFS_OK;
#else
    /* Each read: "length:value" (value cut to the buffer given), then the version. */
    stub *s = adapter;
    char small[4], big[64];
    int64_t whole = services->read_registry(services->context, "HKLM\\SOFTWARE\\Contoso\\Mode",
                                            small, sizeof small);
    int64_t none = services->read_registry(services->context, "HKLM\\SOFTWARE\\Contoso\\None",
                                           big, sizeof big);
    int64_t count = services->read_registry(services->context, "HKLM\\SOFTWARE\\Contoso\\Count",
                                            big, sizeof big);
    int64_t sizing = services->read_registry(services->context, "HKLM\\SOFTWARE\\Contoso\\Mode",
                                             NULL, 0);
    snprintf(s->error, sizeof s->error, "mode=%lld:%s none=%lld count=%lld:%s sizing=%lld "
             "version=%lld", (long long)whole, small, (long long)none, (long long)count, big,
             (long long)sizing, (long long)services->signature_version(services->context));
    return WCIFS_ERROR;
#endif
}
#endif

WCIFS_ADAPTER_EXPORT int wcifs_adapter_pre_create(void *adapter, const wcifs_pre_create *create,
                                                  uint16_t *ecp_size)
{
    (void)adapter;
    if (!create->has_silo)
        return 0;
    *ecp_size = WCIFS_ECP_SIZE;
    return 1;
}

#ifdef ECHO
static void hex(char *out, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", bytes[i]);
}
#endif

#ifndef NO_POST_CREATE
WCIFS_ADAPTER_EXPORT int wcifs_adapter_post_create(void *adapter, const wcifs_post_create *create)
{
#ifdef ECHO
    stub *s = adapter;
    char ecp[2 * WCIFS_ECP_SIZE + 1] = "-", file_id[33], volume_guid[33];
    if (create->ecp != NULL)
        hex(ecp, (const uint8_t *)create->ecp, WCIFS_ECP_SIZE);
    hex(file_id, create->file_id, 16);
    hex(volume_guid, create->volume_guid, 16);
    snprintf(s->error, sizeof s->error, "id=%lld silo=%d/%lld file=%s volume=%s ecp=%s "
             "length=%u ack=%d path=%zu:%.24s", (long long)create->create_id,
             (int)create->has_silo, (long long)create->silo, file_id, volume_guid, ecp,
             (unsigned)create->ecp_length, (int)create->ecp_acknowledged,
             strlen(create->path), create->path);
    return WCIFS_ERROR;
#else
    (void)adapter;
    (void)create;
    return POST_ANSWER;
#endif
}
#endif
