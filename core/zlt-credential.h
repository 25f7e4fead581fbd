/* zlt-credential.h: what an agent presented to open a tunnel */
#pragma once

#include <glib-object.h>

#include "zlt-version.h"
#include "zlt-crypto.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

/* PROTOCOL-v2.md §2: a v1 Auth carries the raw token, a v2 Auth a key id and a proof. */
typedef enum
{
  ZLT_CREDENTIAL_KIND_TOKEN, /*< nick=token >*/
  ZLT_CREDENTIAL_KIND_PROOF, /*< nick=proof >*/
} ZltCredentialKind;

typedef struct _ZltCredential ZltCredential;

#define ZLT_TYPE_CREDENTIAL (zlt_credential_get_type ())
ZLT_AVAILABLE_IN_ALL
GType zlt_credential_get_type (void) G_GNUC_CONST;

ZLT_AVAILABLE_IN_ALL
ZltCredential *zlt_credential_new_token (const char *token);
ZLT_AVAILABLE_IN_ALL
ZltCredential *zlt_credential_new_proof (const char *key_id, const guint8 nonce[ZLT_NONCE_SIZE],
                                         const ZltUuid *client_id,
                                         const guint8 proof[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
ZltCredential *zlt_credential_copy (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
void zlt_credential_free (ZltCredential *credential);

ZLT_AVAILABLE_IN_ALL
ZltCredentialKind zlt_credential_get_kind (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
const char *zlt_credential_get_lookup_key (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
const ZltUuid *zlt_credential_get_client_id (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
const guint8 *zlt_credential_get_nonce (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_credential_matches_hash (const ZltCredential *credential,
                                      const guint8 hash[ZLT_HASH_SIZE]);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltCredential, zlt_credential_free)

G_END_DECLS
