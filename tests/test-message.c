/* test-message.c: the control channel's wire codec, byte for byte */
#include "config.h"

#include <string.h>

#include "zlt-proxy-header.h"

#include "zlayer-tunnel.h"

#define CLIENT_ID "550e8400-e29b-41d4-a716-446655440000"
#define TUNNEL_ID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define SERVICE_ID "123e4567-e89b-12d3-a456-426614174000"
#define CONNECTION_ID "f47ac10b-58cc-4372-a567-0e02b2c3d479"

static const ZltMessageType all_types[] = {
  ZLT_MESSAGE_AUTH,       ZLT_MESSAGE_AUTH_OK,       ZLT_MESSAGE_AUTH_FAIL,
  ZLT_MESSAGE_REGISTER,   ZLT_MESSAGE_REGISTER_OK,   ZLT_MESSAGE_REGISTER_FAIL,
  ZLT_MESSAGE_CONNECT,    ZLT_MESSAGE_CONNECT_ACK,   ZLT_MESSAGE_CONNECT_FAIL,
  ZLT_MESSAGE_HEARTBEAT,  ZLT_MESSAGE_HEARTBEAT_ACK, ZLT_MESSAGE_UNREGISTER,
  ZLT_MESSAGE_DISCONNECT,
};

/* ---- helpers ----------------------------------------------------------------------- */

static ZltUuid
uuid (const char *str)
{
  ZltUuid u;

  g_assert_true (zlt_uuid_parse (str, &u));
  return u;
}

/* "01 00 0A" -> bytes; whitespace ignored */
static GByteArray *
from_hex (const char *hex)
{
  GByteArray *out = g_byte_array_new ();

  for (const char *p = hex; *p != '\0';)
    {
      guint8 b;
      if (g_ascii_isspace (*p))
        {
          p++;
          continue;
        }
      g_assert_cmpint (g_ascii_xdigit_value (p[0]), >=, 0);
      g_assert_cmpint (g_ascii_xdigit_value (p[1]), >=, 0);
      b = (guint8) ((g_ascii_xdigit_value (p[0]) << 4) | g_ascii_xdigit_value (p[1]));
      g_byte_array_append (out, &b, 1);
      p += 2;
    }
  return out;
}

static GByteArray *
encode (const ZltMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) out = g_byte_array_new ();

  g_assert_true (zlt_message_encode (msg, out, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&out);
}

/* decodes a whole buffer that must hold exactly one frame */
static ZltMessage *
decode_one (const guint8 *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  gsize consumed = 12345;
  ZltMessage *msg = zlt_message_decode (data, len, &consumed, &error);

  g_assert_no_error (error);
  g_assert_nonnull (msg);
  g_assert_cmpuint (consumed, ==, len);
  return msg;
}

static void
assert_decode_error (const guint8 *data, gsize len, gint code)
{
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *copy = g_memdup2 (data, len); /* exact size, for valgrind */
  gsize consumed = 12345;
  ZltMessage *msg = zlt_message_decode (copy, len, &consumed, &error);

  g_assert_null (msg);
  g_assert_error (error, ZLT_ERROR, code);
  g_assert_nonnull (error->message);
  g_assert_cmpuint (consumed, ==, 0);
}

static void
assert_decode_error_hex (const char *hex, gint code)
{
  g_autoptr (GByteArray) b = from_hex (hex);

  assert_decode_error (b->data, b->len, code);
}

/* rewrites the header's length after the payload was edited */
static void
fix_length (GByteArray *frame)
{
  guint32 l = frame->len - ZLT_HEADER_SIZE;

  frame->data[1] = (guint8) (l >> 24);
  frame->data[2] = (guint8) (l >> 16);
  frame->data[3] = (guint8) (l >> 8);
  frame->data[4] = (guint8) l;
}

static void
append (GByteArray *a, const char *hex)
{
  g_autoptr (GByteArray) b = from_hex (hex);

  g_byte_array_append (a, b->data, b->len);
}

static void
assert_ext_equal (const ZltMessageExt *a, const ZltMessageExt *b)
{
  g_assert_cmpuint (a->present, ==, b->present);
  if (a->present & ZLT_EXT_VERSION)
    g_assert_cmpuint (a->version, ==, b->version);
  if (a->present & ZLT_EXT_CAPS)
    g_assert_cmpuint (a->caps, ==, b->caps);
  if (a->present & ZLT_EXT_PROOF)
    g_assert_cmpmem (a->proof, ZLT_HASH_SIZE, b->proof, ZLT_HASH_SIZE);
  if (a->present & ZLT_EXT_RESUME)
    {
      g_assert_true (zlt_uuid_equal (&a->resume_tunnel_id, &b->resume_tunnel_id));
      g_assert_cmpmem (a->resume_mac, ZLT_HASH_SIZE, b->resume_mac, ZLT_HASH_SIZE);
    }
  if (a->present & ZLT_EXT_RESUME_SECRET)
    g_assert_cmpmem (a->resume_secret, ZLT_HASH_SIZE, b->resume_secret, ZLT_HASH_SIZE);
  if (a->present & ZLT_EXT_HEARTBEAT_MS)
    g_assert_cmpuint (a->heartbeat_ms, ==, b->heartbeat_ms);
  if (a->present & ZLT_EXT_RESUMED)
    g_assert_cmpuint (a->resumed, ==, b->resumed);
  if (a->present & ZLT_EXT_ASSIGNED_PORT)
    g_assert_cmpuint (a->assigned_port, ==, b->assigned_port);
  if (a->present & ZLT_EXT_EXPOSE)
    g_assert_cmpuint (a->expose, ==, b->expose);
  if (a->present & ZLT_EXT_CODE)
    g_assert_cmpuint (a->code, ==, b->code);
  if (a->present & ZLT_EXT_SERVER_PROOF)
    g_assert_cmpmem (a->server_proof, ZLT_HASH_SIZE, b->server_proof, ZLT_HASH_SIZE);
  if (a->present & ZLT_EXT_ACCESS_TTL)
    g_assert_cmpuint (a->access_ttl, ==, b->access_ttl);
  if (a->present & ZLT_EXT_MAX_CONNECTIONS)
    g_assert_cmpuint (a->max_connections, ==, b->max_connections);
  if (a->present & ZLT_EXT_IDLE_TIMEOUT)
    g_assert_cmpuint (a->idle_timeout, ==, b->idle_timeout);
  if (a->present & ZLT_EXT_TIMESTAMP_US)
    g_assert_cmpuint (a->timestamp_us, ==, b->timestamp_us);
  if (a->present & ZLT_EXT_STANDBY_MAX)
    g_assert_cmpuint (a->standby_max, ==, b->standby_max);
  if (a->present & ZLT_EXT_ADDRESSES)
    g_assert_true (zlt_addresses_equal (&a->addresses, &b->addresses));
}

/* NULL and "" are the same on the wire */
static void
assert_str_equal (const char *a, const char *b)
{
  g_assert_cmpstr (a != NULL ? a : "", ==, b != NULL ? b : "");
}

