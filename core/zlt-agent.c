/* zlt-agent.c: dial out, authenticate, register, answer Connect, stay connected.
 *
 * One control channel at a time. Everything the agent knows about the server side
 * lives on its ZltTunnel (role agent): the tunnel id, the services with the ports the
 * server assigned. Reconnects ask for those same ports again, so a public port
 * survives a network blip (session resume) and even a server restart (the port is
 * requested explicitly and is free on the fresh server). */
#include "config.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "zlt-agent.h"
#include "zlt-backoff.h"
#include "zlt-channel.h"
#include "zlt-crypto.h"
#include "zlt-heartbeat.h"
#include "zlt-message.h"
#include "zlt-net.h"
#include "zlt-proxy-header.h"
#include "zlt-relay-counted.h"
#include "zlt-source.h"
#include "zlt-standby-keeper.h"
#include "zlt-throttled-stream.h"
#include "zlt-util.h"
#include "zlt-enum-types.h"

/* A session that lasted this long resets the backoff. */
#define HEALTHY_SESSION_US (5 * G_USEC_PER_SEC)

struct _ZltAgent
{
  GObject parent_instance;

  ZltClientConfig *config;
  ZltControlTransport *control;
  ZltTransport *tcp;
  ZltTransport *udp; /* NULL without the udp plugin */
  GUri *url;
  ZltTlsOptions *tls;

  guint8 token_hash[ZLT_HASH_SIZE];
  char *key_id;
  char *token; /* sent only as §2a allows, or with legacy-auth=true */
  gboolean legacy_auth;
  ZltUuid client_id;

  gboolean running;
  GCancellable *cancellable; /* of the current connection attempt and session */
  ZltChannel *channel;
  GSource *auth_deadline; /* a server that accepts the upgrade but never answers Auth */
  ZltHeartbeat *heartbeat;
  ZltTunnel *tunnel;
  GQueue register_queue;   /* ZltService* awaiting RegisterOk/Fail, in request order */
  GPtrArray *refused;      /* ZltService* refused for a reason that can clear */
  GSource *register_retry; /* asks again for the refused ones */
  guint register_retry_ms;
  GQueue access_waiting; /* GTask* of access streams asked for while not connected */
  gboolean v2;
  guint32 server_caps;
  gboolean authenticated;
  gint64 session_started;
  guint8 session_key[ZLT_HASH_SIZE];
  gboolean have_resume;
  ZltUuid resume_id;
  guint8 resume_secret[ZLT_HASH_SIZE];
  gint64 access_expires; /* µs since the epoch; 0: not an access client, or no end */
  GNetworkMonitor *network;
  gboolean retry_fatal; /* the pending retry waits out a fatal refusal */

  ZltBackoff backoff;
  GSource *retry;
  guint retry_delay_ms;
  gboolean fatal;      /* the server said retrying soon is pointless (for the next delay) */
  gboolean last_fatal; /* :fatal, until the next successful authentication */
  char *last_error;
  guint n_sessions;
  GHashTable *relays;                 /* ZltRelay* (owned) → ZltService* (owned) */
  guint64 n_relay_errors;             /* relays that ended with a failure */
  ZltStandbyKeeper *standby;          /* the session's standby connections, if any */
  ZltLogLimit connection_failure_log; /* a dead local service fails every connection */
  gboolean proxy_unknown_logged;      /* PROXY header without the client's address, once */
  GArray *acks;                       /* ZltUuid: ConnectAcks that wait for acks_flush */
  GSource *acks_flush;                /* low-priority idle that sends them */
};

/**
 * ZltAgent:
 * The end of the tunnel behind NAT: it dials the server's control channel, proves its
 * token (PROTOCOL-v2.md §2), checks the server's proof, registers the services of its
 * [class@Zlt.ClientConfig], and for every Connect the server sends dials the local
 * service and opens a data connection back. It keeps the tunnel up: heartbeats, and
 * reconnects with exponential backoff and jitter, resuming the tunnel (same id, same
 * public ports) when the server still holds it.
 *
 * Build one with zlt_agent_new() (token from the config's `token-file` or `token-env`,
 * transports from a [class@Zlt.PluginLoader]) or zlt_agent_new_full(), connect to its
 * signals and to those of its [class@Zlt.Tunnel] (zlt_agent_get_tunnel()), then
 * zlt_agent_start().
 */

G_DEFINE_FINAL_TYPE (ZltAgent, zlt_agent, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_STATE,
  PROP_LAST_ERROR,
  PROP_N_SESSIONS,
  PROP_FATAL,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_REGISTERED,
  SIGNAL_REGISTER_FAILED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void connect_now (ZltAgent *self);
static void session_end (ZltAgent *self, const char *why);
static void session_end_full (ZltAgent *self, const char *why, const char *auth_reason);
static void access_flush (ZltAgent *self, const char *why);

static void
set_last_error (ZltAgent *self, const char *error)
{
  if (g_strcmp0 (self->last_error, error) == 0)
    return;
  g_free (self->last_error);
  self->last_error = g_strdup (error);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_LAST_ERROR]);
}

static void
set_fatal (ZltAgent *self, gboolean fatal)
{
  if (self->last_fatal == fatal)
    return;
  self->last_fatal = fatal;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_FATAL]);
}

static void
set_state (ZltAgent *self, ZltTunnelState state)
{
  if (zlt_tunnel_get_state (self->tunnel) == state)
    return;
  zlt_tunnel_set_state (self->tunnel, state);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_STATE]);
}

/* The server as the log's PEER field names it. */
static const char *
server_url (ZltAgent *self)
{
  return zlt_client_config_get_server_url (self->config);
}

static gboolean
send_message (ZltAgent *self, ZltMessage *msg)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = zlt_message_encode_bytes (msg, &error);

  if (bytes == NULL)
    {
      set_last_error (self, error->message);
      return FALSE;
    }
  if (self->channel == NULL || !zlt_channel_send (self->channel, bytes, &error))
    return FALSE;
  return TRUE;
}

/* ---- reconnecting ---- */

/* The network came back or changed (a new address, a link up): a wait for the next
 * attempt is likely waiting for nothing; try now, unless the last refusal was one a
 * new network cannot cure. The jitter of a fleet's attempts comes from when each
 * noticed. */
static void
on_network_changed (GNetworkMonitor *monitor, gboolean available, gpointer user_data)
{
  ZltAgent *self = user_data;

  if (!available || self->retry == NULL || self->retry_fatal)
    return;
  g_message ("the network changed: reconnecting now");
  zlt_source_clear (&self->retry);
  zlt_backoff_reset (&self->backoff);
  connect_now (self);
}

