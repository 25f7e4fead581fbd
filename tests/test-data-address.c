/* test-data-address.c: data connections go where the control channel went
 *
 * A server name may resolve to another server between the control channel and a data
 * connection (DNS round robin, a changed record, a fleet behind one name). The other
 * server does not know the tunnel, so the agent must dial its data connections to the
 * address its control channel reached, keeping the name for Host and TLS. A resolver
 * of our own stands in for DNS (nothing here may ask a real one): "tunnel.test" is
 * 127.0.0.1 at the first lookup and 127.0.0.2 after, where a listener that knows no
 * tunnel counts what reaches it. */
#include "config.h"

#include "zlt-test-util.h"
#include "zlayer-tunnel.h"

#define TEST_NAME "tunnel.test"

/* ---- a resolver that answers one name, differently after the first time ---- */

#define TEST_TYPE_RESOLVER (test_resolver_get_type ())
G_DECLARE_FINAL_TYPE (TestResolver, test_resolver, TEST, RESOLVER, GResolver)

struct _TestResolver
{
  GResolver parent_instance;
  gint n_lookups; /* of TEST_NAME, any family */
};

G_DEFINE_FINAL_TYPE (TestResolver, test_resolver, G_TYPE_RESOLVER)

static GList *
test_resolver_answer (TestResolver *self, const char *name, GResolverNameLookupFlags flags,
                      GError **error)
{
  gint n;

  if (g_strcmp0 (name, TEST_NAME) != 0 || (flags & G_RESOLVER_NAME_LOOKUP_FLAGS_IPV6_ONLY))
    {
      g_set_error (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND, "no address for %s", name);
      return NULL;
    }
  n = g_atomic_int_add (&self->n_lookups, 1);
  return g_list_prepend (NULL, g_inet_address_new_from_string (n == 0 ? "127.0.0.1" : "127.0.0.2"));
}

static GList *
test_resolver_lookup_by_name_with_flags (GResolver *resolver, const char *name,
                                         GResolverNameLookupFlags flags, GCancellable *cancellable,
                                         GError **error)
{
  return test_resolver_answer (TEST_RESOLVER (resolver), name, flags, error);
}

static GList *
test_resolver_lookup_by_name (GResolver *resolver, const char *name, GCancellable *cancellable,
                              GError **error)
{
  return test_resolver_answer (TEST_RESOLVER (resolver), name, G_RESOLVER_NAME_LOOKUP_FLAGS_DEFAULT,
                               error);
}

static void
test_resolver_lookup_by_name_with_flags_async (GResolver *resolver, const char *name,
                                               GResolverNameLookupFlags flags,
                                               GCancellable *cancellable,
                                               GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (resolver, cancellable, callback, user_data);
  GError *error = NULL;
  GList *addresses = test_resolver_answer (TEST_RESOLVER (resolver), name, flags, &error);

  if (addresses == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, addresses, (GDestroyNotify) g_resolver_free_addresses);
}

static void
test_resolver_lookup_by_name_async (GResolver *resolver, const char *name,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  test_resolver_lookup_by_name_with_flags_async (
      resolver, name, G_RESOLVER_NAME_LOOKUP_FLAGS_DEFAULT, cancellable, callback, user_data);
}

