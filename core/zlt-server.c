/* zlt-server.c: the public end. It owns the control port, the agents' control
 * channels (ZltServerPeer), one public listener per service, the public connections
 * that wait for their data connection, and the relays that carry them.
 *
 * Whatever removes a service (Unregister, a tunnel ending, a resume grace running out)
 * goes through the registry; the server follows the registry's signals to close the
 * service's listener and connections, so no path can forget to.
 *
 * An access stream (PROTOCOL-v2.md §6) is a data connection of an access client's
 * own session that names a service instead of a waiting connection; once accepted it
 * is treated like one more public connection of that service. Its relay remembers the
 * access client's tunnel, so that when that tunnel ends the relay goes with it.
 *
 * An agent with the STANDBY capability keeps data connections parked here ahead of
 * need (PROTOCOL-v2.md §8, ZltStandbyPool): a new connection then takes one, the
 * binding goes out on it, and it is relayed at once, without a Connect. */
#include "config.h"

#include <sys/socket.h>

#include <glib/gi18n-lib.h>

#include "zlt-binding.h"
#include "zlt-host-listener.h"
#include "zlt-host-sniff.h"
#include "zlt-net.h"
#include "zlt-proxy-header.h"
#include "zlt-relay-counted.h"
#include "zlt-server-private.h"
#include "zlt-source.h"
#include "zlt-standby-pool.h"
#include "zlt-throttled-stream.h"
#include "zlt-util.h"

struct _ZltServer
{
  GObject parent_instance;

  ZltServerConfig *config;
  ZltRegistry *registry;
  ZltValidator *validator;
  ZltControlTransport *control;
  ZltTransport *tcp;
  ZltTransport *udp; /* NULL without the udp plugin */

  ZltControlListener *control_listener;
  GHashTable *peers;           /* ZltServerPeer* (owned) */
  GHashTable *peer_by_tunnel;  /* ZltTunnel* → ZltServerPeer* (unowned) */
  GHashTable *listeners;       /* ZltService* → ZltListener* (both owned) */
  GHashTable *pending;         /* ZltUuid* connection id → Pending* */
  GHashTable *relays;          /* ZltRelay* (owned) → RelayInfo* */
  GQueue unanswered;           /* Unanswered*, oldest first */
  ZltResumeBook *resume_book;  /* v2 sessions that may come back */
  GHashTable *access_requests; /* ZltUuid* connection id → AccessRequest*, 101 sent */
  GHashTable *service_limits;  /* ZltService* → ServiceLimits* */
  ZltQuota *quota;
  ZltStandbyPool *standby; /* parked standby connections, per peer */
  guint64 n_connects_sent; /* Connect frames for public connections */
  guint64 n_standby_joins; /* public connections joined to a standby connection */
  gboolean no_addresses;   /* tests: send no client addresses (PROTOCOL-v2.md §9) */
  ZltLogLimit auth_failure_log;
  guint64 auth_failures[ZLT_REASON_MAX + 1]; /* by reason code, since start */
  guint64 n_relay_errors;                    /* relays that ended with a failure, since start */
  ZltLogLimit connection_failure_log;        /* public connections that could not be carried */
  ZltHostListener *http_listener;            /* shared port routed by Host header, or NULL */
  ZltHostListener *tls_listener;             /* shared port routed by SNI, or NULL */
  GHashTable *hostnames;                     /* hostname → ZltService* (owned) */
  GHashTable *token_rates;                   /* principal → TokenRate*: tokens' buckets */
  gboolean running;
};

enum
{
  SIGNAL_REPLICA_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/**
 * ZltServer:
 * The public end of the tunnel: it accepts agents on a control channel
 * (`ws://` or `wss://` on `/tunnel/v1`), asks its [class@Zlt.Validator] about each
 * one's credential, gives each registered service a public port from the configured
 * port range, and joins every public connection to a data connection its agent opens
 * back.
 *
 * Build one from a [class@Zlt.ServerConfig] with zlt_server_new(), which takes the
 * validator and transports the config names from a [class@Zlt.PluginLoader], or with
 * zlt_server_new_full() from parts you made. Then zlt_server_start(); the server runs on
 * the thread-default main context until zlt_server_stop(). Its state (tunnels, services,
 * port pools) is in its [class@Zlt.Registry], whose signals report agents and services
 * as they come and go.
 */

G_DEFINE_FINAL_TYPE (ZltServer, zlt_server, G_TYPE_OBJECT)

/* What a connection counts against: the service owner's share of waiting or live
 * connections and, for an access stream, its client's share of access streams. The
 * account moves along with the connection (request → waiting → relayed) and is
 * settled once, when the last holder lets go. */
typedef struct
{
  ZltQuota *quota;         /* (owned) */
  char *owner;             /* the service's principal; NULL: not counted */
  ZltQuotaKind owner_kind; /* PENDING while waiting, CONNECTIONS once relayed */
  gboolean owner_counted;  /* owner_kind was taken */
  char *client;            /* the access client's principal; NULL: not an access stream */
} Account;

static void
account_settle (Account *a)
{
  if (a->owner_counted)
    zlt_quota_release (a->quota, a->owner, a->owner_kind);
  if (a->client != NULL)
    zlt_quota_release (a->quota, a->client, ZLT_QUOTA_ACCESS_STREAMS);
  a->owner_counted = FALSE;
  g_clear_pointer (&a->owner, g_free);
  g_clear_pointer (&a->client, g_free);
  g_clear_object (&a->quota);
}

/* A public connection waiting for its data connection. */
typedef struct
{
  ZltServer *server;
  ZltUuid id;
  ZltService *service;
  ZltTunnel *tunnel;
  ZltTunnel *access_tunnel; /* the access client's, NULL for a public connection */
  GIOStream *stream;
  GBytes *prefix; /* what a shared port read from the client: relayed first */
  GSource *timeout;
  Account account;
  char *client_addr; /* for a retry on another replica */
  guint attempt;     /* replicas tried before this one */
} Pending;

/* A token's bandwidth limits (rate-limit-in=, rate-limit-out= of its grant) on this
 * server: one bucket per direction, shared by every public connection of its principal,
 * whichever tunnel, service or replica carries it. */
typedef struct
{
  ZltRateBucket *in;  /* reads from the public clients; NULL: no limit */
  ZltRateBucket *out; /* writes to them; NULL: no limit */
  guint n_relays;     /* live relays whose public side holds the buckets */
} TokenRate;

typedef struct
{
  ZltUuid id; /* the connection's, as in Connect */
  ZltService *service;
  ZltTunnel *tunnel;
  ZltTunnel *access_tunnel;
  Account account;
  gboolean standby; /* joined to a standby connection: no Connect was sent */
  TokenRate *rate;  /* the token's buckets its public side takes from, or NULL */
} RelayInfo;

/* A connection joined to a standby connection whose relay failed before the agent
 * sent anything: the agent's ConnectFail may come after its reset of the standby
 * connection (they travel apart), and is still logged with its service's name. */
typedef struct
{
  ZltUuid id;
  ZltUuid tunnel_id;
  char *service_name;
  gint64 when; /* monotonic µs */
} Unanswered;

#define UNANSWERED_MAX 64
#define UNANSWERED_KEEP_US (10 * G_USEC_PER_SEC)

static void
unanswered_free (Unanswered *u)
{
  g_free (u->service_name);
  g_free (u);
}

/* Forgets what is too old to be answered now, and the oldest beyond the bound. */
static void
unanswered_expire (ZltServer *self)
{
  gint64 now = g_get_monotonic_time ();
  Unanswered *u;

  while ((u = g_queue_peek_head (&self->unanswered)) != NULL
         && (now - u->when > UNANSWERED_KEEP_US || self->unanswered.length > UNANSWERED_MAX))
    unanswered_free (g_queue_pop_head (&self->unanswered));
}

/* An access stream between its accepted request and its stream. */
typedef struct
{
  ZltServer *server;
  ZltUuid id;
  ZltTunnel *access_tunnel;
  char *service_name;
  GSource *timeout;
  Account account;
} AccessRequest;

/* The owner's limits for one service, and what waits for it. */
typedef struct
{
  guint max_connections; /* 0 = the server's */
  guint idle_timeout_s;  /* 0 = the server's */
  guint n_pending;
  gint64 failed_until; /* monotonic µs: a replica that just failed a Connect rests until then */
  GSource *rest_end;   /* says when the rest is over (::replica-changed) */
  guint next;          /* round robin over a hostname's replicas, when this one holds it */
  ZltServer *server;   /* unowned, as the service: for rest_end */
  ZltService *service;
} ServiceLimits;

static void
service_limits_free (ServiceLimits *limits)
{
  zlt_source_clear (&limits->rest_end);
  g_free (limits);
}

/* How long a replica that failed a Connect (ConnectFail, or no data connection in time)
 * gets no new connections while other replicas can take them. */
#define REPLICA_BACKOFF_US (5 * G_USEC_PER_SEC)

/* A public listener's port: its connections go to whichever replica the registry lists
 * on it. */
typedef struct
{
  ZltProtocol protocol;
  guint16 port;
  guint next; /* round robin over the replicas */
} PublicPort;

/* Bound on public connections that wait for an agent at once, per server; past it new
 * ones are closed at once rather than piling up (a flood must not exhaust memory). */
#define MAX_PENDING 4096

static ServiceLimits *
service_limits (ZltServer *self, ZltService *service)
{
  ServiceLimits *limits = g_hash_table_lookup (self->service_limits, service);

  if (limits == NULL)
    {
      limits = g_new0 (ServiceLimits, 1);
      limits->server = self;
      limits->service = service;
      g_hash_table_insert (self->service_limits, service, limits);
    }
  return limits;
}

static void
pending_free (Pending *p)
{
  ServiceLimits *limits = g_hash_table_lookup (p->server->service_limits, p->service);

  if (limits != NULL && limits->n_pending > 0)
    limits->n_pending--;
  zlt_source_clear (&p->timeout);
  if (p->stream != NULL)
    zlt_net_close_with_reset (p->stream);
  g_clear_object (&p->stream);
  g_clear_pointer (&p->prefix, g_bytes_unref);
  g_clear_object (&p->service);
  g_clear_object (&p->tunnel);
  g_clear_object (&p->access_tunnel);
  account_settle (&p->account);
  g_free (p->client_addr);
  g_free (p);
}

static void
relay_info_free (RelayInfo *info)
{
  g_clear_object (&info->service);
  g_clear_object (&info->tunnel);
  g_clear_object (&info->access_tunnel);
  account_settle (&info->account);
  if (info->rate != NULL)
    info->rate->n_relays--;
  g_free (info);
}

static void
access_request_free (AccessRequest *r)
{
  zlt_source_clear (&r->timeout);
  g_clear_object (&r->access_tunnel);
  g_free (r->service_name);
  account_settle (&r->account);
  g_free (r);
}

/* ---- peers ---- */

static void
on_channel (ZltControlListener *listener, ZltChannel *channel, gpointer user_data)
{
  ZltServer *self = user_data;
  ZltServerPeer *peer;

  if (!self->running)
    {
      zlt_channel_close (channel, 1001, "shutting down");
      return;
    }
  /* the listener bounds connections until they authenticate (max-preauth, per source
   * too); the channel keeps its place in that count until the peer is ready */
  peer = zlt_server_peer_new (self, channel);
  g_hash_table_add (self->peers, peer);
}

void
zlt_server_peer_ready (ZltServer *self, ZltServerPeer *peer)
{
  ZltTunnel *tunnel = zlt_server_peer_get_tunnel (peer);

  g_hash_table_insert (self->peer_by_tunnel, tunnel, peer);
}

static gboolean retry_on_replica (ZltServer *self, Pending *p);

static void
retry_pending_of (ZltServer *self, ZltTunnel *tunnel)
{
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (ZltUuid));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Pending *) value)->tunnel == tunnel && ((Pending *) value)->access_tunnel == NULL)
      g_array_append_val (ids, ((Pending *) value)->id);
  for (guint i = 0; i < ids->len; i++)
    {
      Pending *p = g_hash_table_lookup (self->pending, &g_array_index (ids, ZltUuid, i));

      if (p != NULL)
        retry_on_replica (self, p);
    }
}