static gboolean
on_retry (gpointer user_data)
{
  ZltAgent *self = user_data;

  zlt_source_clear (&self->retry);
  connect_now (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (ZltAgent *self)
{
  if (!self->running || self->retry != NULL)
    return;
  if (self->authenticated && g_get_monotonic_time () - self->session_started >= HEALTHY_SESSION_US)
    zlt_backoff_reset (&self->backoff);
  if (self->fatal)
    {
      /* retrying soon cannot help; keep the backoff at its cap for after */
      zlt_backoff_max (&self->backoff);
      self->retry_delay_ms = zlt_backoff_jitter (
          (guint) MIN (zlt_client_config_get_fatal_retry (self->config) * 1000, G_MAXUINT));
    }
  else
    self->retry_delay_ms = zlt_backoff_next (&self->backoff);
  self->retry_fatal = self->fatal;
  self->fatal = FALSE;
  g_message ("reconnecting in %.1f s", self->retry_delay_ms / 1000.0);
  self->retry = zlt_timeout_source_attach (self->retry_delay_ms, on_retry, self);
}

/* ---- data connections ---- */

/* One Connect: the local service is dialed and the data connection opened at the
 * same time (neither waits for the other on the critical path), then joined. */
typedef struct
{
  ZltAgent *agent;
  ZltService *service;
  ZltUuid connection_id;
  guint pending; /* of the two operations */
  GIOStream *local;
  GIOStream *data;
  GBytes *prefix;    /* bytes that followed the data connection's 101 */
  gboolean ack_late; /* ConnectAck once the relay runs: the first bytes go first */
  /* where the connection came from, when the server said (PROTOCOL-v2.md §9) */
  gboolean has_addresses;
  ZltAddresses addresses;
} ConnectData;

static void
connect_data_free (ConnectData *d)
{
  g_object_unref (d->agent);
  g_object_unref (d->service);
  /* half of a connection that never became one: the other end sees it fail, not end */
  if (d->local != NULL)
    zlt_net_close_with_reset (d->local);
  if (d->data != NULL)
    zlt_net_close_with_reset (d->data);
  g_clear_object (&d->local);
  g_clear_object (&d->data);
  g_clear_pointer (&d->prefix, g_bytes_unref);
  g_free (d);
}

static void
on_relay_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  ZltAgent *self = user_data;

  if (zlt_relay_error_is_failure (error))
    self->n_relay_errors++;
  /* the service counts the connection closed after this (zlt-relay-counted.c) */
  g_hash_table_remove (self->relays, relay);
}

/* A public connection this agent could not carry: the user should hear of it without
 * -v (a service that is down is the commonest fault), but a client retrying in a loop
 * must not fill the log. */
static void
log_connection_failure (ZltAgent *self, const char *reason)
{
  guint suppressed = 0;

  if (!zlt_log_limit_allow (&self->connection_failure_log, &suppressed))
    return;
  if (suppressed > 0)
    g_message (_ ("%s (and %u more failed connections not logged)"), reason, suppressed);
  else
    g_message ("%s", reason);
}

/* ConnectAcks of connections whose relay runs already go out once the loop has
 * nothing more urgent: the first bytes of those connections (already read, or arriving
 * now) move before the control channel's write, and a burst's acks go out together.
 * The server only counts them (its frame budget), so late is fine; a bound keeps a
 * loop that is never idle from holding them long. */
#define ACKS_MAX 64

static void
acks_send (ZltAgent *self)
{
  for (guint i = 0; i < self->acks->len; i++)
    {
      g_autoptr (ZltMessage) ack
          = zlt_message_new_connect_ack (&g_array_index (self->acks, ZltUuid, i));
      send_message (self, ack);
    }
  g_array_set_size (self->acks, 0);
}

static gboolean
on_acks_flush (gpointer user_data)
{
  ZltAgent *self = user_data;

  zlt_source_clear (&self->acks_flush);
  acks_send (self);
  return G_SOURCE_REMOVE;
}

static void
queue_ack (ZltAgent *self, const ZltUuid *connection_id)
{
  g_array_append_val (self->acks, *connection_id);
  if (self->acks->len >= ACKS_MAX)
    {
      zlt_source_clear (&self->acks_flush);
      acks_send (self);
      return;
    }
  if (self->acks_flush != NULL)
    return;
  self->acks_flush = zlt_low_idle_source_attach (on_acks_flush, self, "zlt-agent-acks");
}

/* Acks of a session that ended are for no one. */
static void
acks_drop (ZltAgent *self)
{
  zlt_source_clear (&self->acks_flush);
  if (self->acks != NULL)
    g_array_set_size (self->acks, 0);
}

static void
connect_fail (ZltAgent *self, const ZltUuid *connection_id, const char *reason)
{
  g_autoptr (ZltMessage) fail = zlt_message_new_connect_fail (connection_id, reason);
  send_message (self, fail);
}

/* The PROXY protocol header @d's service wants before the client's first bytes
 * (PROTOCOL-v2.md §9), followed by those bytes; @d's prefix as it is when the service
 * wants none. */
static GBytes *
proxy_prefix (ZltAgent *self, ConnectData *d)
{
  const ZltServiceConfig *sc
      = zlt_client_config_lookup_service (self->config, zlt_service_get_name (d->service));
  const ZltAddresses *addresses = NULL;
  g_autoptr (GBytes) header = NULL;
  g_autoptr (GByteArray) all = NULL;

  if (sc == NULL || sc->proxy_protocol == ZLT_PROXY_PROTOCOL_NONE)
    return d->prefix != NULL ? g_bytes_ref (d->prefix) : NULL;
  if (d->has_addresses && zlt_addresses_is_valid (&d->addresses))
    addresses = &d->addresses;
  else if (!self->proxy_unknown_logged)
    {
      /* an older server, or one that could not tell: the service hears "unknown" */
      self->proxy_unknown_logged = TRUE;
      g_message ("the server sends no client addresses: %s gets PROXY headers without them "
                 "(v1 UNKNOWN, v2 LOCAL)",
                 zlt_service_get_name (d->service));
    }
  header
      = zlt_proxy_header_new (sc->proxy_protocol, zlt_service_get_protocol (d->service), addresses);
  if (d->prefix == NULL || g_bytes_get_size (d->prefix) == 0)
    return g_steal_pointer (&header);
  all = g_byte_array_sized_new ((guint) (g_bytes_get_size (header) + g_bytes_get_size (d->prefix)));
  g_byte_array_append (all, g_bytes_get_data (header, NULL), (guint) g_bytes_get_size (header));
  g_byte_array_append (all, g_bytes_get_data (d->prefix, NULL),
                       (guint) g_bytes_get_size (d->prefix));
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

/* The bucket of @service for @key, made (or remade for a new @rate) on first use and
 * kept on the service, so all its connections share it. NULL when @rate is 0. */
static ZltRateBucket *
service_bucket (ZltService *service, const char *key, guint64 rate)
{
  ZltRateBucket *bucket = g_object_get_data (G_OBJECT (service), key);

  if (rate == 0)
    return NULL;
  if (bucket != NULL && zlt_rate_bucket_get_rate (bucket) == rate)
    return bucket;
  bucket = zlt_rate_bucket_new (rate);
  g_object_set_data_full (G_OBJECT (service), key, bucket, g_object_unref);
  return bucket;
}

/* @d's local stream, behind the service's rate limits when it has any: writes to the
 * service take from its "in" bucket, reads from it from its "out" bucket. Unlimited
 * services keep the plain stream, and the relay its zero-copy path. */
static GIOStream *
limited_local (ZltAgent *self, ConnectData *d)
{
  const ZltServiceConfig *sc
      = zlt_client_config_lookup_service (self->config, zlt_service_get_name (d->service));
  ZltRateBucket *in;
  ZltRateBucket *out;

  if (sc == NULL || (sc->rate_limit_in == 0 && sc->rate_limit_out == 0))
    return g_object_ref (d->local);
  in = service_bucket (d->service, "zlt-rate-bucket-in", sc->rate_limit_in);
  out = service_bucket (d->service, "zlt-rate-bucket-out", sc->rate_limit_out);
  return zlt_throttled_stream_new (d->local, out, in);
}

/* Both operations have finished: relay, or give up (closing whatever opened). */
static void
connect_join (ConnectData *d)
{
  ZltAgent *self = d->agent;
  g_autoptr (ZltRelay) relay = NULL;

  if (--d->pending > 0)
    return;
  if (d->local != NULL && d->data != NULL)
    {
      g_autoptr (GBytes) prefix = proxy_prefix (self, d);
      g_autoptr (GIOStream) local = limited_local (self, d);

      /* a = data connection (from the public side), b = local service; the tunnel's
       * counters follow the service's; a PROXY header (when the service asks for one)
       * goes before the first byte; rate limits hold the local side */
      relay = zlt_relay_counted_new (d->data, local, ZLT_RELAY_A_TO_B, prefix, d->service);
      g_signal_connect_object (relay, "finished", G_CALLBACK (on_relay_finished), self, 0);
      g_hash_table_insert (self->relays, g_object_ref (relay), g_object_ref (d->service));
      /* the relay owns the streams now */
      g_clear_object (&d->local);
      g_clear_object (&d->data);
      zlt_relay_counted_start (relay);
    }
  if (d->ack_late)
    queue_ack (self, &d->connection_id);
  connect_data_free (d);
}

static void
data_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ConnectData *d = user_data;
  g_autoptr (GError) error = NULL;

  d->data = zlt_control_transport_open_data_finish (d->agent->control, result, &d->prefix, &error);
  if (d->data == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_autofree char *reason
          = g_strdup_printf (_ ("data connection to the server for %s failed: %s"),
                             zlt_service_get_name (d->service), error->message);
      log_connection_failure (d->agent, reason);
    }
  connect_join (d);
}

static void
local_dialed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ConnectData *d = user_data;
  ZltAgent *self = d->agent;
  g_autoptr (GError) error = NULL;

  d->local = zlt_transport_dial_finish (ZLT_TRANSPORT (source), result, &error);
  if (d->local == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree char *reason
              = g_strdup_printf (_ ("local service %s refused: %s"),
                                 zlt_service_get_name (d->service), error->message);
          log_connection_failure (self, reason);
          connect_fail (self, &d->connection_id, reason);
        }
    }
  else if (d->pending > 1)
    {
      /* the data connection is still on its way: the server may as well know now */
      g_autoptr (ZltMessage) ack = zlt_message_new_connect_ack (&d->connection_id);
      send_message (self, ack);
    }
  else
    d->ack_late = TRUE;
  connect_join (d);
}

/* Dials @d's local service; local_dialed() answers the server and joins. */
static void
dial_local (ZltAgent *self, ConnectData *d)
{
  const ZltServiceConfig *sc
      = zlt_client_config_lookup_service (self->config, zlt_service_get_name (d->service));

  /* a UDP "connection" is one flow: a framed stream over a connected UDP socket */
  zlt_transport_dial_async (
      zlt_service_get_protocol (d->service) == ZLT_PROTOCOL_UDP ? self->udp : self->tcp,
      sc && sc->local_host ? sc->local_host : "127.0.0.1", zlt_service_get_local_port (d->service),
      self->cancellable, local_dialed, d);
}

