/* test-objects.c: ZltService, ZltTunnel and ZltSession: properties, signals, timers */
#include "config.h"

#include "zlayer-tunnel.h"

/* counts emissions of any signal whose handler gets (instance, arg, user_data) */
typedef struct
{
  guint count;
  gpointer last_arg;
} Counter;

static void
count_cb (gpointer instance, gpointer arg, gpointer user_data)
{
  Counter *c = user_data;

  c->count++;
  c->last_arg = arg;
}

static void
count_plain_cb (gpointer instance, gpointer user_data)
{
  ((Counter *) user_data)->count++;
}

static void
free_counter (gpointer data, GClosure *closure)
{
  g_free (data);
}

static Counter *
watch (gpointer object, const char *signal)
{
  Counter *c = g_new0 (Counter, 1);

  g_signal_connect_data (object, signal, G_CALLBACK (count_cb), c, free_counter, 0);
  return c;
}

static gboolean
deadline_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* runs the default main context until *counter reaches target; fails after timeout_ms */
static void
spin_until (const guint *counter, guint target, guint timeout_ms)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (timeout_ms, deadline_cb, &timed_out);

  while (*counter < target && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  g_assert_cmpuint (*counter, >=, target);
}

/* runs whatever is ready now, without waiting */
static void
drain (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* runs the main context for about ms milliseconds (to show something does NOT happen) */
static void
spin_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, deadline_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_service_properties (void)
{
  g_autoptr (ZltService) service = zlt_service_new ("ssh", ZLT_PROTOCOL_TCP, 22, ZLT_EXPOSE_PUBLIC);
  g_autofree char *id_str = NULL;
  g_autofree char *name = NULL;
  g_autofree char *prop_id = NULL;
  ZltProtocol protocol;
  ZltExpose expose;
  guint local_port;
  Counter *n_local = watch (service, "notify::local-port");
  Counter *n_requested = watch (service, "notify::requested-port");
  Counter *n_assigned = watch (service, "notify::assigned-port");
  Counter *n_id = watch (service, "notify::id");
  ZltUuid id;

  g_assert_false (zlt_uuid_is_nil (zlt_service_get_id (service)));
  g_assert_cmpstr (zlt_service_get_name (service), ==, "ssh");
  g_object_get (service, "name", &name, "protocol", &protocol, "expose", &expose, "local-port",
                &local_port, "id", &prop_id, NULL);
  g_assert_cmpstr (name, ==, "ssh");
  g_assert_cmpint (protocol, ==, ZLT_PROTOCOL_TCP);
  g_assert_cmpint (expose, ==, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (local_port, ==, 22);
  id_str = zlt_service_dup_id_string (service);
  g_assert_cmpstr (prop_id, ==, id_str);
  g_assert_null (zlt_service_get_tunnel (service));

  /* notify exactly on change, through setters and through g_object_set alike */
  zlt_service_set_local_port (service, 22);
  g_assert_cmpuint (n_local->count, ==, 0);
  zlt_service_set_local_port (service, 2222);
  g_assert_cmpuint (n_local->count, ==, 1);
  g_object_set (service, "local-port", 2222, NULL);
  g_assert_cmpuint (n_local->count, ==, 1);
  g_object_set (service, "local-port", 22, NULL);
  g_assert_cmpuint (n_local->count, ==, 2);

  zlt_service_set_requested_port (service, 0);
  zlt_service_set_requested_port (service, 30001);
  zlt_service_set_requested_port (service, 30001);
  g_assert_cmpuint (n_requested->count, ==, 1);
  zlt_service_set_assigned_port (service, 30001);
  zlt_service_set_assigned_port (service, 30001);
  g_assert_cmpuint (n_assigned->count, ==, 1);
  g_assert_cmpuint (zlt_service_get_assigned_port (service), ==, 30001);

  zlt_service_set_id (service, zlt_service_get_id (service));
  g_assert_cmpuint (n_id->count, ==, 0);
  g_assert_true (zlt_uuid_parse ("550e8400-e29b-41d4-a716-446655440000", &id));
  zlt_service_set_id (service, &id);
  g_assert_cmpuint (n_id->count, ==, 1);
  g_object_set (service, "id", "550e8400-e29b-41d4-a716-446655440000", NULL);
  g_assert_cmpuint (n_id->count, ==, 1);
  g_assert_true (zlt_uuid_equal (zlt_service_get_id (service), &id));
}

static void
test_service_given_id (void)
{
  g_autoptr (ZltService) service
      = g_object_new (ZLT_TYPE_SERVICE, "id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "name",
                      "game", "protocol", ZLT_PROTOCOL_UDP, "expose", ZLT_EXPOSE_INTERNAL, NULL);
  g_autofree char *id = zlt_service_dup_id_string (service);

  g_assert_cmpstr (id, ==, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  g_assert_cmpint (zlt_service_get_protocol (service), ==, ZLT_PROTOCOL_UDP);
  g_assert_cmpint (zlt_service_get_expose (service), ==, ZLT_EXPOSE_INTERNAL);
}

static void
test_service_connections (void)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (ZltService) service = zlt_service_new ("web", ZLT_PROTOCOL_TCP, 80, ZLT_EXPOSE_PUBLIC);
  Counter *n_active = watch (service, "notify::active-connections");
  Counter *n_total = watch (service, "notify::total-connections");
  Counter *opened = watch (tunnel, "connection-opened");
  Counter *closed = watch (tunnel, "connection-closed");

  /* detached: counters only */
  zlt_service_connection_opened (service);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 1);
  g_assert_cmpuint (opened->count, ==, 0);

  g_assert_true (zlt_tunnel_add_service (tunnel, service, NULL));
  zlt_service_connection_opened (service);
  zlt_service_connection_opened (service);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 3);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 3);
  g_assert_cmpuint (opened->count, ==, 2);
  g_assert_true (opened->last_arg == service);

  zlt_service_connection_closed (service);
  g_assert_cmpuint (zlt_service_get_active_connections (service), ==, 2);
  g_assert_cmpuint (zlt_service_get_total_connections (service), ==, 3);
  g_assert_cmpuint (closed->count, ==, 1);
  g_assert_true (closed->last_arg == service);
  g_assert_cmpuint (n_active->count, ==, 4);
  g_assert_cmpuint (n_total->count, ==, 3);
}