void
zlt_server_peer_gone (ZltServer *self, ZltServerPeer *peer, gboolean hold)
{
  ZltTunnel *tunnel = zlt_server_peer_get_tunnel (peer);

  /* parked connections belong to the session: whatever happens to the tunnel, they
   * cannot be bound without a control channel to answer on */
  zlt_standby_pool_close_session (self->standby, peer);
  /* connections that wait for this agent go to another replica, if there is one */
  if (tunnel != NULL)
    retry_pending_of (self, tunnel);
  if (tunnel != NULL && g_hash_table_lookup (self->peer_by_tunnel, tunnel) == peer)
    {
      g_hash_table_remove (self->peer_by_tunnel, tunnel);
      if (hold && self->running)
        zlt_resume_book_hold (self->resume_book, tunnel,
                              zlt_server_config_get_resume_grace (self->config) * 1000,
                              zlt_grant_get_expiry (zlt_server_peer_get_grant (peer)));
      else
        zlt_registry_remove_tunnel (self->registry, tunnel);
    }
  g_hash_table_remove (self->peers, peer);
}

/* ---- resume ---- */

/* A proven resume takes the tunnel from a channel we still thought alive. Unmapped
 * first, so the old peer's end neither holds nor removes the tunnel. */
static void
on_resume_displace (ZltResumeBook *book, ZltTunnel *tunnel, gpointer user_data)
{
  ZltServer *self = user_data;
  ZltServerPeer *old = g_hash_table_lookup (self->peer_by_tunnel, tunnel);

  if (old == NULL)
    return;
  g_object_ref (old);
  g_hash_table_remove (self->peer_by_tunnel, tunnel);
  zlt_server_peer_disconnect (old, ZLT_REASON_IN_USE, _ ("resumed by a new connection"));
  g_object_unref (old);
}

ZltResumeBook *
zlt_server_get_resume_book (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), NULL);
  return self->resume_book;
}

/* ---- public side ---- */

/* A connection a client made that we could not carry: the operator hears of it
 * without -v, but clients decide how often that happens, not how much we log. */
