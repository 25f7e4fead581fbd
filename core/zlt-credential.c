/* zlt-credential.c: what an agent presented to open a tunnel */
#include "config.h"

#include <string.h>

#include "zlt-credential.h"

/* A v1 credential never keeps the raw token: its SHA-256 is all a check needs. A bearer
 * credential keeps it, since the validator asked to see it (and wiped when freed). */
struct _ZltCredential
{
  ZltCredentialKind kind;
  char *key_id;
  char *token;                      /* BEARER */
  char *peer_address;               /* where it came from, if the server said */
  guint8 token_hash[ZLT_HASH_SIZE]; /* TOKEN, BEARER */
  guint8 nonce[ZLT_NONCE_SIZE];     /* PROOF, BEARER */
  ZltUuid client_id;                /* PROOF, BEARER */
  guint8 proof[ZLT_HASH_SIZE];      /* PROOF */
};

/**
 * ZltCredential:
 * What an agent presented to open a tunnel, as a validator sees it.
 *
 * Today every credential is a *hash-challenge* credential (the default): the server never
 * sees the token. A v1 Auth carries the raw token, which the server hashes at once and
 * forgets (%ZLT_CREDENTIAL_KIND_TOKEN); a v2 Auth carries a key id and an HMAC proof over
 * the server's nonce and the agent's client id (%ZLT_CREDENTIAL_KIND_PROOF,
 * PROTOCOL-v2.md §2). Either way a validator looks the token up by
 * zlt_credential_get_lookup_key() and checks it against the SHA-256 it stores with
 * zlt_credential_matches_hash(), which works for both kinds.
 */

/**
 * ZltCredentialKind:
 * @ZLT_CREDENTIAL_KIND_TOKEN: a v1 Auth: the token's hash (the raw token is not kept)
 * @ZLT_CREDENTIAL_KIND_PROOF: a v2 Auth: a key id and an HMAC proof
 *
 * How the agent proved its token (PROTOCOL-v2.md §2).
 */

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
 * @nonce: (array fixed-size=32): the nonce the server sent in X-Zlt-Nonce
 * @client_id: the Auth's client id
 * @proof: (array fixed-size=32): the PROOF extension
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

/**
 * zlt_credential_new_bearer:
 * @token: the raw token of a v2 bearer Auth (PROTOCOL-v2.md §2a)
 * @nonce: the nonce the server sent in X-Zlt-Nonce
 * @client_id: the Auth's client id
 *
 * Returns: (transfer full): a bearer credential: it keeps the token for the validator
 *   (zlt_credential_get_token()), its SHA-256 and its key id
 */
ZltCredential *
zlt_credential_new_bearer (const char *token, const guint8 nonce[ZLT_NONCE_SIZE],
                           const ZltUuid *client_id)
{
  ZltCredential *self;

  g_return_val_if_fail (token != NULL, NULL);
  g_return_val_if_fail (nonce != NULL, NULL);
  g_return_val_if_fail (client_id != NULL, NULL);

  self = g_new0 (ZltCredential, 1);
  self->kind = ZLT_CREDENTIAL_KIND_BEARER;
  self->key_id = zlt_token_key_id (token);
  self->token = g_strdup (token);
  zlt_token_hash_raw (token, self->token_hash);
  memcpy (self->nonce, nonce, ZLT_NONCE_SIZE);
  self->client_id = *client_id;
  return self;
}

/**
 * zlt_credential_copy:
 * @credential: a credential
 *
 * Returns: (transfer full): a copy of @credential
 */
ZltCredential *
zlt_credential_copy (const ZltCredential *credential)
{
  ZltCredential *copy;

  g_return_val_if_fail (credential != NULL, NULL);

  copy = g_memdup2 (credential, sizeof (ZltCredential));
  copy->key_id = g_strdup (credential->key_id);
  copy->token = g_strdup (credential->token);
  copy->peer_address = g_strdup (credential->peer_address);
  return copy;
}

/**
 * zlt_credential_free:
 * @credential: (nullable) (transfer full): a credential
 *
 * Wipes and frees @credential; %NULL is ignored.
 */