static void
test_service_bytes_coalesced (void)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (ZltService) service = zlt_service_new ("web", ZLT_PROTOCOL_TCP, 80, ZLT_EXPOSE_PUBLIC);
  Counter *s_in = watch (service, "notify::bytes-in");
  Counter *s_out = watch (service, "notify::bytes-out");
  Counter *t_in = watch (tunnel, "notify::bytes-in");
  Counter *t_out = watch (tunnel, "notify::bytes-out");
  guint64 bytes_in = 0;

  g_assert_true (zlt_tunnel_add_service (tunnel, service, NULL));
  zlt_tunnel_add_bytes (tunnel, 7, 0); /* control-channel traffic */

  for (guint i = 0; i < 1000; i++)
    zlt_service_add_bytes (service, 100, 10);
  /* the counters are current at once, the notifies are not */
  g_assert_cmpuint (zlt_service_get_bytes_in (service), ==, 100000);
  g_assert_cmpuint (zlt_service_get_bytes_out (service), ==, 10000);
  g_assert_cmpuint (zlt_tunnel_get_bytes_in (tunnel), ==, 100007);
  g_assert_cmpuint (zlt_tunnel_get_bytes_out (tunnel), ==, 10000);
  g_object_get (service, "bytes-in", &bytes_in, NULL);
  g_assert_cmpuint (bytes_in, ==, 100000);
  drain ();
  g_assert_cmpuint (s_in->count + s_out->count + t_in->count + t_out->count, ==, 0);

  /* a flush emits each changed counter once, and only once */
  zlt_service_flush_notify (service);
  g_assert_cmpuint (s_in->count, ==, 1);
  g_assert_cmpuint (s_out->count, ==, 1);
  zlt_service_flush_notify (service);
  g_assert_cmpuint (s_in->count, ==, 1);
  g_assert_cmpuint (s_out->count, ==, 1);
  zlt_tunnel_flush_notify (tunnel);
  zlt_tunnel_flush_notify (tunnel);
  g_assert_cmpuint (t_in->count, ==, 1);
  g_assert_cmpuint (t_out->count, ==, 1);

  /* only what changed */
  zlt_service_add_bytes (service, 0, 5);
  zlt_service_add_bytes (service, 0, 0);
  zlt_service_flush_notify (service);
  g_assert_cmpuint (s_in->count, ==, 1);
  g_assert_cmpuint (s_out->count, ==, 2);

  /* nothing changed: nothing scheduled, nothing emitted */
  zlt_service_add_bytes (service, 0, 0);
  zlt_service_flush_notify (service);
  g_assert_cmpuint (s_in->count, ==, 1);
  g_assert_cmpuint (s_out->count, ==, 2);

  /* by itself, within the interval: one notify for a burst */
  zlt_tunnel_flush_notify (tunnel);
  t_in->count = t_out->count = 0;
  for (guint i = 0; i < 100; i++)
    zlt_service_add_bytes (service, 1, 1);
  spin_until (&s_in->count, 2, 5000);
  spin_until (&t_in->count, 1, 5000);
  drain ();
  g_assert_cmpuint (s_in->count, ==, 2);
  g_assert_cmpuint (s_out->count, ==, 3);
  g_assert_cmpuint (t_in->count, ==, 1);
  g_assert_cmpuint (t_out->count, ==, 1);
}

