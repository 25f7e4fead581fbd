/* embed-agent.c: a zlayer-tunnel agent inside your own program.
 *
 * The agent dials a server, presents its token (from a file only the user can read),
 * registers a local service and keeps the tunnel up, reconnecting when it drops. Your
 * program learns what happens through signals: ZltAgent::registered when a service
 * got its public port, and the tunnel's ZltTunnel::connection-opened and
 * ::connection-closed for every connection relayed to a service.
 *
 * To have a server to dial, this example also starts one in the same process, with
 * the token-file validator plugin (the server's default); in real life it runs on a
 * public host. One line goes through the public port to the local echo service;
 * the program exits 0 when it came back and the connection callback saw it. */
#include <glib/gstdio.h>
#include <zlayer-tunnel.h>

#include "example-echo.h"

#define PORT_RANGE "30200-30299"

typedef struct
{
  GMainLoop *loop;
  guint16 public_port;
  guint n_opened;
  guint n_closed;
} State;

static void
registered_cb (ZltAgent *agent, ZltService *service, gpointer user_data)
{
  State *state = user_data;

  g_print ("agent: %s is public on port %u\n", zlt_service_get_name (service),
           zlt_service_get_assigned_port (service));
  state->public_port = zlt_service_get_assigned_port (service);
  g_main_loop_quit (state->loop);
}

static void
register_failed_cb (ZltAgent *agent, ZltService *service, GError *error, gpointer user_data)
{
  State *state = user_data;

  g_printerr ("agent: %s was refused: %s\n", zlt_service_get_name (service), error->message);
  g_main_loop_quit (state->loop);
}

/* the connection callback: a public client reached one of our services */
static void
connection_opened_cb (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  State *state = user_data;

  state->n_opened++;
  g_print ("agent: connection to %s (%u open)\n", zlt_service_get_name (service),
           zlt_service_get_active_connections (service));
}

static void
connection_closed_cb (ZltTunnel *tunnel, ZltService *service, gpointer user_data)
{
  State *state = user_data;

  state->n_closed++;
}

static ZltAgent *
start_agent (const char *url, const char *token_file, guint16 echo_port, ZltPluginLoader *loader,
             GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltClientConfig) config = NULL;

  /* the same keys as zlayer-tunnel.conf(5): [agent] and one [service:NAME] each */
  g_key_file_set_string (keyfile, "agent", "server", url);
  g_key_file_set_string (keyfile, "agent", "token-file", token_file);
  g_key_file_set_string (keyfile, "service:echo", "protocol", "tcp");
  g_key_file_set_integer (keyfile, "service:echo", "local-port", echo_port);
  config = zlt_client_config_new_from_keyfile (keyfile, error);
  if (config == NULL)
    return NULL;
  return zlt_agent_new (config, loader, error);
}

/* the server side, as a public host would run it */
static ZltServer *
start_server (const char *tokens_file, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltServer) server = NULL;

  g_key_file_set_string (keyfile, "server", "listen", "127.0.0.1:0");
  g_key_file_set_string (keyfile, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (keyfile, "server", "port-range", PORT_RANGE);
  g_key_file_set_string (keyfile, "server", "validator", "token-file");
  g_key_file_set_string (keyfile, "validator:token-file", "path", tokens_file);
  config = zlt_server_config_new_from_keyfile (keyfile, error);
  if (config == NULL)
    return NULL;
  server = zlt_server_new (config, loader, error);
  if (server == NULL || !zlt_server_start (server, error))
    return NULL;
  return g_steal_pointer (&server);
}

/* a new token: its hash to the server's tokens file, itself to the agent's file */
static gboolean
write_token_files (const char *tokens_file, const char *agent_token_file, GError **error)
{
  guint8 secret[24];
  g_autofree char *hex = NULL;
  g_autofree char *token = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *line = NULL;

  zlt_random_bytes (secret, sizeof secret);
  hex = zlt_hex_encode (secret, sizeof secret);
  token = g_strconcat ("zlt_", hex, NULL);
  hash = zlt_token_hash_hex (token);
  line = g_strdup_printf ("%s name=example register=echo\n", hash);
  return g_file_set_contents_full (tokens_file, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                   error)
         && g_file_set_contents_full (agent_token_file, token, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                      0600, error);
}

int
main (void)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (GSocketService) echo = NULL;
  g_autoptr (ZltServer) server = NULL;
  g_autoptr (ZltAgent) agent = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *tokens_file = NULL;
  g_autofree char *agent_token_file = NULL;
  g_autofree char *url = NULL;
  State state = { loop, 0, 0, 0 };
  gboolean timed_out = FALSE;
  gboolean echoed = FALSE;
  guint deadline;
  int status = 1;

  zlt_init ();
  dir = g_dir_make_tmp ("zlt-embed-agent-XXXXXX", &error);
  if (dir == NULL)
    goto out;
  tokens_file = g_build_filename (dir, "tokens", NULL);
  agent_token_file = g_build_filename (dir, "agent-token", NULL);
  if (!write_token_files (tokens_file, agent_token_file, &error))
    goto out;

  loader = zlt_plugin_loader_new (NULL);
  if (!zlt_plugin_loader_load_all (loader, &error))
    goto out;
  server = start_server (tokens_file, loader, &error);
  if (server == NULL)
    goto out;
  url = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", zlt_server_get_port (server));

  agent = start_agent (url, agent_token_file, example_echo_service_start (&echo), loader, &error);
  if (agent == NULL)
    goto out;
  g_signal_connect (agent, "registered", G_CALLBACK (registered_cb), &state);
  g_signal_connect (agent, "register-failed", G_CALLBACK (register_failed_cb), &state);
  g_signal_connect (zlt_agent_get_tunnel (agent), "connection-opened",
                    G_CALLBACK (connection_opened_cb), &state);
  g_signal_connect (zlt_agent_get_tunnel (agent), "connection-closed",
                    G_CALLBACK (connection_closed_cb), &state);

  deadline = example_deadline_add (loop, 30, &timed_out);
  zlt_agent_start (agent);
  g_main_loop_run (loop); /* until registered (or refused) */
  if (state.public_port != 0 && !timed_out)
    {
      example_echo_check_async (state.public_port, "hello, agent\n", &echoed, loop);
      g_main_loop_run (loop);
    }
  if (!timed_out)
    g_source_remove (deadline);
  g_print ("agent: echo %s, %u connection(s) opened, state %s\n", echoed ? "came back" : "failed",
           state.n_opened,
           zlt_agent_get_state (agent) == ZLT_TUNNEL_STATE_CONNECTED ? "connected"
                                                                     : "not connected");
  if (echoed && state.n_opened == 1)
    status = 0;
  zlt_agent_stop (agent);
  zlt_server_stop (server);

out:
  if (error != NULL)
    g_printerr ("embed-agent: %s\n", error->message);
  if (tokens_file != NULL)
    g_unlink (tokens_file);
  if (agent_token_file != NULL)
    g_unlink (agent_token_file);
  if (dir != NULL)
    g_rmdir (dir);
  return status;
}
