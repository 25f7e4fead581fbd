/* test-registry.c: tunnels, services, ports, limits and resume leases */
#include "config.h"

#include <string.h>

#include "zlayer-tunnel.h"

typedef struct
{
  ZltRegistry *registry;
  ZltPortPool *tcp;
  ZltPortPool *udp;
  guint tunnel_added;
  guint tunnel_removed;
  guint service_added;
  guint service_removed;
  guint n_tunnels_notify;
} Fixture;

static void
count_cb (gpointer instance, gpointer arg, gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  /* five ports per protocol */
  f->registry = zlt_registry_new_from_ranges ("30000-30003,30010", &error);
  g_assert_no_error (error);
  f->tcp = zlt_registry_get_port_pool (f->registry, ZLT_PROTOCOL_TCP);
  f->udp = zlt_registry_get_port_pool (f->registry, ZLT_PROTOCOL_UDP);
  g_assert_true (f->tcp != f->udp);
  g_signal_connect (f->registry, "tunnel-added", G_CALLBACK (count_cb), &f->tunnel_added);
  g_signal_connect (f->registry, "tunnel-removed", G_CALLBACK (count_cb), &f->tunnel_removed);
  g_signal_connect (f->registry, "service-added", G_CALLBACK (count_cb), &f->service_added);
  g_signal_connect (f->registry, "service-removed", G_CALLBACK (count_cb), &f->service_removed);
  g_signal_connect (f->registry, "notify::n-tunnels", G_CALLBACK (count_cb), &f->n_tunnels_notify);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->registry);
}

static ZltTunnel *
add_tunnel (Fixture *f)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (GError) error = NULL;

  g_assert_true (zlt_registry_add_tunnel (f->registry, tunnel, &error));
  g_assert_no_error (error);
  return tunnel; /* the registry holds it */
}

static ZltService *
register_ok (Fixture *f, ZltTunnel *tunnel, const char *name, ZltProtocol protocol,
             guint16 requested, ZltExpose expose)
{
  g_autoptr (GError) error = NULL;
  ZltService *service = zlt_registry_register_service (f->registry, tunnel, name, protocol, 8000,
                                                       requested, expose, &error);

  g_assert_no_error (error);
  g_assert_nonnull (service);
  return service;
}

static gboolean
deadline_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

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