static void
test_service_dispose_with_pending_notify (void)
{
  ZltService *service = zlt_service_new ("web", ZLT_PROTOCOL_TCP, 80, ZLT_EXPOSE_PUBLIC);
  ZltTunnel *tunnel = zlt_tunnel_new (ZLT_ROLE_AGENT);

  g_assert_true (zlt_tunnel_add_service (tunnel, service, NULL));
  zlt_service_add_bytes (service, 1, 1);
  zlt_tunnel_touch (tunnel);
  /* the tunnel goes first: the service must not keep a dangling back pointer */
  g_object_unref (tunnel);
  g_assert_null (zlt_service_get_tunnel (service));
  zlt_service_add_bytes (service, 1, 1);
  g_object_unref (service);
  /* the pending timers went with them */
  spin_for (ZLT_NOTIFY_INTERVAL_MS + 50);
}

static void
test_tunnel_properties (void)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  Counter *n_state = watch (tunnel, "notify::state");
  Counter *n_peer = watch (tunnel, "notify::peer-address");
  Counter *n_client = watch (tunnel, "notify::client-id");
  Counter *n_token = watch (tunnel, "notify::token-name");
  Counter *n_activity = watch (tunnel, "notify::last-activity");
  Counter *n_id = watch (tunnel, "notify::id");
  gint64 now = g_get_real_time ();
  gint64 before;
  ZltTunnelState state;
  ZltRole role;
  g_autofree char *peer = NULL;
  ZltUuid id;

  g_assert_cmpint (zlt_tunnel_get_role (tunnel), ==, ZLT_ROLE_SERVER);
  g_assert_cmpint (zlt_tunnel_get_state (tunnel), ==, ZLT_TUNNEL_STATE_PENDING);
  g_assert_false (zlt_uuid_is_nil (zlt_tunnel_get_id (tunnel)));
  g_assert_cmpint (zlt_tunnel_get_created (tunnel), <=, now);
  g_assert_cmpint (zlt_tunnel_get_created (tunnel), >, now - 10 * G_USEC_PER_SEC);

  zlt_tunnel_set_state (tunnel, ZLT_TUNNEL_STATE_PENDING);
  g_assert_cmpuint (n_state->count, ==, 0);
  zlt_tunnel_set_state (tunnel, ZLT_TUNNEL_STATE_CONNECTED);
  zlt_tunnel_set_state (tunnel, ZLT_TUNNEL_STATE_CONNECTED);
  g_assert_cmpuint (n_state->count, ==, 1);
  g_object_set (tunnel, "state", ZLT_TUNNEL_STATE_CONNECTED, NULL);
  g_assert_cmpuint (n_state->count, ==, 1);
  g_object_set (tunnel, "state", ZLT_TUNNEL_STATE_DISCONNECTED, NULL);
  g_assert_cmpuint (n_state->count, ==, 2);

  zlt_tunnel_set_peer_address (tunnel, "192.0.2.1:4000");
  zlt_tunnel_set_peer_address (tunnel, "192.0.2.1:4000");
  g_assert_cmpuint (n_peer->count, ==, 1);
  zlt_tunnel_set_peer_address (tunnel, NULL);
  zlt_tunnel_set_peer_address (tunnel, NULL);
  g_assert_cmpuint (n_peer->count, ==, 2);
  g_object_set (tunnel, "peer-address", "[::1]:5", NULL);
  g_assert_cmpuint (n_peer->count, ==, 3);

  zlt_tunnel_set_client_id (tunnel, "550e8400-e29b-41d4-a716-446655440000");
  zlt_tunnel_set_client_id (tunnel, "550e8400-e29b-41d4-a716-446655440000");
  zlt_tunnel_set_token_name (tunnel, "laptop");
  zlt_tunnel_set_token_name (tunnel, "laptop");
  g_assert_cmpuint (n_client->count, ==, 1);
  g_assert_cmpuint (n_token->count, ==, 1);
  g_assert_cmpstr (zlt_tunnel_get_token_name (tunnel), ==, "laptop");

  g_object_get (tunnel, "state", &state, "role", &role, "peer-address", &peer, NULL);
  g_assert_cmpint (state, ==, ZLT_TUNNEL_STATE_DISCONNECTED);
  g_assert_cmpint (role, ==, ZLT_ROLE_SERVER);
  g_assert_cmpstr (peer, ==, "[::1]:5");

  g_assert_true (zlt_uuid_parse ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", &id));
  zlt_tunnel_set_id (tunnel, &id);
  zlt_tunnel_set_id (tunnel, &id);
  g_assert_cmpuint (n_id->count, ==, 1);

  /* last-activity: coalesced like the byte counters */
  before = zlt_tunnel_get_last_activity (tunnel);
  while (g_get_real_time () == before)
    ;
  zlt_tunnel_touch (tunnel);
  zlt_tunnel_touch (tunnel);
  g_assert_cmpint (zlt_tunnel_get_last_activity (tunnel), >, before);
  g_assert_cmpuint (n_activity->count, ==, 0);
  zlt_tunnel_flush_notify (tunnel);
  g_assert_cmpuint (n_activity->count, ==, 1);
  zlt_tunnel_flush_notify (tunnel);
  g_assert_cmpuint (n_activity->count, ==, 1);
}