/* Whether this agent can carry a connection of @service; if not, the server hears why. */
static gboolean
can_carry (ZltAgent *self, ZltService *service, const ZltUuid *connection_id)
{
  if (service == NULL)
    {
      connect_fail (self, connection_id, _ ("unknown service"));
      return FALSE;
    }
  if (zlt_service_get_protocol (service) == ZLT_PROTOCOL_UDP && self->udp == NULL)
    {
      connect_fail (self, connection_id, _ ("this agent has no udp transport plugin"));
      return FALSE;
    }
  return TRUE;
}

/* The server bound one of our standby connections to a public connection
 * (PROTOCOL-v2.md §8): it is that connection's data connection already, with the
 * client's first bytes in @rest; only the local service is left to dial. It is
 * answered as a Connect would be (ConnectAck, or ConnectFail and a reset). */
static void
on_standby_bound (GIOStream *stream, GBytes *rest, const ZltBinding *binding, gpointer user_data)
{
  ZltAgent *self = user_data;
  ZltService *service = zlt_tunnel_lookup_service_by_id (self->tunnel, &binding->service_id);
  ConnectData *d;

  if (!can_carry (self, service, &binding->connection_id))
    {
      zlt_net_close_with_reset (stream);
      g_object_unref (stream);
      return;
    }
  d = g_new0 (ConnectData, 1);
  d->agent = g_object_ref (self);
  d->service = g_object_ref (service);
  d->connection_id = binding->connection_id;
  d->data = stream;
  d->prefix = g_bytes_ref (rest);
  d->has_addresses = binding->has_addresses;
  d->addresses = binding->addresses;
  d->pending = 1;
  dial_local (self, d);
}

static void
handle_connect (ZltAgent *self, const ZltMessage *msg)
{
  ZltService *service = zlt_tunnel_lookup_service_by_id (self->tunnel, &msg->service_id);
  ConnectData *d;
  char tid[ZLT_UUID_STRING_LEN + 1], cid[ZLT_UUID_STRING_LEN + 1];
  guint8 mac[ZLT_HASH_SIZE];
  g_autofree char *mac_hex = NULL;

  if (service != NULL && !self->v2)
    {
      connect_fail (self, &msg->connection_id, _ ("a v1 session has no data plane"));
      return;
    }
  if (!can_carry (self, service, &msg->connection_id))
    return;
  /* the server found no standby connection parked: let the pool grow */
  if (self->standby != NULL)
    zlt_standby_keeper_missed (self->standby);
  d = g_new0 (ConnectData, 1);
  d->agent = g_object_ref (self);
  d->service = g_object_ref (service);
  d->connection_id = msg->connection_id;
  d->has_addresses = zlt_message_has_ext_fields (msg, ZLT_EXT_ADDRESSES);
  d->addresses = msg->ext.addresses;
  d->pending = 2;
  dial_local (self, d);

  zlt_uuid_format (zlt_tunnel_get_id (self->tunnel), tid);
  zlt_uuid_format (&d->connection_id, cid);
  zlt_data_mac (self->session_key, zlt_tunnel_get_id (self->tunnel), &d->connection_id, mac);
  mac_hex = zlt_hex_encode (mac, sizeof mac);
  zlt_control_transport_open_data_async (self->control, self->url, self->tls, tid, cid, mac_hex,
                                         10 * 1000, self->cancellable, data_opened, d);
}

/* ---- access streams ---- */

typedef struct
{
  char *service;
  gboolean probe; /* ask whether the server would take the stream, open nothing */
  GBytes *prefix; /* bytes that followed the 101 */
} AccessData;

static void
access_data_free (AccessData *d)
{
  g_free (d->service);
  g_clear_pointer (&d->prefix, g_bytes_unref);
  g_free (d);
}

static void
access_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  AccessData *d = g_task_get_task_data (task);
  GError *error = NULL;
  GIOStream *stream;
  ZltAgent *self = g_task_get_source_object (task);

  /* the transport's task may have no source object */
  if (d->probe)
    {
      if (zlt_control_transport_probe_access_finish (self->control, result, &error))
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_error (task, error);
      return;
    }
  stream = zlt_control_transport_open_data_finish (self->control, result, &d->prefix, &error);
  if (stream == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, stream, g_object_unref);
}

/* Opens the stream of @task in the current session (PROTOCOL-v2.md §6): a fresh
 * connection id and our own tunnel id, MACed under our session key. */
static void
access_launch (ZltAgent *self, GTask *task)
{
  AccessData *d = g_task_get_task_data (task);
  ZltUuid cid;
  char tid_str[ZLT_UUID_STRING_LEN + 1], cid_str[ZLT_UUID_STRING_LEN + 1];
  guint8 mac[ZLT_HASH_SIZE];
  g_autofree char *mac_hex = NULL;

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  if (!self->v2)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_PROTOCOL,
                               _ ("the server does not offer on-demand access (a v1 server)"));
      g_object_unref (task);
      return;
    }
  /* the server offers access to tokens whose grant reaches something */
  if (!(self->server_caps & ZLT_CAP_ACCESS))
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_NOT_ALLOWED,
                               _ ("this token may reach no service through the server (its "
                                  "line in the server's token file has no reach=)"));
      g_object_unref (task);
      return;
    }
  zlt_uuid_generate (&cid);
  zlt_uuid_format (zlt_tunnel_get_id (self->tunnel), tid_str);
  zlt_uuid_format (&cid, cid_str);
  zlt_data_mac (self->session_key, zlt_tunnel_get_id (self->tunnel), &cid, mac);
  mac_hex = zlt_hex_encode (mac, sizeof mac);
  if (d->probe)
    zlt_control_transport_probe_access_async (self->control, self->url, self->tls, tid_str, cid_str,
                                              mac_hex, d->service, 10 * 1000,
                                              g_task_get_cancellable (task), access_opened, task);
  else
    zlt_control_transport_open_access_async (self->control, self->url, self->tls, tid_str, cid_str,
                                             mac_hex, d->service, 10 * 1000,
                                             g_task_get_cancellable (task), access_opened, task);
}

/* Starts the access streams that waited for a session (@why == NULL), or fails them
 * with @why: the attempt they waited for did not succeed. */
static void
access_flush (ZltAgent *self, const char *why)
{
  GTask *task;

  while ((task = g_queue_pop_head (&self->access_waiting)) != NULL)
    {
      if (why == NULL)
        access_launch (self, task);
      else
        {
          g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_CLOSED, "%s", why);
          g_object_unref (task);
        }
    }
}

static void
access_start (ZltAgent *self, const char *service, gboolean probe, GCancellable *cancellable,
              GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
  g_autoptr (GTask) task = NULL;
  AccessData *d;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tag);
  if (!zlt_service_name_is_valid (service))
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                               _ ("“%s” is not a valid service name"), service);
      return;
    }
  if (!self->running)
    {
      g_task_return_new_error (task, ZLT_ERROR, ZLT_ERROR_CLOSED, _ ("the agent is not running"));
      return;
    }
  d = g_new0 (AccessData, 1);
  d->service = g_strdup (service);
  d->probe = probe;
  g_task_set_task_data (task, d, (GDestroyNotify) access_data_free);
  if (self->authenticated && self->channel != NULL)
    access_launch (self, g_steal_pointer (&task));
  else
    g_queue_push_tail (&self->access_waiting, g_steal_pointer (&task));
}

/**
 * zlt_agent_open_access_async:
 * @self: an agent
 * @service: the name of a service some agent registered on the server
 * @cancellable: (nullable): to give up
 * @callback: (scope async): called with the stream
 * @user_data: data for @callback
 *
 * Opens one access stream to @service through the server: a byte stream that the
 * server joins to a new connection of that service, exactly as if it had come to the
 * service's public port (PROTOCOL-v2.md §6). The agent's token must reach @service.
 * While the agent is connecting, the stream waits for that attempt; a stopped agent
 * fails at once. [class@Zlt.AccessManager] does this for every connection to a local
 * port.
 */
void
zlt_agent_open_access_async (ZltAgent *self, const char *service, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (ZLT_IS_AGENT (self));
  g_return_if_fail (service != NULL);

  access_start (self, service, FALSE, cancellable, callback, user_data,
                zlt_agent_open_access_async);
}

/**
 * zlt_agent_probe_access_async:
 * @self: an agent
 * @service: the name of a service some agent registered on the server
 * @cancellable: (nullable): to give up
 * @callback: (scope async): called with the answer
 * @user_data: data for @callback
 *
 * Asks the server whether an access stream to @service would be accepted now (the
 * token reaches it, it exists, its agent is connected), without opening one: nothing
 * reaches the service. Waits for the agent's session like
 * zlt_agent_open_access_async().
 */