static void log_connection_failure (ZltServer *self, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
log_connection_failure (ZltServer *self, const char *format, ...)
{
  g_autofree char *text = NULL;
  guint suppressed = 0;
  va_list args;

  if (!zlt_log_limit_allow (&self->connection_failure_log, &suppressed))
    return;
  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  if (suppressed > 0)
    g_message ("%s (%u more failed connections not logged)", text, suppressed);
  else
    g_message ("%s", text);
}

static gboolean
on_pending_timeout (gpointer user_data)
{
  Pending *p = user_data;

  zlt_source_clear (&p->timeout);
  if (retry_on_replica (p->server, p))
    return G_SOURCE_REMOVE;
  log_connection_failure (p->server,
                          "connection to %s dropped: the agent opened no data connection "
                          "within %u s",
                          zlt_service_get_name (p->service),
                          zlt_server_config_get_connect_timeout (p->server->config));
  g_hash_table_remove (p->server->pending, &p->id);
  return G_SOURCE_REMOVE;
}

/* A new connection to @service, from its public listener or an access stream (then
 * @access_tunnel is the access client's): announce it to the owning agent with
 * Connect and wait for the agent's data connection. */
/* Whether @service takes one more connection: its owner's limit and the server's, and
 * the owner's share of waiting and live connections. */
static gboolean
may_connect (ZltServer *self, ZltService *service, const char *owner)
{
  const ZltServerLimits *limits = zlt_server_config_get_limits (self->config);
  ServiceLimits *own = service_limits (self, service);
  guint max = limits->max_connections_per_service;
  guint in_use = zlt_service_get_active_connections (service) + own->n_pending;
  g_autoptr (GError) error = NULL;

  if (own->max_connections != 0)
    max = max != 0 ? MIN (max, own->max_connections) : own->max_connections;
  if (max != 0 && in_use >= max)
    {
      log_connection_failure (self, "connection to %s refused: it has its %u connections",
                              zlt_service_get_name (service), max);
      return FALSE;
    }
  if (!zlt_quota_check (self->quota, owner, ZLT_QUOTA_CONNECTIONS, &error)
      || !zlt_quota_check (self->quota, owner, ZLT_QUOTA_PENDING, &error))
    {
      log_connection_failure (self, "connection to %s refused: %s", zlt_service_get_name (service),
                              error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean join_standby (ZltServer *self, ZltServerPeer *peer, ZltService *service,
                              GIOStream *stream, GBytes *prefix, const char *client_addr,
                              const ZltAddresses *addresses, ZltTunnel *access_tunnel,
                              Account *account);

/* @prefix: (nullable): bytes already read from @stream (a shared port's), relayed first */
static void
start_connection (ZltServer *self, ZltService *service, GIOStream *stream, GBytes *prefix,
                  const char *client_addr, ZltTunnel *access_tunnel, Account *account,
                  guint attempt)
{
  ZltTunnel *tunnel = zlt_service_get_tunnel (service);
  ZltServerPeer *peer = tunnel ? g_hash_table_lookup (self->peer_by_tunnel, tunnel) : NULL;
  ZltGrant *grant;
  g_autoptr (ZltMessage) connect = NULL;
  ZltAddresses addresses_buf;
  const ZltAddresses *addresses = NULL;
  Pending *p;

  if (peer == NULL || g_hash_table_size (self->pending) >= MAX_PENDING)
    {
      /* the agent is away (held for a resume) or we are flooded */
      zlt_net_close_with_reset (stream);
      return;
    }
  /* scope and expiry hold for every connection, not only at Register */
  grant = zlt_server_peer_get_grant (peer);
  if (zlt_grant_is_expired (grant, g_get_real_time () / G_USEC_PER_SEC)
      || !zlt_grant_may_register (grant, zlt_service_get_name (service))
      || (zlt_service_get_hostname (service) != NULL
          && !zlt_grant_may_claim_hostname (grant, zlt_service_get_hostname (service)))
      || !may_connect (self, service, zlt_grant_get_name (grant)))
    {
      zlt_net_close_with_reset (stream);
      return;
    }
  /* the client's and our addresses, for the service's PROXY header (PROTOCOL-v2.md §9) */
  if ((zlt_server_peer_get_caps (peer) & ZLT_CAP_ADDRESSES) && !self->no_addresses
      && zlt_addresses_from_stream (stream, &addresses_buf))
    addresses = &addresses_buf;
  /* a parked standby connection carries it at once; none left: the Connect path */
  if (join_standby (self, peer, service, stream, prefix, client_addr, addresses, access_tunnel,
                    account))
    return;

  p = g_new0 (Pending, 1);
  p->server = self;
  zlt_uuid_generate (&p->id);
  p->service = g_object_ref (service);
  p->tunnel = g_object_ref (tunnel);
  p->access_tunnel = access_tunnel ? g_object_ref (access_tunnel) : NULL;
  p->stream = g_object_ref (stream);
  p->client_addr = g_strdup (client_addr);
  p->attempt = attempt;
  p->prefix = prefix != NULL ? g_bytes_ref (prefix) : NULL;
  /* an access stream brings its client's account along */
  if (account != NULL)
    {
      p->account = *account;
      memset (account, 0, sizeof *account);
    }
  else
    p->account.quota = g_object_ref (self->quota);
  p->account.owner = g_strdup (zlt_grant_get_name (grant));
  p->account.owner_kind = ZLT_QUOTA_PENDING;
  p->account.owner_counted = TRUE;
  zlt_quota_take (self->quota, p->account.owner, ZLT_QUOTA_PENDING);
  service_limits (self, service)->n_pending++;
  p->timeout = zlt_timeout_source_attach (
      zlt_server_config_get_connect_timeout (self->config) * 1000, on_pending_timeout, p);
  g_hash_table_insert (self->pending, &p->id, p);

  connect = zlt_message_new_connect (zlt_service_get_id (service), &p->id,
                                     client_addr ? client_addr : "");
  if (addresses != NULL)
    zlt_message_set_addresses (connect, addresses);
  if (!zlt_server_peer_send (peer, connect))
    g_hash_table_remove (self->pending, &p->id);
  else
    self->n_connects_sent++;
}

/**
 * zlt_server_get_replica_state:
 * @self: a server
 * @service: one of its services (one replica of a name, or a service without replicas)
 *
 * Where @service stands for new public connections: a late or resting replica gets
 * them only while no other replica of its name is ready.
 *
 * Returns: the replica's state
 */
ZltReplicaState
zlt_server_get_replica_state (ZltServer *self, ZltService *service)
{
  ZltTunnel *tunnel;
  ZltServerPeer *peer;
  ServiceLimits *limits;

  g_return_val_if_fail (ZLT_IS_SERVER (self), ZLT_REPLICA_STATE_AWAY);
  g_return_val_if_fail (ZLT_IS_SERVICE (service), ZLT_REPLICA_STATE_AWAY);

  tunnel = zlt_service_get_tunnel (service);
  peer = tunnel != NULL ? g_hash_table_lookup (self->peer_by_tunnel, tunnel) : NULL;
  if (peer == NULL)
    return ZLT_REPLICA_STATE_AWAY;
  if (zlt_server_peer_is_late (peer))
    return ZLT_REPLICA_STATE_LATE;
  limits = g_hash_table_lookup (self->service_limits, service);
  if (limits != NULL && limits->failed_until > g_get_monotonic_time ())
    return ZLT_REPLICA_STATE_RESTING;
  return ZLT_REPLICA_STATE_READY;
}

static void
replica_changed (ZltServer *self, ZltService *service)
{
  g_signal_emit (self, signals[SIGNAL_REPLICA_CHANGED], 0, service);
}

void
zlt_server_peer_late_changed (ZltServer *self, ZltServerPeer *peer)
{
  ZltTunnel *tunnel = zlt_server_peer_get_tunnel (peer);
  g_autoptr (GPtrArray) services = tunnel != NULL ? zlt_tunnel_get_services (tunnel) : NULL;

  for (guint i = 0; services != NULL && i < services->len; i++)
    replica_changed (self, g_ptr_array_index (services, i));
  /* connections announced to it and not answered yet go to a replica on time now,
   * rather than when connect-timeout runs out (a late answer then finds nothing) */
  if (tunnel != NULL && zlt_server_peer_is_late (peer))
    retry_pending_of (self, tunnel);
}

static gboolean
on_rest_end (gpointer user_data)
{
  ServiceLimits *limits = user_data;

  zlt_source_clear (&limits->rest_end);
  replica_changed (limits->server, limits->service);
  return G_SOURCE_REMOVE;
}

/* @service failed a Connect: it rests for REPLICA_BACKOFF_US. */
static void
replica_rest (ZltServer *self, ZltService *service)
{
  ServiceLimits *limits = service_limits (self, service);

  limits->failed_until = g_get_monotonic_time () + REPLICA_BACKOFF_US;
  zlt_source_clear (&limits->rest_end);
  limits->rest_end = zlt_timeout_source_attach (REPLICA_BACKOFF_US / 1000, on_rest_end, limits);
  replica_changed (self, service);
}

/* A replica's open and waiting connections, for least-connections. */
static guint
replica_load (ZltServer *self, ZltService *service)
{
  ServiceLimits *limits = g_hash_table_lookup (self->service_limits, service);

  return zlt_service_get_active_connections (service) + (limits != NULL ? limits->n_pending : 0);
}

/* The replica of @service (itself when it has none) a new public connection goes to:
 * one of the ready replicas, in turn (@next: the turn, NULL for a random one) or, with
 * least-connections, the least loaded (ties in turn). A @retry takes only a ready one,
 * or none; a first attempt falls back to a resting replica, then a late one, then to
 * @service itself (which refuses it when its agent is away). */
static ZltService *
pick_replica (ZltServer *self, ZltService *service, guint *next, gboolean retry)
{
  g_autoptr (GPtrArray) replicas = zlt_registry_get_replicas (self->registry, service);
  g_autoptr (GPtrArray) ready = NULL;
  gboolean least = zlt_server_config_get_replica_balance (self->config)
                   == ZLT_REPLICA_BALANCE_LEAST_CONNECTIONS;
  ZltService *resting = NULL, *late = NULL;
  guint min_load = G_MAXUINT;

  if (replicas->len <= 1)
    return retry ? NULL : service;
  /* in turn over the ready ones only, so a replica that is away does not double the
   * share of the one after it */
  ready = g_ptr_array_sized_new (replicas->len);
  for (guint i = 0; i < replicas->len; i++)
    {
      ZltService *candidate = g_ptr_array_index (replicas, i);
      guint load;

      switch (zlt_server_get_replica_state (self, candidate))
        {
        case ZLT_REPLICA_STATE_READY:
          load = least ? replica_load (self, candidate) : 0;
          if (load < min_load)
            g_ptr_array_set_size (ready, 0);
          min_load = MIN (min_load, load);
          if (load == min_load)
            g_ptr_array_add (ready, candidate);
          break;
        case ZLT_REPLICA_STATE_RESTING:
          resting = resting != NULL ? resting : candidate;
          break;
        case ZLT_REPLICA_STATE_LATE:
          late = late != NULL ? late : candidate;
          break;
        case ZLT_REPLICA_STATE_AWAY:
        default:
          break;
        }
    }
  if (ready->len > 0)
    return g_ptr_array_index (ready, (next != NULL ? (*next)++ : g_random_int ()) % ready->len);
  if (retry)
    return NULL;
  return resting != NULL ? resting : late != NULL ? late : service;
}

/* A public connection whose replica failed it before any byte was relayed (its
 * ConnectFail, or no data connection in time): that replica rests, and the connection
 * goes to the next one, once per replica at most. Returns FALSE (and leaves @p alone)
 * when there is none to try. */
static gboolean
retry_on_replica (ZltServer *self, Pending *p)
{
  g_autoptr (ZltService) failed = g_object_ref (p->service);
  g_autoptr (GIOStream) stream = NULL;
  g_autoptr (GPtrArray) replicas = NULL;
  g_autofree char *client_addr = NULL;
  g_autoptr (GBytes) prefix = NULL;
  ZltService *next;
  guint attempt = p->attempt + 1;

  if (p->access_tunnel != NULL || p->stream == NULL)
    return FALSE;
  replicas = zlt_registry_get_replicas (self->registry, failed);
  if (replicas->len <= 1 || attempt >= replicas->len)
    return FALSE;
  replica_rest (self, failed);
  next = pick_replica (self, failed, NULL, TRUE);
  if (next == NULL)
    return FALSE;
  g_debug ("connection to %s: a replica failed it, trying the next one",
           zlt_service_get_name (failed));
  stream = g_steal_pointer (&p->stream);
  prefix = g_steal_pointer (&p->prefix);
  client_addr = g_strdup (p->client_addr);
  g_hash_table_remove (self->pending, &p->id);
  start_connection (self, next, stream, prefix, client_addr, NULL, NULL, attempt);
  return TRUE;
}

/* A connection on a shared port that named @host: the service registered under it
 * takes it as one of its public connections, the bytes read so far first. */
static gboolean
on_host_route (ZltHostListener *listener, const char *host, GIOStream *stream, GBytes *prefix,
               const char *client_addr, gpointer user_data)
{
  ZltServer *self = user_data;
  ZltService *service = g_hash_table_lookup (self->hostnames, host);

  if (service == NULL)
    return FALSE;
  /* the holder's replicas take the hostname's connections in turn */
  start_connection (self,
                    pick_replica (self, service, &service_limits (self, service)->next, FALSE),
                    stream, prefix, client_addr, NULL, NULL, 0);
  return TRUE;
}

/**
 * zlt_server_lookup_hostname:
 * @self: a server
 * @hostname: a normalized hostname
 *
 * Returns: (nullable) (transfer none): the service registered under @hostname
 */
ZltService *
zlt_server_lookup_hostname (ZltServer *self, const char *hostname)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), NULL);
  return hostname != NULL ? g_hash_table_lookup (self->hostnames, hostname) : NULL;
}

/* Routes @hostname to @service until the service is closed; FALSE when another
 * service has it. A replica of the holder shares it. */
gboolean
zlt_server_add_hostname (ZltServer *self, const char *hostname, ZltService *service)
{
  ZltService *holder = g_hash_table_lookup (self->hostnames, hostname);

  if (holder != NULL && holder != service)
    {
      g_autoptr (GPtrArray) replicas = zlt_registry_get_replicas (self->registry, service);
      guint index;

      if (!g_ptr_array_find (replicas, holder, &index))
        return FALSE;
      zlt_service_set_hostname (service, hostname);
      return TRUE;
    }
  if (holder != NULL)
    return TRUE;
  g_hash_table_insert (self->hostnames, g_strdup (hostname), g_object_ref (service));
  zlt_service_set_hostname (service, hostname);
  return TRUE;
}

/* @service goes: its hostname goes too, or to another replica that claimed it. */
static void
remove_hostname (ZltServer *self, ZltService *service)
{
  const char *hostname = zlt_service_get_hostname (service);
  g_autoptr (GPtrArray) tunnels = NULL;

  if (hostname == NULL || g_hash_table_lookup (self->hostnames, hostname) != service)
    return;
  tunnels = zlt_registry_get_tunnels (self->registry);
  for (guint i = 0; i < tunnels->len; i++)
    {
      ZltService *heir = zlt_tunnel_lookup_service (g_ptr_array_index (tunnels, i),
                                                    zlt_service_get_name (service));
      g_autoptr (GPtrArray) group = NULL;

      if (heir == NULL || heir == service
          || g_strcmp0 (zlt_service_get_hostname (heir), hostname) != 0)
        continue;
      /* still registered (a server that stops removes them all) */
      group = zlt_registry_get_replicas (self->registry, heir);
      if (group->len > 0)
        {
          g_hash_table_insert (self->hostnames, g_strdup (hostname), g_object_ref (heir));
          return;
        }
    }
  g_hash_table_remove (self->hostnames, hostname);
}

static void
on_public_incoming (ZltListener *listener, GIOStream *stream, GSocketAddress *address,
                    gpointer user_data)
{
  ZltServer *self = user_data;
  PublicPort *pp = g_object_get_data (G_OBJECT (listener), "zlt-public-port");
  ZltService *service
      = zlt_registry_lookup_service_by_port (self->registry, pp->protocol, pp->port);
  g_autofree char *client_addr = zlt_net_format_address (address);

  if (service == NULL)
    {
      zlt_net_close_with_reset (stream);
      return;
    }
  if (G_IS_SOCKET_CONNECTION (stream))
    zlt_net_set_nodelay (G_SOCKET_CONNECTION (stream));
  start_connection (self, pick_replica (self, service, &pp->next, FALSE), stream, NULL, client_addr,
                    NULL, NULL, 0);
}

/* A listener another replica of @service opened already. */
static ZltListener *
replica_listener (ZltServer *self, ZltService *service)
{
  g_autoptr (GPtrArray) replicas = zlt_registry_get_replicas (self->registry, service);

  for (guint i = 0; i < replicas->len; i++)
    {
      ZltListener *listener
          = g_hash_table_lookup (self->listeners, g_ptr_array_index (replicas, i));

      if (listener != NULL)
        return listener;
    }
  return NULL;
}

/* A port can be free in our pool and still be held by some other program; a
 * service that asked for any port then moves on to the next free one. */
#define MAX_BIND_ATTEMPTS 16

gboolean
zlt_server_open_service (ZltServer *self, ZltService *service, GError **error)
{
  g_autoptr (ZltListener) listener = NULL;
  const char *bind = zlt_server_config_get_public_bind_address (self->config);
  g_autoptr (GError) local_error = NULL;

  /* internal services have no port; a resumed one still has its listener */
  PublicPort *pp;
  ZltListener *shared;

  if (zlt_service_get_expose (service) == ZLT_EXPOSE_INTERNAL
      || g_hash_table_contains (self->listeners, service))
    return TRUE;
  /* a replica shares the port its first replica listens on */
  shared = replica_listener (self, service);
  if (shared != NULL)
    {
      g_hash_table_insert (self->listeners, g_object_ref (service), g_object_ref (shared));
      return TRUE;
    }
  for (guint attempt = 0; listener == NULL; attempt++)
    {
      g_clear_error (&local_error);
      listener = zlt_transport_listen (
          zlt_service_get_protocol (service) == ZLT_PROTOCOL_UDP ? self->udp : self->tcp, bind,
          zlt_service_get_assigned_port (service), &local_error);
      if (listener != NULL)
        break;
      if (!g_error_matches (local_error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE)
          || zlt_service_get_requested_port (service) != 0 || attempt + 1 >= MAX_BIND_ATTEMPTS)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      g_debug ("port %u is taken by another program, trying the next one",
               zlt_service_get_assigned_port (service));
      if (zlt_registry_reassign_port (self->registry, service, error) == 0)
        return FALSE;
    }
  /* UDP flows end by themselves when idle; TCP connections when their peers end them */
  zlt_listener_set_idle_timeout (listener,
                                 zlt_server_config_get_udp_idle_timeout (self->config) * 1000);
  pp = g_new0 (PublicPort, 1);
  pp->protocol = zlt_service_get_protocol (service);
  pp->port = zlt_service_get_assigned_port (service);
  g_object_set_data_full (G_OBJECT (listener), "zlt-public-port", pp, g_free);
  g_signal_connect_object (listener, "incoming", G_CALLBACK (on_public_incoming), self, 0);
  g_hash_table_insert (self->listeners, g_object_ref (service), g_steal_pointer (&listener));
  return TRUE;
}

void
zlt_server_close_service (ZltServer *self, ZltService *service)
{
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr (GPtrArray) doomed = g_ptr_array_new_with_free_func (g_object_unref);
  ZltListener *listener = NULL;
  gpointer stolen_key = NULL;

  remove_hostname (self, service);
  /* the port stays open while another replica uses its listener */
  if (g_hash_table_steal_extended (self->listeners, service, &stolen_key, (gpointer *) &listener))
    {
      gboolean shared = FALSE;

      g_hash_table_iter_init (&iter, self->listeners);
      while (!shared && g_hash_table_iter_next (&iter, NULL, &value))
        shared = value == listener;
      if (!shared)
        zlt_listener_close (listener);
      g_object_unref (listener);
      g_object_unref (stolen_key);
    }

  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((Pending *) value)->service == service)
      g_hash_table_iter_remove (&iter);

  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((RelayInfo *) value)->service == service)
      g_ptr_array_add (doomed, g_object_ref (key));
  for (guint i = 0; i < doomed->len; i++)
    zlt_relay_close (g_ptr_array_index (doomed, i));
}

