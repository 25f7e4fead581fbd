/* zlt-fuzz-util.c: invariants and plumbing the fuzz targets share */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zlt-fuzz.h"
#include "zlt-proxy-header.h"

void
zlt_fuzz_fail (const char *where, const char *cond, const char *format, ...)
{
  va_list args;
  g_autofree char *what = NULL;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "\n==zlt-fuzz== invariant broken at %s: %s\n==zlt-fuzz== %s\n", where, cond,
           what);
  fflush (stderr);
  abort ();
}

static GLogWriterOutput
fuzz_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  gboolean verbose = GPOINTER_TO_INT (user_data);

  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      g_log_writer_standard_streams (level, fields, n_fields, NULL);
      fprintf (stderr, "==zlt-fuzz== a warning or critical was logged: treated as a crash\n");
      fflush (stderr);
      abort ();
    }
  if (!verbose)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_standard_streams (level, fields, n_fields, NULL);
}

void
zlt_fuzz_setup_logging (void)
{
  gboolean verbose = g_strcmp0 (g_getenv ("ZLT_FUZZ_VERBOSE"), "1") == 0;

  /* G_MESSAGES_DEBUG decides about debug logs in the standard writer */
  g_log_set_writer_func (fuzz_log_writer, GINT_TO_POINTER (verbose), NULL);
}

static gboolean
str_equal (const char *a, const char *b)
{
  return g_strcmp0 (a != NULL ? a : "", b != NULL ? b : "") == 0;
}

gboolean
zlt_fuzz_message_equal (const ZltMessage *a, const ZltMessage *b)
{
  const ZltMessageExt *x = &a->ext;
  const ZltMessageExt *y = &b->ext;

  if (a->type != b->type || !str_equal (a->token, b->token) || !str_equal (a->reason, b->reason)
      || !str_equal (a->name, b->name) || !str_equal (a->client_addr, b->client_addr)
      || !str_equal (a->hostname, b->hostname) || !zlt_uuid_equal (&a->client_id, &b->client_id)
      || !zlt_uuid_equal (&a->tunnel_id, &b->tunnel_id)
      || !zlt_uuid_equal (&a->service_id, &b->service_id)
      || !zlt_uuid_equal (&a->connection_id, &b->connection_id) || a->protocol != b->protocol
      || a->local_port != b->local_port || a->remote_port != b->remote_port
      || a->timestamp != b->timestamp || a->has_ext != b->has_ext || x->present != y->present)
    return FALSE;
  if ((x->present & ZLT_EXT_VERSION) && x->version != y->version)
    return FALSE;
  if ((x->present & ZLT_EXT_CAPS) && x->caps != y->caps)
    return FALSE;
  if ((x->present & ZLT_EXT_PROOF) && memcmp (x->proof, y->proof, ZLT_HASH_SIZE) != 0)
    return FALSE;
  if ((x->present & ZLT_EXT_RESUME)
      && (!zlt_uuid_equal (&x->resume_tunnel_id, &y->resume_tunnel_id)
          || memcmp (x->resume_mac, y->resume_mac, ZLT_HASH_SIZE) != 0))
    return FALSE;
  if ((x->present & ZLT_EXT_RESUME_SECRET)
      && memcmp (x->resume_secret, y->resume_secret, ZLT_HASH_SIZE) != 0)
    return FALSE;
  if ((x->present & ZLT_EXT_HEARTBEAT_MS) && x->heartbeat_ms != y->heartbeat_ms)
    return FALSE;
  if ((x->present & ZLT_EXT_RESUMED) && x->resumed != y->resumed)
    return FALSE;
  if ((x->present & ZLT_EXT_ASSIGNED_PORT) && x->assigned_port != y->assigned_port)
    return FALSE;
  if ((x->present & ZLT_EXT_EXPOSE) && x->expose != y->expose)
    return FALSE;
  if ((x->present & ZLT_EXT_CODE) && x->code != y->code)
    return FALSE;
  if ((x->present & ZLT_EXT_SERVER_PROOF)
      && memcmp (x->server_proof, y->server_proof, ZLT_HASH_SIZE) != 0)
    return FALSE;
  if ((x->present & ZLT_EXT_ACCESS_TTL) && x->access_ttl != y->access_ttl)
    return FALSE;
  if ((x->present & ZLT_EXT_MAX_CONNECTIONS) && x->max_connections != y->max_connections)
    return FALSE;
  if ((x->present & ZLT_EXT_IDLE_TIMEOUT) && x->idle_timeout != y->idle_timeout)
    return FALSE;
  if ((x->present & ZLT_EXT_TIMESTAMP_US) && x->timestamp_us != y->timestamp_us)
    return FALSE;
  if ((x->present & ZLT_EXT_STANDBY_MAX) && x->standby_max != y->standby_max)
    return FALSE;
  if ((x->present & ZLT_EXT_ADDRESSES) && !zlt_addresses_equal (&x->addresses, &y->addresses))
    return FALSE;
  return TRUE;
}

void
zlt_fuzz_check_roundtrip (const ZltMessage *msg, gsize wire_len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) first = g_byte_array_new ();
  g_autoptr (GByteArray) second = g_byte_array_new ();
  g_autoptr (ZltMessage) again = NULL;
  g_autofree char *text = NULL;
  g_autofree char *text_again = NULL;
  gsize consumed = 0;

  text = zlt_message_to_string (msg);
  ZLT_FUZZ_CHECK (zlt_message_encode (msg, first, &error), "a decoded %s does not encode: %s", text,
                  error->message);
  ZLT_FUZZ_CHECK (first->len <= wire_len,
                  "%s decoded from %" G_GSIZE_FORMAT " bytes encodes to %u bytes", text, wire_len,
                  first->len);
  again = zlt_message_decode (first->data, first->len, &consumed, &error);
  ZLT_FUZZ_CHECK (again != NULL, "the encoding of %s does not decode: %s", text, error->message);
  ZLT_FUZZ_CHECK (consumed == first->len,
                  "the encoding of %s is %u bytes, the decoder took %" G_GSIZE_FORMAT, text,
                  first->len, consumed);
  text_again = zlt_message_to_string (again);
  ZLT_FUZZ_CHECK (zlt_fuzz_message_equal (msg, again), "%s came back as %s", text, text_again);
  ZLT_FUZZ_CHECK (g_str_equal (text, text_again), "%s is described as %s after a round trip", text,
                  text_again);
  ZLT_FUZZ_CHECK (zlt_message_encode (again, second, &error), "%s does not encode again: %s",
                  text_again, error->message);
  ZLT_FUZZ_CHECK (first->len == second->len && memcmp (first->data, second->data, first->len) == 0,
                  "%s encodes to other bytes the second time", text);
}

void
zlt_fuzz_settle (guint max_iterations)
{
  GMainContext *context = g_main_context_get_thread_default ();

  for (guint i = 0; i < max_iterations; i++)
    if (!g_main_context_iteration (context, FALSE))
      break;
}