/* compares the fields the type carries */
static void
assert_message_equal (const ZltMessage *a, const ZltMessage *b)
{
  g_assert_cmpuint (a->type, ==, b->type);
  switch (a->type)
    {
    case ZLT_MESSAGE_AUTH:
      assert_str_equal (a->token, b->token);
      g_assert_true (zlt_uuid_equal (&a->client_id, &b->client_id));
      break;
    case ZLT_MESSAGE_AUTH_OK:
      g_assert_true (zlt_uuid_equal (&a->tunnel_id, &b->tunnel_id));
      break;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      assert_str_equal (a->reason, b->reason);
      break;
    case ZLT_MESSAGE_REGISTER:
      assert_str_equal (a->name, b->name);
      g_assert_cmpint (a->protocol, ==, b->protocol);
      g_assert_cmpuint (a->local_port, ==, b->local_port);
      g_assert_cmpuint (a->remote_port, ==, b->remote_port);
      break;
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_UNREGISTER:
      g_assert_true (zlt_uuid_equal (&a->service_id, &b->service_id));
      break;
    case ZLT_MESSAGE_CONNECT:
      g_assert_true (zlt_uuid_equal (&a->service_id, &b->service_id));
      g_assert_true (zlt_uuid_equal (&a->connection_id, &b->connection_id));
      assert_str_equal (a->client_addr, b->client_addr);
      break;
    case ZLT_MESSAGE_CONNECT_ACK:
      g_assert_true (zlt_uuid_equal (&a->connection_id, &b->connection_id));
      break;
    case ZLT_MESSAGE_CONNECT_FAIL:
      g_assert_true (zlt_uuid_equal (&a->connection_id, &b->connection_id));
      assert_str_equal (a->reason, b->reason);
      break;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      g_assert_cmpuint (a->timestamp, ==, b->timestamp);
      break;
    default:
      g_assert_not_reached ();
    }
  g_assert_cmpint (!!a->has_ext, ==, !!b->has_ext);
  assert_ext_equal (&a->ext, &b->ext);
}

/* a message of every type with non-trivial fields */
static ZltMessage *
sample (ZltMessageType type)
{
  ZltUuid a = uuid (SERVICE_ID);
  ZltUuid b = uuid (CONNECTION_ID);

  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
      return zlt_message_new_auth ("tun_abc123", &a);
    case ZLT_MESSAGE_AUTH_OK:
      return zlt_message_new_auth_ok (&a);
    case ZLT_MESSAGE_AUTH_FAIL:
      return zlt_message_new_auth_fail ("invalid token");
    case ZLT_MESSAGE_REGISTER:
      return zlt_message_new_register ("wëb", ZLT_PROTOCOL_UDP, 65535, 1);
    case ZLT_MESSAGE_REGISTER_OK:
      return zlt_message_new_register_ok (&a);
    case ZLT_MESSAGE_REGISTER_FAIL:
      return zlt_message_new_register_fail ("port 2222 in use");
    case ZLT_MESSAGE_CONNECT:
      return zlt_message_new_connect (&a, &b, "[::1]:51234");
    case ZLT_MESSAGE_CONNECT_ACK:
      return zlt_message_new_connect_ack (&b);
    case ZLT_MESSAGE_CONNECT_FAIL:
      return zlt_message_new_connect_fail (&b, "connection refused");
    case ZLT_MESSAGE_HEARTBEAT:
      return zlt_message_new_heartbeat (G_GUINT64_CONSTANT (0x0102030405060708));
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      return zlt_message_new_heartbeat_ack (G_MAXUINT64);
    case ZLT_MESSAGE_UNREGISTER:
      return zlt_message_new_unregister (&a);
    case ZLT_MESSAGE_DISCONNECT:
      return zlt_message_new_disconnect ("server shutting down");
    default:
      g_assert_not_reached ();
    }
  return NULL;
}

static guint32
allowed_tags (ZltMessageType type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
      return ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_PROOF | ZLT_EXT_RESUME | ZLT_EXT_ACCESS_TTL;
    case ZLT_MESSAGE_AUTH_OK:
      return ZLT_EXT_VERSION | ZLT_EXT_CAPS | ZLT_EXT_RESUME_SECRET | ZLT_EXT_HEARTBEAT_MS
             | ZLT_EXT_RESUMED | ZLT_EXT_SERVER_PROOF | ZLT_EXT_ACCESS_TTL | ZLT_EXT_STANDBY_MAX;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      return ZLT_EXT_CODE;
    case ZLT_MESSAGE_REGISTER:
      return ZLT_EXT_EXPOSE | ZLT_EXT_MAX_CONNECTIONS | ZLT_EXT_IDLE_TIMEOUT;
    case ZLT_MESSAGE_REGISTER_OK:
      return ZLT_EXT_ASSIGNED_PORT;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      return ZLT_EXT_TIMESTAMP_US;
    case ZLT_MESSAGE_CONNECT:
      return ZLT_EXT_ADDRESSES;
    default:
      return 0;
    }
}

/* sets one tag (by flag) with a distinctive value */
static void
set_tag (ZltMessage *msg, guint32 flag)
{
  guint8 h[ZLT_HASH_SIZE];
  ZltUuid t = uuid (TUNNEL_ID);

  for (guint i = 0; i < ZLT_HASH_SIZE; i++)
    h[i] = (guint8) (0xa0 + i);
  switch (flag)
    {
    case ZLT_EXT_VERSION:
      zlt_message_set_version (msg, ZLT_PROTOCOL_VERSION);
      break;
    case ZLT_EXT_CAPS:
      zlt_message_set_caps (msg, ZLT_CAP_DATA_RAW | ZLT_CAP_DATA_WS | ZLT_CAP_UDP | ZLT_CAP_RESUME
                                     | ZLT_CAP_ACCESS | 0x80000000u);
      break;
    case ZLT_EXT_PROOF:
      zlt_message_set_proof (msg, h);
      break;
    case ZLT_EXT_RESUME:
      zlt_message_set_resume (msg, &t, h);
      break;
    case ZLT_EXT_RESUME_SECRET:
      zlt_message_set_resume_secret (msg, h);
      break;
    case ZLT_EXT_HEARTBEAT_MS:
      zlt_message_set_heartbeat_ms (msg, 0xdeadbeef);
      break;
    case ZLT_EXT_RESUMED:
      zlt_message_set_resumed (msg, TRUE);
      break;
    case ZLT_EXT_ASSIGNED_PORT:
      zlt_message_set_assigned_port (msg, 40001);
      break;
    case ZLT_EXT_EXPOSE:
      zlt_message_set_expose (msg, ZLT_EXPOSE_INTERNAL);
      break;
    case ZLT_EXT_CODE:
      zlt_message_set_code (msg, ZLT_REASON_PORTS_EXHAUSTED);
      break;
    case ZLT_EXT_SERVER_PROOF:
      zlt_message_set_server_proof (msg, h);
      break;
    case ZLT_EXT_ACCESS_TTL:
      zlt_message_set_access_ttl (msg, 0xfedcba98);
      break;
    case ZLT_EXT_MAX_CONNECTIONS:
      zlt_message_set_max_connections (msg, 0x01020304);
      break;
    case ZLT_EXT_IDLE_TIMEOUT:
      zlt_message_set_idle_timeout (msg, 0xa1b2c3d4);
      break;
    case ZLT_EXT_TIMESTAMP_US:
      zlt_message_set_timestamp_us (msg, G_GUINT64_CONSTANT (0x0102030405060708));
      break;
    case ZLT_EXT_STANDBY_MAX:
      zlt_message_set_standby_max (msg, 0xfe01);
      break;
    case ZLT_EXT_ADDRESSES:
      {
        ZltAddresses addresses = { ZLT_ADDRESS_FAMILY_IPV6, { 0 }, { 0 }, 0xc822, 0x01bb };

        memcpy (addresses.source, h, 16);
        memcpy (addresses.destination, h + 16, 16);
        zlt_message_set_addresses (msg, &addresses);
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
roundtrip (const ZltMessage *msg)
{
  g_autoptr (GByteArray) frame = encode (msg);
  g_autoptr (ZltMessage) back = decode_one (frame->data, frame->len);
  g_autoptr (GByteArray) again = encode (back);

  assert_message_equal (msg, back);
  g_assert_cmpmem (frame->data, frame->len, again->data, again->len);
}

/* ---- PROTOCOL.md §1.4 -------------------------------------------------------------- */

typedef struct
{
  const char *hex;
  ZltMessage *(*build) (void);
} Vector;

static ZltMessage *
vector_auth (void)
{
  ZltUuid id = uuid (CLIENT_ID);
  return zlt_message_new_auth ("tun_abc123", &id);
}

static ZltMessage *
vector_auth_ok (void)
{
  ZltUuid id = uuid (TUNNEL_ID);
  return zlt_message_new_auth_ok (&id);
}

static ZltMessage *
vector_register_ssh (void)
{
  return zlt_message_new_register ("ssh", ZLT_PROTOCOL_TCP, 22, 2222);
}

static ZltMessage *
vector_register_game (void)
{
  return zlt_message_new_register ("game", ZLT_PROTOCOL_UDP, 27015, 0);
}

static ZltMessage *
vector_heartbeat (void)
{
  return zlt_message_new_heartbeat (G_GUINT64_CONSTANT (1705320000000));
}

static ZltMessage *
vector_disconnect (void)
{
  return zlt_message_new_disconnect ("idle timeout");
}

static const Vector vectors[] = {
  { "01 00 00 00 1C 00 0A 74 75 6E 5F 61 62 63 31 32 33"
    "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00",
    vector_auth },
  { "02 00 00 00 10 6B A7 B8 10 9D AD 11 D1 80 B4 00 C0 4F D4 30 C8", vector_auth_ok },
  { "10 00 00 00 09 03 73 73 68 00 00 16 08 AE", vector_register_ssh },
  { "10 00 00 00 0A 04 67 61 6D 65 01 69 87 00 00", vector_register_game },
  { "30 00 00 00 08 00 00 01 8D 0C FE 2A 00", vector_heartbeat },
  { "41 00 00 00 0E 00 0C 69 64 6C 65 20 74 69 6D 65 6F 75 74", vector_disconnect },
};

static void
test_message_vectors_encode (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      g_autoptr (GByteArray) expected = from_hex (vectors[i].hex);
      g_autoptr (ZltMessage) msg = vectors[i].build ();
      g_autoptr (GByteArray) frame = encode (msg);
      g_autoptr (GBytes) bytes = zlt_message_encode_bytes (msg, NULL);

      g_test_message ("vector %u: %s", i, zlt_message_type_to_string (msg->type));
      g_assert_cmpmem (frame->data, frame->len, expected->data, expected->len);
      g_assert_nonnull (bytes);
      g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), expected->data,
                       expected->len);
    }
}