void
zlt_server_connect_failed (ZltServer *self, ZltServerPeer *peer, const ZltUuid *connection_id,
                           const char *reason)
{
  ZltTunnel *tunnel = zlt_server_peer_get_tunnel (peer);
  Pending *p = g_hash_table_lookup (self->pending, connection_id);
  g_autofree char *shown = zlt_log_escape (reason, 200);
  GHashTableIter iter;
  gpointer relay, value;

  if (p != NULL && p->tunnel == tunnel)
    {
      if (retry_on_replica (self, p))
        return;
      log_connection_failure (self, "connection to %s failed: the agent could not reach it: %s",
                              zlt_service_get_name (p->service), shown);
      g_hash_table_remove (self->pending, connection_id);
      return;
    }
  /* a v2 agent opens its data connection while it dials the service, so the public
   * side may already be relayed to it: that relay carries nothing, end it */
  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &relay, &value))
    {
      RelayInfo *info = value;

      if (info->tunnel == tunnel && zlt_uuid_equal (&info->id, connection_id))
        {
          /* closing removes it from the table: hold it, and stop iterating */
          g_autoptr (ZltRelay) doomed = g_object_ref (relay);

          log_connection_failure (self, "connection to %s failed: the agent could not reach it: %s",
                                  zlt_service_get_name (info->service), shown);
          zlt_relay_close (doomed);
          return;
        }
    }
  /* a standby connection's relay may have ended before its ConnectFail came */
  unanswered_expire (self);
  for (GList *l = self->unanswered.head; l != NULL; l = l->next)
    {
      Unanswered *u = l->data;

      if (zlt_uuid_equal (&u->tunnel_id, zlt_tunnel_get_id (tunnel))
          && zlt_uuid_equal (&u->id, connection_id))
        {
          log_connection_failure (self, "connection to %s failed: the agent could not reach it: %s",
                                  u->service_name, shown);
          g_queue_delete_link (&self->unanswered, l);
          unanswered_free (u);
          return;
        }
    }
}

/* ---- data connections ---- */

static gboolean
on_access_request_timeout (gpointer user_data)
{
  AccessRequest *r = user_data;

  zlt_source_clear (&r->timeout);
  g_hash_table_remove (r->server->access_requests, &r->id);
  return G_SOURCE_REMOVE;
}

/* An access stream: the MAC is the access client's own, under its session key; its
 * grant must reach @service_name, and the service must have its agent connected. A
 * @probe only asks whether such a stream would be accepted: the checks run, nothing
 * is set up. */
static ZltDataVerdict
access_request (ZltServer *self, const ZltUuid *tid, const ZltUuid *cid,
                const guint8 mac[ZLT_HASH_SIZE], const char *service_name, gboolean probe)
{
  guint8 expected[ZLT_HASH_SIZE];
  ZltTunnel *access_tunnel = zlt_registry_lookup_tunnel (self->registry, tid);
  ZltServerPeer *peer
      = access_tunnel ? g_hash_table_lookup (self->peer_by_tunnel, access_tunnel) : NULL;
  const guint8 *key = peer ? zlt_server_peer_get_session_key (peer) : NULL;
  ZltGrant *grant;
  ZltService *service;
  ZltTunnel *owner;
  g_autoptr (GError) error = NULL;
  AccessRequest *r;
  gint64 deadline;

  if (!zlt_service_name_is_valid (service_name))
    return ZLT_DATA_MALFORMED;
  if (key == NULL)
    return ZLT_DATA_FORBIDDEN;
  zlt_data_mac (key, tid, cid, expected);
  if (!zlt_secure_equal (expected, sizeof expected, mac, ZLT_HASH_SIZE))
    return ZLT_DATA_FORBIDDEN;
  /* connection ids are fresh per stream: never one that is already in use */
  if (g_hash_table_contains (self->pending, cid)
      || g_hash_table_contains (self->access_requests, cid))
    return ZLT_DATA_CONFLICT;
  /* the right to reach is the grant's (reach=), never what the client's caps claim;
   * and an access session ends at its time to live */
  grant = zlt_server_peer_get_grant (peer);
  deadline = zlt_server_peer_get_access_deadline (peer);
  if (zlt_grant_is_expired (grant, g_get_real_time () / G_USEC_PER_SEC)
      || !zlt_grant_may_reach (grant, service_name)
      || (deadline != 0 && g_get_monotonic_time () >= deadline))
    {
      g_debug ("access to %s refused: not in the token's reach, or the token or the session "
               "expired",
               service_name);
      return ZLT_DATA_FORBIDDEN;
    }
  service = zlt_registry_lookup_service_by_name (self->registry, service_name, &error);
  if (service == NULL)
    return g_error_matches (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME) ? ZLT_DATA_CONFLICT
                                                                        : ZLT_DATA_NO_SUCH_SERVICE;
  owner = zlt_service_get_tunnel (service);
  if (owner == NULL || !g_hash_table_contains (self->peer_by_tunnel, owner)
      || zlt_service_get_protocol (service) != ZLT_PROTOCOL_TCP)
    return ZLT_DATA_UNAVAILABLE; /* its agent is away (held for a resume); UDP has none */
  if (g_hash_table_size (self->access_requests) >= MAX_PENDING)
    return ZLT_DATA_UNAVAILABLE;
  /* the client's share of access streams, held until the stream ends */
  if (!zlt_quota_check (self->quota, zlt_grant_get_name (grant), ZLT_QUOTA_ACCESS_STREAMS, &error))
    {
      g_debug ("access to %s refused: %s", service_name, error->message);
      return ZLT_DATA_UNAVAILABLE;
    }
  if (probe)
    return ZLT_DATA_PROBE_OK;
  zlt_quota_take (self->quota, zlt_grant_get_name (grant), ZLT_QUOTA_ACCESS_STREAMS);

  r = g_new0 (AccessRequest, 1);
  r->server = self;
  r->id = *cid;
  r->access_tunnel = g_object_ref (access_tunnel);
  r->service_name = g_strdup (service_name);
  r->account.quota = g_object_ref (self->quota);
  r->account.client = g_strdup (zlt_grant_get_name (grant));
  r->timeout = zlt_timeout_source_attach (
      zlt_server_config_get_connect_timeout (self->config) * 1000, on_access_request_timeout, r);
  g_hash_table_insert (self->access_requests, &r->id, r);
  return ZLT_DATA_ACCEPT;
}

static guint
on_data_request (ZltControlListener *listener, const char *tunnel_id, const char *connection_id,
                 const char *mac_hex, const char *service_name, gboolean probe, gpointer user_data)
{
  ZltServer *self = user_data;
  ZltUuid tid, cid;
  guint8 mac[ZLT_HASH_SIZE], expected[ZLT_HASH_SIZE];
  Pending *p;
  ZltServerPeer *peer;
  const guint8 *key;

  if (!zlt_uuid_parse (tunnel_id, &tid) || !zlt_uuid_parse (connection_id, &cid)
      || !zlt_hash_from_hex (mac_hex, mac))
    return ZLT_DATA_MALFORMED;
  if (service_name != NULL)
    return access_request (self, &tid, &cid, mac, service_name, probe);
  if (probe)
    return ZLT_DATA_MALFORMED; /* only access streams are probed */
  /* one answer for an unknown id, a wrong tunnel and a wrong MAC: nothing tells a
   * prober which connection ids are live */
  p = g_hash_table_lookup (self->pending, &cid);
  if (p == NULL || !zlt_uuid_equal (zlt_tunnel_get_id (p->tunnel), &tid))
    return ZLT_DATA_FORBIDDEN;
  peer = g_hash_table_lookup (self->peer_by_tunnel, p->tunnel);
  key = peer ? zlt_server_peer_get_session_key (peer) : NULL;
  if (key == NULL)
    return ZLT_DATA_FORBIDDEN;
  zlt_data_mac (key, &tid, &cid, expected);
  if (!zlt_secure_equal (expected, sizeof expected, mac, sizeof mac))
    return ZLT_DATA_FORBIDDEN;
  return ZLT_DATA_ACCEPT;
}

/* A standby connection asks to be parked (PROTOCOL-v2.md §8): the one answer for an
 * unknown tunnel, a session without standby connections and a bad MAC, as for data
 * connections; the pool decides the rest (replays, the bound, the token's share). */
