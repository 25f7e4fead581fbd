/* zlt-udp-listener.c: a public UDP port, one flow per peer address
 *
 * One socket, one GSource watching it. Each dispatch takes up to ZLT_UDP_RECV_BATCH
 * datagrams (then lets the rest of the main loop run) into one receive buffer and hands
 * each to the flow of its sender. A datagram from a new peer makes a flow, announces it
 * with ::incoming (so a handler can set it up) and then delivers the datagram into it.
 * Beyond max-flows flows, datagrams from new peers are dropped and counted; all flows
 * together queue at most max-queued-bytes. The
 * listener holds a reference on each flow until the flow ends; closing the listener
 * ends them all. */
#include "config.h"

#ifdef __linux__
#define _GNU_SOURCE /* recvmmsg */
#endif

#include <errno.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "zlt-udp-listener.h"

struct _ZltUdpListener
{
  ZltListener parent_instance;

  GSocket *socket;
  GSource *source;
  GMainContext *context;
  GHashTable *flows; /* ZltUdpPeerKey (inside the flow) → ZltUdpFlowStream, owned */
  guint8 *buf;
  guint max_flows;
  guint idle_timeout_ms;
  guint64 dropped;
  guint64 queued_bytes;
  guint64 max_queued_bytes;
};

G_DEFINE_FINAL_TYPE (ZltUdpListener, zlt_udp_listener, ZLT_TYPE_LISTENER)

enum
{
  PROP_0,
  PROP_DROPPED,
  PROP_N_FLOWS,
  PROP_MAX_FLOWS,
  PROP_IDLE_TIMEOUT_MS,
  PROP_QUEUED_BYTES,
  PROP_MAX_QUEUED_BYTES,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

/* One datagram from @from: to its peer's flow, or a new flow. FALSE when a handler of
 * the new flow closed the listener. */
static gboolean
listener_take (ZltUdpListener *self, const guint8 *buf, gsize n, const struct sockaddr *from,
               socklen_t from_len, gint64 now)
{
  ZltUdpPeerKey key;
  ZltUdpFlowStream *flow;

  if (n > ZLT_UDP_MAX_DATAGRAM || !zlt_udp_peer_key_init (&key, from, from_len))
    {
      self->dropped++;
      return TRUE;
    }
  flow = g_hash_table_lookup (self->flows, &key);
  if (flow != NULL)
    {
      zlt_udp_flow_stream_deliver (flow, buf, n, now);
      return TRUE;
    }
  if (g_hash_table_size (self->flows) >= self->max_flows)
    {
      self->dropped++;
      return TRUE;
    }
  flow = zlt_udp_flow_stream_new_for_listener (self, self->socket, from, from_len,
                                               self->idle_timeout_ms);
  g_hash_table_insert (self->flows, (gpointer) zlt_udp_flow_stream_get_key (flow), flow);
  {
    g_autoptr (ZltUdpFlowStream) hold = g_object_ref (flow);

    zlt_listener_emit_incoming (ZLT_LISTENER (self), G_IO_STREAM (hold),
                                zlt_udp_flow_stream_get_peer (hold));
    if (zlt_listener_is_closed (ZLT_LISTENER (self)))
      return FALSE;
    /* a handler that closed the flow made it drop this */
    zlt_udp_flow_stream_deliver (hold, buf, n, now);
  }
  return TRUE;
}

/* Takes what the socket has, a bounded batch per dispatch: ZLT_UDP_RECV_MMSG datagrams
 * per recvmmsg() where there is one. */
static gboolean
on_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  ZltUdpListener *self = user_data;
  g_autoptr (ZltUdpListener) keep G_GNUC_UNUSED = g_object_ref (self);
  gint64 now = g_get_monotonic_time ();
  int fd = g_socket_get_fd (socket);
  struct sockaddr_storage from[ZLT_UDP_RECV_MMSG];
#ifdef __linux__
  struct mmsghdr msgs[ZLT_UDP_RECV_MMSG];
  struct iovec iov[ZLT_UDP_RECV_MMSG];
#endif

