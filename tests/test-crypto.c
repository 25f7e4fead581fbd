/* test-crypto.c: token hashes, HMAC proofs, constant-time comparison, randomness
 *
 * The known answers for the v2 derivations were computed independently with Python's
 * hashlib/hmac from the layouts of PROTOCOL-v2.md §2-4.
 */
#include "config.h"

#include <string.h>

#include "zlayer-tunnel.h"

#define CLIENT_ID "550e8400-e29b-41d4-a716-446655440000"
#define TUNNEL_ID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define CONNECTION_ID "123e4567-e89b-12d3-a456-426614174000"

static void
assert_hex (const guint8 *data, gsize len, const char *expected)
{
  g_autofree char *hex = zlt_hex_encode (data, len);
  g_assert_cmpstr (hex, ==, expected);
}

/* nonce 00 01 .. 1f */
static void
fixed_nonce (guint8 nonce[ZLT_NONCE_SIZE])
{
  for (guint i = 0; i < ZLT_NONCE_SIZE; i++)
    nonce[i] = (guint8) i;
}

static void
test_crypto_token_hash (void)
{
  g_autofree char *hex = zlt_token_hash_hex ("test");
  g_autofree char *empty = zlt_token_hash_hex ("");
  guint8 raw[ZLT_HASH_SIZE];
  guint8 parsed[ZLT_HASH_SIZE];

  /* PROTOCOL.md §1.4 */
  g_assert_cmpstr (hex, ==, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  g_assert_cmpstr (empty, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  zlt_token_hash_raw ("test", raw);
  assert_hex (raw, sizeof raw, hex);
  g_assert_true (zlt_hash_from_hex (hex, parsed));
  g_assert_cmpmem (parsed, sizeof parsed, raw, sizeof raw);
}

static void
test_crypto_hash_from_hex (void)
{
  static const char upper[] = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
  guint8 out[ZLT_HASH_SIZE];
  guint8 raw[ZLT_HASH_SIZE];
  g_autofree char *too_long = g_strconcat (upper, "0", NULL);
  g_autofree char *bad_digit = g_strdup (upper);

  zlt_token_hash_raw ("test", raw);
  g_assert_true (zlt_hash_from_hex (upper, out));
  g_assert_cmpmem (out, sizeof out, raw, sizeof raw);

  memset (out, 0xaa, sizeof out);
  g_assert_false (zlt_hash_from_hex (NULL, out));
  g_assert_false (zlt_hash_from_hex ("", out));
  g_assert_false (zlt_hash_from_hex ("9f86", out));
  g_assert_false (zlt_hash_from_hex (too_long, out));
  bad_digit[63] = 'g';
  g_assert_false (zlt_hash_from_hex (bad_digit, out));
  bad_digit[63] = '8';
  bad_digit[10] = ' ';
  g_assert_false (zlt_hash_from_hex (bad_digit, out));
  /* a failed parse leaves out alone */
  for (guint i = 0; i < sizeof out; i++)
    g_assert_cmpuint (out[i], ==, 0xaa);
}

static void
test_crypto_key_id (void)
{
  g_autofree char *id = zlt_token_key_id ("test");
  g_autofree char *id2 = zlt_token_key_id ("tun_abc123");

  g_assert_cmpstr (id, ==, "9f86d081884c7d65");
  g_assert_cmpuint (strlen (id), ==, ZLT_KEY_ID_LEN);
  g_assert_cmpstr (id2, ==, "04775a4d3e9f5a05");
}

static void
test_crypto_secure_equal (void)
{
  static const guint8 a[] = { 1, 2, 3, 4 };
  static const guint8 b[] = { 1, 2, 3, 4 };
  static const guint8 first[] = { 0, 2, 3, 4 };
  static const guint8 last[] = { 1, 2, 3, 5 };
  static const guint8 longer[] = { 1, 2, 3, 4, 5 };

  g_assert_true (zlt_secure_equal (a, 4, b, 4));
  g_assert_false (zlt_secure_equal (a, 4, first, 4));
  g_assert_false (zlt_secure_equal (a, 4, last, 4));
  /* a common prefix is no match */
  g_assert_false (zlt_secure_equal (a, 4, longer, 5));
  g_assert_false (zlt_secure_equal (longer, 5, a, 4));
  g_assert_false (zlt_secure_equal (a, 4, NULL, 0));
  g_assert_false (zlt_secure_equal (NULL, 0, a, 4));
  g_assert_true (zlt_secure_equal (NULL, 0, NULL, 0));
  /* every bit counts */
  for (guint i = 0; i < 4 * 8; i++)
    {
      guint8 c[4];
      memcpy (c, a, 4);
      c[i / 8] ^= (guint8) (1u << (i % 8));
      g_assert_false (zlt_secure_equal (a, 4, c, 4));
    }

  g_assert_true (zlt_secure_str_equal ("secret", "secret"));
  g_assert_true (zlt_secure_str_equal ("", ""));
  g_assert_false (zlt_secure_str_equal ("secret", "secreT"));
  g_assert_false (zlt_secure_str_equal ("secret", "secret2"));
  g_assert_false (zlt_secure_str_equal ("secret", ""));
  g_assert_false (zlt_secure_str_equal (NULL, "secret"));
  g_assert_false (zlt_secure_str_equal ("secret", NULL));
  g_assert_false (zlt_secure_str_equal (NULL, NULL));
}

static void
test_crypto_hmac_rfc4231 (void)
{
  static const char key[] = "Jefe";
  static const char data[] = "what do ya want for nothing?";
  guint8 out[ZLT_HASH_SIZE];
  guint8 split[ZLT_HASH_SIZE];

  /* RFC 4231 test case 2 */
  zlt_hmac_sha256 ((const guint8 *) key, strlen (key), out, data, strlen (data), NULL);
  assert_hex (out, sizeof out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  /* the parts are concatenated, wherever they are split */
  zlt_hmac_sha256 ((const guint8 *) key, strlen (key), split, data, (gsize) 4, data + 4, (gsize) 0,
                   data + 4, strlen (data) - 4, NULL);
  g_assert_cmpmem (split, sizeof split, out, sizeof out);

  /* RFC 4231 test case 1: 20 bytes of 0x0b, "Hi There" */
  {
    guint8 k[20];
    memset (k, 0x0b, sizeof k);
    zlt_hmac_sha256 (k, sizeof k, out, "Hi There", (gsize) 8, NULL);
    assert_hex (out, sizeof out,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  }

  /* RFC 4231 test case 6: a key longer than the block size */
  {
    static const char msg6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    guint8 k[131];
    memset (k, 0xaa, sizeof k);
    zlt_hmac_sha256 (k, sizeof k, out, msg6, strlen (msg6), NULL);
    assert_hex (out, sizeof out,
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  }
}

static void
test_crypto_auth_proof (void)
{
  guint8 hash[ZLT_HASH_SIZE], nonce[ZLT_NONCE_SIZE];
  guint8 out[ZLT_HASH_SIZE], again[ZLT_HASH_SIZE], other[ZLT_HASH_SIZE];
  ZltUuid client_id, client_id2;

  zlt_token_hash_raw ("test", hash);
  fixed_nonce (nonce);
  g_assert_true (zlt_uuid_parse (CLIENT_ID, &client_id));

  zlt_auth_proof (hash, nonce, &client_id, out);
  assert_hex (out, sizeof out, "db8bdcd980f6a5982e000905f1a541c7f852e640c018d22766b1233888ce8b42");
  zlt_auth_proof (hash, nonce, &client_id, again);
  g_assert_cmpmem (out, sizeof out, again, sizeof again);

  /* every input matters */
  nonce[31] ^= 1;
  zlt_auth_proof (hash, nonce, &client_id, other);
  g_assert_false (zlt_secure_equal (out, sizeof out, other, sizeof other));
  nonce[31] ^= 1;

  client_id2 = client_id;
  client_id2.bytes[15] ^= 1;
  zlt_auth_proof (hash, nonce, &client_id2, other);
  g_assert_false (zlt_secure_equal (out, sizeof out, other, sizeof other));

  zlt_token_hash_raw ("test2", hash);
  zlt_auth_proof (hash, nonce, &client_id, other);
  g_assert_false (zlt_secure_equal (out, sizeof out, other, sizeof other));
}

/* The server's proof in AuthOk (PROTOCOL-v2.md §2), checked against Python's hmac:
 * hmac.new(sha256(b"test"), b"zlt-server-v2" + nonce + client_id + tunnel_id, sha256) */
static void
test_crypto_server_proof (void)
{
  guint8 hash[ZLT_HASH_SIZE], nonce[ZLT_NONCE_SIZE], proof[ZLT_HASH_SIZE];
  guint8 other[ZLT_HASH_SIZE];
  ZltUuid client_id, tunnel_id;

  zlt_token_hash_raw ("test", hash);
  fixed_nonce (nonce);
  g_assert_true (zlt_uuid_parse (CLIENT_ID, &client_id));
  g_assert_true (zlt_uuid_parse (TUNNEL_ID, &tunnel_id));
  zlt_server_proof (hash, nonce, &client_id, &tunnel_id, proof);
  assert_hex (proof, sizeof proof,
              "f431daee01e9ffa3a0d4bc68daeb4ae7a29ddf175bb42d8ae75bdd825445c496");
  /* not the agent's own proof replayed back, and bound to the tunnel id */
  zlt_auth_proof (hash, nonce, &client_id, other);
  g_assert_false (zlt_secure_equal (proof, sizeof proof, other, sizeof other));
  tunnel_id.bytes[15] ^= 1;
  zlt_server_proof (hash, nonce, &client_id, &tunnel_id, other);
  g_assert_false (zlt_secure_equal (proof, sizeof proof, other, sizeof other));
}

static void
test_crypto_session_key (void)
{
  guint8 hash[ZLT_HASH_SIZE], nonce[ZLT_NONCE_SIZE], proof[ZLT_HASH_SIZE];
  guint8 key[ZLT_HASH_SIZE], again[ZLT_HASH_SIZE], other[ZLT_HASH_SIZE];
  guint8 mac[ZLT_HASH_SIZE], mac2[ZLT_HASH_SIZE];
  ZltUuid tunnel_id, connection_id, id2;

  zlt_token_hash_raw ("test", hash);
  fixed_nonce (nonce);
  g_assert_true (zlt_uuid_parse (TUNNEL_ID, &tunnel_id));
  g_assert_true (zlt_uuid_parse (CONNECTION_ID, &connection_id));

  zlt_session_key (hash, nonce, &tunnel_id, key);
  assert_hex (key, sizeof key, "5ff80b2d68f9610ebb3115ec94b3b460c3bcdca056144b31b618819f9fcf11ed");
  zlt_session_key (hash, nonce, &tunnel_id, again);
  g_assert_cmpmem (key, sizeof key, again, sizeof again);

  /* a different label from the auth proof: the same inputs give another value */
  zlt_auth_proof (hash, nonce, &tunnel_id, proof);
  g_assert_false (zlt_secure_equal (key, sizeof key, proof, sizeof proof));

  nonce[0] ^= 0x80;
  zlt_session_key (hash, nonce, &tunnel_id, other);
  g_assert_false (zlt_secure_equal (key, sizeof key, other, sizeof other));
  nonce[0] ^= 0x80;
  id2 = tunnel_id;
  id2.bytes[0] ^= 1;
  zlt_session_key (hash, nonce, &id2, other);
  g_assert_false (zlt_secure_equal (key, sizeof key, other, sizeof other));

  /* data connection MAC */
  zlt_data_mac (key, &tunnel_id, &connection_id, mac);
  assert_hex (mac, sizeof mac, "f0721303f367f2409bad7cb9b8530d2def0454a868b30a487e8a005e188de2b4");
  zlt_data_mac (key, &tunnel_id, &connection_id, mac2);
  g_assert_cmpmem (mac, sizeof mac, mac2, sizeof mac2);
  zlt_data_mac (key, &connection_id, &tunnel_id, mac2);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, mac2, sizeof mac2));
  id2 = connection_id;
  id2.bytes[8] ^= 4;
  zlt_data_mac (key, &tunnel_id, &id2, mac2);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, mac2, sizeof mac2));
  zlt_data_mac (other, &tunnel_id, &connection_id, mac2);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, mac2, sizeof mac2));

  /* standby connection MAC (§8): the id is a big-endian u64 after the tunnel id */
  zlt_standby_mac (key, &tunnel_id, 1, mac);
  assert_hex (mac, sizeof mac, "6cb80cb7044dc763fe5b582259fde00c4cea543ffb610cce38e840d6f8ccd234");
  zlt_standby_mac (key, &tunnel_id, G_GUINT64_CONSTANT (0x0102030405060708), mac2);
  assert_hex (mac2, sizeof mac2,
              "93cae978bd0ba669cde39faa5370669088286e2c3cedae0da92656c712c3e64f");
  zlt_standby_mac (key, &tunnel_id, 2, mac2);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, mac2, sizeof mac2));
  zlt_standby_mac (key, &connection_id, 1, mac2);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, mac2, sizeof mac2));
  zlt_standby_mac (other, &tunnel_id, 1, mac2);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, mac2, sizeof mac2));
}