static void
test_message_vectors_decode (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      g_autoptr (GByteArray) bytes = from_hex (vectors[i].hex);
      g_autoptr (ZltMessage) expected = vectors[i].build ();
      g_autoptr (ZltMessage) msg = decode_one (bytes->data, bytes->len);

      assert_message_equal (msg, expected);
      g_assert_false (msg->has_ext);
      g_assert_cmpuint (msg->ext.present, ==, 0);
    }

  /* and the fields spelled out, not just compared with the constructors */
  {
    g_autoptr (GByteArray) b = from_hex (vectors[0].hex);
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_autofree char *id = zlt_uuid_to_string (&m->client_id);
    g_assert_cmpint (m->type, ==, ZLT_MESSAGE_AUTH);
    g_assert_cmpstr (m->token, ==, "tun_abc123");
    g_assert_cmpstr (id, ==, CLIENT_ID);
  }
  {
    g_autoptr (GByteArray) b = from_hex (vectors[3].hex);
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_cmpint (m->type, ==, ZLT_MESSAGE_REGISTER);
    g_assert_cmpstr (m->name, ==, "game");
    g_assert_cmpint (m->protocol, ==, ZLT_PROTOCOL_UDP);
    g_assert_cmpuint (m->local_port, ==, 27015);
    g_assert_cmpuint (m->remote_port, ==, 0);
  }
  {
    g_autoptr (GByteArray) b = from_hex (vectors[4].hex);
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_cmpint (m->type, ==, ZLT_MESSAGE_HEARTBEAT);
    g_assert_cmpuint (m->timestamp, ==, G_GUINT64_CONSTANT (1705320000000));
  }
}

static void
test_message_vector_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltMessage) msg = NULL;

  assert_decode_error (NULL, 0, ZLT_ERROR_TOO_SHORT);
  assert_decode_error_hex ("01", ZLT_ERROR_TOO_SHORT);
  assert_decode_error_hex ("01 00 00 00", ZLT_ERROR_TOO_SHORT);
  assert_decode_error_hex ("01 00 00 00 20 00", ZLT_ERROR_INCOMPLETE);
  assert_decode_error_hex ("FF 00 00 00 00", ZLT_ERROR_UNKNOWN_TYPE);
  assert_decode_error_hex ("01 FF FF FF FF", ZLT_ERROR_PAYLOAD_TOO_LARGE);

  /* the order of the checks */
  assert_decode_error_hex ("FF FF FF FF", ZLT_ERROR_TOO_SHORT);
  assert_decode_error_hex ("FF FF FF FF FF", ZLT_ERROR_UNKNOWN_TYPE);
  assert_decode_error_hex ("00 00 00 00 00", ZLT_ERROR_UNKNOWN_TYPE);
  assert_decode_error_hex ("30 00 00 FF FC", ZLT_ERROR_PAYLOAD_TOO_LARGE); /* 65532 */
  assert_decode_error_hex ("30 00 00 FF FB", ZLT_ERROR_INCOMPLETE);        /* 65531 */
  assert_decode_error_hex ("30 00 00 00 08 00 00 01 8D 0C FE 2A", ZLT_ERROR_INCOMPLETE);

  /* the message says what went wrong */
  {
    g_autoptr (GByteArray) b = from_hex ("01 FF FF FF FF");
    msg = zlt_message_decode (b->data, b->len, NULL, &error);
    g_assert_null (msg);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PAYLOAD_TOO_LARGE);
    g_assert_cmpstr (error->message, ==, "payload too large: 4294967295 bytes (at most 65531)");
    g_clear_error (&error);
  }
  {
    g_autoptr (GByteArray) b = from_hex ("FF 00 00 00 00");
    msg = zlt_message_decode (b->data, b->len, NULL, &error);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_UNKNOWN_TYPE);
    g_assert_nonnull (strstr (error->message, "0xff"));
    g_clear_error (&error);
  }
}

/* a frame of the largest payload decodes */
static void
test_message_max_size (void)
{
  g_autoptr (GByteArray) frame = NULL;
  g_autoptr (ZltMessage) msg = NULL;
  g_autoptr (ZltMessage) back = NULL;
  g_autofree char *reason = g_malloc (65530);

  memset (reason, 'x', 65529);
  reason[65529] = '\0';
  msg = zlt_message_new_disconnect (reason);
  frame = encode (msg);
  g_assert_cmpuint (frame->len, ==, ZLT_MAX_MESSAGE_SIZE);
  back = decode_one (frame->data, frame->len);
  g_assert_cmpstr (back->reason, ==, reason);
}

/* ---- round trips ------------------------------------------------------------------- */