static void
check_tunnel_during_removal (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  /* still ours during the emission, but no longer listed */
  g_assert_true (zlt_service_get_tunnel (service) == tunnel);
  g_assert_null (zlt_tunnel_lookup_service (tunnel, zlt_service_get_name (service)));
  (*(guint *) user_data)++;
}

static void
test_tunnel_services (void)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (ZltTunnel) other = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (ZltService) ssh = zlt_service_new ("ssh", ZLT_PROTOCOL_TCP, 22, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltService) game
      = zlt_service_new ("game", ZLT_PROTOCOL_UDP, 27015, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltService) ssh2 = zlt_service_new ("ssh", ZLT_PROTOCOL_TCP, 2222, ZLT_EXPOSE_PUBLIC);
  g_autoptr (GPtrArray) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  Counter *added = watch (tunnel, "service-added");
  Counter *removed = watch (tunnel, "service-removed");
  Counter *n_services = watch (tunnel, "notify::n-services");
  Counter *n_tunnel = watch (ssh, "notify::tunnel");
  guint checked = 0;
  ZltTunnel *owner = NULL;

  g_signal_connect (tunnel, "service-removed", G_CALLBACK (check_tunnel_during_removal), &checked);

  g_assert_true (zlt_tunnel_add_service (tunnel, ssh, &error));
  g_assert_no_error (error);
  g_assert_true (zlt_tunnel_add_service (tunnel, game, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (added->count, ==, 2);
  g_assert_true (added->last_arg == game);
  g_assert_cmpuint (n_services->count, ==, 2);
  g_assert_cmpuint (n_tunnel->count, ==, 1);
  g_assert_true (zlt_service_get_tunnel (ssh) == tunnel);
  g_object_get (ssh, "tunnel", &owner, NULL);
  g_assert_true (owner == tunnel);
  g_clear_object (&owner);
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 2);

  /* duplicate name; a service of another tunnel */
  g_assert_false (zlt_tunnel_add_service (tunnel, ssh2, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME);
  g_clear_error (&error);
  g_assert_false (zlt_tunnel_add_service (other, ssh, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);
  g_assert_cmpuint (added->count, ==, 2);
  g_assert_null (zlt_service_get_tunnel (ssh2));

  /* lookups */
  g_assert_true (zlt_tunnel_lookup_service (tunnel, "ssh") == ssh);
  g_assert_true (zlt_tunnel_lookup_service (tunnel, "game") == game);
  g_assert_null (zlt_tunnel_lookup_service (tunnel, "nope"));
  g_assert_true (zlt_tunnel_lookup_service_by_id (tunnel, zlt_service_get_id (game)) == game);
  g_assert_null (zlt_tunnel_lookup_service_by_id (tunnel, zlt_service_get_id (ssh2)));

  snapshot = zlt_tunnel_get_services (tunnel);
  g_assert_cmpuint (snapshot->len, ==, 2);
  g_assert_true (g_ptr_array_index (snapshot, 0) == ssh);

  /* removal */
  g_assert_true (zlt_tunnel_remove_service (tunnel, ssh));
  g_assert_cmpuint (removed->count, ==, 1);
  g_assert_cmpuint (checked, ==, 1);
  g_assert_true (removed->last_arg == ssh);
  g_assert_null (zlt_service_get_tunnel (ssh));
  g_assert_cmpuint (n_tunnel->count, ==, 2);
  g_assert_cmpuint (n_services->count, ==, 3);
  g_assert_false (zlt_tunnel_remove_service (tunnel, ssh));
  g_assert_false (zlt_tunnel_remove_service (tunnel, ssh2));
  g_assert_cmpuint (removed->count, ==, 1);
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 1);
  /* the snapshot kept its own references */
  g_assert_cmpuint (snapshot->len, ==, 2);

  /* the name is free again */
  g_assert_true (zlt_tunnel_add_service (tunnel, ssh2, NULL));
  g_assert_true (zlt_tunnel_lookup_service (tunnel, "ssh") == ssh2);
}

static void
test_session_basics (void)
{
  g_autoptr (ZltSession) session
      = zlt_session_new ("wss://tunnel.example.org", "127.0.0.1:8022", "ssh", 60);
  g_autoptr (ZltSession) forever = zlt_session_new ("wss://tunnel.example.org", NULL, "db", 0);
  Counter *n_local = watch (session, "notify::local-address");
  Counter *n_expires = watch (session, "notify::expires");
  Counter *n_active = watch (session, "notify::active-connections");
  Counter *n_in = watch (session, "notify::bytes-in");
  g_autofree char *endpoint = NULL;
  gint64 created, expires;

  g_assert_false (zlt_uuid_is_nil (zlt_session_get_id (session)));
  g_assert_cmpstr (zlt_session_get_endpoint (session), ==, "wss://tunnel.example.org");
  g_assert_cmpstr (zlt_session_get_remote_service (session), ==, "ssh");
  g_assert_cmpstr (zlt_session_get_local_address (session), ==, "127.0.0.1:8022");
  g_object_get (session, "endpoint", &endpoint, "created", &created, "expires", &expires, NULL);
  g_assert_cmpstr (endpoint, ==, "wss://tunnel.example.org");
  g_assert_cmpint (expires - created, ==, 60 * G_USEC_PER_SEC);
  g_assert_cmpint (zlt_session_get_remaining_seconds (session), <=, 60);
  g_assert_cmpint (zlt_session_get_remaining_seconds (session), >=, 59);
  g_assert_false (zlt_session_is_expired (session));

  g_assert_cmpint (zlt_session_get_expires (forever), ==, 0);
  g_assert_cmpint (zlt_session_get_remaining_seconds (forever), ==, -1);

  zlt_session_set_local_address (session, "127.0.0.1:8022");
  g_assert_cmpuint (n_local->count, ==, 0);
  zlt_session_set_local_address (session, "127.0.0.1:9000");
  g_assert_cmpuint (n_local->count, ==, 1);

  zlt_session_set_expires (session, expires);
  g_assert_cmpuint (n_expires->count, ==, 0);
  zlt_session_set_expires (session, expires + G_USEC_PER_SEC);
  g_assert_cmpuint (n_expires->count, ==, 1);
  g_assert_cmpint (zlt_session_get_remaining_seconds (session), >=, 60);

  zlt_session_connection_opened (session);
  zlt_session_connection_opened (session);
  zlt_session_connection_closed (session);
  g_assert_cmpuint (zlt_session_get_active_connections (session), ==, 1);
  g_assert_cmpuint (zlt_session_get_total_connections (session), ==, 2);
  g_assert_cmpuint (n_active->count, ==, 3);

  for (guint i = 0; i < 50; i++)
    zlt_session_add_bytes (session, 10, 20);
  g_assert_cmpuint (zlt_session_get_bytes_in (session), ==, 500);
  g_assert_cmpuint (zlt_session_get_bytes_out (session), ==, 1000);
  drain ();
  g_assert_cmpuint (n_in->count, ==, 0);
  zlt_session_flush_notify (session);
  zlt_session_flush_notify (session);
  g_assert_cmpuint (n_in->count, ==, 1);
  zlt_session_add_bytes (session, 1, 0);
  spin_until (&n_in->count, 2, 5000);
}

static void
test_session_expires_by_itself (void)
{
  g_autoptr (ZltSession) session
      = zlt_session_new ("wss://tunnel.example.org", "127.0.0.1:0", "ssh", 3600);
  Counter expired = { 0 };

  g_signal_connect (session, "expired", G_CALLBACK (count_plain_cb), &expired);
  zlt_session_set_expires (session, g_get_real_time () + 50 * 1000);
  g_assert_cmpint (zlt_session_get_remaining_seconds (session), <=, 1);

  spin_until (&expired.count, 1, 5000);
  g_assert_true (zlt_session_is_expired (session));
  g_assert_cmpint (zlt_session_get_remaining_seconds (session), ==, 0);
  /* once, and only once */
  spin_for (100);
  g_assert_cmpuint (expired.count, ==, 1);

  /* extended after expiry: armed again, fires again */
  zlt_session_set_expires (session, g_get_real_time () + 20 * 1000);
  g_assert_false (zlt_session_is_expired (session));
  spin_until (&expired.count, 2, 5000);
  spin_for (50);
  g_assert_cmpuint (expired.count, ==, 2);

  /* an expiry in the past fires from the main loop, not from the setter */
  zlt_session_set_expires (session, g_get_real_time () - G_USEC_PER_SEC);
  g_assert_cmpuint (expired.count, ==, 2);
  spin_until (&expired.count, 3, 5000);
}

static void
test_session_dispose_cancels_timer (void)
{
  ZltSession *session = zlt_session_new ("wss://tunnel.example.org", NULL, "ssh", 3600);
  Counter expired = { 0 };

  g_signal_connect (session, "expired", G_CALLBACK (count_plain_cb), &expired);
  zlt_session_set_expires (session, g_get_real_time () + 20 * 1000);
  zlt_session_add_bytes (session, 1, 1);
  g_object_unref (session);
  spin_for (MAX (100, ZLT_NOTIFY_INTERVAL_MS + 50));
  g_assert_cmpuint (expired.count, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/objects/service/properties", test_service_properties);
  g_test_add_func ("/objects/service/given-id", test_service_given_id);
  g_test_add_func ("/objects/service/connections", test_service_connections);
  g_test_add_func ("/objects/service/bytes-coalesced", test_service_bytes_coalesced);
  g_test_add_func ("/objects/service/dispose-pending-notify",
                   test_service_dispose_with_pending_notify);
  g_test_add_func ("/objects/tunnel/properties", test_tunnel_properties);
  g_test_add_func ("/objects/tunnel/services", test_tunnel_services);
  g_test_add_func ("/objects/session/basics", test_session_basics);
  g_test_add_func ("/objects/session/expires-by-itself", test_session_expires_by_itself);
  g_test_add_func ("/objects/session/dispose-cancels-timer", test_session_dispose_cancels_timer);
  return g_test_run ();
}