static guint
on_standby_request (ZltControlListener *listener, const char *tunnel_id, const char *standby_id,
                    const char *mac_hex, gpointer user_data)
{
  ZltServer *self = user_data;
  ZltUuid tid;
  guint64 id;
  guint8 mac[ZLT_HASH_SIZE], expected[ZLT_HASH_SIZE];
  ZltTunnel *tunnel;
  ZltServerPeer *peer;
  const guint8 *key;

  if (tunnel_id == NULL || mac_hex == NULL || !zlt_uuid_parse (tunnel_id, &tid)
      || !zlt_standby_id_parse (standby_id, &id) || !zlt_hash_from_hex (mac_hex, mac))
    return ZLT_DATA_MALFORMED;
  tunnel = zlt_registry_lookup_tunnel (self->registry, &tid);
  peer = tunnel != NULL ? g_hash_table_lookup (self->peer_by_tunnel, tunnel) : NULL;
  key = peer != NULL ? zlt_server_peer_get_session_key (peer) : NULL;
  if (key == NULL || zlt_server_peer_get_standby_max (peer) == 0)
    return ZLT_DATA_FORBIDDEN;
  zlt_standby_mac (key, &tid, id, expected);
  if (!zlt_secure_equal (expected, sizeof expected, mac, sizeof mac))
    return ZLT_DATA_FORBIDDEN;
  return zlt_standby_pool_request (self->standby, peer, zlt_server_peer_get_principal (peer),
                                   zlt_server_peer_get_standby_max (peer), id);
}

static void
on_standby_stream (ZltControlListener *listener, const char *tunnel_id, const char *standby_id,
                   GIOStream *stream, gpointer user_data)
{
  ZltServer *self = user_data;
  ZltUuid tid;
  guint64 id = 0;
  ZltTunnel *tunnel = NULL;
  ZltServerPeer *peer = NULL;

  if (tunnel_id != NULL && zlt_uuid_parse (tunnel_id, &tid)
      && zlt_standby_id_parse (standby_id, &id))
    tunnel = zlt_registry_lookup_tunnel (self->registry, &tid);
  if (tunnel != NULL)
    peer = g_hash_table_lookup (self->peer_by_tunnel, tunnel);
  /* without its session's reservation (it ended meanwhile) the pool resets it */
  zlt_standby_pool_park (self->standby, peer, id, stream);
}

/* The access stream's request was accepted: it becomes a new connection of the
 * service, looked up again (it may have gone in between). */
static void
access_stream (ZltServer *self, AccessRequest *r, GIOStream *stream)
{
  g_autoptr (GError) error = NULL;
  ZltService *service
      = zlt_registry_lookup_service_by_name (self->registry, r->service_name, &error);
  const char *client_addr = zlt_tunnel_get_peer_address (r->access_tunnel);

  if (service == NULL || !g_hash_table_contains (self->peer_by_tunnel, r->access_tunnel))
    {
      zlt_net_close_with_reset (stream);
      return;
    }
  g_debug ("access stream to %s from %s", r->service_name, client_addr ? client_addr : "?");
  start_connection (self, service, stream, NULL, client_addr ? client_addr : "", r->access_tunnel,
                    &r->account, 0);
}

/* The server's idle-timeout and the owner's own (from its Register), the shorter one;
 * 0 when neither is set. */
static guint
idle_timeout_ms (ZltServer *self, ZltService *service)
{
  guint server_s = zlt_server_config_get_limits (self->config)->idle_timeout;
  ServiceLimits *own = g_hash_table_lookup (self->service_limits, service);
  guint owner_s = own != NULL ? own->idle_timeout_s : 0;
  guint seconds = server_s == 0 ? owner_s : owner_s == 0 ? server_s : MIN (server_s, owner_s);

  return (guint) MIN ((guint64) seconds * 1000, G_MAXUINT);
}

static void
on_relay_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  ZltServer *self = user_data;
  RelayInfo *info = g_hash_table_lookup (self->relays, relay);

  if (info == NULL)
    return;
  if (zlt_relay_error_is_failure (error))
    self->n_relay_errors++;
  if (info->standby && error != NULL && zlt_relay_get_bytes_b_to_a (relay) == 0
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      Unanswered *u = g_new0 (Unanswered, 1);

      u->id = info->id;
      u->tunnel_id = *zlt_tunnel_get_id (info->tunnel);
      u->service_name = g_strdup (zlt_service_get_name (info->service));
      u->when = g_get_monotonic_time ();
      g_queue_push_tail (&self->unanswered, u);
      unanswered_expire (self);
    }
  /* the service counts the connection closed after this (zlt-relay-counted.c) */
  g_hash_table_remove (self->relays, relay);
}

static void
token_rate_free (TokenRate *rate)
{
  g_clear_object (&rate->in);
  g_clear_object (&rate->out);
  g_free (rate);
}

/* Gives @bucket its token's new @rate: the connections that share it follow at once. A
 * limit that went away leaves them unlimited (the bucket stays theirs, at the largest
 * rate) and the next connections without a bucket. */
static void
token_bucket_update (ZltRateBucket **bucket, guint64 rate)
{
  if (rate == 0 && *bucket != NULL)
    {
      zlt_rate_bucket_set_rate (*bucket, ZLT_RATE_BUCKET_MAX_RATE);
      g_clear_object (bucket);
    }
  else if (rate != 0 && *bucket == NULL)
    *bucket = zlt_rate_bucket_new (rate);
  else if (rate != 0)
    zlt_rate_bucket_set_rate (*bucket, rate);
}

/* A bucket nobody uses that is full again is what a new one would be: forgetting it
 * costs nothing, while forgetting one that is not full would give a fresh burst. */
static gboolean
token_rate_is_idle (gpointer key, gpointer value, gpointer user_data)
{
  TokenRate *rate = value;

  return rate->n_relays == 0
         && (rate->in == NULL || zlt_rate_bucket_delay (rate->in, G_MAXSIZE) == 0)
         && (rate->out == NULL || zlt_rate_bucket_delay (rate->out, G_MAXSIZE) == 0);
}

/* The grant's limits for its principal's buckets, when it has buckets here or limits. */
static TokenRate *
token_rate_apply (ZltServer *self, ZltGrant *grant)
{
  const char *principal = zlt_grant_get_name (grant);
  TokenRate *rate = g_hash_table_lookup (self->token_rates, principal);
  guint64 in = zlt_grant_get_rate_limit_in (grant);
  guint64 out = zlt_grant_get_rate_limit_out (grant);

  if (rate == NULL && in == 0 && out == 0)
    return NULL;
  if (rate == NULL)
    {
      g_hash_table_foreach_remove (self->token_rates, token_rate_is_idle, NULL);
      rate = g_new0 (TokenRate, 1);
      g_hash_table_insert (self->token_rates, g_strdup (principal), rate);
    }
  token_bucket_update (&rate->in, in);
  token_bucket_update (&rate->out, out);
  return rate;
}

/* @public behind the bandwidth limits of @principal's token, when it has any (the grant
 * of @tunnel's peer; without a peer, the buckets the principal already has): reads from
 * the client take from the "in" bucket, writes to it from the "out" one. An unlimited
 * token's connection keeps its plain stream, and the relay its zero-copy path. */
static GIOStream *
limited_public (ZltServer *self, GIOStream *public, ZltTunnel *tunnel, const char *principal,
                TokenRate **rate_out)
{
  ZltServerPeer *peer = g_hash_table_lookup (self->peer_by_tunnel, tunnel);
  TokenRate *rate;

  if (peer != NULL)
    rate = token_rate_apply (self, zlt_server_peer_get_grant (peer));
  else
    rate = principal != NULL ? g_hash_table_lookup (self->token_rates, principal) : NULL;
  *rate_out = NULL;
  if (rate == NULL || (rate->in == NULL && rate->out == NULL))
    return g_object_ref (public);
  rate->n_relays++;
  *rate_out = rate;
  return zlt_throttled_stream_new (public, rate->in, rate->out);
}

/* Relays @public to @agent's data connection (@prefix first, when set, toward the
 * agent) as connection @cid of @service; @account (its owner's share counted as
 * waiting, or not at all yet) moves into the relay's books as a live connection.
 * @standby: @agent is a standby connection, joined without a Connect. */
static void
start_relay (ZltServer *self, GIOStream *public, GIOStream *agent, GBytes *prefix,
             const ZltUuid *cid, ZltService *service, ZltTunnel *tunnel, ZltTunnel *access_tunnel,
             Account *account, gboolean standby)
{
  RelayInfo *info = g_new0 (RelayInfo, 1);
  g_autoptr (GIOStream) client = limited_public (self, public, tunnel, account->owner, &info->rate);
  /* a = public client, b = agent: a→b flows into the service */
  g_autoptr (ZltRelay) relay
      = zlt_relay_counted_new (client, agent, ZLT_RELAY_A_TO_B, prefix, service);

  info->standby = standby;
  info->id = *cid;
  info->service = g_object_ref (service);
  info->tunnel = g_object_ref (tunnel);
  info->access_tunnel = access_tunnel ? g_object_ref (access_tunnel) : NULL;
  info->account = *account;
  memset (account, 0, sizeof *account);
  if (info->account.owner_counted && info->account.owner_kind == ZLT_QUOTA_PENDING)
    {
      zlt_quota_release (info->account.quota, info->account.owner, ZLT_QUOTA_PENDING);
      info->account.owner_counted = FALSE;
    }
  if (!info->account.owner_counted)
    {
      zlt_quota_take (info->account.quota, info->account.owner, ZLT_QUOTA_CONNECTIONS);
      info->account.owner_kind = ZLT_QUOTA_CONNECTIONS;
      info->account.owner_counted = TRUE;
    }

  g_hash_table_insert (self->relays, g_object_ref (relay), info);
  zlt_relay_set_idle_timeout (relay, idle_timeout_ms (self, info->service));
  g_signal_connect_object (relay, "finished", G_CALLBACK (on_relay_finished), self, 0);
  zlt_relay_counted_start (relay);
}

/* a public client's first request (an HTTP request head, a TLS ClientHello) fits */
#define EARLY_READ_MAX 4096

/* What a public client sent before its connection was joined, as far as it is in
 * already (at most @size bytes, none unless @stream is a plain socket). A reset or an
 * end is left for the relay to find. */
static gsize
read_early (GIOStream *stream, guint8 *buf, gsize size)
{
  gssize n;

  if (!G_IS_SOCKET_CONNECTION (stream))
    return 0;
  n = recv (g_socket_get_fd (g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream))), buf,
            size, MSG_DONTWAIT);
  return n > 0 ? (gsize) n : 0;
}

/* Binds a parked standby connection of @peer's session to a new connection of
 * @service (PROTOCOL-v2.md §8): the binding goes out first, the relay starts at once,
 * and the public client's early bytes follow the binding. A parked connection that
 * turns out dead (the binding cannot be written) is dropped for the next one. Returns
 * FALSE when none is left: the connection takes the Connect path. */