void
zlt_agent_probe_access_async (ZltAgent *self, const char *service, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (ZLT_IS_AGENT (self));
  g_return_if_fail (service != NULL);

  access_start (self, service, TRUE, cancellable, callback, user_data,
                zlt_agent_probe_access_async);
}

/**
 * zlt_agent_probe_access_finish:
 * @self: an agent
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE when an access stream would be accepted; else %FALSE with the
 *   server's refusal (as zlt_agent_open_access_finish() reports it)
 */
gboolean
zlt_agent_probe_access_finish (ZltAgent *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * zlt_agent_open_access_finish:
 * @self: an agent
 * @result: the result given to the callback
 * @prefix: (out) (optional) (nullable) (transfer full): bytes of the service that arrived
 *   with the server's 101; they come before anything read from the stream
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the access stream, or %NULL with @error set (a refusal of
 *   the server maps 403 to %ZLT_ERROR_NOT_ALLOWED, 404 to %ZLT_ERROR_NOT_FOUND and 409
 *   to %ZLT_ERROR_DUPLICATE_NAME)
 */
GIOStream *
zlt_agent_open_access_finish (ZltAgent *self, GAsyncResult *result, GBytes **prefix, GError **error)
{
  GIOStream *stream;
  AccessData *d;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  stream = g_task_propagate_pointer (G_TASK (result), error);
  d = g_task_get_task_data (G_TASK (result));
  if (stream != NULL && prefix != NULL)
    *prefix = d->prefix ? g_bytes_ref (d->prefix) : g_bytes_new (NULL, 0);
  return stream;
}

/* ---- registration ---- */

static void
register_service (ZltAgent *self, ZltService *service)
{
  guint16 port = zlt_service_get_assigned_port (service);
  g_autoptr (ZltMessage) reg = NULL;
  const ZltServiceConfig *sc;

  /* once the server chose a port, keep asking for that one */
  if (port == 0)
    port = zlt_service_get_requested_port (service);
  reg = zlt_message_new_register (zlt_service_get_name (service),
                                  zlt_service_get_protocol (service),
                                  zlt_service_get_local_port (service), port);
  if (self->v2 && zlt_service_get_expose (service) == ZLT_EXPOSE_INTERNAL)
    zlt_message_set_expose (reg, ZLT_EXPOSE_INTERNAL);
  /* the owner's own limits for its service; the server applies the stricter */
  sc = zlt_client_config_lookup_service (self->config, zlt_service_get_name (service));
  if (self->v2 && sc != NULL && sc->max_connections != 0)
    zlt_message_set_max_connections (reg, sc->max_connections);
  if (self->v2 && sc != NULL && sc->idle_timeout != 0)
    zlt_message_set_idle_timeout (reg, sc->idle_timeout);
  /* reached by name on the server's shared ports, not by a port of its own */
  if (self->v2 && sc != NULL && sc->hostname != NULL)
    zlt_message_set_hostname (reg, sc->hostname);
  zlt_service_set_state (service, ZLT_SERVICE_STATE_REGISTERING, NULL);
  if (send_message (self, reg))
    g_queue_push_tail (&self->register_queue, g_object_ref (service));
}

/* Refusals that can clear by themselves (the port is held by another program, or
 * kept a while for its previous owner; the range or a share is full) are asked again,
 * from 1 s doubling to 30 s, as long as the session lasts. */
#define REGISTER_RETRY_MIN_MS 1000
#define REGISTER_RETRY_MAX_MS 30000

static gboolean
refusal_can_clear (const GError *error)
{
  return g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE)
         || g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED)
         || g_error_matches (error, ZLT_ERROR, ZLT_ERROR_LIMIT);
}

static gboolean
on_register_retry (gpointer user_data)
{
  ZltAgent *self = user_data;
  g_autoptr (GPtrArray) refused = g_steal_pointer (&self->refused);

  zlt_source_clear (&self->register_retry);
  self->refused = g_ptr_array_new_with_free_func (g_object_unref);
  self->register_retry_ms = MIN (self->register_retry_ms * 2, REGISTER_RETRY_MAX_MS);
  for (guint i = 0; i < refused->len; i++)
    {
      ZltService *service = g_ptr_array_index (refused, i);

      /* removed meanwhile: nothing to ask for */
      if (zlt_tunnel_lookup_service (self->tunnel, zlt_service_get_name (service)) == service)
        register_service (self, service);
    }
  return G_SOURCE_REMOVE;
}

static void
retry_register_later (ZltAgent *self, ZltService *service)
{
  if (!g_ptr_array_find (self->refused, service, NULL))
    g_ptr_array_add (self->refused, g_object_ref (service));
  if (self->register_retry != NULL)
    return;
  if (self->register_retry_ms == 0)
    self->register_retry_ms = REGISTER_RETRY_MIN_MS;
  g_message (_ ("asking again for %s in %u s"), zlt_service_get_name (service),
             self->register_retry_ms / 1000);
  self->register_retry
      = zlt_timeout_source_attach (self->register_retry_ms, on_register_retry, self);
}

static void
forget_refusals (ZltAgent *self)
{
  zlt_source_clear (&self->register_retry);
  g_ptr_array_set_size (self->refused, 0);
  self->register_retry_ms = 0;
}

static void
handle_register_reply (ZltAgent *self, const ZltMessage *msg)
{
  g_autoptr (ZltService) service = g_queue_pop_head (&self->register_queue);

  if (service == NULL)
    {
      session_end (self, _ ("server sent a registration reply nobody asked for"));
      return;
    }
  if (msg->type == ZLT_MESSAGE_REGISTER_OK)
    {
      g_autofree char *tid = zlt_tunnel_dup_id_string (self->tunnel);

      zlt_service_set_id (service, &msg->service_id);
      if (zlt_message_has_ext_fields (msg, ZLT_EXT_ASSIGNED_PORT))
        zlt_service_set_assigned_port (service, msg->ext.assigned_port);
      else if (zlt_service_get_requested_port (service) != 0)
        zlt_service_set_assigned_port (service, zlt_service_get_requested_port (service));
      zlt_service_set_state (service, ZLT_SERVICE_STATE_REGISTERED, NULL);
      zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_SERVICE_REGISTERED, tid,
                     zlt_service_get_name (service), server_url (self),
                     "service %s registered, public port %u", zlt_service_get_name (service),
                     zlt_service_get_assigned_port (service));
      /* standby connections once there is something for them to carry */
      if (self->standby != NULL)
        zlt_standby_keeper_start (self->standby);
      if (self->refused->len == 0 && self->register_retry == NULL)
        self->register_retry_ms = 0;
      g_signal_emit (self, signals[SIGNAL_REGISTERED], 0, service);
    }
  else
    {
      g_autofree char *reason = zlt_log_escape (msg->reason, 400);
      g_autoptr (GError) error = g_error_new (
          ZLT_ERROR,
          zlt_message_has_ext_fields (msg, ZLT_EXT_CODE) ? zlt_reason_code_to_error (msg->ext.code)
                                                         : ZLT_ERROR_FAILED,
          _ ("server refused service %s: %s"), zlt_service_get_name (service), reason);

      /* the port we had is gone (another program took it, or the server's range
       * changed): a service configured for any port takes any port */
      if (zlt_service_get_requested_port (service) == 0
          && zlt_service_get_assigned_port (service) != 0
          && (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE)
              || g_error_matches (error, ZLT_ERROR, ZLT_ERROR_PORT_OUT_OF_RANGE)))
        {
          g_message (_ ("public port %u of %s is no longer available, asking for any port"),
                     zlt_service_get_assigned_port (service), zlt_service_get_name (service));
          zlt_service_set_assigned_port (service, 0);
          register_service (self, service);
          return;
        }
      {
        g_autofree char *tid = zlt_tunnel_dup_id_string (self->tunnel);

        zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_SERVICE_REFUSED, tid,
                       zlt_service_get_name (service), server_url (self), "%s", error->message);
      }
      set_last_error (self, error->message);
      zlt_service_set_state (service, ZLT_SERVICE_STATE_REFUSED, error->message);
      g_signal_emit (self, signals[SIGNAL_REGISTER_FAILED], 0, service, error);
      if (refusal_can_clear (error))
        retry_register_later (self, service);
    }
}

/* ---- authentication ---- */

/* Standby connections (PROTOCOL-v2.md §8) are asked for when the config wants some and
 * the transport can open them. */
static gboolean
wants_standby (ZltAgent *self)
{
  return zlt_client_config_get_standby_connections (self->config) > 0
         && zlt_control_transport_can_open_standby (self->control);
}

/* Why the raw token may not go to this server although it asked for it
 * (PROTOCOL-v2.md §2a), or NULL when it may: only over TLS whose certificate was
 * verified, by our config and by the transport's own word. */