static void
test_message_roundtrip (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr (ZltMessage) msg = sample (all_types[i]);
      g_autoptr (ZltMessage) empty = zlt_message_new (all_types[i]);
      g_autoptr (ZltMessage) copy = zlt_message_copy (msg);

      g_assert_cmpstr (zlt_message_type_to_string (all_types[i]), !=, "unknown");
      g_assert_true (zlt_message_type_is_valid (all_types[i]));
      roundtrip (msg);
      roundtrip (empty); /* NULL strings, nil ids, zeros */
      assert_message_equal (msg, copy);
      if (msg->token != NULL)
        g_assert_true (msg->token != copy->token);
    }
  g_assert_false (zlt_message_type_is_valid (0));
  g_assert_false (zlt_message_type_is_valid (0x42));
  g_assert_false (zlt_message_type_is_valid (0x100 | ZLT_MESSAGE_AUTH));
  g_assert_cmpstr (zlt_message_type_to_string (0x99), ==, "unknown");
}

static void
test_message_roundtrip_ext (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      ZltMessageType type = all_types[i];
      guint32 allowed = allowed_tags (type);

      g_assert_cmpint (zlt_message_type_has_ext (type), ==,
                       allowed != 0 || type == ZLT_MESSAGE_CONNECT);
      if (!zlt_message_type_has_ext (type))
        continue;

      /* an empty block: the marker alone */
      {
        g_autoptr (ZltMessage) msg = sample (type);
        g_autoptr (GByteArray) plain = encode (msg);
        g_autoptr (GByteArray) frame = NULL;
        g_autoptr (ZltMessage) back = NULL;

        msg->has_ext = TRUE;
        frame = encode (msg);
        g_assert_cmpuint (frame->len, ==, plain->len + 1);
        g_assert_cmpuint (frame->data[frame->len - 1], ==, ZLT_EXT_MARKER);
        back = decode_one (frame->data, frame->len);
        g_assert_true (back->has_ext);
        g_assert_cmpuint (back->ext.present, ==, 0);
        roundtrip (msg);
      }

      /* each tag alone, then all of them */
      for (guint tag = 1; tag <= ZLT_EXT_TAG_ADDRESSES; tag++)
        {
          g_autoptr (ZltMessage) msg = sample (type);
          g_autoptr (ZltMessage) back = NULL;
          g_autoptr (GByteArray) frame = NULL;

          if ((allowed & ZLT_EXT_FLAG (tag)) == 0)
            continue;
          set_tag (msg, ZLT_EXT_FLAG (tag));
          g_assert_true (zlt_message_has_ext_fields (msg, ZLT_EXT_FLAG (tag)));
          frame = encode (msg);
          back = decode_one (frame->data, frame->len);
          g_assert_true (zlt_message_has_ext_fields (back, ZLT_EXT_FLAG (tag)));
          roundtrip (msg);
        }
      {
        g_autoptr (ZltMessage) msg = sample (type);
        for (guint tag = 1; tag <= ZLT_EXT_TAG_ADDRESSES; tag++)
          if (allowed & ZLT_EXT_FLAG (tag))
            set_tag (msg, ZLT_EXT_FLAG (tag));
        roundtrip (msg);
      }
    }
}

static void assert_encode_error (const ZltMessage *msg);

/* the extension layout byte for byte (PROTOCOL-v2.md §1) */
static void
test_message_ext_layout (void)
{
  ZltUuid sid = uuid (SERVICE_ID);
  ZltUuid cid = uuid (CLIENT_ID);
  guint8 proof[ZLT_HASH_SIZE];

  /* a v2 AuthOk granting standby connections: CAPS with STANDBY (0x20), then
   * STANDBY_MAX (tag 0x10, u16) */
  {
    ZltUuid tid = uuid (TUNNEL_ID);
    g_autoptr (ZltMessage) msg = zlt_message_new_auth_ok (&tid);
    g_autoptr (GByteArray) frame = NULL;
    g_autoptr (GByteArray) expected
        = from_hex ("02 00 00 00 1D 6B A7 B8 10 9D AD 11 D1 80 B4 00 C0 4F D4 30 C8"
                    "02 02 00 04 00 00 00 3D 10 00 02 00 40");
    g_autoptr (ZltMessage) back = NULL;

    zlt_message_set_standby_max (msg, 64);
    zlt_message_set_caps (msg, ZLT_CAP_DATA_RAW | ZLT_CAP_UDP | ZLT_CAP_RESUME | ZLT_CAP_ACCESS
                                   | ZLT_CAP_STANDBY);
    frame = encode (msg);
    g_assert_cmpmem (frame->data, frame->len, expected->data, expected->len);
    back = decode_one (frame->data, frame->len);
    g_assert_true (zlt_message_has_ext_fields (back, ZLT_EXT_STANDBY_MAX | ZLT_EXT_CAPS));
    g_assert_cmpuint (back->ext.standby_max, ==, 64);
    g_assert_cmpuint (back->ext.caps & ZLT_CAP_STANDBY, ==, ZLT_CAP_STANDBY);
  }
  /* STANDBY_MAX has exactly two bytes, and belongs to AuthOk only */
  {
    g_autoptr (ZltMessage) auth = zlt_message_new_auth ("9f86d081884c7d65", &cid);
    g_autoptr (GByteArray) bad = from_hex ("02 00 00 00 17 6B A7 B8 10 9D AD 11 D1 80 B4 00 C0"
                                           "4F D4 30 C8 02 10 00 03 00 00 40");

    assert_decode_error (bad->data, bad->len, ZLT_ERROR_PROTOCOL);
    zlt_message_set_standby_max (auth, 8);
    assert_encode_error (auth);
  }

  /* a v2 Heartbeat: the v1 field in ms, then TIMESTAMP_US (tag 0x0F, 8 bytes) */
  {
    g_autoptr (ZltMessage) msg = zlt_message_new_heartbeat (G_GUINT64_CONSTANT (1705320000000));
    g_autoptr (GByteArray) frame = NULL;
    g_autoptr (GByteArray) expected = from_hex ("30 00 00 00 14 00 00 01 8D 0C FE 2A 00"
                                                "02 0F 00 08 00 06 0E FA C0 D4 10 7B");

    zlt_message_set_timestamp_us (msg, G_GUINT64_CONSTANT (1705320000000123));
    frame = encode (msg);
    g_assert_cmpmem (frame->data, frame->len, expected->data, expected->len);
  }

  {
    g_autoptr (ZltMessage) msg = zlt_message_new_register_ok (&sid);
    g_autoptr (GByteArray) frame = NULL;
    g_autoptr (GByteArray) expected
        = from_hex ("11 00 00 00 16 12 3E 45 67 E8 9B 12 D3 A4 56 42 66 14 17 40 00"
                    "02 08 00 02 08 AE");

    zlt_message_set_assigned_port (msg, 2222);
    frame = encode (msg);
    g_assert_cmpmem (frame->data, frame->len, expected->data, expected->len);
  }
  {
    /* v2 Auth: key id, VERSION, CAPS, PROOF in tag order whatever the setter order */
    g_autoptr (ZltMessage) msg = zlt_message_new_auth ("9f86d081884c7d65", &cid);
    g_autoptr (GByteArray) frame = NULL;
    g_autoptr (GByteArray) expected
        = from_hex ("01 00 00 00 52 00 10 39 66 38 36 64 30 38 31 38 38 34 63 37 64 36 35"
                    "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00"
                    "02 01 00 02 00 02 02 00 04 00 00 00 1F"
                    "03 00 20 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"
                    "10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F");

    for (guint i = 0; i < sizeof proof; i++)
      proof[i] = (guint8) i;
    zlt_message_set_proof (msg, proof);
    zlt_message_set_caps (msg, 0x1f);
    zlt_message_set_version (msg, ZLT_PROTOCOL_VERSION);
    frame = encode (msg);
    g_assert_cmpmem (frame->data, frame->len, expected->data, expected->len);
  }
  {
    g_autoptr (ZltMessage) msg = zlt_message_new_auth_fail ("bad token");
    g_autoptr (GByteArray) frame = NULL;
    g_autoptr (GByteArray) expected
        = from_hex ("03 00 00 00 11 00 09 62 61 64 20 74 6F 6B 65 6E 02 0A 00 02 00 01");

    zlt_message_set_code (msg, ZLT_REASON_BAD_TOKEN);
    frame = encode (msg);
    g_assert_cmpmem (frame->data, frame->len, expected->data, expected->len);
  }
}