static gboolean
join_standby (ZltServer *self, ZltServerPeer *peer, ZltService *service, GIOStream *stream,
              GBytes *prefix, const char *client_addr, const ZltAddresses *addresses,
              ZltTunnel *access_tunnel, Account *account)
{
  ZltGrant *grant = zlt_server_peer_get_grant (peer);
  guint8 binding[ZLT_BINDING_MAX_SIZE];
  guint8 early_buf[EARLY_READ_MAX];
  GIOStream *parked;

  while ((parked = zlt_standby_pool_take (self->standby, peer)) != NULL)
    {
      g_autoptr (GIOStream) agent = parked;
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) rest = NULL;
      GOutputStream *out = g_io_stream_get_output_stream (agent);
      Account moved = { 0 };
      ZltUuid cid;
      gsize len, early;
      gssize written = 0;

      zlt_uuid_generate (&cid);
      len = zlt_binding_encode_full (&cid, zlt_service_get_id (service), client_addr, addresses,
                                     binding);
      /* an idle connection takes a few dozen bytes at once; what it does not take
       * goes first through the relay */
      if (G_IS_POLLABLE_OUTPUT_STREAM (out))
        written = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (out),
                                                              binding, len, NULL, &error);
      if (written < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_debug ("a parked standby connection for %s is gone: %s", zlt_service_get_name (service),
                   error->message);
          zlt_net_close_with_reset (agent);
          continue;
        }
      /* what the client sent already goes right behind the binding, written as the
       * relay starts, so the agent finds both in one read */
      early = read_early (stream, early_buf, sizeof early_buf);
      if (written < (gssize) len || prefix != NULL || early > 0)
        {
          /* the binding's unwritten rest, then what a shared port read from the client */
          GByteArray *first = g_byte_array_new ();

          g_byte_array_append (first, binding + MAX (written, 0),
                               (guint) (len - (gsize) MAX (written, 0)));
          if (prefix != NULL)
            g_byte_array_append (first, g_bytes_get_data (prefix, NULL),
                                 (guint) g_bytes_get_size (prefix));
          g_byte_array_append (first, early_buf, (guint) early);
          rest = g_byte_array_free_to_bytes (first);
        }
      /* an access stream brings its client's account along */
      if (account != NULL)
        {
          moved = *account;
          memset (account, 0, sizeof *account);
        }
      else
        moved.quota = g_object_ref (self->quota);
      moved.owner = g_strdup (zlt_grant_get_name (grant));
      moved.owner_counted = FALSE;
      zlt_server_peer_owe_answer (peer); /* the agent answers the binding as a Connect */
      self->n_standby_joins++;
      start_relay (self, stream, agent, rest, &cid, service, zlt_server_peer_get_tunnel (peer),
                   access_tunnel, &moved, TRUE);
      return TRUE;
    }
  return FALSE;
}

static void
on_data_stream (ZltControlListener *listener, const char *connection_id, GIOStream *stream,
                gpointer user_data)
{
  ZltServer *self = user_data;
  ZltUuid cid;
  Pending *p;
  AccessRequest *r;

  if (zlt_uuid_parse (connection_id, &cid)
      && (r = g_hash_table_lookup (self->access_requests, &cid)) != NULL)
    {
      g_hash_table_steal (self->access_requests, &cid);
      access_stream (self, r, stream);
      access_request_free (r);
      return;
    }
  if (!zlt_uuid_parse (connection_id, &cid)
      || (p = g_hash_table_lookup (self->pending, &cid)) == NULL)
    {
      /* the public side gave up between the 101 and now */
      zlt_net_close_with_reset (stream);
      return;
    }
  /* from waiting to live: the owner's account moves with it */
  start_relay (self, p->stream, stream, p->prefix, &cid, p->service, p->tunnel, p->access_tunnel,
               &p->account, FALSE);
  g_clear_object (&p->stream); /* the relay has it now */
  g_hash_table_remove (self->pending, &cid);
}

/* Ends what an access client's tunnel had open: accepted requests, connections
 * waiting for their agent, and relays. */
static void
close_access (ZltServer *self, ZltTunnel *access_tunnel)
{
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr (GPtrArray) doomed = g_ptr_array_new_with_free_func (g_object_unref);

  g_hash_table_iter_init (&iter, self->access_requests);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((AccessRequest *) value)->access_tunnel == access_tunnel)
      g_hash_table_iter_remove (&iter);

  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((Pending *) value)->access_tunnel == access_tunnel)
      g_hash_table_iter_remove (&iter);

  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((RelayInfo *) value)->access_tunnel == access_tunnel)
      g_ptr_array_add (doomed, g_object_ref (key));
  if (doomed->len > 0)
    g_debug ("closing %u access connections of an ended tunnel", doomed->len);
  for (guint i = 0; i < doomed->len; i++)
    zlt_relay_close (g_ptr_array_index (doomed, i));
}

void
zlt_server_end_access (ZltServer *self, ZltTunnel *access_tunnel)
{
  close_access (self, access_tunnel);
}

/* The peer's grant changed: access streams to what it no longer reaches end now. */
void
zlt_server_rights_changed (ZltServer *self, ZltServerPeer *peer)
{
  ZltTunnel *tunnel = zlt_server_peer_get_tunnel (peer);
  ZltGrant *grant = zlt_server_peer_get_grant (peer);
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr (GPtrArray) doomed = g_ptr_array_new_with_free_func (g_object_unref);

  /* a new bandwidth limit holds the token's live connections too */
  token_rate_apply (self, grant);
  g_hash_table_iter_init (&iter, self->access_requests);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((AccessRequest *) value)->access_tunnel == tunnel
        && !zlt_grant_may_reach (grant, ((AccessRequest *) value)->service_name))
      g_hash_table_iter_remove (&iter);
  g_hash_table_iter_init (&iter, self->pending);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((Pending *) value)->access_tunnel == tunnel
        && !zlt_grant_may_reach (grant, zlt_service_get_name (((Pending *) value)->service)))
      g_hash_table_iter_remove (&iter);
  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((RelayInfo *) value)->access_tunnel == tunnel
        && !zlt_grant_may_reach (grant, zlt_service_get_name (((RelayInfo *) value)->service)))
      g_ptr_array_add (doomed, g_object_ref (key));
  if (doomed->len > 0)
    g_debug ("closing %u access connections the token no longer reaches", doomed->len);
  for (guint i = 0; i < doomed->len; i++)
    zlt_relay_close (g_ptr_array_index (doomed, i));
}

ZltQuota *
zlt_server_get_quota (ZltServer *self)
{
  return self->quota;
}

/* At most this many failed logins are logged per minute; a line then says how many
 * were left out. */
#define AUTH_FAILURE_LOG_MAX 10

void
zlt_server_log_auth_failure (ZltServer *self, const char *peer, ZltReasonCode code,
                             const char *reason)
{
  g_autofree char *shown = NULL;
  g_autofree char *code_name = NULL;
  guint suppressed = 0;

  self->auth_failures[MIN ((guint) code, ZLT_REASON_MAX)]++;

  if (!zlt_log_limit_allow (&self->auth_failure_log, &suppressed))
    return;
  shown = zlt_log_escape (reason, 200);
  /* REASON: the code's name as the metrics label it (zlt_auth_failures_total) */
  code_name = g_ascii_strdown (zlt_reason_code_to_string (code), -1);
  if (suppressed > 0)
    zlt_log_event_reason (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_AUTH_FAILED, NULL, NULL,
                          peer, code_name,
                          "authentication failed for %s: %s (%u more failed logins not logged)",
                          peer, shown, suppressed);
  else
    zlt_log_event_reason (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, ZLT_LOG_EVENT_AUTH_FAILED, NULL, NULL,
                          peer, code_name, "authentication failed for %s: %s", peer, shown);
}

void
zlt_server_set_service_limits (ZltServer *self, ZltService *service, guint max_connections,
                               guint idle_timeout_s)
{
  ServiceLimits *limits = service_limits (self, service);

  limits->max_connections = max_connections;
  limits->idle_timeout_s = idle_timeout_s;
}

/* ---- registry ---- */

static const char *
principal_of (ZltService *service)
{
  ZltTunnel *tunnel = zlt_service_get_tunnel (service);

  return tunnel != NULL ? zlt_tunnel_get_token_name (tunnel) : NULL;
}

/* Every service counts toward its token's share from its first registration (a
 * service reclaimed after a resume is the same one, and no ::service-added comes) to
 * its removal, whatever removes it. */
static void
on_service_added (ZltRegistry *registry, ZltService *service, gpointer user_data)
{
  ZltServer *self = user_data;

  zlt_quota_take (self->quota, principal_of (service), ZLT_QUOTA_SERVICES);
}

static void
on_service_removed (ZltRegistry *registry, ZltService *service, gpointer user_data)
{
  ZltServer *self = user_data;

  zlt_server_close_service (self, service);
  zlt_quota_release (self->quota, principal_of (service), ZLT_QUOTA_SERVICES);
  g_hash_table_remove (self->service_limits, service);
}

static void
on_tunnel_removed (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  ZltServer *self = user_data;
  g_autoptr (GPtrArray) services = zlt_tunnel_get_services (tunnel);
  ZltServerPeer *peer = g_hash_table_lookup (self->peer_by_tunnel, tunnel);

  for (guint i = 0; i < services->len; i++)
    zlt_server_close_service (self, g_ptr_array_index (services, i));
  close_access (self, tunnel);
  zlt_quota_release (self->quota, zlt_tunnel_get_token_name (tunnel), ZLT_QUOTA_TUNNELS);
  if (peer != NULL)
    zlt_server_peer_disconnect (peer, ZLT_REASON_NONE, _ ("tunnel removed"));
}

static void
on_validator_changed (ZltValidator *validator, gpointer user_data)
{
  ZltServer *self = user_data;
  g_autoptr (GPtrArray) peers = zlt_hash_table_ref_keys (self->peers);

  for (guint i = 0; i < peers->len; i++)
    zlt_server_peer_recheck (g_ptr_array_index (peers, i));
  /* tunnels held for a resume have no peer to ask */
  zlt_resume_book_recheck (self->resume_book, validator);
}

/* ---- public API ---- */

static void
stop_host_listeners (ZltServer *self)
{
  if (self->http_listener != NULL)
    zlt_host_listener_close (self->http_listener);
  if (self->tls_listener != NULL)
    zlt_host_listener_close (self->tls_listener);
  g_clear_object (&self->http_listener);
  g_clear_object (&self->tls_listener);
}

static ZltHostListener *
open_host_listener (ZltServer *self, ZltHostListenerKind kind, const char *address, guint16 port,
                    GError **error)
{
  g_autoptr (ZltHostListener) listener = NULL;
  g_autofree char *where = NULL;

  listener = zlt_host_listener_new (kind, address, port, error);
  if (listener == NULL)
    {
      g_prefix_error (error, _ ("cannot open the shared %s port: "),
                      kind == ZLT_HOST_LISTENER_HTTP ? "HTTP" : "TLS");
      return NULL;
    }
  zlt_host_listener_start (listener, on_host_route, self);
  where = zlt_net_join_host_port (address, zlt_host_listener_get_port (listener));
  g_message ("routing %s by %s on %s", kind == ZLT_HOST_LISTENER_HTTP ? "http" : "tls",
             kind == ZLT_HOST_LISTENER_HTTP ? "host header" : "sni", where);
  return g_steal_pointer (&listener);
}

