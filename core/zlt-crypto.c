/* zlt-crypto.c: token hashing, HMAC proofs and constant-time comparison */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "zlt-crypto.h"

/* The message prefixes of PROTOCOL-v2.md §2-4, used without their NUL terminator. */
#define AUTH_LABEL "zlt-auth-v2"
#define SESSION_LABEL "zlt-session-v2"
#define DATA_LABEL "zlt-data-v2"
#define RESUME_LABEL "zlt-resume-v2"
#define STANDBY_LABEL "zlt-standby-v2"
#define SERVER_LABEL "zlt-server-v2"
#define LABEL_LEN(label) (sizeof (label) - 1)

static void
checksum_update (GChecksum *checksum, const guint8 *data, gsize len)
{
  /* g_checksum_update() takes a gssize where -1 means "NUL-terminated" */
  while (len > 0)
    {
      gsize chunk = MIN (len, (gsize) G_MAXINT32);
      g_checksum_update (checksum, data, (gssize) chunk);
      data += chunk;
      len -= chunk;
    }
}

static void
hmac_update (GHmac *hmac, const guint8 *data, gsize len)
{
  while (len > 0)
    {
      gsize chunk = MIN (len, (gsize) G_MAXINT32);
      g_hmac_update (hmac, data, (gssize) chunk);
      data += chunk;
      len -= chunk;
    }
}

/**
 * zlt_token_hash_raw:
 * @token: a token
 * @out: (out caller-allocates) (array fixed-size=32): its SHA-256
 *
 * The SHA-256 of the token's UTF-8 bytes as 32 raw bytes: what a v2 proof is keyed with.
 */
void
zlt_token_hash_raw (const char *token, guint8 out[ZLT_HASH_SIZE])
{
  g_autoptr (GChecksum) checksum = NULL;
  gsize digest_len = ZLT_HASH_SIZE;

  g_return_if_fail (token != NULL);
  g_return_if_fail (out != NULL);

  checksum = g_checksum_new (G_CHECKSUM_SHA256);
  checksum_update (checksum, (const guint8 *) token, strlen (token));
  g_checksum_get_digest (checksum, out, &digest_len);
}

/**
 * zlt_token_hash_hex:
 * @token: a token
 *
 * Returns: (transfer full): the lowercase hex SHA-256 of the token's UTF-8 bytes, as token
 *   files store it
 */
char *
zlt_token_hash_hex (const char *token)
{
  guint8 raw[ZLT_HASH_SIZE];
  char *hex;

  g_return_val_if_fail (token != NULL, NULL);

  zlt_token_hash_raw (token, raw);
  hex = zlt_hex_encode (raw, sizeof raw);
  explicit_bzero (raw, sizeof raw);
  return hex;
}

/**
 * zlt_hash_from_hex:
 * @hex: (nullable): 64 hex digits
 * @out: (out caller-allocates) (array fixed-size=32): the 32 bytes they stand for
 *
 * Returns: %TRUE when @hex is 64 hex digits (either case); %FALSE on anything else
 */
gboolean
zlt_hash_from_hex (const char *hex, guint8 out[ZLT_HASH_SIZE])
{
  guint8 tmp[ZLT_HASH_SIZE];

  g_return_val_if_fail (out != NULL, FALSE);

  if (hex == NULL)
    return FALSE;
  for (gsize i = 0; i < ZLT_HASH_SIZE; i++)
    {
      int hi, lo;

      /* a NUL in hex[2i] stops before hex[2i+1] is read */
      hi = g_ascii_xdigit_value (hex[2 * i]);
      if (hi < 0)
        goto fail;
      lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      if (lo < 0)
        goto fail;
      tmp[i] = (guint8) ((hi << 4) | lo);
    }
  if (hex[ZLT_HASH_HEX_LEN] != '\0')
    goto fail;
  memcpy (out, tmp, ZLT_HASH_SIZE);
  explicit_bzero (tmp, sizeof tmp);
  return TRUE;

fail:
  explicit_bzero (tmp, sizeof tmp);
  return FALSE;
}

/**
 * zlt_token_key_id:
 * @token: a token
 *
 * The key id a v2 agent sends in place of the token (PROTOCOL-v2.md §2): the first
 * %ZLT_KEY_ID_LEN hex digits of the token's SHA-256. A validator finds the stored token
 * by it; see zlt_credential_get_lookup_key().
 *
 * Returns: (transfer full): the key id
 */