/* ---- decode errors ----------------------------------------------------------------- */

static void
test_message_wrong_length (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr (ZltMessage) msg = sample (all_types[i]);
      g_autoptr (GByteArray) frame = encode (msg);
      gsize payload = frame->len - ZLT_HEADER_SIZE;

      /* every shorter payload, with a header that agrees */
      for (gsize cut = 1; cut <= payload; cut++)
        {
          g_autoptr (GByteArray) shorter = g_byte_array_new ();
          g_byte_array_append (shorter, frame->data, (guint) (frame->len - cut));
          fix_length (shorter);
          assert_decode_error (shorter->data, shorter->len, ZLT_ERROR_PROTOCOL);
          /* and with the old header: incomplete */
          memcpy (shorter->data, frame->data, ZLT_HEADER_SIZE);
          assert_decode_error (shorter->data, shorter->len, ZLT_ERROR_INCOMPLETE);
        }

      /* one byte more: only a well-formed extension block may follow */
      for (guint extra = 0; extra < 256; extra++)
        {
          g_autoptr (GByteArray) longer = g_byte_array_new ();
          guint8 b = (guint8) extra;

          g_byte_array_append (longer, frame->data, frame->len);
          g_byte_array_append (longer, &b, 1);
          fix_length (longer);
          if (zlt_message_type_has_ext (all_types[i]) && b == ZLT_EXT_MARKER)
            {
              g_autoptr (ZltMessage) back = decode_one (longer->data, longer->len);
              g_assert_true (back->has_ext);
            }
          else
            assert_decode_error (longer->data, longer->len, ZLT_ERROR_PROTOCOL);
        }
    }
}

