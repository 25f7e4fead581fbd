/* zlt-util.c */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "zlt-error.h"
#include "zlt-util.h"

GPtrArray *
zlt_hash_table_ref_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new_full (g_hash_table_size (table), g_object_unref);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, g_object_ref (key));
  return keys;
}

/**
 * zlt_parse_duration:
 * @text: one or more NUMBER UNIT groups, unit s, m, h or d; a lone number is seconds
 * @seconds: (out): the total
 *
 * Returns: %FALSE with %ZLT_ERROR_INVALID_CONFIG for anything else, or a total that does
 *   not fit in a guint
 */
gboolean
zlt_parse_duration (const char *text, guint *seconds, GError **error)
{
  const char *p = text;
  guint64 total = 0;
  guint groups = 0;

  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (seconds != NULL, FALSE);

  if (*p == '\0')
    goto bad;
  while (*p != '\0')
    {
      guint64 value = 0, unit;

      if (!g_ascii_isdigit (*p))
        goto bad;
      for (; g_ascii_isdigit (*p); p++)
        {
          value = value * 10 + (guint64) (*p - '0');
          if (value > G_MAXUINT)
            goto bad;
        }
      switch (*p)
        {
        case '\0':
          /* a bare number only on its own: "1h30" is a typo, not 1h30s */
          if (groups > 0)
            goto bad;
          unit = 1;
          break;
        case 's':
          unit = 1;
          p++;
          break;
        case 'm':
          unit = 60;
          p++;
          break;
        case 'h':
          unit = 3600;
          p++;
          break;
        case 'd':
          unit = 86400;
          p++;
          break;
        default:
          goto bad;
        }
      groups++;
      total += value * unit;
      if (total > G_MAXUINT)
        goto bad;
    }
  *seconds = (guint) total;
  return TRUE;

bad:
  g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
               _ ("“%s” is not a duration (for example 90s, 30m, 2h, 1d)"), text);
  return FALSE;
}

gboolean
zlt_parse_rate (const char *text, guint64 *rate)
{
  guint64 value = 0;
  guint64 unit = 1;
  const char *p = text;

  g_return_val_if_fail (rate != NULL, FALSE);

  if (text == NULL || !g_ascii_isdigit (*p))
    return FALSE;
  for (; g_ascii_isdigit (*p); p++)
    {
      if (value > (G_MAXUINT64 - 9) / 10)
        return FALSE;
      value = value * 10 + (guint64) (*p - '0');
    }
  switch (*p)
    {
    case '\0':
      break;
    case 'k':
    case 'K':
      unit = 1000;
      p++;
      break;
    case 'M':
      unit = 1000 * 1000;
      p++;
      break;
    case 'G':
      unit = 1000 * 1000 * 1000;
      p++;
      break;
    default:
      return FALSE;
    }
  if (*p != '\0' || value > ZLT_RATE_MAX / unit)
    return FALSE;
  *rate = value * unit;
  return TRUE;
}

char *
zlt_log_escape (const char *text, gsize max_len)
{
  GString *out;
  const char *p, *end;

  if (text == NULL)
    return g_strdup ("(null)");
  end = text + strnlen (text, max_len);
  out = g_string_sized_new ((gsize) (end - text) + 8);
  for (p = text; p < end;)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      /* printable characters pass, in any script; control and format characters (a
       * newline, an escape sequence, a bidi override) and bytes that are not UTF-8 are
       * shown as \xNN, so none can forge a line or repaint a terminal */
      if (c != (gunichar) -1 && c != (gunichar) -2 && c != '\\' && g_unichar_isprint (c)
          && g_unichar_type (c) != G_UNICODE_FORMAT)
        {
          const char *next = g_utf8_next_char (p);

          g_string_append_len (out, p, next - p);
          p = next;
        }
      else if (c == '\\')
        {
          g_string_append (out, "\\\\");
          p++;
        }
      else
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
        }
    }
  if (text[end - text] != '\0')
    g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

char *
zlt_config_directory (const char *config_path)
{
  g_autofree char *dir = NULL;

  if (config_path == NULL)
    return NULL;
  dir = g_path_get_dirname (config_path);
  return g_canonicalize_filename (dir, NULL);
}

gboolean
zlt_log_domain_is_ours (const char *domain)
{
  return domain != NULL
         && (g_str_has_prefix (domain, "zlt") || g_str_has_prefix (domain, "zlayer"));
}

