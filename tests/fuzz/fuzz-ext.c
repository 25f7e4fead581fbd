/* fuzz-ext.c: the v2 extension block (PROTOCOL-v2.md §1).
 *
 * Input: byte 0 picks one of the types that carry a block (low 3 bits: Auth ...
 * Disconnect; with bit 4 set, bit 0 picks Heartbeat or HeartbeatAck instead) and
 * whether the marker byte 0x02 is put in front of the rest (bit 3 clear) or the rest
 * brings its own (bit 3 set); the rest is the block. The frame is a valid v1 payload of
 * that type followed by the block, so every input reaches the block parser.
 *
 * The decoder is checked against a model of §1 written here from the document: a
 * block decodes exactly when the model accepts it, with the same fields; the v1 fields
 * come out as they went in; and the message passes zlt_fuzz_check_roundtrip(). */
#include "config.h"

#include <string.h>

#include "zlt-fuzz.h"

#define CLIENT_ID "550e8400-e29b-41d4-a716-446655440000"
#define TUNNEL_ID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define SERVICE_ID "123e4567-e89b-12d3-a456-426614174000"
#define CONNECTION_ID "f47ac10b-58cc-4372-a567-0e02b2c3d479"

static const ZltMessageType ext_types[10] = {
  ZLT_MESSAGE_AUTH,        ZLT_MESSAGE_AUTH_OK,       ZLT_MESSAGE_AUTH_FAIL, ZLT_MESSAGE_REGISTER,
  ZLT_MESSAGE_REGISTER_OK, ZLT_MESSAGE_REGISTER_FAIL, ZLT_MESSAGE_CONNECT,   ZLT_MESSAGE_DISCONNECT,
  ZLT_MESSAGE_HEARTBEAT,   ZLT_MESSAGE_HEARTBEAT_ACK,
};

/* the v1 payload of each type, as messages and as bytes */
static ZltMessage *prefix_msg[10];
static GBytes *prefix_bytes[10];

/* ---- the model: PROTOCOL-v2.md §1, independently of core/zlt-message.c ---- */

/* tag → exact size; 0 = unknown tag; HOSTNAME (18) is 1 to 253 bytes without NUL (§10) */
#define MODEL_HOSTNAME 18
static const guint16 model_sizes[19]
    = { 0, 2, 4, 32, 48, 32, 4, 1, 2, 1, 2, 32, 4, 4, 4, 8, 2, 37, 253 };

/* the "used in" column of the table */
static guint32
model_used (ZltMessageType type)
{
  switch (type)
    {
    case ZLT_MESSAGE_AUTH:
      return 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 12;
    case ZLT_MESSAGE_AUTH_OK:
      return 1u << 1 | 1u << 2 | 1u << 5 | 1u << 6 | 1u << 7 | 1u << 11 | 1u << 12 | 1u << 16;
    case ZLT_MESSAGE_REGISTER_OK:
      return 1u << 8;
    case ZLT_MESSAGE_REGISTER:
      return 1u << 9 | 1u << 13 | 1u << 14 | 1u << MODEL_HOSTNAME;
    case ZLT_MESSAGE_HEARTBEAT:
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      return 1u << 15;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_REGISTER_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      return 1u << 10;
    case ZLT_MESSAGE_CONNECT:
      return 1u << 17;
    default:
      return 0;
    }
}