static void
test_registry_tunnels (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  g_autoptr (ZltTunnel) twin = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (GPtrArray) tunnels = NULL;
  g_autoptr (GError) error = NULL;
  ZltUuid id;

  g_assert_cmpuint (f->tunnel_added, ==, 1);
  g_assert_cmpuint (f->n_tunnels_notify, ==, 1);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (f->registry), ==, 1);
  g_assert_true (zlt_registry_lookup_tunnel (f->registry, zlt_tunnel_get_id (tunnel)) == tunnel);

  /* the same tunnel, or another with its id */
  g_assert_false (zlt_registry_add_tunnel (f->registry, tunnel, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);
  zlt_tunnel_set_id (twin, zlt_tunnel_get_id (tunnel));
  g_assert_false (zlt_registry_add_tunnel (f->registry, twin, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);
  g_assert_cmpuint (f->tunnel_added, ==, 1);
  g_assert_false (zlt_registry_remove_tunnel (f->registry, twin));

  tunnels = zlt_registry_get_tunnels (f->registry);
  g_assert_cmpuint (tunnels->len, ==, 1);
  g_assert_true (g_ptr_array_index (tunnels, 0) == tunnel);

  /* an id change is followed */
  zlt_uuid_generate (&id);
  zlt_tunnel_set_id (tunnel, &id);
  g_assert_true (zlt_registry_lookup_tunnel (f->registry, &id) == tunnel);
  g_assert_null (zlt_registry_lookup_tunnel (f->registry, zlt_tunnel_get_id (twin)));

  g_assert_true (zlt_registry_remove_tunnel (f->registry, tunnel));
  g_assert_cmpuint (f->tunnel_removed, ==, 1);
  g_assert_cmpuint (f->n_tunnels_notify, ==, 2);
  g_assert_null (zlt_registry_lookup_tunnel (f->registry, &id));
  /* tunnel is still alive here: the snapshot holds it */
  g_assert_false (zlt_registry_remove_tunnel (f->registry, tunnel));
  g_assert_cmpuint (f->tunnel_removed, ==, 1);
}

static void
test_registry_limits (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTunnel) third = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (GError) error = NULL;
  guint max_notify = 0;
  ZltTunnel *tunnel;
  ZltService *service;
  guint max = 0;

  g_signal_connect (f->registry, "notify::max-tunnels", G_CALLBACK (count_cb), &max_notify);
  g_assert_cmpuint (zlt_registry_get_max_tunnels (f->registry), ==, 0);
  zlt_registry_set_max_tunnels (f->registry, 2);
  zlt_registry_set_max_tunnels (f->registry, 2);
  g_object_set (f->registry, "max-tunnels", 2, NULL);
  g_assert_cmpuint (max_notify, ==, 1);
  g_object_set (f->registry, "max-services-per-tunnel", 2, NULL);
  g_object_get (f->registry, "max-services-per-tunnel", &max, NULL);
  g_assert_cmpuint (max, ==, 2);

  tunnel = add_tunnel (f);
  add_tunnel (f);
  g_assert_false (zlt_registry_add_tunnel (f->registry, third, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_LIMIT);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (f->registry), ==, 2);

  register_ok (f, tunnel, "a", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  service = register_ok (f, tunnel, "b", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_INTERNAL);
  g_assert_null (zlt_registry_register_service (f->registry, tunnel, "c", ZLT_PROTOCOL_TCP, 80, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_LIMIT);
  g_clear_error (&error);
  /* a refused registration takes no port */
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 4);

  g_assert_true (zlt_registry_unregister_service (f->registry, service, NULL));
  register_ok (f, tunnel, "c", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);

  /* lowering a limit drops nothing; raising it admits again */
  zlt_registry_set_max_tunnels (f->registry, 1);
  g_assert_cmpuint (zlt_registry_get_n_tunnels (f->registry), ==, 2);
  zlt_registry_set_max_tunnels (f->registry, 0);
  g_assert_true (zlt_registry_add_tunnel (f->registry, third, NULL));
}

static void
test_registry_duplicate_names (Fixture *f, gconstpointer data)
{
  ZltTunnel *one = add_tunnel (f);
  ZltTunnel *two = add_tunnel (f);
  g_autoptr (GError) error = NULL;
  ZltService *ssh1, *ssh2, *web;

  ssh1 = register_ok (f, one, "ssh", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_null (zlt_registry_register_service (f->registry, one, "ssh", ZLT_PROTOCOL_UDP, 22, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->udp), ==, 5);
  g_assert_cmpuint (f->service_added, ==, 1);

  /* names are per tunnel */
  web = register_ok (f, one, "web", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_true (zlt_registry_lookup_service_by_name (f->registry, "ssh", &error) == ssh1);
  g_assert_no_error (error);
  ssh2 = register_ok (f, two, "ssh", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_true (ssh1 != ssh2);
  g_assert_true (zlt_tunnel_lookup_service (one, "ssh") == ssh1);
  g_assert_true (zlt_tunnel_lookup_service (two, "ssh") == ssh2);

  /* across the server the name is now ambiguous */
  g_assert_null (zlt_registry_lookup_service_by_name (f->registry, "ssh", &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME);
  g_clear_error (&error);
  g_assert_true (zlt_registry_lookup_service_by_name (f->registry, "web", NULL) == web);
  g_assert_null (zlt_registry_lookup_service_by_name (f->registry, "nope", &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* by id, across tunnels */
  g_assert_true (zlt_registry_lookup_service (f->registry, zlt_service_get_id (ssh2)) == ssh2);
  g_assert_true (zlt_registry_lookup_service (f->registry, zlt_service_get_id (web)) == web);

  g_assert_true (zlt_registry_unregister_service (f->registry, ssh2, NULL));
  g_assert_true (zlt_registry_lookup_service_by_name (f->registry, "ssh", NULL) == ssh1);
}

static void
test_registry_ports (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  g_autoptr (GError) error = NULL;
  ZltService *a, *b, *u, *internal, *asked;

  a = register_ok (f, tunnel, "a", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  b = register_ok (f, tunnel, "b", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_service_get_assigned_port (a), ==, 30000);
  g_assert_cmpuint (zlt_service_get_assigned_port (b), ==, 30001);
  g_assert_cmpuint (zlt_service_get_local_port (a), ==, 8000);
  g_assert_true (zlt_service_get_tunnel (a) == tunnel);

  /* UDP has its own pool */
  u = register_ok (f, tunnel, "u", ZLT_PROTOCOL_UDP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_service_get_assigned_port (u), ==, 30000);
  g_assert_cmpint (zlt_service_get_protocol (u), ==, ZLT_PROTOCOL_UDP);

  /* internal services get no port and take none */
  internal = register_ok (f, tunnel, "internal", ZLT_PROTOCOL_TCP, 30002, ZLT_EXPOSE_INTERNAL);
  g_assert_cmpuint (zlt_service_get_assigned_port (internal), ==, 0);
  g_assert_cmpuint (zlt_service_get_requested_port (internal), ==, 0);
  g_assert_cmpint (zlt_service_get_expose (internal), ==, ZLT_EXPOSE_INTERNAL);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 3);

  /* a requested port */
  asked = register_ok (f, tunnel, "asked", ZLT_PROTOCOL_TCP, 30010, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_service_get_assigned_port (asked), ==, 30010);
  g_assert_cmpuint (zlt_service_get_requested_port (asked), ==, 30010);

  g_assert_null (zlt_registry_register_service (f->registry, tunnel, "dup-port", ZLT_PROTOCOL_TCP,
                                                1, 30001, ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_clear_error (&error);
  g_assert_null (zlt_registry_register_service (f->registry, tunnel, "far", ZLT_PROTOCOL_TCP, 1,
                                                30005, ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_OUT_OF_RANGE);
  g_clear_error (&error);
  g_assert_null (zlt_tunnel_lookup_service (tunnel, "far"));

  register_ok (f, tunnel, "c", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  register_ok (f, tunnel, "d", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_null (zlt_registry_register_service (f->registry, tunnel, "e", ZLT_PROTOCOL_TCP, 1, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORTS_EXHAUSTED);
  g_clear_error (&error);

  g_assert_true (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, 30001) == b);
  g_assert_true (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_UDP, 30000) == u);
  g_assert_null (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_UDP, 30001));
  g_assert_null (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, 0));

  /* unregistering gives the port back, and it is handed out again */
  g_assert_true (zlt_registry_unregister_service (f->registry, b, &error));
  g_assert_no_error (error);
  g_assert_false (zlt_port_pool_is_allocated (f->tcp, 30001));
  g_assert_null (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, 30001));
  b = register_ok (f, tunnel, "b2", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_service_get_assigned_port (b), ==, 30001);
}

static void
test_registry_unregister (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  g_autoptr (ZltService) service = NULL;
  g_autoptr (ZltService) stranger = zlt_service_new ("x", ZLT_PROTOCOL_TCP, 1, ZLT_EXPOSE_PUBLIC);
  g_autoptr (GError) error = NULL;
  guint tunnel_removed = 0;
  ZltUuid id;

  g_signal_connect (tunnel, "service-removed", G_CALLBACK (count_cb), &tunnel_removed);
  service = g_object_ref (register_ok (f, tunnel, "a", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC));
  id = *zlt_service_get_id (service);
  g_assert_cmpuint (f->service_added, ==, 1);

  g_assert_true (zlt_registry_unregister_service (f->registry, service, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->service_removed, ==, 1);
  g_assert_cmpuint (tunnel_removed, ==, 1);
  g_assert_null (zlt_service_get_tunnel (service));
  g_assert_null (zlt_registry_lookup_service (f->registry, &id));
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);

  g_assert_false (zlt_registry_unregister_service (f->registry, service, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (zlt_registry_unregister_service (f->registry, stranger, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpuint (f->service_removed, ==, 1);
}

static void
test_registry_direct_tunnel_changes (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  g_autoptr (ZltService) own = zlt_service_new ("own", ZLT_PROTOCOL_TCP, 1, ZLT_EXPOSE_PUBLIC);
  ZltService *reg;

  /* removed through the tunnel, not the registry: the port still comes back */
  reg = register_ok (f, tunnel, "reg", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 4);
  g_assert_true (zlt_tunnel_remove_service (tunnel, reg));
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);
  g_assert_cmpuint (f->service_removed, ==, 1);

  /* added through the tunnel: the registry lists it too */
  g_assert_true (zlt_tunnel_add_service (tunnel, own, NULL));
  g_assert_cmpuint (f->service_added, ==, 2);
  g_assert_true (zlt_registry_lookup_service (f->registry, zlt_service_get_id (own)) == own);
  g_assert_true (zlt_registry_unregister_service (f->registry, own, NULL));
  g_assert_cmpuint (f->service_removed, ==, 2);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);
}

static void
test_registry_existing_services (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  g_autoptr (ZltService) service
      = zlt_service_new ("pre", ZLT_PROTOCOL_UDP, 1, ZLT_EXPOSE_INTERNAL);

  g_assert_true (zlt_tunnel_add_service (tunnel, service, NULL));
  g_assert_true (zlt_registry_add_tunnel (f->registry, tunnel, NULL));
  g_assert_cmpuint (f->service_added, ==, 1);
  g_assert_true (zlt_registry_lookup_service_by_name (f->registry, "pre", NULL) == service);
  g_assert_true (zlt_registry_remove_tunnel (f->registry, tunnel));
  g_assert_cmpuint (f->service_removed, ==, 1);
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 0);
}

static void
test_registry_remove_releases_ports (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTunnel) tunnel = g_object_ref (add_tunnel (f));
  ZltTunnel *other = add_tunnel (f);
  g_autoptr (ZltService) a = NULL;
  guint tunnel_removed = 0;

  g_signal_connect (tunnel, "service-removed", G_CALLBACK (count_cb), &tunnel_removed);
  a = g_object_ref (register_ok (f, tunnel, "a", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC));
  register_ok (f, tunnel, "b", ZLT_PROTOCOL_TCP, 30003, ZLT_EXPOSE_PUBLIC);
  register_ok (f, tunnel, "c", ZLT_PROTOCOL_UDP, 0, ZLT_EXPOSE_PUBLIC);
  register_ok (f, tunnel, "d", ZLT_PROTOCOL_UDP, 0, ZLT_EXPOSE_INTERNAL);
  register_ok (f, other, "x", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 2);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->udp), ==, 4);

  g_assert_true (zlt_registry_remove_tunnel (f->registry, tunnel));
  g_assert_cmpuint (tunnel_removed, ==, 4);
  g_assert_cmpuint (f->service_removed, ==, 4);
  g_assert_cmpuint (f->tunnel_removed, ==, 1);
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 0);
  g_assert_null (zlt_service_get_tunnel (a));
  g_assert_null (zlt_registry_lookup_service (f->registry, zlt_service_get_id (a)));
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 4);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->udp), ==, 5);
  g_assert_false (zlt_port_pool_is_allocated (f->tcp, 30003));
  g_assert_true (zlt_port_pool_is_allocated (f->tcp, 30001)); /* other's */

  /* registering on an unlisted tunnel fails */
  {
    g_autoptr (GError) error = NULL;
    g_assert_null (zlt_registry_register_service (f->registry, tunnel, "z", ZLT_PROTOCOL_TCP, 1, 0,
                                                  ZLT_EXPOSE_PUBLIC, &error));
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  }
}

static void
test_registry_hold_resume (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  ZltTunnel *other = add_tunnel (f);
  g_autoptr (GError) error = NULL;
  ZltService *web, *game, *secret, *old;
  ZltUuid web_id, tunnel_id;
  guint state_notify = 0;
  guint tunnel_signal = 0;

  register_ok (f, other, "first", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC); /* 30000 */
  web = register_ok (f, tunnel, "web", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  game = register_ok (f, tunnel, "game", ZLT_PROTOCOL_UDP, 0, ZLT_EXPOSE_PUBLIC);
  secret = register_ok (f, tunnel, "secret", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_INTERNAL);
  old = register_ok (f, tunnel, "old", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_service_get_assigned_port (web), ==, 30001);
  g_assert_cmpuint (zlt_service_get_assigned_port (game), ==, 30000);
  g_assert_cmpuint (zlt_service_get_assigned_port (old), ==, 30002);
  web_id = *zlt_service_get_id (web);
  tunnel_id = *zlt_tunnel_get_id (tunnel);
  zlt_tunnel_set_state (tunnel, ZLT_TUNNEL_STATE_CONNECTED);
  g_signal_connect (tunnel, "notify::state", G_CALLBACK (count_cb), &state_notify);
  g_signal_connect (tunnel, "service-added", G_CALLBACK (count_cb), &tunnel_signal);
  g_signal_connect (tunnel, "service-removed", G_CALLBACK (count_cb), &tunnel_signal);

  /* a connected tunnel cannot be resumed */
  g_assert_null (zlt_registry_resume_tunnel (f->registry, &tunnel_id, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);

  g_assert_true (zlt_registry_hold_tunnel (f->registry, tunnel, 60 * 1000));
  g_assert_true (zlt_registry_is_held (f->registry, tunnel));
  g_assert_false (zlt_registry_is_held (f->registry, other));
  g_assert_cmpint (zlt_tunnel_get_state (tunnel), ==, ZLT_TUNNEL_STATE_DISCONNECTED);
  g_assert_cmpuint (state_notify, ==, 1);
  /* still listed, ports still reserved: nobody else gets them */
  g_assert_true (zlt_registry_lookup_tunnel (f->registry, &tunnel_id) == tunnel);
  g_assert_cmpuint (zlt_service_get_assigned_port (
                        register_ok (f, other, "second", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC)),
                    ==, 30003);

  g_assert_true (zlt_registry_resume_tunnel (f->registry, &tunnel_id, &error) == tunnel);
  g_assert_no_error (error);
  g_assert_false (zlt_registry_is_held (f->registry, tunnel));
  /* resuming twice: the second finds it connected */
  g_assert_null (zlt_registry_resume_tunnel (f->registry, &tunnel_id, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_IN_USE);
  g_clear_error (&error);

  /* the agent registers again: same objects, ids and ports, no added/removed churn */
  f->service_added = 0;
  f->service_removed = 0;
  g_assert_true (zlt_registry_register_service (f->registry, tunnel, "web", ZLT_PROTOCOL_TCP, 8080,
                                                0, ZLT_EXPOSE_PUBLIC, &error)
                 == web);
  g_assert_no_error (error);
  g_assert_true (zlt_uuid_equal (zlt_service_get_id (web), &web_id));
  g_assert_cmpuint (zlt_service_get_assigned_port (web), ==, 30001);
  g_assert_cmpuint (zlt_service_get_local_port (web), ==, 8080);
  g_assert_true (zlt_registry_register_service (f->registry, tunnel, "game", ZLT_PROTOCOL_UDP, 8000,
                                                30000, ZLT_EXPOSE_PUBLIC, &error)
                 == game);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_service_get_assigned_port (game), ==, 30000);
  g_assert_true (register_ok (f, tunnel, "secret", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_INTERNAL)
                 == secret);
  g_assert_cmpuint (f->service_added, ==, 0);
  g_assert_cmpuint (f->service_removed, ==, 0);
  g_assert_cmpuint (tunnel_signal, ==, 0);

  /* once claimed, the name is taken again */
  g_assert_null (zlt_registry_register_service (f->registry, tunnel, "web", ZLT_PROTOCOL_TCP, 1, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME);
  g_clear_error (&error);

  /* "old" was not registered again: dropped on request, its port freed */
  g_assert_true (zlt_port_pool_is_allocated (f->tcp, 30002));
  g_assert_cmpuint (zlt_registry_drop_unclaimed (f->registry, tunnel), ==, 1);
  g_assert_null (zlt_tunnel_lookup_service (tunnel, "old"));
  g_assert_false (zlt_port_pool_is_allocated (f->tcp, 30002));
  g_assert_cmpuint (f->service_removed, ==, 1);
  g_assert_cmpuint (zlt_registry_drop_unclaimed (f->registry, tunnel), ==, 0);
}

static void
test_registry_resume_changed_terms (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  g_autoptr (ZltService) web = NULL;
  ZltService *web2;
  ZltUuid tunnel_id = *zlt_tunnel_get_id (tunnel);

  /* held, so the replacement cannot be allocated at the same address */
  web = g_object_ref (register_ok (f, tunnel, "web", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC));
  g_assert_cmpuint (zlt_service_get_assigned_port (web), ==, 30000);
  g_assert_true (zlt_registry_hold_tunnel (f->registry, tunnel, 60 * 1000));
  g_assert_nonnull (zlt_registry_resume_tunnel (f->registry, &tunnel_id, NULL));

  /* now asking for a specific other port: a new service replaces the held one */
  f->service_added = f->service_removed = 0;
  web2 = register_ok (f, tunnel, "web", ZLT_PROTOCOL_TCP, 30002, ZLT_EXPOSE_PUBLIC);
  g_assert_true (web2 != web);
  g_assert_cmpuint (zlt_service_get_assigned_port (web2), ==, 30002);
  g_assert_cmpuint (f->service_removed, ==, 1);
  g_assert_cmpuint (f->service_added, ==, 1);
  g_assert_false (zlt_port_pool_is_allocated (f->tcp, 30000));
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 1);
}

static void
test_registry_hold_expiry (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTunnel) tunnel = g_object_ref (add_tunnel (f));
  g_autoptr (GError) error = NULL;
  ZltUuid tunnel_id = *zlt_tunnel_get_id (tunnel);

  register_ok (f, tunnel, "web", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  register_ok (f, tunnel, "game", ZLT_PROTOCOL_UDP, 30010, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 4);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->udp), ==, 4);

  g_assert_true (zlt_registry_hold_tunnel (f->registry, tunnel, 30));
  g_assert_cmpuint (f->tunnel_removed, ==, 0);
  spin_until (&f->tunnel_removed, 1, 5000);

  g_assert_cmpuint (f->tunnel_removed, ==, 1);
  g_assert_cmpuint (f->service_removed, ==, 2);
  g_assert_null (zlt_registry_lookup_tunnel (f->registry, &tunnel_id));
  g_assert_false (zlt_registry_is_held (f->registry, tunnel));
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 0);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->udp), ==, 5);
  g_assert_null (zlt_registry_resume_tunnel (f->registry, &tunnel_id, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
}

static void
test_registry_hold_zero_and_cancel (Fixture *f, gconstpointer data)
{
  ZltTunnel *now = add_tunnel (f);
  ZltTunnel *later = add_tunnel (f);
  gboolean done = FALSE;

  register_ok (f, now, "web", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_true (zlt_registry_hold_tunnel (f->registry, now, 0));
  g_assert_cmpuint (f->tunnel_removed, ==, 1);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);

  /* removing a held tunnel cancels its timer: no second removal later */
  g_assert_true (zlt_registry_hold_tunnel (f->registry, later, 20));
  g_assert_true (zlt_registry_remove_tunnel (f->registry, later));
  g_assert_cmpuint (f->tunnel_removed, ==, 2);
  g_timeout_add (60, deadline_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (f->tunnel_removed, ==, 2);
}

static void
test_registry_reassign_port (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  g_autoptr (GError) error = NULL;
  ZltService *any, *fixed, *internal;
  guint assigned_notify = 0;

  any = register_ok (f, tunnel, "any", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  fixed = register_ok (f, tunnel, "fixed", ZLT_PROTOCOL_TCP, 30003, ZLT_EXPOSE_PUBLIC);
  internal = register_ok (f, tunnel, "internal", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_INTERNAL);
  g_signal_connect (any, "notify::assigned-port", G_CALLBACK (count_cb), &assigned_notify);

  /* bind failed on 30000: it is skipped from now on */
  g_assert_cmpuint (zlt_registry_reassign_port (f->registry, any, &error), ==, 30001);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_service_get_assigned_port (any), ==, 30001);
  g_assert_cmpuint (assigned_notify, ==, 1);
  g_assert_true (zlt_port_pool_is_unusable (f->tcp, 30000));
  g_assert_null (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, 30000));
  g_assert_true (zlt_registry_lookup_service_by_port (f->registry, ZLT_PROTOCOL_TCP, 30001) == any);

  /* a port asked for cannot be replaced */
  g_assert_cmpuint (zlt_registry_reassign_port (f->registry, fixed, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_service_get_assigned_port (fixed), ==, 0);
  g_assert_true (zlt_registry_unregister_service (f->registry, fixed, NULL));

  g_assert_cmpuint (zlt_registry_reassign_port (f->registry, internal, &error), ==, 0);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* everything comes back on removal: 30000 and 30003 stay unusable */
  g_assert_true (zlt_registry_remove_tunnel (f->registry, tunnel));
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 3);
  g_assert_cmpuint (zlt_port_pool_clear_unusable (f->tcp), ==, 2);
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);
}