static GList *
test_resolver_lookup_by_name_finish (GResolver *resolver, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
test_resolver_class_init (TestResolverClass *klass)
{
  GResolverClass *resolver_class = G_RESOLVER_CLASS (klass);

  resolver_class->lookup_by_name = test_resolver_lookup_by_name;
  resolver_class->lookup_by_name_async = test_resolver_lookup_by_name_async;
  resolver_class->lookup_by_name_finish = test_resolver_lookup_by_name_finish;
  resolver_class->lookup_by_name_with_flags = test_resolver_lookup_by_name_with_flags;
  resolver_class->lookup_by_name_with_flags_async = test_resolver_lookup_by_name_with_flags_async;
  resolver_class->lookup_by_name_with_flags_finish = test_resolver_lookup_by_name_finish;
}

static void
test_resolver_init (TestResolver *self)
{
}

/* ---- the server that does not know the tunnel ---- */

static gboolean
stranger_incoming (GSocketService *service, GSocketConnection *connection, GObject *source,
                   gpointer user_data)
{
  guint *n_accepted = user_data;

  (*n_accepted)++;
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

/* Connects to the public port, sends a line and checks it comes back, in a thread. */
static gboolean
echo_once (guint16 port)
{
  ZltTestTransfer transfer = { .port = port, .n_bytes = 4096, .n_connections = 1 };
  GThread *thread = zlt_test_transfer_start (&transfer);
  gboolean ok;

  zlt_test_transfer_finish (thread, &transfer, 10000);
  ok = transfer.ok && transfer.received == transfer.n_bytes;
  if (!ok)
    g_test_message ("echo through port %u: %s", port, transfer.error ? transfer.error : "short");
  g_free (transfer.error);
  return ok;
}

static void
test_data_follows_control (gconstpointer data)
{
  guint standby = GPOINTER_TO_UINT (data);
  g_autoptr (TestResolver) resolver = g_object_new (TEST_TYPE_RESOLVER, NULL);
  g_autoptr (GResolver) previous = g_resolver_get_default ();
  g_autoptr (GSocketService) stranger = g_socket_service_new ();
  g_autoptr (GSocketAddress) stranger_address = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *cert_file = NULL;
  g_autofree char *key_file = NULL;
  g_autofree char *pin = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;
  ZltTestHarness h;
  guint n_stranger = 0;
  guint16 public_port;

  zlt_test_harness_init (&h, standby ? "29800-29809" : "29810-29819");
  /* wss:// as across networks (plain ws:// to a name is warned about): the name still
   * goes into TLS, the pin is checked on the connections to the address */
  if (!zlt_test_make_certificate (h.tmpdir, &cert_file, &key_file))
    g_error ("certtool (gnutls-bin) failed to make a test certificate");
  cert = g_tls_certificate_new_from_file (cert_file, &error);
  g_assert_no_error (error);
  pin = zlt_tls_certificate_fingerprint (cert);
  g_key_file_set_string (h.server_keyfile, "server", "tls-certificate", cert_file);
  g_key_file_set_string (h.server_keyfile, "server", "tls-key", key_file);
  g_key_file_set_string (h.agent_keyfile, "agent", "tls-pinned-sha256", pin);
  zlt_test_harness_start_server (&h);
  /* the same port on 127.0.0.2: where the name points after the first lookup */
  stranger_address
      = g_inet_socket_address_new_from_string ("127.0.0.2", zlt_server_get_port (h.server));
  g_socket_listener_add_address (G_SOCKET_LISTENER (stranger), stranger_address,
                                 G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (stranger, "incoming", G_CALLBACK (stranger_incoming), &n_stranger);
  g_socket_service_start (stranger);

  g_resolver_set_default (G_RESOLVER (resolver));
  url = g_strdup_printf ("wss://" TEST_NAME ":%u/tunnel/v1", zlt_server_get_port (h.server));
  zlt_test_harness_set_agent_url (&h, url);
  g_key_file_set_integer (h.agent_keyfile, "agent", "standby-connections", standby);
  zlt_test_harness_add_service (&h, "echo", zlt_test_echo_get_port (h.echo), 0);
  zlt_test_harness_start_agent (&h);
  public_port = zlt_test_harness_wait_registered (&h, "echo");

  /* several connections: by Connect (no standby) or by standbys and their replacements */
  for (guint i = 0; i < 6; i++)
    g_assert_true (echo_once (public_port));
  g_assert_cmpuint (zlt_test_echo_get_n_accepted (h.echo), ==, 6);
  /* the control channel's lookup was the only one; nothing went to the other address */
  g_assert_cmpint (g_atomic_int_get (&resolver->n_lookups), ==, 1);
  g_assert_cmpuint (n_stranger, ==, 0);

  zlt_test_harness_clear (&h);
  g_socket_service_stop (stranger);
  g_resolver_set_default (previous);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();
  g_test_add_data_func ("/data-address/follows-control/by-connect", GUINT_TO_POINTER (0),
                        test_data_follows_control);
  g_test_add_data_func ("/data-address/follows-control/standby", GUINT_TO_POINTER (2),
                        test_data_follows_control);
  return g_test_run ();
}