  for (guint i = 0; i < ZLT_UDP_RECV_BATCH;)
    {
      guint want = 1;
      int got = 1;
      gssize n = 0;
      socklen_t from_len = sizeof from[0];

#ifdef __linux__
      want = MIN (ZLT_UDP_RECV_MMSG, ZLT_UDP_RECV_BATCH - i);
      for (guint k = 0; k < want; k++)
        {
          iov[k].iov_base = self->buf + (gsize) k * ZLT_UDP_RECV_BUFFER;
          iov[k].iov_len = ZLT_UDP_RECV_BUFFER;
          memset (&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
          msgs[k].msg_hdr.msg_name = &from[k];
          msgs[k].msg_hdr.msg_namelen = sizeof from[k];
        }
      got = recvmmsg (fd, msgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
      if (got < 0)
        n = -1;
#else
      n = recvfrom (fd, self->buf, ZLT_UDP_RECV_BUFFER, MSG_DONTWAIT | MSG_TRUNC,
                    (struct sockaddr *) &from[0], &from_len);
#endif
      if (n < 0)
        {
          int errsv = errno;

          if (errsv == EINTR)
            continue;
          if (errsv != EAGAIN && errsv != EWOULDBLOCK)
            g_debug ("udp listener: failed to receive: %s", g_strerror (errsv));
          break;
        }
      for (int k = 0; k < got; k++)
        {
#ifdef __linux__
          n = (gssize) msgs[k].msg_len;
          from_len = msgs[k].msg_hdr.msg_namelen;
#endif
          if (!listener_take (self, self->buf + (gsize) k * ZLT_UDP_RECV_BUFFER, (gsize) n,
                              (struct sockaddr *) &from[k], from_len, now))
            return G_SOURCE_REMOVE;
        }
      i += (guint) got;
      /* fewer than asked for: the socket has no more now */
      if ((guint) got < want)
        break;
    }
  return G_SOURCE_CONTINUE;
}

/**
 * zlt_udp_listener_forget:
 * For flows: @flow ended; the listener drops it (and its reference on it).
 */
void
zlt_udp_listener_forget (ZltUdpListener *self, ZltUdpFlowStream *flow)
{
  const ZltUdpPeerKey *key;

  g_return_if_fail (ZLT_IS_UDP_LISTENER (self));
  g_return_if_fail (ZLT_IS_UDP_FLOW_STREAM (flow));

  key = zlt_udp_flow_stream_get_key (flow);
  if (self->flows != NULL && g_hash_table_lookup (self->flows, key) == flow)
    g_hash_table_remove (self->flows, key);
}

gboolean
zlt_udp_listener_reserve (ZltUdpListener *self, gsize len)
{
  g_return_val_if_fail (ZLT_IS_UDP_LISTENER (self), FALSE);

  if (self->queued_bytes + len > self->max_queued_bytes)
    return FALSE;
  self->queued_bytes += len;
  return TRUE;
}

void
zlt_udp_listener_release (ZltUdpListener *self, gsize len)
{
  g_return_if_fail (ZLT_IS_UDP_LISTENER (self));

  self->queued_bytes -= MIN (self->queued_bytes, (guint64) len);
}

static void
zlt_udp_listener_close (ZltListener *listener)
{
  ZltUdpListener *self = ZLT_UDP_LISTENER (listener);
  g_autoptr (GPtrArray) flows = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  if (self->source != NULL)
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
    }
  /* take the flows out first: ending one must not touch the table being walked */
  g_hash_table_iter_init (&iter, self->flows);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_ptr_array_add (flows, value);
      g_hash_table_iter_steal (&iter);
    }
  for (guint i = 0; i < flows->len; i++)
    zlt_udp_flow_stream_detach (g_ptr_array_index (flows, i));
  if (self->socket != NULL)
    g_socket_close (self->socket, NULL);
}