static void
test_registry_service_id_change (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  ZltService *service = register_ok (f, tunnel, "a", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  ZltUuid old_id = *zlt_service_get_id (service);
  ZltUuid new_id;

  zlt_uuid_generate (&new_id);
  zlt_service_set_id (service, &new_id);
  g_assert_null (zlt_registry_lookup_service (f->registry, &old_id));
  g_assert_true (zlt_registry_lookup_service (f->registry, &new_id) == service);
  g_assert_true (zlt_registry_unregister_service (f->registry, service, NULL));
  g_assert_cmpuint (zlt_port_pool_get_n_free (f->tcp), ==, 5);
}

static void
test_registry_shared_pool_outlives (void)
{
  g_autoptr (ZltPortPool) pool = zlt_port_pool_new_range (40000, 40001);
  g_autoptr (ZltTunnel) tunnel = zlt_tunnel_new (ZLT_ROLE_SERVER);
  ZltRegistry *registry = zlt_registry_new (pool, NULL);
  g_autoptr (ZltPortPool) udp_default = NULL;
  ZltService *service;

  g_object_get (registry, "udp-pool", &udp_default, NULL);
  g_assert_cmpuint (zlt_port_pool_get_n_total (udp_default), ==, 1001);
  g_assert_true (zlt_registry_get_port_pool (registry, ZLT_PROTOCOL_TCP) == pool);
  g_assert_true (zlt_registry_add_tunnel (registry, tunnel, NULL));
  service = zlt_registry_register_service (registry, tunnel, "a", ZLT_PROTOCOL_TCP, 1, 0,
                                           ZLT_EXPOSE_PUBLIC, NULL);
  g_assert_cmpuint (zlt_service_get_assigned_port (service), ==, 40000);
  g_assert_true (zlt_registry_hold_tunnel (registry, tunnel, 60 * 1000));
  /* a registry going away gives its ports back and cancels its timers */
  g_object_unref (registry);
  g_assert_cmpuint (zlt_port_pool_get_n_free (pool), ==, 2);
}

static void
test_registry_bad_ranges (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltRegistry) registry = zlt_registry_new_from_ranges ("30000-", &error);

  g_assert_null (registry);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
}