char *
zlt_token_key_id (const char *token)
{
  g_autofree char *hex = NULL;
  char *key_id;

  g_return_val_if_fail (token != NULL, NULL);

  hex = zlt_token_hash_hex (token);
  key_id = g_strndup (hex, ZLT_KEY_ID_LEN);
  explicit_bzero (hex, ZLT_HASH_HEX_LEN);
  return key_id;
}

/**
 * zlt_secure_equal:
 * @a: (array length=a_len) (nullable): bytes
 * @a_len: the length of @a
 * @b: (array length=b_len) (nullable): other bytes
 * @b_len: the length of @b
 *
 * Compares in time that depends only on the lengths, never on the contents.
 *
 * Returns: %TRUE when @a and @b hold the same bytes
 */
gboolean
zlt_secure_equal (const guint8 *a, gsize a_len, const guint8 *b, gsize b_len)
{
  guint8 diff = 0;

  g_return_val_if_fail (a != NULL || a_len == 0, FALSE);
  g_return_val_if_fail (b != NULL || b_len == 0, FALSE);

  /* Always walks all of a, without an early exit: the time depends on a_len (and on
   * whether the lengths match) only. On a length mismatch a is compared with itself,
   * so nothing about the contents of either buffer shows. */
  for (gsize i = 0; i < a_len; i++)
    {
      const guint8 other = (a_len == b_len) ? b[i] : a[i];
      diff |= (guint8) (a[i] ^ other);
    }
  return (diff | (guint8) (a_len != b_len)) == 0;
}

/**
 * zlt_secure_str_equal:
 * @a: (nullable): a string
 * @b: (nullable): another string
 *
 * zlt_secure_equal() for strings.
 *
 * Returns: %TRUE when @a and @b are equal (two %NULL strings are not)
 */
gboolean
zlt_secure_str_equal (const char *a, const char *b)
{
  /* a missing secret never matches, not even another missing one */
  if (a == NULL || b == NULL)
    return FALSE;
  return zlt_secure_equal ((const guint8 *) a, strlen (a), (const guint8 *) b, strlen (b));
}

static void
hmac_sha256_va (const guint8 *key, gsize key_len, guint8 out[ZLT_HASH_SIZE], const void *first_data,
                gsize first_len, va_list args)
{
  static const guint8 empty_key[1] = { 0 };
  g_autoptr (GHmac) hmac = NULL;
  gsize digest_len = ZLT_HASH_SIZE;
  const void *data = first_data;
  gsize len = first_len;

  hmac = g_hmac_new (G_CHECKSUM_SHA256, key_len > 0 ? key : empty_key, key_len);
  while (data != NULL)
    {
      hmac_update (hmac, data, len);
      data = va_arg (args, const void *);
      if (data != NULL)
        len = va_arg (args, gsize);
    }
  g_hmac_get_digest (hmac, out, &digest_len);
}

/**
 * zlt_hmac_sha256:
 * @key: (array length=key_len): the key
 * @key_len: the length of @key
 * @out: (out caller-allocates) (array fixed-size=32): the MAC
 * @first_data: the first part
 * @first_len: its length
 * @...: more pairs of data and length, then %NULL
 *
 * HMAC-SHA256 over the concatenation of the given parts.
 */
void
zlt_hmac_sha256 (const guint8 *key, gsize key_len, guint8 out[ZLT_HASH_SIZE],
                 const void *first_data, gsize first_len, ...)
{
  va_list args;

  g_return_if_fail (key != NULL || key_len == 0);
  g_return_if_fail (out != NULL);

  va_start (args, first_len);
  hmac_sha256_va (key, key_len, out, first_data, first_len, args);
  va_end (args);
}

/**
 * zlt_auth_proof:
 * @token_hash: (array fixed-size=32): the token's SHA-256
 * @nonce: (array fixed-size=32): the server's nonce
 * @client_id: the agent's client id
 * @out: (out caller-allocates) (array fixed-size=32): the proof
 *
 * The proof of a v2 Auth (PROTOCOL-v2.md §2): HMAC(token hash, "zlt-auth-v2" ‖ nonce ‖
 * client id).
 */