static char *
bearer_refusal (ZltAgent *self)
{
  const char *url = zlt_client_config_get_server_url (self->config);

  if (g_ascii_strcasecmp (g_uri_get_scheme (self->url), "wss") != 0)
    return g_strdup_printf (_ ("the server asks for the token itself (bearer credential), and "
                               "%s is not TLS: refusing to send it; use wss://"),
                            url);
  if (!zlt_tls_options_verify_peer (self->tls))
    return g_strdup (_ ("the server asks for the token itself (bearer credential), and "
                        "certificate verification is off (tls-insecure=true): refusing to send "
                        "it to a server nobody verified; set tls-ca-file or tls-pinned-sha256"));
  if (!zlt_channel_get_peer_verified (self->channel))
    return g_strdup_printf (_ ("the server asks for the token itself (bearer credential), and "
                               "the control transport did not verify %s's certificate: refusing "
                               "to send it"),
                            url);
  return NULL;
}

static void
send_auth (ZltAgent *self)
{
  GBytes *nonce = zlt_channel_get_nonce (self->channel);
  g_autoptr (ZltMessage) auth = NULL;

  if (nonce != NULL)
    {
      guint8 proof[ZLT_HASH_SIZE];
      guint32 caps = ZLT_CAP_DATA_RAW | ZLT_CAP_RESUME | ZLT_CAP_UDP | ZLT_CAP_ACCESS
                     | ZLT_CAP_ADDRESSES | (wants_standby (self) ? ZLT_CAP_STANDBY : 0);
      self->v2 = TRUE;
      if (zlt_channel_get_bearer_wanted (self->channel))
        {
          g_autofree char *why = bearer_refusal (self);
          if (why != NULL)
            {
              /* nothing of the token has left: the server keeps asking, so this is fatal */
              self->fatal = TRUE;
              session_end (self, why);
              return;
            }
          auth = zlt_message_new_auth (self->token, &self->client_id);
          caps |= ZLT_CAP_BEARER;
        }
      else
        {
          auth = zlt_message_new_auth (self->key_id, &self->client_id);
          zlt_auth_proof (self->token_hash, g_bytes_get_data (nonce, NULL), &self->client_id,
                          proof);
          zlt_message_set_proof (auth, proof);
          explicit_bzero (proof, sizeof proof);
        }
      zlt_message_set_version (auth, ZLT_PROTOCOL_VERSION);
      zlt_message_set_caps (auth, caps);
      /* an access client says when it means to stop; the server holds it to that.
       * Rounded up: a server that cut it a fraction of a second early would end the
       * session before the client's own timer does */
      if (self->access_expires != 0)
        zlt_message_set_access_ttl (
            auth, (guint32) CLAMP ((self->access_expires - g_get_real_time () + G_USEC_PER_SEC - 1)
                                       / G_USEC_PER_SEC,
                                   1, (gint64) G_MAXUINT32));
      if (self->have_resume)
        {
          guint8 mac[ZLT_HASH_SIZE];
          zlt_resume_mac (self->resume_secret, g_bytes_get_data (nonce, NULL), mac);
          zlt_message_set_resume (auth, &self->resume_id, mac);
        }
    }
  else if (self->legacy_auth)
    {
      self->v2 = FALSE;
      auth = zlt_message_new_auth (self->token, &self->client_id);
    }
  else
    {
      self->fatal = TRUE;
      session_end (self, _ ("the server sent no challenge (an older server?); set legacy-auth=true "
                            "to send the raw token to it"));
      return;
    }
  send_message (self, auth);
}

static void
handle_auth_ok (ZltAgent *self, const ZltMessage *msg)
{
  GBytes *nonce = zlt_channel_get_nonce (self->channel);
  g_autoptr (GPtrArray) services = NULL;
  gboolean resumed = zlt_message_has_ext_fields (msg, ZLT_EXT_RESUMED) && msg->ext.resumed;
  char id[ZLT_UUID_STRING_LEN + 1];

  if (self->authenticated)
    {
      session_end (self, _ ("server sent AuthOk twice"));
      return;
    }
  if (self->v2)
    {
      guint8 expected[ZLT_HASH_SIZE];

      /* anyone on the path can answer AuthOk; only the real server holds our token's
       * hash. Without this proof an impostor could make us dial our services. */
      zlt_server_proof (self->token_hash, g_bytes_get_data (nonce, NULL), &self->client_id,
                        &msg->tunnel_id, expected);
      if (!zlt_message_has_ext_fields (msg, ZLT_EXT_SERVER_PROOF)
          || !zlt_secure_equal (expected, sizeof expected, msg->ext.server_proof, ZLT_HASH_SIZE))
        {
          self->fatal = TRUE;
          session_end_full (self,
                            _ ("the server did not prove it knows our token: an impostor, or "
                               "a server older than this agent"),
                            "server_proof");
          return;
        }
    }
  self->authenticated = TRUE;
  zlt_source_clear (&self->auth_deadline);
  self->session_started = g_get_monotonic_time ();
  self->n_sessions++;
  self->proxy_unknown_logged = FALSE; /* this server may tell, or not */
  zlt_tunnel_set_id (self->tunnel, &msg->tunnel_id);
  /* the tunnel object outlives sessions: its age is this session's, unless resumed */
  if (!resumed)
    zlt_tunnel_restart (self->tunnel);
  self->server_caps = zlt_message_has_ext_fields (msg, ZLT_EXT_CAPS) ? msg->ext.caps : 0;
  if (self->v2)
    zlt_session_key (self->token_hash, g_bytes_get_data (nonce, NULL), &msg->tunnel_id,
                     self->session_key);
  self->have_resume = zlt_message_has_ext_fields (msg, ZLT_EXT_RESUME_SECRET);
  if (self->have_resume)
    {
      self->resume_id = msg->tunnel_id;
      memcpy (self->resume_secret, msg->ext.resume_secret, ZLT_HASH_SIZE);
    }
  if (self->v2 && wants_standby (self) && (self->server_caps & ZLT_CAP_STANDBY)
      && zlt_message_has_ext_fields (msg, ZLT_EXT_STANDBY_MAX) && msg->ext.standby_max > 0)
    self->standby = zlt_standby_keeper_new (
        self->control, self->url, self->tls, &msg->tunnel_id, self->session_key,
        zlt_client_config_get_standby_connections (self->config), msg->ext.standby_max,
        on_standby_bound, self);
  zlt_uuid_format (&msg->tunnel_id, id);
  zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_TUNNEL_UP, id, NULL,
                 server_url (self), "tunnel %s %s", id, resumed ? "resumed" : "established");
  set_last_error (self, NULL);
  set_fatal (self, FALSE);
  self->retry_delay_ms = 0;
  set_state (self, ZLT_TUNNEL_STATE_CONNECTED);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_SESSIONS]);
  zlt_heartbeat_start (self->heartbeat);

  services = zlt_tunnel_get_services (self->tunnel);
  for (guint i = 0; i < services->len; i++)
    register_service (self, g_ptr_array_index (services, i));
  access_flush (self, NULL);
}

static void
handle_refusal (ZltAgent *self, const ZltMessage *msg)
{
  gboolean has_code = zlt_message_has_ext_fields (msg, ZLT_EXT_CODE);
  g_autofree char *reason = NULL;
  g_autofree char *text = NULL;

  /* a v1 server gives no code: its AuthFail is about the token, so do not hammer it */
  if (msg->type == ZLT_MESSAGE_AUTH_FAIL)
    self->fatal = has_code ? zlt_reason_code_is_fatal (msg->ext.code) : TRUE;
  else if (has_code)
    self->fatal = zlt_reason_code_is_fatal (msg->ext.code);
  /* an access client the server ended for its time to live: its time is up, and coming
   * back would only ask for more of what the server just refused */
  if (msg->type == ZLT_MESSAGE_DISCONNECT && has_code && msg->ext.code == ZLT_REASON_TIMEOUT
      && self->access_expires != 0)
    self->fatal = TRUE;
  /* a server going down for a restart is usually back at once: start over from the
   * shortest delay rather than where an earlier outage left the backoff */
  if (has_code && msg->ext.code == ZLT_REASON_SHUTDOWN)
    zlt_backoff_reset (&self->backoff);
  /* the server's words reach logs and D-Bus: no control characters */
  reason = zlt_log_escape (msg->reason, 400);
  text = g_strdup_printf (msg->type == ZLT_MESSAGE_AUTH_FAIL ? _ ("authentication failed: %s")
                                                             : _ ("server disconnected us: %s"),
                          reason);
  if (msg->type != ZLT_MESSAGE_AUTH_FAIL)
    session_end_full (self, text, NULL);
  else if (has_code)
    {
      g_autofree char *code_name = g_ascii_strdown (zlt_reason_code_to_string (msg->ext.code), -1);

      session_end_full (self, text, code_name);
    }
  else
    session_end_full (self, text, "unknown");
}

