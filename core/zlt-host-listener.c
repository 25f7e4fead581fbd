/* zlt-host-listener.c: a shared public port routed by hostname
 *
 * Each connection is read until its first bytes name a host (the head of an HTTP
 * request, a TLS ClientHello record), bounded in size (ZLT_SNIFF_*_MAX) and time. What
 * was read is handed on with the connection, to be relayed before anything else: the
 * service sees the connection's bytes as the client sent them. The TLS port never
 * terminates TLS; it reads the ClientHello's server_name in the clear.
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "zlt-accept-loop.h"
#include "zlt-host-listener.h"
#include "zlt-host-sniff.h"
#include "zlt-net.h"
#include "zlt-source.h"

#define READ_CHUNK 4096

struct _ZltHostListener
{
  GObject parent_instance;

  ZltHostListenerKind kind;
  ZltAcceptLoop *loop;
  guint timeout_ms;
  ZltHostRouteFunc func;
  gpointer user_data;
  GHashTable *sniffing; /* Sniff* (owned) */
  guint64 n_unknown;
  guint64 n_dropped;
  guint64 n_routed;
};

G_DEFINE_FINAL_TYPE (ZltHostListener, zlt_host_listener, G_TYPE_OBJECT)

typedef struct
{
  ZltHostListener *self; /* unowned: the listener removes its sniffs before it goes */
  GSocketConnection *connection;
  GCancellable *cancellable;
  GSource *timeout;
  GByteArray *buf;
  char *client_addr;
  guint8 chunk[READ_CHUNK];
} Sniff;

static void
sniff_free (Sniff *s)
{
  zlt_source_clear (&s->timeout);
  g_cancellable_cancel (s->cancellable);
  g_clear_object (&s->cancellable);
  if (s->connection != NULL)
    zlt_net_close_with_reset (G_IO_STREAM (s->connection));
  g_clear_object (&s->connection);
  g_byte_array_unref (s->buf);
  g_free (s->client_addr);
  g_free (s);
}

/* The answer to a host we do not serve, then the end. The write is best effort: a
 * client that does not read it is not waited for past the sniff timeout. */
typedef struct
{
  GSocketConnection *connection;
  GBytes *answer;
  GSource *timeout;
  GCancellable *cancellable;
} Answer;

static void
answer_free (Answer *a)
{
  zlt_source_clear (&a->timeout);
  g_clear_object (&a->cancellable);
  g_bytes_unref (a->answer);
  g_object_unref (a->connection);
  g_free (a);
}

static void
on_answer_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Answer *a = user_data;

  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  answer_free (a);
}

static void
on_answer_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Answer *a = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_debug ("unknown-host answer not delivered: %s", error->message);
      zlt_net_close_with_reset (G_IO_STREAM (a->connection));
      answer_free (a);
      return;
    }
  zlt_source_clear (&a->timeout);
  /* a FIN after the answer; the client reads it before it sees the end */
  g_socket_shutdown (g_socket_connection_get_socket (a->connection), FALSE, TRUE, NULL);
  g_io_stream_close_async (G_IO_STREAM (a->connection), G_PRIORITY_DEFAULT, NULL, on_answer_closed,
                           a);
}

static gboolean
on_answer_timeout (gpointer user_data)
{
  Answer *a = user_data;

  g_clear_pointer (&a->timeout, g_source_unref);
  g_cancellable_cancel (a->cancellable);
  return G_SOURCE_REMOVE;
}

static void
send_answer (ZltHostListener *self, GSocketConnection *connection, GBytes *answer)
{
  Answer *a = g_new0 (Answer, 1);
  gsize len;
  const guint8 *data = g_bytes_get_data (answer, &len);

  a->connection = g_object_ref (connection);
  a->answer = g_bytes_ref (answer);
  a->cancellable = g_cancellable_new ();
  a->timeout = zlt_timeout_source_attach (self->timeout_ms, on_answer_timeout, a);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (connection)), data,
                                   len, G_PRIORITY_DEFAULT, a->cancellable, on_answer_written, a);
}

static GBytes *
http_answer (guint status, const char *reason, const char *body)
{
  g_autofree char *page = g_strdup_printf ("<!DOCTYPE html>\n<title>%u %s</title>\n<p>%s</p>\n",
                                           status, reason, body);
  char *text = g_strdup_printf ("HTTP/1.1 %u %s\r\n"
                                "Content-Type: text/html; charset=utf-8\r\n"
                                "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                                "Connection: close\r\n"
                                "\r\n%s",
                                status, reason, strlen (page), page);
  return g_bytes_new_take (text, strlen (text));
}