/* the shared ports of http-listen and tls-listen, when set */
static gboolean
start_host_listeners (ZltServer *self, GError **error)
{
  guint16 port = 0;
  const char *address = zlt_server_config_get_http_listen (self->config, &port);

  if (address != NULL)
    {
      self->http_listener = open_host_listener (self, ZLT_HOST_LISTENER_HTTP, address, port, error);
      if (self->http_listener == NULL)
        return FALSE;
    }
  address = zlt_server_config_get_tls_listen (self->config, &port);
  if (address != NULL)
    {
      self->tls_listener = open_host_listener (self, ZLT_HOST_LISTENER_TLS, address, port, error);
      if (self->tls_listener == NULL)
        {
          stop_host_listeners (self);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * zlt_server_start:
 * @self: a server
 * @error: return location for a #GError
 *
 * Listens on the config's control address: with TLS when the config names a
 * certificate. Fails with %ZLT_ERROR_INSECURE for a validator that lets everyone in
 * unless the config says `insecure=true`, or with the error of loading the certificate
 * or of binding. The actual port is zlt_server_get_port().
 *
 * Returns: %TRUE when the server listens
 */
gboolean
zlt_server_start (ZltServer *self, GError **error)
{
  const char *host = zlt_server_config_get_listen_address (self->config);
  guint16 port = zlt_server_config_get_listen_port (self->config);
  g_autoptr (GTlsCertificate) certificate = NULL;
  const char *cert_file, *key_file;
  const ZltServerLimits *limits;

  g_return_val_if_fail (ZLT_IS_SERVER (self), FALSE);
  g_return_val_if_fail (!self->running, FALSE);

  if (zlt_validator_is_insecure (self->validator) && !zlt_server_config_get_insecure (self->config))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE,
                   _ ("validator “%s” accepts any token; set insecure=true to run it anyway"),
                   zlt_validator_get_name (self->validator));
      return FALSE;
    }
  cert_file = zlt_server_config_get_tls_certificate (self->config);
  key_file = zlt_server_config_get_tls_key (self->config);
  if (cert_file != NULL)
    {
      certificate = zlt_tls_load_server_certificate (cert_file, key_file, error);
      if (certificate == NULL)
        return FALSE;
    }
  self->control_listener = zlt_control_transport_listen_control (
      self->control, host, port, certificate,
      zlt_server_config_get_auth_timeout (self->config) * 1000, error);
  if (self->control_listener == NULL)
    return FALSE;
  limits = zlt_server_config_get_limits (self->config);
  zlt_control_listener_set_max_pending (self->control_listener, limits->max_preauth);
  zlt_control_listener_set_max_pending_per_source (self->control_listener,
                                                   limits->max_preauth_per_source);
  /* a validator that must see the token asks for it in the upgrade (PROTOCOL-v2.md §2a) */
  if (zlt_validator_get_credential_mode (self->validator) == ZLT_CREDENTIAL_MODE_BEARER)
    {
      zlt_control_listener_set_bearer_auth (self->control_listener, TRUE);
      if (certificate == NULL)
        g_message ("validator %s needs agents' raw tokens and this server has no TLS: agents "
                   "send them only to a TLS front end whose certificate they verify",
                   zlt_validator_get_name (self->validator));
    }
  if (!start_host_listeners (self, error))
    {
      zlt_listener_close (ZLT_LISTENER (self->control_listener));
      g_clear_object (&self->control_listener);
      return FALSE;
    }
  g_signal_connect_object (self->control_listener, "channel", G_CALLBACK (on_channel), self, 0);
  g_signal_connect_object (self->control_listener, "data-request", G_CALLBACK (on_data_request),
                           self, 0);
  g_signal_connect_object (self->control_listener, "data-stream", G_CALLBACK (on_data_stream), self,
                           0);
  g_signal_connect_object (self->control_listener, "standby-request",
                           G_CALLBACK (on_standby_request), self, 0);
  g_signal_connect_object (self->control_listener, "standby-stream", G_CALLBACK (on_standby_stream),
                           self, 0);
  self->running = TRUE;
  {
    g_autofree char *where = zlt_net_join_host_port (
        host, zlt_listener_get_port (ZLT_LISTENER (self->control_listener)));
    g_message ("listening on %s (%s)", where, certificate ? "wss" : "ws");
  }
  return TRUE;
}

/**
 * zlt_server_stop:
 * @self: a server
 *
 * Disconnects every agent (Disconnect "server shutting down"), removes every tunnel,
 * closes every public port and relayed connection. Does nothing when not running.
 */
void
zlt_server_stop (ZltServer *self)
{
  g_autoptr (GPtrArray) peers = NULL;
  g_autoptr (GPtrArray) relays = NULL;
  g_autoptr (GPtrArray) tunnels = NULL;

  g_return_if_fail (ZLT_IS_SERVER (self));
  if (!self->running)
    return;
  g_debug ("stopping: %" G_GUINT64_FORMAT
           " connections joined to standby connections, %" G_GUINT64_FORMAT
           " announced by Connect, %" G_GUINT64_FORMAT " standby connections retired unused",
           self->n_standby_joins, self->n_connects_sent,
           zlt_standby_pool_get_n_retired (self->standby));
  self->running = FALSE;
  stop_host_listeners (self);
  if (self->control_listener != NULL)
    zlt_listener_close (ZLT_LISTENER (self->control_listener));
  g_clear_object (&self->control_listener);

  peers = zlt_hash_table_ref_keys (self->peers);
  for (guint i = 0; i < peers->len; i++)
    zlt_server_peer_disconnect (g_ptr_array_index (peers, i), ZLT_REASON_SHUTDOWN,
                                _ ("server shutting down"));

  tunnels = zlt_registry_get_tunnels (self->registry);
  for (guint i = 0; i < tunnels->len; i++)
    zlt_registry_remove_tunnel (self->registry, g_ptr_array_index (tunnels, i));

  relays = zlt_hash_table_ref_keys (self->relays);
  for (guint i = 0; i < relays->len; i++)
    zlt_relay_close (g_ptr_array_index (relays, i));

  g_hash_table_remove_all (self->access_requests);
  g_hash_table_remove_all (self->pending);
  g_hash_table_remove_all (self->listeners);
  g_hash_table_remove_all (self->hostnames);
  zlt_standby_pool_clear (self->standby);
  zlt_resume_book_clear (self->resume_book);
}

/**
 * zlt_server_get_port:
 * @self: a server
 *
 * Returns: the control port actually bound (useful when the config asked for port 0);
 *   0 before zlt_server_start()
 */
guint16
zlt_server_get_port (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return self->control_listener ? zlt_listener_get_port (ZLT_LISTENER (self->control_listener)) : 0;
}

/**
 * zlt_server_get_http_port:
 * @self: a server
 *
 * Returns: the shared HTTP port routed by Host header (`http-listen`) actually bound;
 *   0 when there is none or the server is not running
 */
guint16
zlt_server_get_http_port (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return self->http_listener ? zlt_host_listener_get_port (self->http_listener) : 0;
}

/**
 * zlt_server_get_tls_port:
 * @self: a server
 *
 * Returns: the shared TLS port routed by SNI (`tls-listen`) actually bound; 0 when
 *   there is none or the server is not running
 */
guint16
zlt_server_get_tls_port (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return self->tls_listener ? zlt_host_listener_get_port (self->tls_listener) : 0;
}

/**
 * zlt_server_get_config:
 * @self: a server
 *
 * Returns: (transfer none): the server's config
 */
ZltServerConfig *
zlt_server_get_config (ZltServer *self)
{
  return self->config;
}

/**
 * zlt_server_get_registry:
 * @self: a server
 *
 * Returns: (transfer none): the server's tunnels, services and port pools
 */
ZltRegistry *
zlt_server_get_registry (ZltServer *self)
{
  return self->registry;
}

/**
 * zlt_server_get_validator:
 * @self: a server
 *
 * Returns: (transfer none): the server's validator
 */
ZltValidator *
zlt_server_get_validator (ZltServer *self)
{
  return self->validator;
}

/**
 * zlt_server_supports_protocol:
 * @self: a server
 * @protocol: a protocol
 *
 * Returns: whether services of @protocol can be registered (UDP needs the udp plugin)
 */
gboolean
zlt_server_supports_protocol (ZltServer *self, ZltProtocol protocol)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), FALSE);
  return protocol == ZLT_PROTOCOL_TCP || (protocol == ZLT_PROTOCOL_UDP && self->udp != NULL);
}

/**
 * zlt_server_get_n_peers:
 * @self: a server
 *
 * Returns: the control connections open right now, authenticated or not
 */
guint
zlt_server_get_n_peers (ZltServer *self)
{
  return g_hash_table_size (self->peers);
}

/**
 * zlt_server_get_auth_failures:
 * @self: a server
 * @code: a reason code
 *
 * Returns: logins refused with @code since the server was made (a bad or expired
 *   token, refused raw-token authentication, a validator's verdict)
 */
guint64
zlt_server_get_auth_failures (ZltServer *self, ZltReasonCode code)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return (guint) code <= ZLT_REASON_MAX ? self->auth_failures[code] : 0;
}

/**
 * zlt_server_get_n_relay_errors:
 * @self: a server
 *
 * Returns: relayed connections that ended with a failure (a reset, an I/O error, an
 *   idle timeout; not a close of either end nor one the server made) since the server
 *   was made
 */
guint64
zlt_server_get_n_relay_errors (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return self->n_relay_errors;
}

/**
 * zlt_server_get_n_pending:
 * @self: a server
 *
 * Returns: the public connections waiting for their data connection
 */
guint
zlt_server_get_n_pending (ZltServer *self)
{
  return g_hash_table_size (self->pending);
}

/**
 * zlt_server_get_n_relays:
 * @self: a server
 *
 * Returns: the connections being relayed
 */
guint
zlt_server_get_n_relays (ZltServer *self)
{
  return g_hash_table_size (self->relays);
}

/* Tests: the live relays that splice, and those a token's limits hold. */
void
zlt_server_count_relays (ZltServer *self, guint *n_zero_copy, guint *n_limited)
{
  GHashTableIter iter;
  gpointer key, value;

  *n_zero_copy = 0;
  *n_limited = 0;
  g_hash_table_iter_init (&iter, self->relays);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      if (zlt_relay_is_zero_copy (key))
        (*n_zero_copy)++;
      if (((RelayInfo *) value)->rate != NULL)
        (*n_limited)++;
    }
}

/**
 * zlt_server_get_n_standby:
 * @self: a server
 *
 * Returns: the standby data connections parked now, of every tunnel (PROTOCOL-v2.md §8)
 */
guint
zlt_server_get_n_standby (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return zlt_standby_pool_get_n_parked (self->standby, NULL);
}

/**
 * zlt_server_get_n_connects_sent:
 * @self: a server
 *
 * Returns: the Connect frames sent for public connections since the server started
 */