static void
handle_message (ZltAgent *self, const ZltMessage *msg)
{
  if (!self->authenticated && msg->type != ZLT_MESSAGE_AUTH_OK && msg->type != ZLT_MESSAGE_AUTH_FAIL
      && msg->type != ZLT_MESSAGE_DISCONNECT && msg->type != ZLT_MESSAGE_HEARTBEAT)
    {
      session_end (self, _ ("server sent a frame before AuthOk"));
      return;
    }
  switch (msg->type)
    {
    case ZLT_MESSAGE_AUTH_OK:
      handle_auth_ok (self, msg);
      break;
    case ZLT_MESSAGE_AUTH_FAIL:
    case ZLT_MESSAGE_DISCONNECT:
      handle_refusal (self, msg);
      break;
    case ZLT_MESSAGE_REGISTER_OK:
    case ZLT_MESSAGE_REGISTER_FAIL:
      handle_register_reply (self, msg);
      break;
    case ZLT_MESSAGE_CONNECT:
      handle_connect (self, msg);
      break;
    case ZLT_MESSAGE_HEARTBEAT:
      {
        g_autoptr (ZltMessage) ack = zlt_message_new_heartbeat_ack (msg->timestamp);
        if (zlt_message_has_ext_fields (msg, ZLT_EXT_TIMESTAMP_US))
          zlt_message_set_timestamp_us (ack, msg->ext.timestamp_us);
        send_message (self, ack);
      }
      break;
    case ZLT_MESSAGE_HEARTBEAT_ACK:
      if (zlt_message_has_ext_fields (msg, ZLT_EXT_TIMESTAMP_US))
        zlt_heartbeat_acked_us (self->heartbeat, msg->ext.timestamp_us);
      else
        zlt_heartbeat_acked (self->heartbeat, msg->timestamp);
      break;
    case ZLT_MESSAGE_AUTH:
    case ZLT_MESSAGE_REGISTER:
    case ZLT_MESSAGE_CONNECT_ACK:
    case ZLT_MESSAGE_CONNECT_FAIL:
    case ZLT_MESSAGE_UNREGISTER:
    default:
      session_end (self, _ ("server sent a frame only agents send"));
      break;
    }
}

static void
on_channel_message (ZltChannel *channel, GBytes *bytes, gpointer user_data)
{
  ZltAgent *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) frames = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  g_object_ref (self);
  zlt_heartbeat_received (self->heartbeat);
  zlt_tunnel_touch (self->tunnel);
  frames = zlt_message_decode_all (data, len, &error);
  if (frames == NULL)
    {
      g_autofree char *why
          = g_strdup_printf (_ ("malformed frame from server: %s"), error->message);
      session_end (self, why);
    }
  else
    for (guint i = 0; i < frames->len && self->channel == channel; i++)
      handle_message (self, g_ptr_array_index (frames, i));
  g_object_unref (self);
}

static void
on_channel_closed (ZltChannel *channel, const GError *error, gpointer user_data)
{
  ZltAgent *self = user_data;

  session_end (self, error ? error->message : _ ("server closed the connection"));
}

static void
on_heartbeat_send (ZltHeartbeat *heartbeat, guint64 timestamp_us, gpointer user_data)
{
  ZltAgent *self = user_data;
  g_autoptr (ZltMessage) hb = zlt_message_new_heartbeat (timestamp_us / 1000);

  /* a v2 server echoes the µs too: latencies below a millisecond are worth seeing */
  if (self->v2)
    zlt_message_set_timestamp_us (hb, timestamp_us);

  send_message (self, hb);
}

/* We were the silent one: say so, so nobody hunts a server fault that was ours. */
static void
on_heartbeat_stalled (ZltHeartbeat *heartbeat, guint64 away_us, gpointer user_data)
{
  g_message (
      _ ("this process did not run for at least %.1f s (it was stopped, or the machine slept): "
         "giving the server %u s to answer before reconnecting"),
      away_us / (double) G_USEC_PER_SEC, zlt_heartbeat_get_timeout_ms (heartbeat) / 1000);
}

static void
on_heartbeat_timeout (ZltHeartbeat *heartbeat, gpointer user_data)
{
  session_end (user_data, _ ("server stopped answering (heartbeat timeout)"));
}

/* Ends the current session (if any) and schedules the next attempt. @why: what ended
 * it (NULL: a deliberate stop); @auth_reason: set when the server refused our
 * credentials, the REASON of the log event (zlt_log_event_reason()). */
static void
session_end_full (ZltAgent *self, const char *why, const char *auth_reason)
{
  g_autoptr (ZltChannel) channel = g_steal_pointer (&self->channel);
  g_autofree char *tid = zlt_tunnel_dup_id_string (self->tunnel);
  gboolean was_up = zlt_tunnel_get_state (self->tunnel) == ZLT_TUNNEL_STATE_CONNECTED;

  /* before the error and the state: whoever follows those sees the flag too */
  if (self->fatal)
    set_fatal (self, TRUE);
  if (auth_reason != NULL)
    zlt_log_event_reason (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_AUTH_FAILED, NULL, NULL,
                          server_url (self), auth_reason, "%s", why);
  else if (was_up && why != NULL)
    zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_TUNNEL_DOWN, tid, NULL,
                   server_url (self), "%s", why);
  else if (was_up)
    zlt_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, ZLT_LOG_EVENT_TUNNEL_DOWN, tid, NULL,
                   server_url (self), "tunnel %s closed: the agent was stopped", tid);
  else if (why != NULL)
    g_message ("%s", why);
  if (why != NULL)
    set_last_error (self, why);
  zlt_heartbeat_stop (self->heartbeat);
  zlt_source_clear (&self->auth_deadline);
  acks_drop (self);
  /* standby connections belong to the session: the server drops its end too */
  if (self->standby != NULL)
    zlt_standby_keeper_stop (self->standby);
  g_clear_object (&self->standby);
  g_queue_clear_full (&self->register_queue, g_object_unref);
  forget_refusals (self);
  /* access streams that waited for this attempt learn why it failed */
  access_flush (self, why ? why : _ ("the agent was stopped"));
  if (channel != NULL)
    {
      g_signal_handlers_disconnect_by_data (channel, self);
      zlt_channel_close (channel, 1000, NULL);
    }
  /* connections in flight belong to the old session; relays already running keep
   * going: their data connections do not depend on the control channel */
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->running)
    {
      set_state (self, ZLT_TUNNEL_STATE_DISCONNECTED);
      schedule_retry (self);
    }
}

static void
session_end (ZltAgent *self, const char *why)
{
  session_end_full (self, why, NULL);
}

static gboolean
on_auth_deadline (gpointer user_data)
{
  ZltAgent *self = user_data;

  zlt_source_clear (&self->auth_deadline);
  session_end (self, _ ("server stopped answering (no reply to authentication)"));
  return G_SOURCE_REMOVE;
}

static void
control_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (ZltAgent) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltChannel) channel = NULL;

  channel = zlt_control_transport_connect_control_finish (self->control, result, &error);
  if (channel == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      if (g_error_matches (error, ZLT_ERROR, ZLT_ERROR_TLS))
        self->fatal = TRUE;
      {
        g_autofree char *why
            = g_strdup_printf (_ ("cannot reach %s: %s"),
                               zlt_client_config_get_server_url (self->config), error->message);
        session_end (self, why);
      }
      return;
    }
  if (!self->running)
    {
      zlt_channel_close (channel, 1001, NULL);
      return;
    }
  self->channel = g_steal_pointer (&channel);
  g_signal_connect (self->channel, "message", G_CALLBACK (on_channel_message), self);
  g_signal_connect (self->channel, "closed", G_CALLBACK (on_channel_closed), self);
  /* the heartbeat only runs once authenticated; until then the same timeout applies */
  self->auth_deadline = zlt_timeout_source_attach (zlt_heartbeat_get_timeout_ms (self->heartbeat),
                                                   on_auth_deadline, self);
  send_auth (self);
}

static void
connect_now (ZltAgent *self)
{
  if (!self->running)
    return;
  self->authenticated = FALSE;
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  set_state (self, ZLT_TUNNEL_STATE_CONNECTING);
  zlt_control_transport_connect_control_async (self->control, self->url, self->tls, 10 * 1000,
                                               self->cancellable, control_connected,
                                               g_object_ref (self));
}

/* ---- public API ---- */

/**
 * zlt_agent_start:
 * @self: an agent
 *
 * Connects, and keeps reconnecting (exponential backoff with jitter) until
 * zlt_agent_stop().
 */
void
zlt_agent_start (ZltAgent *self)
{
  g_return_if_fail (ZLT_IS_AGENT (self));
  if (self->running)
    return;
  self->running = TRUE;
  zlt_backoff_reset (&self->backoff);
  connect_now (self);
}

