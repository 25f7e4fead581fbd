/* zlt-credential.c: what an agent presented to open a tunnel */
#include "config.h"

#include <string.h>

#include "zlt-credential.h"

/* A v1 credential never keeps the raw token: its SHA-256 is all a check needs. */
struct _ZltCredential
{
  ZltCredentialKind kind;
  char *key_id;
  guint8 token_hash[ZLT_HASH_SIZE]; /* TOKEN */
  guint8 nonce[ZLT_NONCE_SIZE];     /* PROOF */
  ZltUuid client_id;                /* PROOF */
  guint8 proof[ZLT_HASH_SIZE];      /* PROOF */
};

G_DEFINE_BOXED_TYPE (ZltCredential, zlt_credential, zlt_credential_copy, zlt_credential_free)

/**
 * zlt_credential_new_token:
 * @token: the raw token of a v1 Auth
 *
 * Returns: (transfer full): a credential holding the token's hash and key id, not the token
 */
ZltCredential *
zlt_credential_new_token (const char *token)
{
  ZltCredential *self;

  g_return_val_if_fail (token != NULL, NULL);

  self = g_new0 (ZltCredential, 1);
  self->kind = ZLT_CREDENTIAL_KIND_TOKEN;
  self->key_id = zlt_token_key_id (token);
  zlt_token_hash_raw (token, self->token_hash);
  return self;
}

/**
 * zlt_credential_new_proof:
 * @key_id: the key id a v2 Auth carries in its token field
 * @nonce: the nonce the server sent in X-Zlt-Nonce
 * @client_id: the Auth's client id
 * @proof: the PROOF extension
 *
 * Returns: (transfer full): a v2 credential
 */
ZltCredential *
zlt_credential_new_proof (const char *key_id, const guint8 nonce[ZLT_NONCE_SIZE],
                          const ZltUuid *client_id, const guint8 proof[ZLT_HASH_SIZE])
{
  ZltCredential *self;

  g_return_val_if_fail (key_id != NULL, NULL);
  g_return_val_if_fail (nonce != NULL, NULL);
  g_return_val_if_fail (client_id != NULL, NULL);
  g_return_val_if_fail (proof != NULL, NULL);

  self = g_new0 (ZltCredential, 1);
  self->kind = ZLT_CREDENTIAL_KIND_PROOF;
  self->key_id = g_strdup (key_id);
  memcpy (self->nonce, nonce, ZLT_NONCE_SIZE);
  self->client_id = *client_id;
  memcpy (self->proof, proof, ZLT_HASH_SIZE);
  return self;
}

ZltCredential *
zlt_credential_copy (const ZltCredential *credential)
{
  ZltCredential *copy;

  g_return_val_if_fail (credential != NULL, NULL);

  copy = g_memdup2 (credential, sizeof (ZltCredential));
  copy->key_id = g_strdup (credential->key_id);
  return copy;
}

void
zlt_credential_free (ZltCredential *credential)
{
  if (credential == NULL)
    return;
  g_free (credential->key_id);
  explicit_bzero (credential, sizeof (ZltCredential));
  g_free (credential);
}

ZltCredentialKind
zlt_credential_get_kind (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, ZLT_CREDENTIAL_KIND_TOKEN);

  return credential->kind;
}

/**
 * zlt_credential_get_lookup_key:
 * Returns: the key id to find the stored token by: computed from a v1 token, as sent in
 *   a v2 Auth. A v2 key id is whatever the peer sent; never trust it beyond a lookup.
 */
const char *
zlt_credential_get_lookup_key (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  return credential->key_id;
}

/**
 * zlt_credential_get_client_id:
 * Returns: (nullable): the client id of a v2 credential, NULL for a v1 one
 */
const ZltUuid *
zlt_credential_get_client_id (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  if (credential->kind != ZLT_CREDENTIAL_KIND_PROOF)
    return NULL;
  return &credential->client_id;
}

/**
 * zlt_credential_get_nonce:
 * Returns: (nullable): the nonce of a v2 credential (32 bytes), NULL for a v1 one
 */
const guint8 *
zlt_credential_get_nonce (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  if (credential->kind != ZLT_CREDENTIAL_KIND_PROOF)
    return NULL;
  return credential->nonce;
}

/**
 * zlt_credential_matches_hash:
 * @hash: a stored SHA-256 of a token
 *
 * Checks the credential against @hash in constant time: a v1 token's hash against it,
 * or a v2 proof against HMAC(@hash, nonce, client id).
 *
 * Returns: TRUE when the credential proves the token behind @hash
 */
gboolean
zlt_credential_matches_hash (const ZltCredential *credential, const guint8 hash[ZLT_HASH_SIZE])
{
  guint8 expected[ZLT_HASH_SIZE];
  gboolean ok = FALSE;

  g_return_val_if_fail (credential != NULL, FALSE);
  g_return_val_if_fail (hash != NULL, FALSE);

  switch (credential->kind)
    {
    case ZLT_CREDENTIAL_KIND_TOKEN:
      ok = zlt_secure_equal (credential->token_hash, ZLT_HASH_SIZE, hash, ZLT_HASH_SIZE);
      break;
    case ZLT_CREDENTIAL_KIND_PROOF:
      zlt_auth_proof (hash, credential->nonce, &credential->client_id, expected);
      ok = zlt_secure_equal (credential->proof, ZLT_HASH_SIZE, expected, ZLT_HASH_SIZE);
      explicit_bzero (expected, sizeof (expected));
      break;
    default:
      break;
    }
  return ok;
}
