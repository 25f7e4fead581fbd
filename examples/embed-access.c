/* embed-access.c: node-to-node tunnels and on-demand access inside your own program.
 *
 * Two nodes, "edge" and "hub". The hub runs a server; a node tunnel "link" from edge
 * to hub exposes a service of the edge (here a local echo service) on the hub's
 * server as "node-link", internal: no public port, reachable only through access
 * sessions. A ZltNodeManager per node runs its side of every node tunnel: the hub's
 * registers the tunnel's token with its server's validator, the edge's runs an agent.
 *
 * Then a client holding a token allowed to reach "node-link" opens an access session
 * with a ZltAccessManager: a local port that leads to the service for a limited time
 * (DEFAULT_TTL). One line goes through it; the program exits 0 when it came back.
 * All three run in this one process here; in real life they are three machines. */
#include <glib/gstdio.h>
#include <zlayer-tunnel.h>

#include "example-echo.h"

#define PORT_RANGE "30300-30399"
/* how long an access session lasts unless the caller says otherwise, in seconds */
#define DEFAULT_TTL 300

typedef struct
{
  GMainLoop *loop;
  gboolean service_up;
  gboolean session_ready;
  gboolean session_refused;
} State;

static void
service_added_cb (ZltRegistry *registry, ZltService *service, gpointer user_data)
{
  State *state = user_data;

  if (g_strcmp0 (zlt_service_get_name (service), "node-link") != 0)
    return;
  g_print ("hub: node-link is up (%s)\n",
           zlt_service_get_expose (service) == ZLT_EXPOSE_INTERNAL ? "internal" : "public");
  state->service_up = TRUE;
  g_main_loop_quit (state->loop);
}

static void
session_ready_cb (ZltAccessManager *manager, ZltSession *session, gpointer user_data)
{
  State *state = user_data;

  g_print ("client: session to %s ready on 127.0.0.1:%u for %" G_GINT64_FORMAT " s\n",
           zlt_session_get_remote_service (session),
           zlt_access_manager_get_local_port (manager, session),
           zlt_session_get_remaining_seconds (session));
  state->session_ready = TRUE;
  g_main_loop_quit (state->loop);
}

static void
session_refused_cb (ZltAccessManager *manager, ZltSession *session, GError *error,
                    gpointer user_data)
{
  State *state = user_data;

  g_printerr ("client: session refused: %s\n", error->message);
  state->session_refused = TRUE;
  g_main_loop_quit (state->loop);
}

/* [node:link] as both nodes have it in their config: the edge's service on
 * @service_port becomes "node-link" on the hub */
static ZltNodeTunnel *
node_link_new (const char *url, const char *token_file, guint16 service_port, GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();

  g_key_file_set_string (keyfile, "node:link", "from", "edge");
  g_key_file_set_string (keyfile, "node:link", "to", "hub");
  g_key_file_set_string (keyfile, "node:link", "server", url);
  g_key_file_set_string (keyfile, "node:link", "token-file", token_file);
  g_key_file_set_integer (keyfile, "node:link", "local-port", service_port);
  g_key_file_set_string (keyfile, "node:link", "exposure", "internal");
  return zlt_node_tunnel_new_from_keyfile (keyfile, "node:link", NULL, error);
}

static ZltServer *
start_hub_server (const char *tokens_file, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltServer) server = NULL;

  g_key_file_set_string (keyfile, "server", "listen", "127.0.0.1:0");
  g_key_file_set_string (keyfile, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (keyfile, "server", "port-range", PORT_RANGE);
  g_key_file_set_string (keyfile, "validator:token-file", "path", tokens_file);
  config = zlt_server_config_new_from_keyfile (keyfile, error);
  if (config == NULL)
    return NULL;
  server = zlt_server_new (config, loader, error);
  if (server == NULL || !zlt_server_start (server, error))
    return NULL;
  return g_steal_pointer (&server);
}

static char *
new_token (void)
{
  guint8 secret[24];
  g_autofree char *hex = NULL;

  zlt_random_bytes (secret, sizeof secret);
  hex = zlt_hex_encode (secret, sizeof secret);
  return g_strconcat ("zlt_", hex, NULL);
}