static void
test_message_bad_strings (void)
{
  /* bad UTF-8 in each string field */
  assert_decode_error_hex ("01 00 00 00 13 00 01 FF"
                           "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00",
                           ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("01 00 00 00 14 00 02 C3 28"
                           "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00",
                           ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("03 00 00 00 05 00 03 E2 82 28", ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("12 00 00 00 04 00 02 ED A0", ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("41 00 00 00 04 00 02 C0 AF", ZLT_ERROR_PROTOCOL); /* overlong */
  assert_decode_error_hex ("10 00 00 00 08 02 C3 28 00 00 16 08 AE", ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("10 00 00 00 07 01 80 00 00 16 08 AE", ZLT_ERROR_PROTOCOL);
  /* a NUL inside a string */
  assert_decode_error_hex ("41 00 00 00 05 00 03 61 00 62", ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("10 00 00 00 09 03 73 00 68 00 00 16 08 AE", ZLT_ERROR_PROTOCOL);
  {
    g_autoptr (ZltMessage) msg = sample (ZLT_MESSAGE_CONNECT);
    g_autoptr (GByteArray) frame = encode (msg);
    frame->data[frame->len - 1] = 0xFE;
    assert_decode_error (frame->data, frame->len, ZLT_ERROR_PROTOCOL);
    frame->data[frame->len - 1] = 0x00;
    assert_decode_error (frame->data, frame->len, ZLT_ERROR_PROTOCOL);
  }
  {
    g_autoptr (ZltMessage) msg = sample (ZLT_MESSAGE_CONNECT_FAIL);
    g_autoptr (GByteArray) frame = encode (msg);
    frame->data[frame->len - 3] = 0xC3;
    assert_decode_error (frame->data, frame->len, ZLT_ERROR_PROTOCOL);
  }

  /* valid multi-byte UTF-8 and empty strings are fine */
  {
    g_autoptr (GByteArray) b = from_hex ("41 00 00 00 06 00 04 F0 9F 98 80");
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_cmpstr (m->reason, ==, "\xF0\x9F\x98\x80");
  }
  {
    g_autoptr (GByteArray) b = from_hex ("41 00 00 00 02 00 00");
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_cmpstr (m->reason, ==, "");
  }
  /* a str16 length larger than what is left */
  assert_decode_error_hex ("41 00 00 00 04 00 03 61 62", ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("41 00 00 00 04 FF FF 61 62", ZLT_ERROR_PROTOCOL);
  assert_decode_error_hex ("10 00 00 00 06 FF 73 73 68 00 00", ZLT_ERROR_PROTOCOL);
}

static void
test_message_bad_protocol_byte (void)
{
  for (guint p = 2; p < 256; p++)
    {
      g_autoptr (GByteArray) b = from_hex ("10 00 00 00 09 03 73 73 68 00 00 16 08 AE");
      b->data[9] = (guint8) p;
      assert_decode_error (b->data, b->len, ZLT_ERROR_PROTOCOL);
    }
}

/* a Register (which has an extension block) with the given block bytes appended */
static GByteArray *
register_with (const char *block_hex)
{
  GByteArray *b = from_hex ("10 00 00 00 09 03 73 73 68 00 00 16 08 AE");

  append (b, block_hex);
  fix_length (b);
  return b;
}

static GByteArray *
auth_with (const char *block_hex)
{
  GByteArray *b = from_hex ("01 00 00 00 1C 00 0A 74 75 6E 5F 61 62 63 31 32 33"
                            "55 0E 84 00 E2 9B 41 D4 A7 16 44 66 55 44 00 00");

  append (b, block_hex);
  fix_length (b);
  return b;
}

static void
assert_register_block_error (const char *block_hex)
{
  g_autoptr (GByteArray) b = register_with (block_hex);

  assert_decode_error (b->data, b->len, ZLT_ERROR_PROTOCOL);
}

static void
test_message_bad_ext (void)
{
  /* markers other than 0x02 */
  assert_register_block_error ("00");
  assert_register_block_error ("01");
  assert_register_block_error ("03");
  assert_register_block_error ("FF 09 00 01 01");
  /* truncated entries */
  assert_register_block_error ("02 09");
  assert_register_block_error ("02 09 00");
  assert_register_block_error ("02 09 00 01");
  assert_register_block_error ("02 7F 00 05 01 02 03 04");
  assert_register_block_error ("02 09 00 01 01 7F");
  assert_register_block_error ("02 09 FF FF 01");
  /* known tags with the wrong size */
  assert_register_block_error ("02 09 00 00");
  assert_register_block_error ("02 09 00 02 00 01");
  assert_register_block_error (
      "02 0A 00 01 01"); /* CODE, not used by Register, size still checked */
  assert_register_block_error ("02 01 00 03 00 00 02");
  assert_register_block_error ("02 03 00 1F"
                               "00000000000000000000000000000000000000000000000000000000000000");
  /* a duplicate known tag, used or not */
  assert_register_block_error ("02 09 00 01 01 09 00 01 01");
  assert_register_block_error ("02 09 00 01 00 7F 00 00 09 00 01 01");
  assert_register_block_error ("02 0A 00 02 00 01 0A 00 02 00 01");

  {
    g_autoptr (GByteArray) b = auth_with ("02 01 00 02 00 02 01 00 02 00 02");
    assert_decode_error (b->data, b->len, ZLT_ERROR_PROTOCOL);
  }
  {
    g_autoptr (GByteArray) b = auth_with ("02 04 00 2F"
                                          "0000000000000000000000000000000000000000000000000000"
                                          "0000000000000000000000000000000000000000000000");
    assert_decode_error (b->data, b->len, ZLT_ERROR_PROTOCOL);
  }
}

static void
test_message_ext_skip (void)
{
  /* unknown tags are skipped, whatever their size, even repeated */
  {
    g_autoptr (GByteArray) b
        = register_with ("02 7F 00 05 01 02 03 04 05 00 00 00 09 00 01 01 FF 00 00 7F 00 01 AA");
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_true (m->has_ext);
    g_assert_cmpuint (m->ext.present, ==, ZLT_EXT_EXPOSE);
    g_assert_cmpuint (m->ext.expose, ==, ZLT_EXPOSE_INTERNAL);
    g_assert_cmpstr (m->name, ==, "ssh");
  }
  /* known tags of other types are skipped as well */
  {
    g_autoptr (GByteArray) b = register_with ("02 0A 00 02 00 05 08 00 02 08 AE 07 00 01 01");
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_true (m->has_ext);
    g_assert_cmpuint (m->ext.present, ==, 0);
    g_assert_cmpuint (m->ext.code, ==, 0);
  }
  {
    g_autoptr (GByteArray) b = auth_with ("02 0A 00 02 00 05 01 00 02 00 02 05 00 20"
                                          "0000000000000000000000000000000000000000000000000000"
                                          "000000000000");
    g_autoptr (ZltMessage) m = decode_one (b->data, b->len);
    g_assert_cmpuint (m->ext.present, ==, ZLT_EXT_VERSION);
    g_assert_cmpuint (m->ext.version, ==, 2);
  }
  /* Connect has a block but no tags of its own */
  {
    g_autoptr (ZltMessage) msg = sample (ZLT_MESSAGE_CONNECT);
    g_autoptr (GByteArray) frame = encode (msg);
    g_autoptr (ZltMessage) m = NULL;
    append (frame, "02 01 00 02 00 02 33 00 00");
    fix_length (frame);
    m = decode_one (frame->data, frame->len);
    g_assert_true (m->has_ext);
    g_assert_cmpuint (m->ext.present, ==, 0);
    g_assert_cmpstr (m->client_addr, ==, "[::1]:51234");
  }
  /* RESUMED and EXPOSE values are kept as sent */
  {
    ZltUuid t = uuid (TUNNEL_ID);
    g_autoptr (ZltMessage) msg = zlt_message_new_auth_ok (&t);
    g_autoptr (GByteArray) frame = encode (msg);
    g_autoptr (ZltMessage) m = NULL;
    append (frame, "02 07 00 01 00 06 00 04 00 00 75 30");
    fix_length (frame);
    m = decode_one (frame->data, frame->len);
    g_assert_true (zlt_message_has_ext_fields (m, ZLT_EXT_RESUMED | ZLT_EXT_HEARTBEAT_MS));
    g_assert_false (zlt_message_has_ext_fields (m, ZLT_EXT_CAPS));
    g_assert_cmpuint (m->ext.resumed, ==, 0);
    g_assert_cmpuint (m->ext.heartbeat_ms, ==, 30000);
  }
}

/* ---- encode errors ----------------------------------------------------------------- */

static void
assert_encode_error (const ZltMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) out = from_hex ("DE AD BE EF");
  g_autoptr (GBytes) bytes = NULL;

  g_assert_false (zlt_message_encode (msg, out, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  /* nothing appended */
  g_assert_cmpuint (out->len, ==, 4);
  g_assert_cmpuint (out->data[3], ==, 0xEF);

  bytes = zlt_message_encode_bytes (msg, &error);
  g_assert_null (bytes);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE);
}

static char *
repeat (char c, gsize n)
{
  char *s = g_malloc (n + 1);

  memset (s, c, n);
  s[n] = '\0';
  return s;
}

static void
test_message_encode_errors (void)
{
  g_autofree char *s255 = repeat ('n', 255);
  g_autofree char *s256 = repeat ('n', 256);
  g_autofree char *s65535 = repeat ('r', 65535);
  g_autofree char *s65536 = repeat ('r', 65536);
  g_autofree char *s65529 = repeat ('r', 65529);
  g_autofree char *s65530 = repeat ('r', 65530);
  ZltUuid id = uuid (SERVICE_ID);

  /* str8 */
  {
    g_autoptr (ZltMessage) ok = zlt_message_new_register (s255, ZLT_PROTOCOL_TCP, 1, 2);
    g_autoptr (ZltMessage) bad = zlt_message_new_register (s256, ZLT_PROTOCOL_TCP, 1, 2);
    roundtrip (ok);
    assert_encode_error (bad);
  }
  /* str16 */
  {
    g_autoptr (ZltMessage) bad = zlt_message_new_auth_fail (s65536);
    g_autoptr (ZltMessage) bad_token = zlt_message_new_auth (s65536, &id);
    assert_encode_error (bad);
    assert_encode_error (bad_token);
  }
  /* the whole frame */
  {
    g_autoptr (ZltMessage) ok = zlt_message_new_disconnect (s65529);
    g_autoptr (ZltMessage) big = zlt_message_new_disconnect (s65530);
    g_autoptr (ZltMessage) big_ext = zlt_message_new_disconnect (s65529);
    g_autoptr (ZltMessage) big_str = zlt_message_new_register_fail (s65535);
    g_autoptr (ZltMessage) big_connect = zlt_message_new_connect (&id, &id, s65529);
    g_autoptr (GError) error = NULL;
    g_autoptr (GByteArray) out = g_byte_array_new ();

    roundtrip (ok);
    assert_encode_error (big);
    assert_encode_error (big_str);
    assert_encode_error (big_connect);
    big_ext->has_ext = TRUE;
    assert_encode_error (big_ext);

    g_assert_false (zlt_message_encode (big, out, &error));
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE);
    g_assert_nonnull (strstr (error->message, "65537 bytes (at most 65536)"));
    g_assert_cmpuint (out->len, ==, 0);
  }
  /* strings that are not UTF-8 */
  {
    g_autoptr (ZltMessage) bad = zlt_message_new_disconnect ("caf\xE9");
    g_autoptr (ZltMessage) bad_name = zlt_message_new_register ("\xC3", ZLT_PROTOCOL_TCP, 1, 2);
    assert_encode_error (bad);
    assert_encode_error (bad_name);
  }
  /* fields the wire cannot carry */
  {
    g_autoptr (ZltMessage) bad_proto = zlt_message_new_register ("x", ZLT_PROTOCOL_TCP, 1, 2);
    g_autoptr (ZltMessage) bad_type = zlt_message_new (0x99);
    g_autoptr (ZltMessage) hb = zlt_message_new_heartbeat (1);
    g_autoptr (ZltMessage) ack_empty = zlt_message_new_connect_ack (&id);
    g_autoptr (ZltMessage) auth_ok = zlt_message_new_auth_ok (&id);
    g_autoptr (ZltMessage) reg = zlt_message_new_register ("x", ZLT_PROTOCOL_TCP, 1, 2);
    g_autoptr (ZltMessage) unknown_bit = zlt_message_new_disconnect ("x");
    g_autoptr (ZltMessage) connect = zlt_message_new_connect (&id, &id, "1.2.3.4:5");

    bad_proto->protocol = 2;
    assert_encode_error (bad_proto);
    assert_encode_error (bad_type);
    zlt_message_set_code (hb, ZLT_REASON_TIMEOUT); /* a Heartbeat's block has no CODE */
    assert_encode_error (hb);
    ack_empty->has_ext = TRUE; /* ConnectAck has no block at all */
    assert_encode_error (ack_empty);
    zlt_message_set_resume (auth_ok, &id, (const guint8 *) "0123456789abcdef0123456789abcdef");
    assert_encode_error (auth_ok); /* RESUME is for Auth */
    zlt_message_set_code (reg, ZLT_REASON_LIMIT);
    assert_encode_error (reg);
    unknown_bit->has_ext = TRUE;
    unknown_bit->ext.present = 1u << 20;
    assert_encode_error (unknown_bit);
    zlt_message_set_version (connect, 2);
    assert_encode_error (connect);
  }
}

/* ---- several frames ---------------------------------------------------------------- */

static void
test_message_several (void)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  g_autoptr (GPtrArray) msgs = NULL;
  g_autoptr (GPtrArray) originals
      = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_message_free);
  g_autoptr (GError) error = NULL;
  gsize pos = 0;

  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      ZltMessage *msg = sample (all_types[i]);
      if (i % 2 == 0 && zlt_message_type_has_ext (msg->type))
        msg->has_ext = TRUE;
      if (msg->type == ZLT_MESSAGE_AUTH_OK)
        {
          set_tag (msg, ZLT_EXT_RESUME_SECRET);
          set_tag (msg, ZLT_EXT_HEARTBEAT_MS);
        }
      g_assert_true (zlt_message_encode (msg, buf, &error));
      g_assert_no_error (error);
      g_ptr_array_add (originals, msg);
    }

  msgs = zlt_message_decode_all (buf->data, buf->len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (msgs);
  g_assert_cmpuint (msgs->len, ==, originals->len);
  for (guint i = 0; i < msgs->len; i++)
    assert_message_equal (g_ptr_array_index (msgs, i), g_ptr_array_index (originals, i));

  /* one at a time with consumed */
  for (guint i = 0; i < originals->len; i++)
    {
      gsize used = 0;
      g_autoptr (ZltMessage) m
          = zlt_message_decode (buf->data + pos, buf->len - pos, &used, &error);
      g_assert_no_error (error);
      assert_message_equal (m, g_ptr_array_index (originals, i));
      g_assert_cmpuint (used, >=, ZLT_HEADER_SIZE);
      pos += used;
    }
  g_assert_cmpuint (pos, ==, buf->len);

  /* one frame alone */
  {
    g_autoptr (GByteArray) one = encode (g_ptr_array_index (originals, 0));
    g_autoptr (GPtrArray) single = zlt_message_decode_all (one->data, one->len, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (single->len, ==, 1);
  }
  /* empty: no frame at all */
  {
    g_autoptr (GPtrArray) none = zlt_message_decode_all (NULL, 0, &error);
    g_assert_null (none);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TOO_SHORT);
    g_clear_error (&error);
  }
  /* all must decode: a trailing partial frame, garbage, or a bad frame in the middle */
  {
    g_autoptr (GPtrArray) r = zlt_message_decode_all (buf->data, buf->len - 1, &error);
    g_assert_null (r);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INCOMPLETE);
    g_clear_error (&error);
  }
  {
    g_autoptr (GByteArray) tail = g_byte_array_new ();
    g_autoptr (GPtrArray) r = NULL;
    g_byte_array_append (tail, buf->data, buf->len);
    append (tail, "30 00");
    r = zlt_message_decode_all (tail->data, tail->len, &error);
    g_assert_null (r);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_TOO_SHORT);
    g_assert_nonnull (strstr (error->message, "frame 14"));
    g_clear_error (&error);
  }
  {
    g_autoptr (GByteArray) mid = g_byte_array_new ();
    g_autoptr (GPtrArray) r = NULL;
    g_autoptr (GByteArray) first = encode (g_ptr_array_index (originals, 0));
    g_byte_array_append (mid, first->data, first->len);
    append (mid, "30 00 00 00 09 00 00 00 00 00 00 00 00 00"); /* Heartbeat of 9 bytes */
    g_byte_array_append (mid, first->data, first->len);
    r = zlt_message_decode_all (mid->data, mid->len, &error);
    g_assert_null (r);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL);
    g_clear_error (&error);
  }
}

/* ---- the rest of the API ----------------------------------------------------------- */

static void
test_message_misc (void)
{
  ZltUuid id = uuid (CLIENT_ID);
  g_autoptr (ZltMessage) auth = zlt_message_new_auth ("tun_supersecret", &id);
  g_autoptr (ZltMessage) fail = zlt_message_new_auth_fail ("bad \"token\"");
  g_autofree char *s = NULL;
  g_autofree char *f = NULL;
  g_autoptr (GError) error = NULL;
  guint8 proof[ZLT_HASH_SIZE];

  memset (proof, 0x5a, sizeof proof);
  zlt_message_set_proof (auth, proof);
  zlt_message_set_version (auth, 2);
  s = zlt_message_to_string (auth);
  g_assert_true (g_str_has_prefix (s, "Auth "));
  g_assert_null (strstr (s, "supersecret"));
  g_assert_null (strstr (s, "5a5a"));
  g_assert_nonnull (strstr (s, CLIENT_ID));
  g_assert_nonnull (strstr (s, "version=2"));

  zlt_message_set_code (fail, ZLT_REASON_LEGACY_REFUSED);
  f = zlt_message_to_string (fail);
  g_assert_nonnull (strstr (f, "LEGACY_REFUSED"));
  g_assert_nonnull (strstr (f, "bad \\\"token\\\""));

  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr (ZltMessage) m = sample (all_types[i]);
      g_autofree char *str = zlt_message_to_string (m);
      g_assert_true (g_str_has_prefix (str, zlt_message_type_to_string (all_types[i])));
    }

  /* boxed type */
  {
    ZltMessage *copy;
    g_assert_true (G_TYPE_IS_BOXED (ZLT_TYPE_MESSAGE));
    copy = g_boxed_copy (ZLT_TYPE_MESSAGE, auth);
    assert_message_equal (copy, auth);
    g_boxed_free (ZLT_TYPE_MESSAGE, copy);
  }

  /* reason codes */
  for (guint c = ZLT_REASON_BAD_TOKEN; c <= ZLT_REASON_INTERNAL; c++)
    {
      ZltError e = zlt_reason_code_to_error (c);
      g_autoptr (GError) err = g_error_new_literal (ZLT_ERROR, e, "x");
      g_assert_cmpstr (zlt_reason_code_to_string (c), !=, "UNKNOWN");
      g_assert_cmpint (zlt_reason_code_from_error (err), ==, c);
    }
  g_assert_cmpstr (zlt_reason_code_to_string (99), ==, "UNKNOWN");
  g_assert_true (zlt_reason_code_is_fatal (ZLT_REASON_BAD_TOKEN));
  g_assert_true (zlt_reason_code_is_fatal (ZLT_REASON_EXPIRED_TOKEN));
  g_assert_true (zlt_reason_code_is_fatal (ZLT_REASON_LEGACY_REFUSED));
  g_assert_false (zlt_reason_code_is_fatal (ZLT_REASON_IN_USE));
  g_assert_false (zlt_reason_code_is_fatal (ZLT_REASON_SHUTDOWN));
  g_assert_cmpint (zlt_reason_code_from_error (NULL), ==, ZLT_REASON_INTERNAL);
  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "x");
  g_assert_cmpint (zlt_reason_code_from_error (error), ==, ZLT_REASON_INTERNAL);
  g_clear_error (&error);
  error = g_error_new_literal (ZLT_ERROR, ZLT_ERROR_INCOMPLETE, "x");
  g_assert_cmpint (zlt_reason_code_from_error (error), ==, ZLT_REASON_PROTOCOL);
}

