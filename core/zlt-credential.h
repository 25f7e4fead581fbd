/* zlt-credential.h: what an agent presented to open a tunnel */
#pragma once

#include <glib-object.h>

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
GType zlt_credential_get_type (void) G_GNUC_CONST;

ZltCredential *zlt_credential_new_token (const char *token);
ZltCredential *zlt_credential_new_proof (const char *key_id, const guint8 nonce[ZLT_NONCE_SIZE],
                                         const ZltUuid *client_id,
                                         const guint8 proof[ZLT_HASH_SIZE]);
ZltCredential *zlt_credential_copy (const ZltCredential *credential);
void zlt_credential_free (ZltCredential *credential);

ZltCredentialKind zlt_credential_get_kind (const ZltCredential *credential);
const char *zlt_credential_get_lookup_key (const ZltCredential *credential);
const ZltUuid *zlt_credential_get_client_id (const ZltCredential *credential);
const guint8 *zlt_credential_get_nonce (const ZltCredential *credential);
gboolean zlt_credential_matches_hash (const ZltCredential *credential,
                                      const guint8 hash[ZLT_HASH_SIZE]);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltCredential, zlt_credential_free)

G_END_DECLS