static guint32
model_be (const guint8 *p, guint n)
{
  guint32 v = 0;

  for (guint i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* Fills @ext (present = the used tags seen) and returns whether the block is
 * well-formed. */
static gboolean
model_parse (ZltMessageType type, const guint8 *b, gsize len, ZltMessageExt *ext, char **hostname)
{
  guint32 seen = 0;
  gsize p = 1;

  memset (ext, 0, sizeof *ext);
  g_clear_pointer (hostname, g_free);
  if (len == 0 || b[0] != 0x02)
    return FALSE;
  while (p < len)
    {
      guint tag;
      gsize size;
      const guint8 *v;

      if (len - p < 3)
        return FALSE;
      tag = b[p];
      size = model_be (b + p + 1, 2);
      p += 3;
      if (size > len - p)
        return FALSE;
      v = b + p;
      p += size;
      if (tag == 0 || tag >= G_N_ELEMENTS (model_sizes))
        continue;
      if (tag == MODEL_HOSTNAME
              ? (size == 0 || size > model_sizes[tag] || memchr (v, 0, size) != NULL)
              : size != model_sizes[tag])
        return FALSE;
      if ((seen & (1u << tag)) != 0)
        return FALSE;
      seen |= 1u << tag;
      if ((model_used (type) & (1u << tag)) == 0)
        continue;
      ext->present |= 1u << tag;
      switch (tag)
        {
        case 1:
          ext->version = (guint16) model_be (v, 2);
          break;
        case 2:
          ext->caps = model_be (v, 4);
          break;
        case 3:
          memcpy (ext->proof, v, 32);
          break;
        case 4:
          memcpy (ext->resume_tunnel_id.bytes, v, 16);
          memcpy (ext->resume_mac, v + 16, 32);
          break;
        case 5:
          memcpy (ext->resume_secret, v, 32);
          break;
        case 6:
          ext->heartbeat_ms = model_be (v, 4);
          break;
        case 7:
          ext->resumed = v[0];
          break;
        case 8:
          ext->assigned_port = (guint16) model_be (v, 2);
          break;
        case 9:
          ext->expose = v[0];
          break;
        case 10:
          ext->code = (guint16) model_be (v, 2);
          break;
        case 11:
          memcpy (ext->server_proof, v, 32);
          break;
        case 12:
          ext->access_ttl = model_be (v, 4);
          break;
        case 13:
          ext->max_connections = model_be (v, 4);
          break;
        case 14:
          ext->idle_timeout = model_be (v, 4);
          break;
        case 15:
          ext->timestamp_us = (guint64) model_be (v, 4) << 32 | model_be (v + 4, 4);
          break;
        case 16:
          ext->standby_max = (guint16) model_be (v, 2);
          break;
        case MODEL_HOSTNAME:
          *hostname = g_strndup ((const char *) v, size);
          break;
        case 17:
          /* family, source, destination (16 bytes each), source port, destination port */
          ext->addresses.family = v[0];
          memcpy (ext->addresses.source, v + 1, 16);
          memcpy (ext->addresses.destination, v + 17, 16);
          ext->addresses.source_port = (guint16) model_be (v + 33, 2);
          ext->addresses.destination_port = (guint16) model_be (v + 35, 2);
          break;
        default:
          break;
        }
    }
  return TRUE;
}

/* ---- the target ---- */

static ZltUuid
uuid (const char *s)
{
  ZltUuid u;

  if (!zlt_uuid_parse (s, &u))
    g_assert_not_reached ();
  return u;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  ZltUuid client = uuid (CLIENT_ID), tunnel = uuid (TUNNEL_ID), service = uuid (SERVICE_ID),
          connection = uuid (CONNECTION_ID);

  zlt_fuzz_setup_logging ();
  prefix_msg[0] = zlt_message_new_auth ("tun_abc123", &client);
  prefix_msg[1] = zlt_message_new_auth_ok (&tunnel);
  prefix_msg[2] = zlt_message_new_auth_fail ("bad token");
  prefix_msg[3] = zlt_message_new_register ("ssh", ZLT_PROTOCOL_TCP, 22, 2222);
  prefix_msg[4] = zlt_message_new_register_ok (&service);
  prefix_msg[5] = zlt_message_new_register_fail ("no");
  prefix_msg[6] = zlt_message_new_connect (&service, &connection, "203.0.113.7:51000");
  prefix_msg[7] = zlt_message_new_disconnect ("idle timeout");
  prefix_msg[8] = zlt_message_new_heartbeat (1700000000123);
  prefix_msg[9] = zlt_message_new_heartbeat_ack (1700000000123);
  for (guint i = 0; i < G_N_ELEMENTS (ext_types); i++)
    {
      g_autoptr (GError) error = NULL;
      GBytes *frame;

      g_assert (prefix_msg[i]->type == ext_types[i]);
      frame = zlt_message_encode_bytes (prefix_msg[i], &error);
      g_assert_no_error (error);
      /* the payload only */
      prefix_bytes[i] = g_bytes_new_from_bytes (frame, ZLT_HEADER_SIZE,
                                                g_bytes_get_size (frame) - ZLT_HEADER_SIZE);
      g_bytes_unref (frame);
    }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) frame = g_byte_array_new ();
  g_autoptr (GByteArray) block = g_byte_array_new ();
  g_autoptr (ZltMessage) msg = NULL;
  g_autoptr (ZltMessage) v1 = NULL;
  ZltMessageExt expected;
  g_autofree char *expected_hostname = NULL;
  guint kind;
  gsize prefix_len, payload_len, consumed = 0;
  const guint8 *prefix;
  guint8 header[ZLT_HEADER_SIZE];
  gboolean well_formed;

  if (size < 1)
    return 0;
  kind = (data[0] & 0x10) != 0 ? 8 + (data[0] & 0x1) : data[0] & 0x7;
  if ((data[0] & 0x8) == 0)
    g_byte_array_append (block, (const guint8 *) "\x02", 1);
  g_byte_array_append (block, data + 1, (guint) (size - 1));

  prefix = g_bytes_get_data (prefix_bytes[kind], &prefix_len);
  payload_len = prefix_len + block->len;
  header[0] = (guint8) ext_types[kind];
  header[1] = (guint8) (payload_len >> 24);
  header[2] = (guint8) (payload_len >> 16);
  header[3] = (guint8) (payload_len >> 8);
  header[4] = (guint8) payload_len;
  g_byte_array_append (frame, header, sizeof header);
  g_byte_array_append (frame, prefix, (guint) prefix_len);
  g_byte_array_append (frame, block->data, block->len);

  /* an empty block after the v1 fields means "no block", which is well-formed too */
  well_formed = payload_len <= ZLT_MAX_PAYLOAD
                && (block->len == 0
                    || model_parse (ext_types[kind], block->data, block->len, &expected,
                                    &expected_hostname));
  if (block->len == 0)
    memset (&expected, 0, sizeof expected);

  msg = zlt_message_decode (frame->data, frame->len, &consumed, &error);
  if (msg == NULL)
    {
      ZLT_FUZZ_CHECK (!well_formed, "a well-formed block of %s was refused: %s",
                      zlt_message_type_to_string (ext_types[kind]), error->message);
      ZLT_FUZZ_CHECK (error != NULL && error->domain == ZLT_ERROR, "refused without a ZLT_ERROR");
      return 0;
    }
  ZLT_FUZZ_CHECK (well_formed, "a malformed block of %s was accepted",
                  zlt_message_type_to_string (ext_types[kind]));
  ZLT_FUZZ_CHECK (consumed == frame->len, "decode consumed %" G_GSIZE_FORMAT " of %u bytes",
                  consumed, frame->len);
  ZLT_FUZZ_CHECK (msg->has_ext == (block->len > 0), "has_ext is %d for a block of %u bytes",
                  msg->has_ext, block->len);
  ZLT_FUZZ_CHECK (msg->ext.present == expected.present, "fields present: decoder 0x%x, model 0x%x",
                  msg->ext.present, expected.present);
  {
    /* the block's fields alone, compared through the shared comparison */
    g_autoptr (ZltMessage) a = zlt_message_new (msg->type);
    g_autoptr (ZltMessage) b = zlt_message_new (msg->type);

    a->has_ext = b->has_ext = TRUE;
    a->ext = msg->ext;
    b->ext = expected;
    a->hostname = g_strdup (msg->hostname);
    b->hostname = g_strdup (expected_hostname);
    ZLT_FUZZ_CHECK (zlt_fuzz_message_equal (a, b), "the decoder and the model disagree on a field");
  }
  /* the v1 fields are untouched by whatever follows them */
  v1 = zlt_message_copy (msg);
  v1->has_ext = FALSE;
  memset (&v1->ext, 0, sizeof v1->ext);
  g_clear_pointer (&v1->hostname, g_free);
  ZLT_FUZZ_CHECK (zlt_fuzz_message_equal (v1, prefix_msg[kind]), "the v1 fields of %s changed",
                  zlt_message_type_to_string (msg->type));
  zlt_fuzz_check_roundtrip (msg, consumed);
  return 0;
}