/* RFC 8446 §6: a fatal alert (level 2) unrecognized_name (112), in a TLS record */
static const guint8 tls_alert_unrecognized_name[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70 };

static void
answer_unknown (ZltHostListener *self, GSocketConnection *connection, const char *host)
{
  g_autoptr (GBytes) answer = NULL;

  self->n_unknown++;
  if (self->kind == ZLT_HOST_LISTENER_TLS)
    answer = g_bytes_new_static (tls_alert_unrecognized_name, sizeof tls_alert_unrecognized_name);
  else if (host != NULL)
    {
      g_autofree char *escaped = g_markup_escape_text (host, -1);
      g_autofree char *body = g_strdup_printf ("no tunnel for %s", escaped);
      answer = http_answer (404, "Not Found", body);
    }
  else
    answer = http_answer (400, "Bad Request", "no valid Host header");
  send_answer (self, connection, answer);
}

static void sniff_read (Sniff *s);

/* Ends @s: routed, answered, or dropped. */
static void
sniff_done (Sniff *s, ZltSniffResult result, const char *host)
{
  ZltHostListener *self = s->self;
  g_autoptr (GSocketConnection) connection = g_steal_pointer (&s->connection);
  g_autoptr (GBytes) prefix = NULL;

  g_hash_table_steal (self->sniffing, s);
  zlt_source_clear (&s->timeout);
  switch (result)
    {
    case ZLT_SNIFF_FOUND:
      prefix = g_bytes_new (s->buf->data, s->buf->len);
      if (self->func != NULL
          && self->func (self, host, G_IO_STREAM (connection), prefix, s->client_addr,
                         self->user_data))
        {
          self->n_routed++;
          break;
        }
      answer_unknown (self, connection, host);
      break;
    case ZLT_SNIFF_NO_HOST:
      answer_unknown (self, connection, NULL);
      break;
    case ZLT_SNIFF_TOO_LARGE:
      self->n_dropped++;
      if (self->kind == ZLT_HOST_LISTENER_HTTP)
        {
          g_autoptr (GBytes) answer
              = http_answer (431, "Request Header Fields Too Large", "request head too large");
          send_answer (self, connection, answer);
        }
      else
        zlt_net_close_with_reset (G_IO_STREAM (connection));
      break;
    case ZLT_SNIFF_BAD:
    case ZLT_SNIFF_NEED_MORE: /* the client ended before it named a host */
    default:
      self->n_dropped++;
      zlt_net_close_with_reset (G_IO_STREAM (connection));
      break;
    }
  sniff_free (s);
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Sniff *s = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *host = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  ZltSniffResult verdict;

  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* closed or timed out: whoever cancelled freed or frees it */
  if (n <= 0)
    {
      if (error != NULL)
        g_debug ("connection from %s ended before naming a host: %s", s->client_addr,
                 error->message);
      sniff_done (s, ZLT_SNIFF_NEED_MORE, NULL);
      return;
    }
  g_byte_array_append (s->buf, s->chunk, (guint) n);
  if (s->self->kind == ZLT_HOST_LISTENER_HTTP)
    verdict = zlt_sniff_http_host (s->buf->data, s->buf->len, &host);
  else
    verdict = zlt_sniff_tls_sni (s->buf->data, s->buf->len, &host);
  if (verdict == ZLT_SNIFF_NEED_MORE)
    {
      sniff_read (s);
      return;
    }
  sniff_done (s, verdict, host);
}

static void
sniff_read (Sniff *s)
{
  gsize max = s->self->kind == ZLT_HOST_LISTENER_HTTP ? ZLT_SNIFF_HTTP_MAX : ZLT_SNIFF_TLS_MAX;

  /* never past the bound: the parsers' verdict at the bound is final */
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (s->connection)), s->chunk,
                             MIN (sizeof s->chunk, max - s->buf->len), G_PRIORITY_DEFAULT,
                             s->cancellable, on_read, s);
}

static gboolean
on_sniff_timeout (gpointer user_data)
{
  Sniff *s = user_data;

  g_clear_pointer (&s->timeout, g_source_unref);
  g_debug ("connection from %s named no host in time", s->client_addr);
  s->self->n_dropped++;
  g_hash_table_remove (s->self->sniffing, s); /* cancels the read */
  return G_SOURCE_REMOVE;
}