/**
 * zlt_agent_stop:
 * @self: an agent
 *
 * Disconnects (a v2 agent says so, and the server then holds nothing for a resume),
 * closes every relayed connection and stops retrying.
 */
void
zlt_agent_stop (ZltAgent *self)
{
  g_autoptr (GPtrArray) relays = NULL;

  g_return_if_fail (ZLT_IS_AGENT (self));
  if (!self->running)
    return;
  self->running = FALSE;
  zlt_source_clear (&self->retry);
  /* a deliberate stop says so: the server then holds nothing for a resume, and the
   * token's next session gets the same ports at once (PROTOCOL-v2.md §4) */
  if (self->authenticated && self->v2 && self->channel != NULL)
    {
      g_autoptr (ZltMessage) bye = zlt_message_new_disconnect (_ ("agent stopped"));
      send_message (self, bye);
    }
  session_end (self, NULL);
  relays = zlt_hash_table_ref_keys (self->relays);
  for (guint i = 0; i < relays->len; i++)
    zlt_relay_close (g_ptr_array_index (relays, i));
  set_state (self, ZLT_TUNNEL_STATE_DISCONNECTED);
}

/**
 * zlt_agent_get_tunnel:
 * @self: an agent
 *
 * Returns: (transfer none): the agent's view of its tunnel: id, state, services with
 *   their public ports, and the signals of their connections
 */
ZltTunnel *
zlt_agent_get_tunnel (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), NULL);
  return self->tunnel;
}

/**
 * zlt_agent_get_state:
 * @self: an agent
 *
 * Returns: the state of the tunnel (#ZltAgent:state)
 */
ZltTunnelState
zlt_agent_get_state (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), ZLT_TUNNEL_STATE_FAILED);
  return zlt_tunnel_get_state (self->tunnel);
}

/**
 * zlt_agent_get_last_error:
 * @self: an agent
 *
 * Returns: (nullable): the last failure, for people (#ZltAgent:last-error)
 */
const char *
zlt_agent_get_last_error (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), NULL);
  return self->last_error;
}

/**
 * zlt_agent_get_fatal:
 * @self: an agent
 *
 * Returns: whether the last failure will not fix itself by retrying (bad or expired
 *   token, legacy authentication refused, TLS trust); kept until the next
 *   authentication (#ZltAgent:fatal)
 */
gboolean
zlt_agent_get_fatal (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), FALSE);
  return self->last_fatal;
}

/**
 * zlt_agent_get_n_sessions:
 * @self: an agent
 *
 * Returns: the completed authentications: first connect and every reconnect
 */
guint
zlt_agent_get_n_sessions (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), 0);
  return self->n_sessions;
}

/**
 * zlt_agent_get_retry_delay_ms:
 * @self: an agent
 *
 * Returns: the delay chosen for the next reconnect, in ms; 0 when connected
 */
guint
zlt_agent_get_retry_delay_ms (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), 0);
  return self->retry_delay_ms;
}

/**
 * zlt_agent_get_latency_us:
 * @self: an agent
 *
 * Returns: the round trip of the last heartbeat in µs; -1 before the first
 */
gint64
zlt_agent_get_latency_us (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), -1);
  return zlt_heartbeat_get_latency_us (self->heartbeat);
}

/**
 * zlt_agent_get_n_relay_errors:
 * @self: an agent
 *
 * Returns: relayed connections that ended with a failure (a reset, an I/O error, an
 *   idle timeout; not a close of either end nor one the agent made) since the agent was
 *   made
 */
guint64
zlt_agent_get_n_relay_errors (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), 0);
  return self->n_relay_errors;
}

/**
 * zlt_agent_get_n_relays:
 * @self: an agent
 *
 * Returns: the connections the agent relays now
 */
guint
zlt_agent_get_n_relays (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), 0);
  return g_hash_table_size (self->relays);
}

/**
 * zlt_agent_get_n_standby:
 * @self: an agent
 *
 * Returns: the standby data connections this agent holds parked at the server now
 *   (PROTOCOL-v2.md §8), not counting those still opening
 */
guint
zlt_agent_get_n_standby (ZltAgent *self)
{
  g_return_val_if_fail (ZLT_IS_AGENT (self), 0);
  return self->standby != NULL ? zlt_standby_keeper_get_n_parked (self->standby) : 0;
}

static ZltService *
service_from_config (const ZltServiceConfig *sc)
{
  ZltService *service = zlt_service_new (sc->name, sc->protocol, sc->local_port, sc->expose);

  zlt_service_set_requested_port (service, sc->remote_port);
  zlt_service_set_hostname (service, sc->hostname);
  return service;
}

/**
 * zlt_agent_add_service:
 * @self: an agent
 * @service: the service to add
 * @error: return location for a #GError
 *
 * Adds a service at run time, to the config and the tunnel; it is registered at once
 * when the agent is connected (see #ZltAgent::registered). Fails for an invalid service
 * or a name the agent already has.
 *
 * Returns: %TRUE when the service was added
 */
gboolean
zlt_agent_add_service (ZltAgent *self, const ZltServiceConfig *sc, GError **error)
{
  g_autoptr (ZltService) service = NULL;

  g_return_val_if_fail (ZLT_IS_AGENT (self), FALSE);
  if (!zlt_client_config_add_service (self->config, sc, error))
    return FALSE;
  service = service_from_config (sc);
  if (!zlt_tunnel_add_service (self->tunnel, service, error))
    {
      zlt_client_config_remove_service (self->config, sc->name);
      return FALSE;
    }
  if (self->authenticated && self->channel != NULL)
    register_service (self, service);
  return TRUE;
}

/**
 * zlt_agent_remove_service:
 * @self: an agent
 * @name: a service name
 * @error: return location for a #GError
 *
 * Removes a service at run time and unregisters it when connected. Fails with %ZLT_ERROR_NOT_FOUND for an unknown name.
 *
 * Returns: %TRUE when the service was removed
 */
gboolean
zlt_agent_remove_service (ZltAgent *self, const char *name, GError **error)
{
  ZltService *service;

  g_return_val_if_fail (ZLT_IS_AGENT (self), FALSE);
  service = zlt_tunnel_lookup_service (self->tunnel, name);
  if (service == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no service named “%s”"), name);
      return FALSE;
    }
  if (self->authenticated && self->channel != NULL
      && !zlt_uuid_is_nil (zlt_service_get_id (service)))
    {
      g_autoptr (ZltMessage) unreg = zlt_message_new_unregister (zlt_service_get_id (service));
      send_message (self, unreg);
    }
  zlt_tunnel_remove_service (self->tunnel, service);
  zlt_client_config_remove_service (self->config, name);
  return TRUE;
}