static gboolean
write_private (const char *path, const char *contents, GError **error)
{
  return g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

int
main (void)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (GSocketService) echo = NULL;
  g_autoptr (ZltServer) server = NULL;
  g_autoptr (ZltNodeManager) hub = NULL;
  g_autoptr (ZltNodeManager) edge = NULL;
  g_autoptr (ZltNodeTunnel) hub_link = NULL;
  g_autoptr (ZltNodeTunnel) edge_link = NULL;
  g_autoptr (ZltAccessManager) client = NULL;
  g_autoptr (ZltClientConfig) client_config = NULL;
  g_autoptr (GKeyFile) client_keyfile = g_key_file_new ();
  g_autofree char *dir = NULL;
  g_autofree char *node_token = new_token ();
  g_autofree char *access_token = new_token ();
  g_autofree char *access_hash = zlt_token_hash_hex (access_token);
  g_autofree char *tokens_line = NULL;
  g_autofree char *url = NULL;
  const char *files[3] = { NULL };
  g_autoptr (ZltSession) session = NULL;
  State state = { loop, FALSE, FALSE, FALSE };
  gboolean timed_out = FALSE;
  gboolean echoed = FALSE;
  guint deadline = 0;
  guint16 echo_port;
  int status = 1;

  zlt_init ();
  dir = g_dir_make_tmp ("zlt-embed-access-XXXXXX", &error);
  if (dir == NULL)
    goto out;
  /* the hub's token file lists the access client's token (by hash) and what it may
   * reach; the node tunnel's token is the same file on both nodes, and the hub's
   * node manager adds it to the validator by itself */
  files[0] = g_build_filename (dir, "tokens", NULL);
  files[1] = g_build_filename (dir, "node-link-token", NULL);
  files[2] = g_build_filename (dir, "access-token", NULL);
  tokens_line = g_strdup_printf ("%s name=operator reach=node-*\n", access_hash);
  if (!write_private (files[0], tokens_line, &error)
      || !write_private (files[1], node_token, &error)
      || !write_private (files[2], access_token, &error))
    goto out;

  loader = zlt_plugin_loader_new (NULL);
  if (!zlt_plugin_loader_load_all (loader, &error))
    goto out;
  deadline = example_deadline_add (loop, 30, &timed_out);

  /* the hub: a server, and its node manager (inbound side: needs the server) */
  server = start_hub_server (files[0], loader, &error);
  if (server == NULL)
    goto out;
  url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", zlt_server_get_port (server));
  g_signal_connect (zlt_server_get_registry (server), "service-added",
                    G_CALLBACK (service_added_cb), &state);
  echo_port = example_echo_service_start (&echo);
  hub = zlt_node_manager_new ("hub", loader, server);
  hub_link = node_link_new (url, files[1], echo_port, &error);
  if (hub_link == NULL || !zlt_node_manager_add (hub, hub_link, &error))
    goto out;
  zlt_node_manager_start (hub);

  /* the edge: its node manager (outbound side: runs an agent, needs no server) */
  edge = zlt_node_manager_new ("edge", loader, NULL);
  edge_link = node_link_new (url, files[1], echo_port, &error);
  if (edge_link == NULL || !zlt_node_manager_add (edge, edge_link, &error))
    goto out;
  zlt_node_manager_start (edge);
  g_main_loop_run (loop); /* until node-link is registered on the hub */
  if (!state.service_up)
    goto out;

  /* the client: an access manager with the operator's token */
  g_key_file_set_string (client_keyfile, "agent", "server", url);
  g_key_file_set_string (client_keyfile, "agent", "token-file", files[2]);
  client_config = zlt_client_config_new_from_keyfile (client_keyfile, &error);
  if (client_config == NULL)
    goto out;
  client = zlt_access_manager_new (client_config, loader, &error);
  if (client == NULL)
    goto out;
  g_signal_connect (client, "session-ready", G_CALLBACK (session_ready_cb), &state);
  g_signal_connect (client, "session-refused", G_CALLBACK (session_refused_cb), &state);
  session = zlt_access_manager_start_session (client, "node-link", 0 /* any free port */,
                                              DEFAULT_TTL, &error);
  if (session == NULL)
    goto out;
  g_main_loop_run (loop); /* until the server confirmed (or refused) the session */
  if (!state.session_ready)
    goto out;

  example_echo_check_async (zlt_access_manager_get_local_port (client, session),
                            "hello from the client, through the hub, to the edge\n", &echoed, loop);
  g_main_loop_run (loop);
  g_print ("client: echo %s\n", echoed ? "came back" : "failed");
  if (echoed && !timed_out)
    status = 0;

out:
  if (error != NULL)
    g_printerr ("embed-access: %s\n", error->message);
  if (deadline != 0 && !timed_out)
    g_source_remove (deadline);
  if (timed_out)
    g_printerr ("embed-access: timed out\n");
  if (client != NULL && session != NULL)
    zlt_access_manager_stop_session (client, session, NULL);
  if (edge != NULL)
    zlt_node_manager_stop (edge);
  if (hub != NULL)
    zlt_node_manager_stop (hub);
  if (server != NULL)
    zlt_server_stop (server);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      if (files[i] != NULL)
        g_unlink (files[i]);
      g_free ((char *) files[i]);
    }
  if (dir != NULL)
    g_rmdir (dir);
  return status;
}