guint64
zlt_server_get_n_connects_sent (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return self->n_connects_sent;
}

/**
 * zlt_server_get_n_standby_joins:
 * @self: a server
 *
 * Returns: the public connections joined to a standby connection (instead of a
 *   Connect) since the server started
 */
guint64
zlt_server_get_n_standby_joins (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return self->n_standby_joins;
}

/**
 * zlt_server_get_n_standby_retired:
 * @self: a server
 *
 * Returns: the standby connections closed unused at the end of their lifetime so far
 */
guint64
zlt_server_get_n_standby_retired (ZltServer *self)
{
  g_return_val_if_fail (ZLT_IS_SERVER (self), 0);
  return zlt_standby_pool_get_n_retired (self->standby);
}

void
zlt_server_set_send_addresses (ZltServer *self, gboolean send)
{
  g_return_if_fail (ZLT_IS_SERVER (self));
  self->no_addresses = !send;
}

void
zlt_server_set_host_sniff_timeout (ZltServer *self, guint timeout_ms)
{
  g_return_if_fail (ZLT_IS_SERVER (self));
  if (self->http_listener != NULL)
    zlt_host_listener_set_timeout (self->http_listener, timeout_ms);
  if (self->tls_listener != NULL)
    zlt_host_listener_set_timeout (self->tls_listener, timeout_ms);
}

/**
 * zlt_server_set_standby_lifetime:
 * @self: a server
 * @lifetime_ms: milliseconds, more than 0
 *
 * Sets how long a standby connection stays parked at most (a minute by default), for
 * tests. Applies at once, to the connections parked now too.
 */
void
zlt_server_set_standby_lifetime (ZltServer *self, guint lifetime_ms)
{
  g_return_if_fail (ZLT_IS_SERVER (self));
  g_return_if_fail (lifetime_ms > 0);
  zlt_standby_pool_set_lifetime (self->standby, lifetime_ms);
}

/**
 * zlt_server_disconnect_tunnel:
 * @self: a server
 * @tunnel_id: the tunnel to end
 * @reason: (nullable): why, sent to the agent in a Disconnect; %NULL: "disconnected"
 * @error: return location for a #GError
 *
 * Ends a tunnel as an operator would: its agent is told why and the tunnel is removed
 * with its services, without a chance to resume. Fails with %ZLT_ERROR_NOT_FOUND when
 * there is no such tunnel.
 *
 * Returns: %TRUE when the tunnel was ended
 */
gboolean
zlt_server_disconnect_tunnel (ZltServer *self, const ZltUuid *tunnel_id, const char *reason,
                              GError **error)
{
  ZltTunnel *tunnel = zlt_registry_lookup_tunnel (self->registry, tunnel_id);
  ZltServerPeer *peer = tunnel ? g_hash_table_lookup (self->peer_by_tunnel, tunnel) : NULL;
  g_autoptr (ZltTunnel) hold = NULL;

  if (tunnel == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no such tunnel"));
      return FALSE;
    }
  /* the peer may drop the last reference to the tunnel as it goes */
  hold = g_object_ref (tunnel);
  if (peer != NULL)
    zlt_server_peer_disconnect (peer, ZLT_REASON_NONE, reason ? reason : _ ("disconnected"));
  /* no resume after an operator's disconnect */
  zlt_registry_remove_tunnel (self->registry, tunnel);
  return TRUE;
}

static void
zlt_server_dispose (GObject *object)
{
  ZltServer *self = ZLT_SERVER (object);

  zlt_server_stop (self);
  if (self->registry != NULL)
    g_signal_handlers_disconnect_by_data (self->registry, self);
  g_clear_pointer (&self->peers, g_hash_table_unref);
  g_clear_pointer (&self->peer_by_tunnel, g_hash_table_unref);
  g_clear_pointer (&self->access_requests, g_hash_table_unref);
  g_clear_pointer (&self->pending, g_hash_table_unref);
  g_clear_pointer (&self->relays, g_hash_table_unref);
  g_clear_pointer (&self->token_rates, g_hash_table_unref); /* after the relays using them */
  g_queue_clear_full (&self->unanswered, (GDestroyNotify) unanswered_free);
  g_clear_pointer (&self->listeners, g_hash_table_unref);
  g_clear_pointer (&self->hostnames, g_hash_table_unref);
  if (self->resume_book != NULL)
    g_signal_handlers_disconnect_by_data (self->resume_book, self);
  g_clear_object (&self->resume_book);
  g_clear_pointer (&self->service_limits, g_hash_table_unref);
  g_clear_object (&self->standby);
  g_clear_object (&self->registry);
  g_clear_object (&self->quota);
  g_clear_object (&self->validator);
  g_clear_object (&self->control);
  g_clear_object (&self->tcp);
  g_clear_object (&self->udp);
  g_clear_object (&self->config);
  G_OBJECT_CLASS (zlt_server_parent_class)->dispose (object);
}

static void
listener_close_free (gpointer listener)
{
  zlt_listener_close (listener);
  g_object_unref (listener);
}

static void
zlt_server_class_init (ZltServerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = zlt_server_dispose;

  /**
   * ZltServer::replica-changed:
   * @self: the server
   * @service: the service whose zlt_server_get_replica_state() may have changed
   *
   * A replica turned late or on time again, or began or ended a rest.
   */
  signals[SIGNAL_REPLICA_CHANGED]
      = g_signal_new ("replica-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, ZLT_TYPE_SERVICE);
}

static void
zlt_server_init (ZltServer *self)
{
  self->peers = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->peer_by_tunnel = g_hash_table_new (NULL, NULL);
  self->listeners = g_hash_table_new_full (NULL, NULL, g_object_unref, listener_close_free);
  self->pending = g_hash_table_new_full (zlt_uuid_hash, zlt_uuid_equal_func, NULL,
                                         (GDestroyNotify) pending_free);
  self->relays
      = g_hash_table_new_full (NULL, NULL, g_object_unref, (GDestroyNotify) relay_info_free);
  self->service_limits
      = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) service_limits_free);
  self->hostnames = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->token_rates
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) token_rate_free);
  self->quota = zlt_quota_new ();
  self->auth_failure_log = (ZltLogLimit) ZLT_LOG_LIMIT_INIT (AUTH_FAILURE_LOG_MAX, 60);
  self->connection_failure_log = (ZltLogLimit) ZLT_LOG_LIMIT_INIT (AUTH_FAILURE_LOG_MAX, 60);
  self->access_requests = g_hash_table_new_full (zlt_uuid_hash, zlt_uuid_equal_func, NULL,
                                                 (GDestroyNotify) access_request_free);
}

/**
 * zlt_server_new_full:
 * @config: the server's config; its validator and plugin settings are not used
 * @validator: the validator, configured
 * @control: the control channel's transport ("websocket")
 * @tcp: the transport of TCP services' public listeners
 * @udp: (nullable): the transport of UDP services' public listeners; %NULL: no UDP
 *
 * The same as zlt_server_new() with every part given (embedders, tests).
 *
 * Returns: (transfer full): a new server, not started
 */
ZltServer *
zlt_server_new_full (ZltServerConfig *config, ZltValidator *validator, ZltControlTransport *control,
                     ZltTransport *tcp, ZltTransport *udp)
{
  ZltServer *self;
  const ZltServerLimits *limits;
  guint16 first, last;

  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (config), NULL);
  g_return_val_if_fail (ZLT_IS_VALIDATOR (validator), NULL);
  g_return_val_if_fail (ZLT_IS_CONTROL_TRANSPORT (control), NULL);
  g_return_val_if_fail (ZLT_IS_TRANSPORT (tcp), NULL);

  self = g_object_new (ZLT_TYPE_SERVER, NULL);
  self->config = g_object_ref (config);
  self->validator = g_object_ref (validator);
  self->control = g_object_ref (control);
  self->tcp = g_object_ref (tcp);
  self->udp = udp ? g_object_ref (udp) : NULL;
  zlt_server_config_get_port_range (config, &first, &last);
  {
    g_autoptr (ZltPortPool) tcp_pool = zlt_port_pool_new_range (first, last);
    g_autoptr (ZltPortPool) udp_pool = zlt_port_pool_new_range (first, last);
    self->registry = zlt_registry_new (tcp_pool, udp_pool);
  }
  zlt_registry_set_max_tunnels (self->registry, zlt_server_config_get_max_tunnels (config));
  zlt_registry_set_max_services_per_tunnel (self->registry,
                                            zlt_server_config_get_max_services_per_tunnel (config));
  limits = zlt_server_config_get_limits (config);
  zlt_registry_set_hold_times (self->registry, limits->name_hold * 1000, limits->port_hold * 1000);
  for (guint kind = 0; kind < ZLT_QUOTA_N_KINDS; kind++)
    zlt_quota_set_limit (self->quota, kind, limits->token_max[kind]);
  /* an accepted standby request has as long as a data connection to arrive */
  self->standby
      = zlt_standby_pool_new (self->quota, zlt_server_config_get_connect_timeout (config) * 1000);
  g_signal_connect (self->registry, "service-added", G_CALLBACK (on_service_added), self);
  g_signal_connect (self->registry, "service-removed", G_CALLBACK (on_service_removed), self);
  g_signal_connect (self->registry, "tunnel-removed", G_CALLBACK (on_tunnel_removed), self);
  self->resume_book = zlt_resume_book_new (self->registry);
  g_signal_connect (self->resume_book, "displace", G_CALLBACK (on_resume_displace), self);
  /* validators that can change their tokens at run time say so */
  if (g_signal_lookup ("changed", G_OBJECT_TYPE (validator)) != 0)
    g_signal_connect_object (validator, "changed", G_CALLBACK (on_validator_changed), self, 0);
  return self;
}

/**
 * zlt_server_new:
 * @config: the server's config
 * @loader: a plugin loader that has loaded its plugins
 * @error: return location for a #GError
 *
 * Builds a server from its config, taking the validator (configured from the config's
 * `[validator:NAME]` group) and the transports from @loader.
 *
 * Returns: (transfer full): a new server, not started, or %NULL on error
 */
ZltServer *
zlt_server_new (ZltServerConfig *config, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (ZltControlTransport) control = NULL;
  g_autoptr (ZltTransport) tcp = NULL;
  g_autoptr (ZltTransport) udp = NULL;

  g_return_val_if_fail (ZLT_IS_SERVER_CONFIG (config), NULL);
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (loader), NULL);

  validator = zlt_plugin_loader_new_validator_full (
      loader, zlt_server_config_get_validator (config), zlt_server_config_get_keyfile (config),
      zlt_server_config_get_validator_group (config),
      zlt_server_config_get_config_directory (config), error);
  if (validator == NULL)
    return NULL;
  if (!zlt_plugin_loader_new_tunnel_transports (loader, &control, &tcp, &udp, error))
    return NULL;
  return zlt_server_new_full (config, validator, control, tcp, udp);
}