static void
on_accept (ZltAcceptLoop *loop, GSocketConnection *connection, gpointer user_data)
{
  ZltHostListener *self = user_data;
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);
  Sniff *s;

  if (g_hash_table_size (self->sniffing) >= ZLT_HOST_LISTENER_MAX_SNIFFING)
    {
      self->n_dropped++;
      zlt_net_close_with_reset (G_IO_STREAM (connection));
      return;
    }
  s = g_new0 (Sniff, 1);
  s->self = self;
  s->connection = g_object_ref (connection);
  s->cancellable = g_cancellable_new ();
  s->buf = g_byte_array_new ();
  s->client_addr = remote != NULL ? zlt_net_format_address (remote) : g_strdup ("");
  s->timeout = zlt_timeout_source_attach (self->timeout_ms, on_sniff_timeout, s);
  g_hash_table_add (self->sniffing, s);
  sniff_read (s);
}

ZltHostListener *
zlt_host_listener_new (ZltHostListenerKind kind, const char *address, guint16 port, GError **error)
{
  g_autoptr (ZltHostListener) self = g_object_new (ZLT_TYPE_HOST_LISTENER, NULL);
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr (GSocketAddress) sockaddr = NULL;

  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _ ("‘%s’ is not an IP address"),
                   address);
      return NULL;
    }
  sockaddr = g_inet_socket_address_new (inet, port);
  self->kind = kind;
  self->loop = zlt_accept_loop_new (sockaddr, error);
  if (self->loop == NULL)
    return NULL;
  return g_steal_pointer (&self);
}

guint16
zlt_host_listener_get_port (ZltHostListener *self)
{
  g_return_val_if_fail (ZLT_IS_HOST_LISTENER (self), 0);
  return zlt_accept_loop_get_port (self->loop);
}

ZltHostListenerKind
zlt_host_listener_get_kind (ZltHostListener *self)
{
  g_return_val_if_fail (ZLT_IS_HOST_LISTENER (self), ZLT_HOST_LISTENER_HTTP);
  return self->kind;
}

void
zlt_host_listener_set_timeout (ZltHostListener *self, guint timeout_ms)
{
  g_return_if_fail (ZLT_IS_HOST_LISTENER (self));
  self->timeout_ms = timeout_ms != 0 ? timeout_ms : ZLT_HOST_LISTENER_SNIFF_TIMEOUT_MS;
}

void
zlt_host_listener_start (ZltHostListener *self, ZltHostRouteFunc func, gpointer user_data)
{
  g_return_if_fail (ZLT_IS_HOST_LISTENER (self));
  self->func = func;
  self->user_data = user_data;
  zlt_accept_loop_start (self->loop, on_accept, self);
}

void
zlt_host_listener_close (ZltHostListener *self)
{
  g_return_if_fail (ZLT_IS_HOST_LISTENER (self));
  if (self->loop != NULL)
    zlt_accept_loop_close (self->loop);
  g_hash_table_remove_all (self->sniffing);
  self->func = NULL;
}

guint
zlt_host_listener_get_n_sniffing (ZltHostListener *self)
{
  g_return_val_if_fail (ZLT_IS_HOST_LISTENER (self), 0);
  return g_hash_table_size (self->sniffing);
}

guint64
zlt_host_listener_get_n_unknown (ZltHostListener *self)
{
  g_return_val_if_fail (ZLT_IS_HOST_LISTENER (self), 0);
  return self->n_unknown;
}

guint64
zlt_host_listener_get_n_dropped (ZltHostListener *self)
{
  g_return_val_if_fail (ZLT_IS_HOST_LISTENER (self), 0);
  return self->n_dropped;
}

guint64
zlt_host_listener_get_n_routed (ZltHostListener *self)
{
  g_return_val_if_fail (ZLT_IS_HOST_LISTENER (self), 0);
  return self->n_routed;
}

static void
zlt_host_listener_dispose (GObject *object)
{
  ZltHostListener *self = ZLT_HOST_LISTENER (object);

  if (self->loop != NULL)
    zlt_accept_loop_close (self->loop);
  g_hash_table_remove_all (self->sniffing);
  g_clear_object (&self->loop);
  G_OBJECT_CLASS (zlt_host_listener_parent_class)->dispose (object);
}

static void
zlt_host_listener_finalize (GObject *object)
{
  ZltHostListener *self = ZLT_HOST_LISTENER (object);

  g_hash_table_unref (self->sniffing);
  G_OBJECT_CLASS (zlt_host_listener_parent_class)->finalize (object);
}

static void
zlt_host_listener_class_init (ZltHostListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_host_listener_dispose;
  object_class->finalize = zlt_host_listener_finalize;
}

static void
zlt_host_listener_init (ZltHostListener *self)
{
  self->timeout_ms = ZLT_HOST_LISTENER_SNIFF_TIMEOUT_MS;
  self->sniffing = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) sniff_free, NULL);
}
