/* zlt-credential.h: what an agent presented to open a tunnel */
#pragma once

#include <glib-object.h>

#include "zlt-version.h"
#include "zlt-crypto.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

/* PROTOCOL-v2.md §2: a v1 Auth carries the raw token, a v2 Auth a key id and a proof,
 * or (§2a, when the validator asks for it) the raw token over verified TLS. */
typedef enum
{
  ZLT_CREDENTIAL_KIND_TOKEN,  /*< nick=token >*/
  ZLT_CREDENTIAL_KIND_PROOF,  /*< nick=proof >*/
  ZLT_CREDENTIAL_KIND_BEARER, /*< nick=bearer >*/
} ZltCredentialKind;

/**
 * ZltCredentialMode:
 * @ZLT_CREDENTIAL_MODE_CHALLENGE: the v2 challenge (PROTOCOL-v2.md §2): the validator
 *   gets a key id and a proof, and needs the token's SHA-256 to check it (the default)
 * @ZLT_CREDENTIAL_MODE_BEARER: the raw token (PROTOCOL-v2.md §2a), which agents send
 *   only over TLS whose certificate they verified; for validators that must see the
 *   token itself (JWT, OIDC, LDAP, a web hook)
 *
 * What a validator needs to see of a token (zlt_validator_set_credential_mode()).
 */
typedef enum
{
  ZLT_CREDENTIAL_MODE_CHALLENGE, /*< nick=challenge >*/
  ZLT_CREDENTIAL_MODE_BEARER,    /*< nick=bearer >*/
} ZltCredentialMode;

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
ZltCredential *zlt_credential_new_bearer (const char *token, const guint8 nonce[ZLT_NONCE_SIZE],
                                          const ZltUuid *client_id);
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
const char *zlt_credential_get_token (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
const guint8 *zlt_credential_get_token_hash (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
const char *zlt_credential_get_peer_address (const ZltCredential *credential);
ZLT_AVAILABLE_IN_ALL
void zlt_credential_set_peer_address (ZltCredential *credential, const char *peer_address);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_credential_matches_hash (const ZltCredential *credential,
                                      const guint8 hash[ZLT_HASH_SIZE]);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ZltCredential, zlt_credential_free)

G_END_DECLS