static ZltTunnel *
add_tunnel_of (Fixture *f, const char *principal)
{
  ZltTunnel *tunnel = add_tunnel (f);

  zlt_tunnel_set_token_name (tunnel, principal);
  return tunnel;
}

/* A name belongs to the principal that registered it: others are refused while it is
 * registered and for name-hold after; its owner gets the old port back. */
static void
test_registry_owners (Fixture *f, gconstpointer data)
{
  ZltTunnel *alice = add_tunnel_of (f, "alice");
  ZltTunnel *bob = add_tunnel_of (f, "bob");
  ZltTunnel *alice2 = add_tunnel_of (f, "alice");
  ZltTunnel *anonymous = add_tunnel (f);
  g_autoptr (GError) error = NULL;
  ZltService *db, *again;
  guint16 port;

  zlt_registry_set_hold_times (f->registry, 60 * 1000, 60 * 1000);
  db = register_ok (f, alice, "db", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  port = zlt_service_get_assigned_port (db);
  g_assert_cmpstr (zlt_registry_get_name_owner (f->registry, "db"), ==, "alice");

  /* another principal cannot take the name, publicly or internally */
  g_assert_null (zlt_registry_register_service (f->registry, bob, "db", ZLT_PROTOCOL_TCP, 1, 0,
                                                ZLT_EXPOSE_INTERNAL, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_ALLOWED);
  g_assert_nonnull (strstr (error->message, "belongs to another token"));
  g_clear_error (&error);
  /* the same principal may, from another tunnel (a replica) */
  register_ok (f, alice2, "db", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_true (zlt_registry_unregister_service (f->registry,
                                                  zlt_tunnel_lookup_service (alice2, "db"), NULL));

  /* gone, but still alice's: bob is refused, and her old port is kept for her */
  g_assert_true (zlt_registry_unregister_service (f->registry, db, NULL));
  g_assert_cmpstr (zlt_registry_get_name_owner (f->registry, "db"), ==, "alice");
  g_assert_null (zlt_registry_register_service (f->registry, bob, "db", ZLT_PROTOCOL_TCP, 1, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_NOT_ALLOWED);
  g_clear_error (&error);
  g_assert_null (zlt_registry_register_service (f->registry, bob, "other", ZLT_PROTOCOL_TCP, 1,
                                                port, ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE);
  g_clear_error (&error);
  again = register_ok (f, alice, "db", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  g_assert_cmpuint (zlt_service_get_assigned_port (again), ==, port);

  /* tunnels without a principal (an embedder's own) are not held to owners */
  register_ok (f, anonymous, "free-for-all", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
  register_ok (f, bob, "free-for-all", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);

  /* with no hold, a released name is free at once */
  zlt_registry_set_hold_times (f->registry, 0, 0);
  g_assert_true (zlt_registry_unregister_service (f->registry, again, NULL));
  g_assert_null (zlt_registry_get_name_owner (f->registry, "db"));
  register_ok (f, bob, "db", ZLT_PROTOCOL_TCP, 0, ZLT_EXPOSE_PUBLIC);
}

/* What a peer sends arrives here unchecked only by mistake: still an error, never a
 * silent NULL. */
static void
test_registry_invalid (Fixture *f, gconstpointer data)
{
  ZltTunnel *tunnel = add_tunnel (f);
  const char *const names[] = { "", "a b", "new\nline", "dot.name", NULL };
  g_autoptr (GError) error = NULL;

  for (guint i = 0; names[i] != NULL; i++)
    {
      g_assert_null (zlt_registry_register_service (f->registry, tunnel, names[i], ZLT_PROTOCOL_TCP,
                                                    1, 0, ZLT_EXPOSE_PUBLIC, &error));
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID);
      g_clear_error (&error);
    }
  g_assert_null (
      zlt_registry_register_service (f->registry, tunnel, "p", 7, 1, 0, ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_null (zlt_registry_register_service (f->registry, tunnel, "p", ZLT_PROTOCOL_TCP, 0, 0,
                                                ZLT_EXPOSE_PUBLIC, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID);
  g_assert_cmpuint (zlt_tunnel_get_n_services (tunnel), ==, 0);
}

#define ADD(path, func)                                                                            \
  g_test_add ("/registry/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("tunnels", test_registry_tunnels);
  ADD ("limits", test_registry_limits);
  ADD ("duplicate-names", test_registry_duplicate_names);
  ADD ("ports", test_registry_ports);
  ADD ("unregister", test_registry_unregister);
  ADD ("direct-tunnel-changes", test_registry_direct_tunnel_changes);
  ADD ("existing-services", test_registry_existing_services);
  ADD ("remove-releases-ports", test_registry_remove_releases_ports);
  ADD ("hold-resume", test_registry_hold_resume);
  ADD ("resume-changed-terms", test_registry_resume_changed_terms);
  ADD ("hold-expiry", test_registry_hold_expiry);
  ADD ("hold-zero-and-cancel", test_registry_hold_zero_and_cancel);
  ADD ("reassign-port", test_registry_reassign_port);
  ADD ("service-id-change", test_registry_service_id_change);
  ADD ("owners", test_registry_owners);
  ADD ("invalid", test_registry_invalid);
  g_test_add_func ("/registry/shared-pool-outlives", test_registry_shared_pool_outlives);
  g_test_add_func ("/registry/bad-ranges", test_registry_bad_ranges);
  return g_test_run ();
}