void
zlt_auth_proof (const guint8 token_hash[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                const ZltUuid *client_id, guint8 out[ZLT_HASH_SIZE])
{
  g_return_if_fail (token_hash != NULL);
  g_return_if_fail (nonce != NULL);
  g_return_if_fail (client_id != NULL);
  g_return_if_fail (out != NULL);

  zlt_hmac_sha256 (token_hash, ZLT_HASH_SIZE, out, AUTH_LABEL, LABEL_LEN (AUTH_LABEL), nonce,
                   (gsize) ZLT_NONCE_SIZE, client_id->bytes, (gsize) ZLT_UUID_SIZE, NULL);
}

/**
 * zlt_server_proof:
 * @token_hash: (array fixed-size=32): the token's SHA-256
 * @nonce: (array fixed-size=32): the server's nonce
 * @client_id: the agent's client id
 * @tunnel_id: the tunnel the AuthOk gives
 * @out: (out caller-allocates) (array fixed-size=32): the proof
 *
 * The server's answer to the agent's proof: it shows the server holds the token's hash
 * (an impostor that merely relays or forges AuthOk cannot make it). It covers the
 * tunnel id, so the AuthOk that carries it cannot be replayed onto another tunnel.
 */
void
zlt_server_proof (const guint8 token_hash[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                  const ZltUuid *client_id, const ZltUuid *tunnel_id, guint8 out[ZLT_HASH_SIZE])
{
  g_return_if_fail (token_hash != NULL);
  g_return_if_fail (nonce != NULL);
  g_return_if_fail (client_id != NULL);
  g_return_if_fail (tunnel_id != NULL);
  g_return_if_fail (out != NULL);

  zlt_hmac_sha256 (token_hash, ZLT_HASH_SIZE, out, SERVER_LABEL, LABEL_LEN (SERVER_LABEL), nonce,
                   (gsize) ZLT_NONCE_SIZE, client_id->bytes, (gsize) ZLT_UUID_SIZE,
                   tunnel_id->bytes, (gsize) ZLT_UUID_SIZE, NULL);
}

/**
 * zlt_session_key:
 * @token_hash: (array fixed-size=32): the token's SHA-256
 * @nonce: (array fixed-size=32): the server's nonce
 * @tunnel_id: the tunnel
 * @out: (out caller-allocates) (array fixed-size=32): the session key
 *
 * The key data connections of a tunnel are proven with (PROTOCOL-v2.md §3).
 */
void
zlt_session_key (const guint8 token_hash[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                 const ZltUuid *tunnel_id, guint8 out[ZLT_HASH_SIZE])
{
  g_return_if_fail (token_hash != NULL);
  g_return_if_fail (nonce != NULL);
  g_return_if_fail (tunnel_id != NULL);
  g_return_if_fail (out != NULL);

  zlt_hmac_sha256 (token_hash, ZLT_HASH_SIZE, out, SESSION_LABEL, LABEL_LEN (SESSION_LABEL), nonce,
                   (gsize) ZLT_NONCE_SIZE, tunnel_id->bytes, (gsize) ZLT_UUID_SIZE, NULL);
}

/**
 * zlt_data_mac:
 * @session_key: (array fixed-size=32): the tunnel's session key
 * @tunnel_id: the tunnel
 * @connection_id: the public connection
 * @out: (out caller-allocates) (array fixed-size=32): the MAC
 *
 * The MAC of a data connection request (PROTOCOL-v2.md §3).
 */
void
zlt_data_mac (const guint8 session_key[ZLT_HASH_SIZE], const ZltUuid *tunnel_id,
              const ZltUuid *connection_id, guint8 out[ZLT_HASH_SIZE])
{
  g_return_if_fail (session_key != NULL);
  g_return_if_fail (tunnel_id != NULL);
  g_return_if_fail (connection_id != NULL);
  g_return_if_fail (out != NULL);

  zlt_hmac_sha256 (session_key, ZLT_HASH_SIZE, out, DATA_LABEL, LABEL_LEN (DATA_LABEL),
                   tunnel_id->bytes, (gsize) ZLT_UUID_SIZE, connection_id->bytes,
                   (gsize) ZLT_UUID_SIZE, NULL);
}

/**
 * zlt_standby_mac:
 * @session_key: (array fixed-size=32): the tunnel's session key
 * @tunnel_id: the tunnel
 * @standby_id: the agent's standby connection number
 * @out: (out caller-allocates) (array fixed-size=32): the MAC
 *
 * The MAC of a standby data connection (PROTOCOL-v2.md §8).
 */
void
zlt_standby_mac (const guint8 session_key[ZLT_HASH_SIZE], const ZltUuid *tunnel_id,
                 guint64 standby_id, guint8 out[ZLT_HASH_SIZE])
{
  guint8 id[8];

  g_return_if_fail (session_key != NULL);
  g_return_if_fail (tunnel_id != NULL);
  g_return_if_fail (out != NULL);

  for (guint i = 0; i < sizeof id; i++)
    id[i] = (guint8) (standby_id >> (8 * (sizeof id - 1 - i)));
  zlt_hmac_sha256 (session_key, ZLT_HASH_SIZE, out, STANDBY_LABEL, LABEL_LEN (STANDBY_LABEL),
                   tunnel_id->bytes, (gsize) ZLT_UUID_SIZE, id, sizeof id, NULL);
}

/**
 * zlt_standby_id_parse:
 * @text: (nullable): the X-Zlt-Standby header
 * @standby_id: (out): the number
 *
 * Returns: %TRUE when @text is a decimal number from 1 to 2^64-1 without leading zeros
 */
gboolean
zlt_standby_id_parse (const char *text, guint64 *standby_id)
{
  guint64 value = 0;
  gsize len = 0;

  g_return_val_if_fail (standby_id != NULL, FALSE);

  if (text == NULL || text[0] < '1' || text[0] > '9')
    return FALSE;
  for (const char *p = text; *p != '\0'; p++, len++)
    {
      guint digit;

      if (*p < '0' || *p > '9' || len >= 20)
        return FALSE;
      digit = (guint) (*p - '0');
      if (value > (G_MAXUINT64 - digit) / 10)
        return FALSE;
      value = value * 10 + digit;
    }
  *standby_id = value;
  return TRUE;
}

/**
 * zlt_resume_mac:
 * @resume_secret: (array fixed-size=32): the secret of the tunnel's last AuthOk
 * @nonce: (array fixed-size=32): the server's nonce
 * @out: (out caller-allocates) (array fixed-size=32): the MAC
 *
 * The MAC of a RESUME tag (PROTOCOL-v2.md §4).
 */
void
zlt_resume_mac (const guint8 resume_secret[ZLT_HASH_SIZE], const guint8 nonce[ZLT_NONCE_SIZE],
                guint8 out[ZLT_HASH_SIZE])
{
  g_return_if_fail (resume_secret != NULL);
  g_return_if_fail (nonce != NULL);
  g_return_if_fail (out != NULL);

  zlt_hmac_sha256 (resume_secret, ZLT_HASH_SIZE, out, RESUME_LABEL, LABEL_LEN (RESUME_LABEL), nonce,
                   (gsize) ZLT_NONCE_SIZE, NULL);
}

static gboolean
read_dev_urandom (guint8 *buf, gsize len)
{
  int fd;

  do
    fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return FALSE;
  while (len > 0)
    {
      ssize_t n = read (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          close (fd);
          return FALSE;
        }
      buf += n;
      len -= (gsize) n;
    }
  close (fd);
  return TRUE;
}

/**
 * zlt_random_bytes:
 * @buf: (out caller-allocates) (array length=len): where the bytes go
 * @len: how many
 *
 * Fills @buf from the kernel's CSPRNG (getrandom). Never falls back to anything weaker:
 * a process that cannot read random bytes aborts.
 */
void
zlt_random_bytes (guint8 *buf, gsize len)
{
  gsize done = 0;

  g_return_if_fail (buf != NULL || len == 0);

  while (done < len)
    {
      /* flags 0: blocks only until the pool is initialised, then never; reads of more
       * than 256 bytes may come back short when a signal arrives */
      ssize_t n = getrandom (buf + done, len - done, 0);
      if (n > 0)
        {
          done += (gsize) n;
          continue;
        }
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0 && errno == ENOSYS && read_dev_urandom (buf + done, len - done))
        return;
      /* Nonces, secrets and ids made from anything weaker would be a silent security
       * hole, and the callers have no way to go on without random bytes. */
      g_critical ("cannot read random bytes from the kernel: %s", g_strerror (errno));
      abort ();
    }
}

/**
 * zlt_hex_encode:
 * @data: (array length=len) (nullable): bytes
 * @len: the length of @data
 *
 * Returns: (transfer full): the lowercase hex of @data
 */
char *
zlt_hex_encode (const guint8 *data, gsize len)
{
  static const char hex[] = "0123456789abcdef";
  char *out;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (len <= (G_MAXSIZE - 1) / 2, NULL);

  out = g_malloc (len * 2 + 1);
  for (gsize i = 0; i < len; i++)
    {
      out[2 * i] = hex[data[i] >> 4];
      out[2 * i + 1] = hex[data[i] & 0xf];
    }
  out[len * 2] = '\0';
  return out;
}