static void
zlt_agent_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltAgent *self = ZLT_AGENT (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_enum (value, zlt_tunnel_get_state (self->tunnel));
      break;
    case PROP_LAST_ERROR:
      g_value_set_string (value, self->last_error);
      break;
    case PROP_N_SESSIONS:
      g_value_set_uint (value, self->n_sessions);
      break;
    case PROP_FATAL:
      g_value_set_boolean (value, self->last_fatal);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_agent_dispose (GObject *object)
{
  ZltAgent *self = ZLT_AGENT (object);

  if (self->running)
    zlt_agent_stop (self);
  if (self->heartbeat != NULL)
    g_signal_handlers_disconnect_by_data (self->heartbeat, self);
  g_clear_object (&self->heartbeat);
  zlt_source_clear (&self->register_retry);
  g_clear_pointer (&self->refused, g_ptr_array_unref);
  if (self->network != NULL)
    g_signal_handlers_disconnect_by_data (self->network, self);
  g_clear_object (&self->network);
  g_clear_pointer (&self->relays, g_hash_table_unref);
  acks_drop (self);
  g_clear_pointer (&self->acks, g_array_unref);
  g_clear_object (&self->tunnel);
  g_clear_object (&self->control);
  g_clear_object (&self->tcp);
  g_clear_object (&self->udp);
  g_clear_object (&self->config);
  G_OBJECT_CLASS (zlt_agent_parent_class)->dispose (object);
}

static void
zlt_agent_finalize (GObject *object)
{
  ZltAgent *self = ZLT_AGENT (object);

  g_clear_pointer (&self->url, g_uri_unref);
  zlt_tls_options_free (self->tls);
  g_free (self->key_id);
  if (self->token != NULL)
    explicit_bzero (self->token, strlen (self->token));
  g_free (self->token);
  memset (self->token_hash, 0, sizeof self->token_hash);
  g_free (self->last_error);
  G_OBJECT_CLASS (zlt_agent_parent_class)->finalize (object);
}

static void
zlt_agent_class_init (ZltAgentClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_agent_get_property;
  object_class->dispose = zlt_agent_dispose;
  object_class->finalize = zlt_agent_finalize;

  /**
   * ZltAgent:state:
   * Where the agent's tunnel stands: connecting, connected (authenticated), disconnected
   * (waiting to retry), failed.
   */
  props[PROP_STATE]
      = g_param_spec_enum ("state", NULL, NULL, ZLT_TYPE_TUNNEL_STATE, ZLT_TUNNEL_STATE_PENDING,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltAgent:last-error:
   * The last failure, for people; %NULL before any.
   */
  props[PROP_LAST_ERROR]
      = g_param_spec_string ("last-error", NULL, NULL, NULL,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltAgent:n-sessions:
   * Completed authentications: the first connect and every reconnect.
   */
  props[PROP_N_SESSIONS]
      = g_param_spec_uint ("n-sessions", NULL, NULL, 0, G_MAXUINT, 0,
                           G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltAgent:fatal:
   * Whether the last failure was one that retrying will not fix as things are (a bad
   * or expired token, a refused legacy authentication, an untrusted TLS certificate);
   * %TRUE until the next successful authentication, whatever fails meanwhile.
   */
  props[PROP_FATAL]
      = g_param_spec_boolean ("fatal", NULL, NULL, FALSE,
                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * ZltAgent::registered:
   * @self: the agent
   * @service: the service, with its public port (zlt_service_get_assigned_port(); 0 for an
   *   internal one)
   *
   * The server accepted a service: after every authentication, for each service, and for
   * each service added at run time.
   */
  signals[SIGNAL_REGISTERED]
      = g_signal_new ("registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
  /**
   * ZltAgent::register-failed:
   * @self: the agent
   * @service: the service
   * @error: the server's refusal (%ZLT_ERROR_DUPLICATE_NAME, %ZLT_ERROR_NOT_ALLOWED,
   *   %ZLT_ERROR_PORT_IN_USE, ...)
   *
   * The server refused a service. The agent tries again later, as names and ports may
   * free up.
   */
  signals[SIGNAL_REGISTER_FAILED]
      = g_signal_new ("register-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 2, ZLT_TYPE_SERVICE, G_TYPE_ERROR);
}

static void
zlt_agent_init (ZltAgent *self)
{
  self->tunnel = zlt_tunnel_new (ZLT_ROLE_AGENT);
  self->relays = g_hash_table_new_full (NULL, NULL, g_object_unref, g_object_unref);
  self->acks = g_array_new (FALSE, FALSE, sizeof (ZltUuid));
  g_queue_init (&self->register_queue);
  self->refused = g_ptr_array_new_with_free_func (g_object_unref);
  g_queue_init (&self->access_waiting);
  zlt_uuid_generate (&self->client_id);
  self->connection_failure_log = (ZltLogLimit) ZLT_LOG_LIMIT_INIT (10, 60);
}

/**
 * zlt_agent_new_full:
 * @config: the agent's config; its token source is not read
 * @token: the token
 * @control: the control channel's transport ("websocket")
 * @tcp: the transport for local TCP services
 * @udp: (nullable): the transport for local UDP services; %NULL: no UDP
 *
 * The same as zlt_agent_new() with every part given. @token is only kept as its hash
 * unless the config allows raw-token (legacy) authentication.
 *
 * Returns: (transfer full): a new agent, not started
 */
ZltAgent *
zlt_agent_new_full (ZltClientConfig *config, const char *token, ZltControlTransport *control,
                    ZltTransport *tcp, ZltTransport *udp)
{
  g_autoptr (ZltAgent) self = NULL;
  GPtrArray *services;
  ZltTlsOptions tls = { 0 };
  g_autoptr (GError) error = NULL;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (config), NULL);
  g_return_val_if_fail (token != NULL, NULL);
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (control), NULL);
  g_return_val_if_fail (ZLT_IS_TRANSPORT (tcp), NULL);

  self = g_object_new (ZLT_TYPE_AGENT, NULL);
  self->config = g_object_ref (config);
  self->control = g_object_ref (control);
  self->tcp = g_object_ref (tcp);
  self->udp = udp ? g_object_ref (udp) : NULL;
  /* the config validated the URL */
  self->url = g_uri_parse (zlt_client_config_get_server_url (config), G_URI_FLAGS_NONE, &error);
  g_return_val_if_fail (self->url != NULL, NULL);
  if (g_strcmp0 (g_uri_get_scheme (self->url), "ws") == 0
      && !zlt_net_host_is_loopback (g_uri_get_host (self->url)))
    g_warning ("%s is plain ws://: the tunnel's traffic and its control messages cross the "
               "network unencrypted; use wss://",
               zlt_client_config_get_server_url (config));
  tls.ca_file = (char *) zlt_client_config_get_tls_ca_file (config);
  tls.pinned_sha256 = (char *) zlt_client_config_get_tls_pinned_sha256 (config);
  tls.insecure = zlt_client_config_get_tls_insecure (config);
  if (tls.insecure)
    g_message ("TLS certificate verification is OFF (tls-insecure=true): anyone on the path can "
               "impersonate the server");
  self->tls = zlt_tls_options_copy (&tls);

  zlt_token_hash_raw (token, self->token_hash);
  self->key_id = zlt_token_key_id (token);
  self->token = g_strdup (token);
  self->legacy_auth = zlt_client_config_get_legacy_auth (config);

  self->heartbeat = zlt_heartbeat_new (zlt_client_config_get_heartbeat_interval (config) * 1000,
                                       zlt_client_config_get_heartbeat_timeout (config) * 1000);
  g_signal_connect (self->heartbeat, "send", G_CALLBACK (on_heartbeat_send), self);
  g_signal_connect (self->heartbeat, "timeout", G_CALLBACK (on_heartbeat_timeout), self);
  g_signal_connect (self->heartbeat, "stalled", G_CALLBACK (on_heartbeat_stalled), self);
  zlt_backoff_init (&self->backoff, (guint) (zlt_client_config_get_backoff_min (config) * 1000),
                    (guint) (zlt_client_config_get_backoff_max (config) * 1000));

  services = zlt_client_config_get_services (config);
  for (guint i = 0; i < services->len; i++)
    {
      g_autoptr (ZltService) service = service_from_config (g_ptr_array_index (services, i));
      zlt_tunnel_add_service (self->tunnel, service, NULL);
    }
  zlt_agent_set_network_monitor (self, g_network_monitor_get_default ());
  return g_steal_pointer (&self);
}

/**
 * zlt_agent_new:
 * @config: the agent's config
 * @loader: a plugin loader that has loaded its plugins
 * @error: return location for a #GError
 *
 * Reads the token (from the file or environment variable @config names) and takes the
 * transports from @loader. Fails when the token cannot be read or a transport is
 * missing.
 *
 * Returns: (transfer full): a new agent, not started, or %NULL on error
 */
ZltAgent *
zlt_agent_new (ZltClientConfig *config, ZltPluginLoader *loader, GError **error)
{
  g_autofree char *token = NULL;
  g_autoptr (ZltControlTransport) control = NULL;
  g_autoptr (ZltTransport) tcp = NULL;
  g_autoptr (ZltTransport) udp = NULL;
  ZltAgent *agent;

  g_return_val_if_fail (ZLT_IS_CLIENT_CONFIG (config), NULL);
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (loader), NULL);

  if (!zlt_plugin_loader_new_tunnel_transports (loader, &control, &tcp, &udp, error))
    return NULL;
  token = zlt_client_config_load_token (config, error);
  if (token == NULL)
    return NULL;
  agent = zlt_agent_new_full (config, token, control, tcp, udp);
  memset (token, 0, strlen (token));
  return agent;
}

/**
 * zlt_agent_set_network_monitor:
 * @self: an agent
 * @monitor: (nullable): what tells the agent that the network changed; %NULL for none
 *
 * The agent follows g_network_monitor_get_default() from the start, and reconnects at
 * once when the network comes back; tests and embedders may give it another (a
 * #GNetworkMonitorBase they drive themselves).
 */
void
zlt_agent_set_network_monitor (ZltAgent *self, GNetworkMonitor *monitor)
{
  g_return_if_fail (ZLT_IS_AGENT (self));
  g_return_if_fail (monitor == NULL || G_IS_NETWORK_MONITOR (monitor));

  if (self->network != NULL)
    g_signal_handlers_disconnect_by_data (self->network, self);
  g_set_object (&self->network, monitor);
  if (monitor != NULL)
    g_signal_connect (monitor, "network-changed", G_CALLBACK (on_network_changed), self);
}

/**
 * zlt_agent_set_access_expires:
 * @self: an agent
 * @expires: µs since the Unix epoch when the agent's access sessions end, 0 for none
 *
 * For access clients: the next Auth asks the server for an access session that long
 * (ACCESS_TTL), and the server ends it then whatever happens here.
 */
void
zlt_agent_set_access_expires (ZltAgent *self, gint64 expires)
{
  g_return_if_fail (ZLT_IS_AGENT (self));

  self->access_expires = expires;
}