static void
test_crypto_standby_id (void)
{
  static const struct
  {
    const char *text;
    gboolean ok;
    guint64 value;
  } cases[] = {
    { "1", TRUE, 1 },
    { "42", TRUE, 42 },
    { "18446744073709551615", TRUE, G_MAXUINT64 },
    { "18446744073709551616", FALSE, 0 },
    { "99999999999999999999", FALSE, 0 },
    { "100000000000000000000", FALSE, 0 },
    { "0", FALSE, 0 },
    { "007", FALSE, 0 },
    { "", FALSE, 0 },
    { "+1", FALSE, 0 },
    { "-1", FALSE, 0 },
    { " 1", FALSE, 0 },
    { "1 ", FALSE, 0 },
    { "0x10", FALSE, 0 },
    { "1e3", FALSE, 0 },
    { "12a", FALSE, 0 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint64 value = 12345;

      g_assert_cmpint (zlt_standby_id_parse (cases[i].text, &value), ==, cases[i].ok);
      if (cases[i].ok)
        g_assert_cmpuint (value, ==, cases[i].value);
      else
        g_assert_cmpuint (value, ==, 12345);
    }
  {
    guint64 value = 0;
    g_assert_false (zlt_standby_id_parse (NULL, &value));
  }
}

static void
test_crypto_resume_mac (void)
{
  guint8 secret[ZLT_HASH_SIZE], nonce[ZLT_NONCE_SIZE];
  guint8 mac[ZLT_HASH_SIZE], again[ZLT_HASH_SIZE];

  for (guint i = 0; i < ZLT_HASH_SIZE; i++)
    secret[i] = (guint8) (0x40 + i);
  fixed_nonce (nonce);

  zlt_resume_mac (secret, nonce, mac);
  assert_hex (mac, sizeof mac, "1e09af337348cabdefb62bc6294b827a7126ded48c75ccb0fb22a4f588b633f4");
  zlt_resume_mac (secret, nonce, again);
  g_assert_cmpmem (mac, sizeof mac, again, sizeof again);
  secret[5] ^= 0x10;
  zlt_resume_mac (secret, nonce, again);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, again, sizeof again));
  secret[5] ^= 0x10;
  nonce[7] ^= 0x10;
  zlt_resume_mac (secret, nonce, again);
  g_assert_false (zlt_secure_equal (mac, sizeof mac, again, sizeof again));
}

