/* zlt-crypto.h: token hashing, HMAC proofs and constant-time comparison */
#pragma once

#include <glib.h>

#include "zlt-version.h"
#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_HASH_SIZE 32 /* SHA-256 */
#define ZLT_HASH_HEX_LEN 64
#define ZLT_NONCE_SIZE 32
#define ZLT_KEY_ID_LEN 16 /* hex digits of the token hash that name a token */

/* Lowercase hex SHA-256 of the token's UTF-8 bytes (what v1 servers store). */
ZLT_AVAILABLE_IN_ALL
char *zlt_token_hash_hex (const char *token);
/* The same hash as 32 raw bytes. */
ZLT_AVAILABLE_IN_ALL
void zlt_token_hash_raw (const char *token, guint8 out[ZLT_HASH_SIZE]);
/* Parses 64 hex digits into 32 bytes; FALSE on anything else. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_hash_from_hex (const char *hex, guint8 out[ZLT_HASH_SIZE]);
/* The key id a v2 agent sends instead of the token (PROTOCOL-v2.md §2). */
ZLT_AVAILABLE_IN_ALL
char *zlt_token_key_id (const char *token);

/* Compares in time that depends only on the lengths, never on the contents. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_secure_equal (const guint8 *a, gsize a_len, const guint8 *b, gsize b_len);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_secure_str_equal (const char *a, const char *b);

/* HMAC-SHA256 over the concatenation of the given parts (pairs of data, length,
 * terminated by NULL). */
ZLT_AVAILABLE_IN_ALL
void zlt_hmac_sha256 (const guint8 *key, gsize key_len, guint8 out[ZLT_HASH_SIZE],
                      const void *first_data, gsize first_len, ...) G_GNUC_NULL_TERMINATED;

/* PROTOCOL-v2.md §2-4, every one of them from the token's raw hash. */
ZLT_AVAILABLE_IN_ALL
void zlt_auth_proof (const guint8 token_hash[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                     const ZltUuid *client_id, guint8 out[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_server_proof (const guint8 token_hash[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                       const ZltUuid *client_id, const ZltUuid *tunnel_id,
                       guint8 out[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_session_key (const guint8 token_hash[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                      const ZltUuid *tunnel_id, guint8 out[ZLT_HASH_SIZE]);
ZLT_AVAILABLE_IN_ALL
void zlt_data_mac (const guint8 session_key[ZLT_HASH_SIZE], const ZltUuid *tunnel_id,
                   const ZltUuid *connection_id, guint8 out[ZLT_HASH_SIZE]);
/* A standby data connection's MAC (PROTOCOL-v2.md §8): @standby_id is the agent's
 * sequence number of the connection in this session, as a big-endian u64. */
ZLT_AVAILABLE_IN_ALL
void zlt_standby_mac (const guint8 session_key[ZLT_HASH_SIZE], const ZltUuid *tunnel_id,
                      guint64 standby_id, guint8 out[ZLT_HASH_SIZE]);
/* The X-Zlt-Standby header: a decimal number from 1 to 2^64-1 without leading zeros.
 * FALSE for anything else. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_standby_id_parse (const char *text, guint64 *standby_id);
ZLT_AVAILABLE_IN_ALL
void zlt_resume_mac (const guint8 resume_secret[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                     guint8 out[ZLT_HASH_SIZE]);

/* Fills buf with bytes from the kernel's CSPRNG (getrandom). */
ZLT_AVAILABLE_IN_ALL
void zlt_random_bytes (guint8 *buf, gsize len);
/* Lowercase hex of len bytes. */
ZLT_AVAILABLE_IN_ALL
char *zlt_hex_encode (const guint8 *data, gsize len);

G_END_DECLS
