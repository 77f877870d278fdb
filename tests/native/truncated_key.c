/*
 * Faulty on purpose: the sample C adapter keeping FileIds as 64-bit numbers (what
 * FILE_INTERNAL_INFORMATION gives, an NTFS habit), so its cache keys on the first 8 bytes
 * of the FileId + VolumeGuid and two ReFS files whose ids share their low 64 bits share
 * an entry. The suite must catch it with SAFE-6 (tests/gallery.py's TruncatedKey and
 * tests/exec/truncated_key.py are its twins).
 *
 *   cc -shared -fPIC -O2 -I conformance/include -I conformance/samples \
 *      -o truncated_key.so tests/native/truncated_key.c
 */
/* The sample's own hooks are compiled under other names and called on cut-down ids. */
#define wcifs_adapter_name sample_name
#define wcifs_adapter_post_create sample_post_create
#define wcifs_adapter_scan_completed sample_scan_completed
#define wcifs_adapter_file_changed sample_file_changed
#include "sample_adapter.c"
#undef wcifs_adapter_name
#undef wcifs_adapter_post_create
#undef wcifs_adapter_scan_completed
#undef wcifs_adapter_file_changed

WCIFS_ADAPTER_EXPORT const char *wcifs_adapter_name(void)
{
    return "truncated-key C mutant";
}

/* The defect: the upper 64 bits of a FILE_ID_128 are lost. */
static void to_64_bits(uint8_t file_id[ID_BYTES])
{
    memset(file_id + 8, 0, ID_BYTES - 8);
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_post_create(void *handle, const wcifs_post_create *create)
{
    wcifs_post_create cut = *create;
    WCIFS_REDIRECTION_ECP_CONTEXT ecp;
    to_64_bits(cut.file_id);
    if (create->ecp != NULL) {
        ecp = *create->ecp;
        to_64_bits(ecp.FileId);
        cut.ecp = &ecp;
    }
    return sample_post_create(handle, &cut);
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_scan_completed(void *handle,
                                                      const wcifs_scan_result *result)
{
    wcifs_scan_result cut = *result;
    to_64_bits(cut.file_id);
    return sample_scan_completed(handle, &cut);
}

WCIFS_ADAPTER_EXPORT int wcifs_adapter_file_changed(void *handle,
                                                    const wcifs_file_change *change)
{
    wcifs_file_change cut = *change;
    to_64_bits(cut.file_id);
    return sample_file_changed(handle, &cut);
}