static void
test_crypto_random (void)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint8 big[4096];
  guint zeros = 0;

  for (guint i = 0; i < 200; i++)
    {
      guint8 buf[ZLT_NONCE_SIZE];
      char *hex;

      zlt_random_bytes (buf, sizeof buf);
      hex = zlt_hex_encode (buf, sizeof buf);
      g_assert_false (g_hash_table_contains (seen, hex));
      g_hash_table_add (seen, hex);
    }

  /* a large request is filled all the way */
  memset (big, 0, sizeof big);
  zlt_random_bytes (big, sizeof big);
  for (guint i = 0; i < sizeof big; i++)
    zeros += big[i] == 0;
  g_assert_cmpuint (zeros, <, 100); /* expected 16 */

  zlt_random_bytes (NULL, 0);
}

static void
test_crypto_hex (void)
{
  guint8 data[256];
  guint8 back[ZLT_HASH_SIZE];
  g_autofree char *hex = NULL;
  g_autofree char *empty = zlt_hex_encode (NULL, 0);
  g_autofree char *short_hex = NULL;

  for (guint i = 0; i < sizeof data; i++)
    data[i] = (guint8) i;
  hex = zlt_hex_encode (data, sizeof data);
  g_assert_cmpuint (strlen (hex), ==, 512);
  g_assert_true (g_str_has_prefix (hex, "000102030405060708090a0b0c0d0e0f10"));
  g_assert_true (g_str_has_suffix (hex, "fafbfcfdfeff"));
  g_assert_cmpstr (empty, ==, "");

  /* round trip through the 32-byte parser */
  short_hex = zlt_hex_encode (data + 200, ZLT_HASH_SIZE);
  g_assert_true (zlt_hash_from_hex (short_hex, back));
  g_assert_cmpmem (back, sizeof back, data + 200, ZLT_HASH_SIZE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/crypto/token-hash", test_crypto_token_hash);
  g_test_add_func ("/crypto/hash-from-hex", test_crypto_hash_from_hex);
  g_test_add_func ("/crypto/key-id", test_crypto_key_id);
  g_test_add_func ("/crypto/secure-equal", test_crypto_secure_equal);
  g_test_add_func ("/crypto/hmac-rfc4231", test_crypto_hmac_rfc4231);
  g_test_add_func ("/crypto/auth-proof", test_crypto_auth_proof);
  g_test_add_func ("/crypto/server-proof", test_crypto_server_proof);
  g_test_add_func ("/crypto/session-key", test_crypto_session_key);
  g_test_add_func ("/crypto/resume-mac", test_crypto_resume_mac);
  g_test_add_func ("/crypto/standby-id", test_crypto_standby_id);
  g_test_add_func ("/crypto/random", test_crypto_random);
  g_test_add_func ("/crypto/hex", test_crypto_hex);
  return g_test_run ();
}
