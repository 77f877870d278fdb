/*
 * Faulty on purpose: the sample C adapter deaf to file changes, so a written or deleted
 * file keeps its "scanned clean" entry and a layer file tampered with on the host is
 * skipped on the strength of its old scan. The suite must catch it with SAFE-9
 * (tests/gallery.py's NoInvalidation and tests/exec/stale_marker.py are its twins).
 *
 *   cc -shared -fPIC -O2 -I conformance/include -I conformance/samples \
 *      -o stale_marker.so tests/native/stale_marker.c
 */
/* The sample's own hooks are compiled under other names and never called. */
#define wcifs_adapter_name sample_name
#define wcifs_adapter_file_changed sample_file_changed
#include "sample_adapter.c"
#undef wcifs_adapter_name
#undef wcifs_adapter_file_changed

WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_name(void)
{
    return "stale-marker C mutant";
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_file_changed(void *handle, const wcifs_file_change *change)
{
    (void)handle;
    (void)change;
    return WCIFS_OK; /* the defect: nothing is invalidated */
}