gboolean
zlt_log_limit_allow (ZltLogLimit *limit, guint *suppressed)
{
  gint64 now = g_get_monotonic_time ();

  if (limit->window_start == 0
      || now - limit->window_start >= (gint64) limit->window_s * G_USEC_PER_SEC)
    {
      limit->window_start = now;
      limit->n_logged = 0;
    }
  if (limit->n_logged >= limit->max_per_window)
    {
      limit->n_suppressed++;
      return FALSE;
    }
  limit->n_logged++;
  if (suppressed != NULL)
    *suppressed = limit->n_suppressed;
  limit->n_suppressed = 0;
  return TRUE;
}

static const char *const event_ids[ZLT_LOG_EVENT_N] = {
  [ZLT_LOG_EVENT_TUNNEL_UP] = "1322ea7c8f66497d97124656ed7129ed",
  [ZLT_LOG_EVENT_TUNNEL_DOWN] = "8ed06302ea6e4e5aa2c3b3740cee2976",
  [ZLT_LOG_EVENT_AUTH_FAILED] = "08f8394618f74ab58c603fbf6def61ea",
  [ZLT_LOG_EVENT_SERVICE_REGISTERED] = "7dc3d0f95a0c48ceae057ac8815657c1",
  [ZLT_LOG_EVENT_SERVICE_REFUSED] = "91a8d0601831404d87f38448b9fec467",
  [ZLT_LOG_EVENT_ACCESS_STARTED] = "3eecd8a0e4ac47e5b8bde5120e7736fc",
  [ZLT_LOG_EVENT_ACCESS_ENDED] = "302ecdd5a5be4ca89e30ad586736d6a3",
  [ZLT_LOG_EVENT_NODE_STATE] = "9cf732e589d943fa959600e15bc6f49e",
};

const char *
zlt_log_event_id (ZltLogEvent event)
{
  g_return_val_if_fail (event < ZLT_LOG_EVENT_N, NULL);
  return event_ids[event];
}

static void log_event_valist (const char *domain, GLogLevelFlags level, ZltLogEvent event,
                              const char *tunnel_id, const char *service, const char *peer,
                              const char *reason, const char *format, va_list args)
    G_GNUC_PRINTF (8, 0);

static void
log_event_valist (const char *domain, GLogLevelFlags level, ZltLogEvent event,
                  const char *tunnel_id, const char *service, const char *peer, const char *reason,
                  const char *format, va_list args)
{
  g_autofree char *message = NULL;
  GLogField fields[8];
  gsize n = 0;

  g_return_if_fail (event < ZLT_LOG_EVENT_N);

  if (level & G_LOG_LEVEL_WARNING)
    {
      fields[n++] = (GLogField){ "ZLT_PRIORITY", "4", -1 };
      level = G_LOG_LEVEL_MESSAGE;
    }
  message = g_strdup_vprintf (format, args);
  fields[n++] = (GLogField){ "MESSAGE", message, -1 };
  fields[n++] = (GLogField){ "MESSAGE_ID", event_ids[event], -1 };
  if (domain != NULL)
    fields[n++] = (GLogField){ "GLIB_DOMAIN", domain, -1 };
  if (tunnel_id != NULL)
    fields[n++] = (GLogField){ "TUNNEL_ID", tunnel_id, -1 };
  if (service != NULL)
    fields[n++] = (GLogField){ "SERVICE", service, -1 };
  if (peer != NULL)
    fields[n++] = (GLogField){ "PEER", peer, -1 };
  if (reason != NULL)
    fields[n++] = (GLogField){ "REASON", reason, -1 };
  g_log_structured_array (level, fields, n);
}

void
zlt_log_event (const char *domain, GLogLevelFlags level, ZltLogEvent event, const char *tunnel_id,
               const char *service, const char *peer, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  log_event_valist (domain, level, event, tunnel_id, service, peer, NULL, format, args);
  va_end (args);
}

void
zlt_log_event_reason (const char *domain, GLogLevelFlags level, ZltLogEvent event,
                      const char *tunnel_id, const char *service, const char *peer,
                      const char *reason, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  log_event_valist (domain, level, event, tunnel_id, service, peer, reason, format, args);
  va_end (args);
}

int
zlt_log_record_priority (GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "ZLT_PRIORITY") == 0 && fields[i].length < 0)
      return (int) g_ascii_strtoll (fields[i].value, NULL, 10);
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return 3;
  if (level & G_LOG_LEVEL_WARNING)
    return 4;
  if (level & G_LOG_LEVEL_MESSAGE)
    return 5;
  if (level & G_LOG_LEVEL_INFO)
    return 6;
  return 7;
}