/* ---- fuzz -------------------------------------------------------------------------- */

#define FUZZ_ITERATIONS 20000

static GPtrArray *
fuzz_corpus (void)
{
  GPtrArray *corpus = g_ptr_array_new_with_free_func ((GDestroyNotify) g_byte_array_unref);

  for (guint i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr (ZltMessage) plain = sample (all_types[i]);
      guint32 allowed = allowed_tags (all_types[i]);

      g_ptr_array_add (corpus, encode (plain));
      if (zlt_message_type_has_ext (all_types[i]))
        {
          g_autoptr (ZltMessage) ext = sample (all_types[i]);
          GByteArray *frame;

          for (guint tag = 1; tag <= ZLT_EXT_TAG_CODE; tag++)
            if (allowed & ZLT_EXT_FLAG (tag))
              set_tag (ext, ZLT_EXT_FLAG (tag));
          ext->has_ext = TRUE;
          frame = encode (ext);
          /* an unknown tag too */
          append (frame, "7F 00 03 01 02 03");
          fix_length (frame);
          g_ptr_array_add (corpus, frame);
        }
    }
  return corpus;
}

static guint fuzz_decoded, fuzz_refused;

static void
fuzz_check (const guint8 *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *copy = g_memdup2 (data, len); /* exactly len bytes: valgrind sees overruns */
  gsize consumed = 0;
  g_autoptr (ZltMessage) msg = zlt_message_decode (copy, len, &consumed, &error);
  g_autoptr (GPtrArray) all = NULL;

  if (msg == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == ZLT_ERROR);
      g_assert_true (error->code == ZLT_ERROR_TOO_SHORT || error->code == ZLT_ERROR_INCOMPLETE
                     || error->code == ZLT_ERROR_UNKNOWN_TYPE
                     || error->code == ZLT_ERROR_PAYLOAD_TOO_LARGE
                     || error->code == ZLT_ERROR_PROTOCOL);
      g_assert_cmpuint (consumed, ==, 0);
      fuzz_refused++;
    }
  else
    {
      g_autoptr (GByteArray) again = NULL;
      g_autoptr (ZltMessage) back = NULL;

      g_assert_no_error (error);
      g_assert_cmpuint (consumed, >=, ZLT_HEADER_SIZE);
      g_assert_cmpuint (consumed, <=, len);
      /* whatever decodes encodes again, to the same message (unknown tags dropped) */
      again = encode (msg);
      g_assert_cmpuint (again->len, <=, consumed);
      back = decode_one (again->data, again->len);
      assert_message_equal (msg, back);
      fuzz_decoded++;
    }
  g_clear_error (&error);

  all = zlt_message_decode_all (copy, len, &error);
  g_assert_true ((all == NULL) != (error == NULL));
  if (all != NULL)
    g_assert_cmpuint (all->len, >=, 1);
}