void
zlt_credential_free (ZltCredential *credential)
{
  if (credential == NULL)
    return;
  g_free (credential->key_id);
  g_free (credential->peer_address);
  if (credential->token != NULL)
    {
      explicit_bzero (credential->token, strlen (credential->token));
      g_free (credential->token);
    }
  explicit_bzero (credential, sizeof (ZltCredential));
  g_free (credential);
}

/**
 * zlt_credential_get_kind:
 * @credential: a credential
 *
 * Returns: how the agent proved its token
 */
ZltCredentialKind
zlt_credential_get_kind (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, ZLT_CREDENTIAL_KIND_TOKEN);

  return credential->kind;
}

/**
 * zlt_credential_get_lookup_key:
 * @credential: a credential
 *
 * The key to find the stored token by: the key id, the first %ZLT_KEY_ID_LEN (16)
 * lowercase hex digits of the token's SHA-256 (zlt_token_key_id()). For a v1 or bearer
 * credential it is computed from the token; for a v2 challenge one it is what the agent
 * sent, so it is only a hint: never trust it beyond a lookup, and accept the credential
 * only when zlt_credential_matches_hash() says so.
 *
 * Returns: the key id
 */
const char *
zlt_credential_get_lookup_key (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  return credential->key_id;
}

/**
 * zlt_credential_get_client_id:
 * @credential: a credential
 *
 * Returns: (nullable): the client id of a v2 credential (proof or bearer), %NULL for a
 *   v1 one
 */
const ZltUuid *
zlt_credential_get_client_id (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  if (credential->kind == ZLT_CREDENTIAL_KIND_TOKEN)
    return NULL;
  return &credential->client_id;
}

/**
 * zlt_credential_get_nonce:
 * @credential: a credential
 *
 * Returns: (nullable) (array fixed-size=32): the nonce of a v2 credential, %NULL for a v1 one
 */
const guint8 *
zlt_credential_get_nonce (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  if (credential->kind == ZLT_CREDENTIAL_KIND_TOKEN)
    return NULL;
  return credential->nonce;
}

/**
 * zlt_credential_get_token:
 * Returns: (nullable): the raw token of a bearer credential, NULL for the other kinds
 *   (a v1 credential keeps only the token's hash). A secret: never log it, and send it
 *   on only over a channel as safe as the one it came by.
 */
const char *
zlt_credential_get_token (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  return credential->kind == ZLT_CREDENTIAL_KIND_BEARER ? credential->token : NULL;
}

/**
 * zlt_credential_get_token_hash:
 * Returns: (nullable): the token's SHA-256 (32 bytes) for a v1 or bearer credential,
 *   NULL for a proof (which only proves it)
 */
const guint8 *
zlt_credential_get_token_hash (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  return credential->kind == ZLT_CREDENTIAL_KIND_PROOF ? NULL : credential->token_hash;
}

/**
 * zlt_credential_get_peer_address:
 * Returns: (nullable): the address the credential came from ("203.0.113.7:51000",
 *   "[2001:db8::1]:443"), as the server saw it, or NULL when it did not say
 */
const char *
zlt_credential_get_peer_address (const ZltCredential *credential)
{
  g_return_val_if_fail (credential != NULL, NULL);

  return credential->peer_address;
}

/**
 * zlt_credential_set_peer_address:
 * @peer_address: (nullable): where the credential came from
 *
 * For the server: validators may log the address or send it on (a web hook).
 */
void
zlt_credential_set_peer_address (ZltCredential *credential, const char *peer_address)
{
  g_return_if_fail (credential != NULL);

  g_free (credential->peer_address);
  credential->peer_address = g_strdup (peer_address);
}

/**
 * zlt_credential_matches_hash:
 * @credential: a credential
 * @hash: (array fixed-size=32): a stored SHA-256 of a token
 *
 * Checks the credential against @hash in constant time: a v1 or bearer token's hash
 * against it, or a v2 proof against HMAC(@hash, nonce, client id).
 *
 * Returns: %TRUE when the credential proves the token behind @hash
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
    case ZLT_CREDENTIAL_KIND_BEARER:
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