static void
zlt_udp_listener_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltUdpListener *self = ZLT_UDP_LISTENER (object);

  switch (prop_id)
    {
    case PROP_DROPPED:
      g_value_set_uint64 (value, self->dropped);
      break;
    case PROP_N_FLOWS:
      g_value_set_uint (value, g_hash_table_size (self->flows));
      break;
    case PROP_MAX_FLOWS:
      g_value_set_uint (value, self->max_flows);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_QUEUED_BYTES:
      g_value_set_uint64 (value, self->queued_bytes);
      break;
    case PROP_MAX_QUEUED_BYTES:
      g_value_set_uint64 (value, self->max_queued_bytes);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_udp_listener_set_property (GObject *object, guint prop_id, const GValue *value,
                               GParamSpec *pspec)
{
  ZltUdpListener *self = ZLT_UDP_LISTENER (object);
  guint64 v64;
  guint v;

  switch (prop_id)
    {
    case PROP_MAX_FLOWS:
      v = g_value_get_uint (value);
      if (v != self->max_flows)
        {
          self->max_flows = v;
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_IDLE_TIMEOUT_MS:
      v = g_value_get_uint (value);
      if (v != self->idle_timeout_ms)
        {
          self->idle_timeout_ms = v;
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_MAX_QUEUED_BYTES:
      v64 = g_value_get_uint64 (value);
      if (v64 != self->max_queued_bytes)
        {
          self->max_queued_bytes = v64;
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
    }
}

static void
zlt_udp_listener_dispose (GObject *object)
{
  ZltUdpListener *self = ZLT_UDP_LISTENER (object);

  zlt_listener_close (ZLT_LISTENER (self));
  g_clear_object (&self->socket);
  g_clear_pointer (&self->context, g_main_context_unref);
  G_OBJECT_CLASS (zlt_udp_listener_parent_class)->dispose (object);
}

static void
zlt_udp_listener_finalize (GObject *object)
{
  ZltUdpListener *self = ZLT_UDP_LISTENER (object);

  g_hash_table_unref (self->flows);
  g_free (self->buf);
  G_OBJECT_CLASS (zlt_udp_listener_parent_class)->finalize (object);
}

static void
zlt_udp_listener_set_idle_timeout (ZltListener *listener, guint timeout_ms)
{
  g_object_set (listener, "idle-timeout-ms", timeout_ms, NULL);
}

static void
zlt_udp_listener_class_init (ZltUdpListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_udp_listener_get_property;
  object_class->set_property = zlt_udp_listener_set_property;
  object_class->dispose = zlt_udp_listener_dispose;
  object_class->finalize = zlt_udp_listener_finalize;
  ZLT_LISTENER_CLASS (klass)->close = zlt_udp_listener_close;
  ZLT_LISTENER_CLASS (klass)->set_idle_timeout = zlt_udp_listener_set_idle_timeout;

  /**
   * ZltUdpListener:dropped:
   * Datagrams dropped before reaching a flow: from new peers beyond max-flows, or too
   * large. Read at any time; never notified.
   */
  props[PROP_DROPPED]
      = g_param_spec_uint64 ("dropped", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* flows alive now (ended ones are forgotten at once); never notified */
  props[PROP_N_FLOWS]
      = g_param_spec_uint ("n-flows", NULL, NULL, 0, G_MAXUINT, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_MAX_FLOWS]
      = g_param_spec_uint ("max-flows", NULL, NULL, 0, G_MAXUINT, ZLT_UDP_DEFAULT_MAX_FLOWS,
                           G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltUdpListener:idle-timeout-ms:
   * The idle timeout new flows start with (ZltUdpFlowStream:idle-timeout-ms).
   */
  props[PROP_IDLE_TIMEOUT_MS] = g_param_spec_uint (
      "idle-timeout-ms", NULL, NULL, 0, G_MAXUINT, ZLT_UDP_DEFAULT_IDLE_TIMEOUT_MS,
      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* payload bytes all flows hold in their queues now; never notified */
  props[PROP_QUEUED_BYTES]
      = g_param_spec_uint64 ("queued-bytes", NULL, NULL, 0, G_MAXUINT64, 0,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltUdpListener:max-queued-bytes:
   * What all flows may queue together; a datagram beyond it is dropped (and counted by
   * its flow) even when its own flow's queue has room.
   */
  props[PROP_MAX_QUEUED_BYTES] = g_param_spec_uint64 (
      "max-queued-bytes", NULL, NULL, 0, G_MAXUINT64, ZLT_UDP_DEFAULT_LISTENER_MAX_QUEUED,
      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_udp_listener_init (ZltUdpListener *self)
{
  self->flows
      = g_hash_table_new_full (zlt_udp_peer_key_hash, zlt_udp_peer_key_equal, NULL, g_object_unref);
  self->max_flows = ZLT_UDP_DEFAULT_MAX_FLOWS;
  self->idle_timeout_ms = ZLT_UDP_DEFAULT_IDLE_TIMEOUT_MS;
  self->max_queued_bytes = ZLT_UDP_DEFAULT_LISTENER_MAX_QUEUED;
}

/**
 * zlt_udp_listener_new:
 * @bind_address: an IP address literal
 * @port: 0 for any
 *
 * Binds a UDP socket and starts receiving on the thread-default main context.
 */
ZltListener *
zlt_udp_listener_new (const char *bind_address, guint16 port, GError **error)
{
  g_autoptr (ZltUdpListener) self = NULL;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (bind_address);
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GSocketAddress) effective = NULL;
  g_autoptr (GError) error_local = NULL;

  if (inet == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("“%s” is not an IP address to listen on"), bind_address);
      return NULL;
    }
  self = g_object_new (ZLT_TYPE_UDP_LISTENER, NULL);
  self->socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, error);
  if (self->socket == NULL)
    return NULL;
  g_socket_set_blocking (self->socket, FALSE);
  zlt_udp_socket_set_buffers (self->socket);
  address = g_inet_socket_address_new (inet, port);
  if (!g_socket_bind (self->socket, address, FALSE, &error_local))
    {
      if (g_error_matches (error_local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        g_set_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE,
                     _ ("UDP port %u is already in use on %s"), port, bind_address);
      else
        {
          g_autofree char *where = zlt_net_join_host_port (bind_address, port);
          g_propagate_prefixed_error (error, g_steal_pointer (&error_local),
                                      _ ("failed to bind UDP %s: "), where);
        }
      return NULL;
    }
  effective = g_socket_get_local_address (self->socket, error);
  if (effective == NULL)
    return NULL;
  zlt_listener_set_port (ZLT_LISTENER (self),
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
  self->buf = g_malloc ((gsize) ZLT_UDP_RECV_MMSG * ZLT_UDP_RECV_BUFFER);
  self->context = g_main_context_ref_thread_default ();
  self->source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_static_name (self->source, "zlt-udp-listener");
  /* GLib 2.74 takes a non-recursive source's fd out of the poll set for its dispatch
   * and puts it back: two eventfd writes per batch of datagrams. Nothing here runs a
   * nested main loop. */
  g_source_set_can_recurse (self->source, TRUE);
  g_source_set_callback (self->source, G_SOURCE_FUNC (on_readable), self, NULL);
  g_source_attach (self->source, self->context);
  return ZLT_LISTENER (g_steal_pointer (&self));
}