static void
test_message_fuzz (void)
{
  g_autoptr (GPtrArray) corpus = fuzz_corpus ();
  GRand *rand = g_rand_new_with_seed (0x7a17c0de);
  guint8 buf[512];

  for (guint iter = 0; iter < FUZZ_ITERATIONS; iter++)
    {
      const GByteArray *base = g_ptr_array_index (corpus, g_rand_int_range (rand, 0, corpus->len));
      guint mode = (guint) g_rand_int_range (rand, 0, 6);
      gsize len;

      g_assert_cmpuint (base->len, <=, sizeof buf / 2);
      switch (mode)
        {
        case 0: /* random bytes */
          len = (gsize) g_rand_int_range (rand, 0, 80);
          for (gsize i = 0; i < len; i++)
            buf[i] = (guint8) g_rand_int (rand);
          break;
        case 1: /* random bytes behind a plausible header */
          len = (gsize) g_rand_int_range (rand, ZLT_HEADER_SIZE, 80);
          for (gsize i = 0; i < len; i++)
            buf[i] = (guint8) g_rand_int (rand);
          buf[0] = (guint8) all_types[g_rand_int_range (rand, 0, G_N_ELEMENTS (all_types))];
          buf[1] = buf[2] = 0;
          buf[3] = 0;
          buf[4] = (guint8) (len - ZLT_HEADER_SIZE);
          break;
        case 2: /* a truncated valid frame */
          len = (gsize) g_rand_int_range (rand, 0, (gint32) base->len + 1);
          memcpy (buf, base->data, len);
          break;
        case 3: /* bit flips */
          len = base->len;
          memcpy (buf, base->data, len);
          for (guint f = g_rand_int_range (rand, 1, 5); f > 0; f--)
            {
              gsize at = (gsize) g_rand_int_range (rand, 0, (gint32) len);
              buf[at] ^= (guint8) (1u << g_rand_int_range (rand, 0, 8));
            }
          break;
        case 4: /* flips in the payload, with a header that agrees: reaches the field parsers */
          len = base->len;
          memcpy (buf, base->data, len);
          if (len > ZLT_HEADER_SIZE)
            for (guint f = g_rand_int_range (rand, 1, 4); f > 0; f--)
              {
                gsize at = (gsize) g_rand_int_range (rand, ZLT_HEADER_SIZE, (gint32) len);
                buf[at] = (guint8) g_rand_int (rand);
              }
          if (g_rand_boolean (rand))
            {
              len = (gsize) g_rand_int_range (rand, ZLT_HEADER_SIZE, (gint32) len + 1);
            }
          buf[1] = buf[2] = 0;
          buf[3] = (guint8) ((len - ZLT_HEADER_SIZE) >> 8);
          buf[4] = (guint8) (len - ZLT_HEADER_SIZE);
          break;
        default: /* two frames spliced, or garbage appended */
          {
            const GByteArray *other
                = g_ptr_array_index (corpus, g_rand_int_range (rand, 0, corpus->len));
            gsize cut = (gsize) g_rand_int_range (rand, 0, (gint32) base->len + 1);
            memcpy (buf, base->data, cut);
            memcpy (buf + cut, other->data, other->len);
            len = cut + other->len;
          }
          break;
        }
      fuzz_check (buf, len);
    }
  g_rand_free (rand);
  g_test_message ("fuzz: %u frames decoded, %u refused", fuzz_decoded, fuzz_refused);
  /* the mutations must reach both sides */
  g_assert_cmpuint (fuzz_decoded, >, FUZZ_ITERATIONS / 20);
  g_assert_cmpuint (fuzz_refused, >, FUZZ_ITERATIONS / 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/message/vectors/encode", test_message_vectors_encode);
  g_test_add_func ("/message/vectors/decode", test_message_vectors_decode);
  g_test_add_func ("/message/vectors/errors", test_message_vector_errors);
  g_test_add_func ("/message/max-size", test_message_max_size);
  g_test_add_func ("/message/roundtrip", test_message_roundtrip);
  g_test_add_func ("/message/roundtrip-ext", test_message_roundtrip_ext);
  g_test_add_func ("/message/ext-layout", test_message_ext_layout);
  g_test_add_func ("/message/decode/wrong-length", test_message_wrong_length);
  g_test_add_func ("/message/decode/bad-strings", test_message_bad_strings);
  g_test_add_func ("/message/decode/bad-protocol", test_message_bad_protocol_byte);
  g_test_add_func ("/message/decode/bad-ext", test_message_bad_ext);
  g_test_add_func ("/message/decode/ext-skip", test_message_ext_skip);
  g_test_add_func ("/message/encode-errors", test_message_encode_errors);
  g_test_add_func ("/message/several", test_message_several);
  g_test_add_func ("/message/misc", test_message_misc);
  g_test_add_func ("/message/fuzz", test_message_fuzz);
  return g_test_run ();
}
