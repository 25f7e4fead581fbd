/* embed-server.c: a zlayer-tunnel server inside your own program.
 *
 * The server takes its public ports from a port range and asks a token validator
 * of its own (ExampleValidator, below: one token, allowed to register "echo")
 * whether an agent may open a tunnel. To show it working, the same process then
 * runs an agent that exposes a local echo service, waits until the server's
 * registry lists the service, sends one line through its public port and exits:
 * 0 when the echo came back. */
#include <zlayer-tunnel.h>

#include "example-echo.h"

#define PORT_RANGE "30100-30199"

/* ---- a validator: the class to subclass is ZltValidator ---------------------------- */

#define EXAMPLE_TYPE_VALIDATOR (example_validator_get_type ())
G_DECLARE_FINAL_TYPE (ExampleValidator, example_validator, EXAMPLE, VALIDATOR, ZltValidator)

struct _ExampleValidator
{
  ZltValidator parent_instance;
  guint8 token_hash[ZLT_HASH_SIZE]; /* the server never needs the token itself */
};

G_DEFINE_TYPE (ExampleValidator, example_validator, ZLT_TYPE_VALIDATOR)

/* No I/O, so the synchronous vfunc is enough: the base class runs it for
 * zlt_validator_validate_async(). The credential is a hash challenge: find the stored
 * hash by the lookup key, then let the credential prove it knows the token. */
static ZltGrant *
example_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                            GError **error)
{
  ExampleValidator *self = EXAMPLE_VALIDATOR (validator);
  const char *const may_register[] = { "echo", NULL };

  if (!zlt_credential_matches_hash (credential, self->token_hash))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, "unknown token %s",
                   zlt_credential_get_lookup_key (credential));
      return NULL;
    }
  return zlt_grant_new ("example", self->token_hash, may_register, 0 /* never expires */);
}

static void
example_validator_class_init (ExampleValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  validator_class->name = "example";
  validator_class->validate = example_validator_validate;
}

static void
example_validator_init (ExampleValidator *self)
{
}

static ZltValidator *
example_validator_new (const char *token)
{
  ExampleValidator *self = g_object_new (EXAMPLE_TYPE_VALIDATOR, NULL);

  zlt_token_hash_raw (token, self->token_hash);
  return ZLT_VALIDATOR (self);
}

/* ---- the server --------------------------------------------------------------------- */

static void
service_added_cb (ZltRegistry *registry, ZltService *service, gpointer user_data)
{
  GMainLoop *loop = user_data;

  g_print ("server: %s registered, public port %u\n", zlt_service_get_name (service),
           zlt_service_get_assigned_port (service));
  g_main_loop_quit (loop);
}

static ZltServer *
start_server (const char *token, GMainLoop *loop, GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltPluginLoader) loader = NULL;
  g_autoptr (ZltValidator) validator = example_validator_new (token);
  g_autoptr (ZltControlTransport) control = NULL;
  g_autoptr (ZltTransport) tcp = NULL;
  g_autoptr (ZltTransport) udp = NULL;
  g_autoptr (ZltServer) server = NULL;

  /* the same keys as the [server] group of zlayer-tunnel.conf(5) */
  g_key_file_set_string (keyfile, "server", "listen", "127.0.0.1:0");
  g_key_file_set_string (keyfile, "server", "public-bind-address", "127.0.0.1");
  g_key_file_set_string (keyfile, "server", "port-range", PORT_RANGE);
  config = zlt_server_config_new_from_keyfile (keyfile, error);
  if (config == NULL)
    return NULL;

  /* the transports (websocket, tcp, udp) are plugins; ZLT_PLUGIN_DIR may point
   * elsewhere than the installed plugin directory */
  loader = zlt_plugin_loader_new (NULL);
  if (!zlt_plugin_loader_load_all (loader, error)
      || !zlt_plugin_loader_new_tunnel_transports (loader, &control, &tcp, &udp, error))
    return NULL;

  server = zlt_server_new_full (config, validator, control, tcp, udp);
  /* the registry holds tunnels, services and the port pools made from the range */
  g_signal_connect (zlt_server_get_registry (server), "service-added",
                    G_CALLBACK (service_added_cb), loop);
  if (!zlt_server_start (server, error))
    return NULL;
  return g_steal_pointer (&server);
}

/* ---- an agent, to have something to relay ------------------------------------------- */

static ZltAgent *
start_agent (ZltServer *server, const char *token, guint16 echo_port, GError **error)
{
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltServiceConfig) service = NULL;
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  g_autoptr (ZltControlTransport) control = NULL;
  g_autoptr (ZltTransport) tcp = NULL;
  g_autoptr (ZltTransport) udp = NULL;
  g_autofree char *url
      = g_strdup_printf ("ws://127.0.0.1:%u/tunnel/v1", zlt_server_get_port (server));
  ZltAgent *agent;

  g_key_file_set_string (keyfile, "agent", "server", url);
  /* the config must name a token source; zlt_agent_new_full() below takes the token
   * itself, so the variable is never read */
  g_key_file_set_string (keyfile, "agent", "token-env", "EXAMPLE_UNUSED_TOKEN");
  config = zlt_client_config_new_from_keyfile (keyfile, error);
  if (config == NULL)
    return NULL;
  service = zlt_service_config_new ("echo", ZLT_PROTOCOL_TCP, "127.0.0.1", echo_port, 0,
                                    ZLT_EXPOSE_PUBLIC);
  if (!zlt_client_config_add_service (config, service, error))
    return NULL;
  if (!zlt_plugin_loader_load_all (loader, error)
      || !zlt_plugin_loader_new_tunnel_transports (loader, &control, &tcp, &udp, error))
    return NULL;
  agent = zlt_agent_new_full (config, token, control, tcp, udp);
  zlt_agent_start (agent);
  return agent;
}

int
main (void)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GSocketService) echo = NULL;
  g_autoptr (ZltServer) server = NULL;
  g_autoptr (ZltAgent) agent = NULL;
  g_autoptr (GError) error = NULL;
  guint8 secret[24];
  g_autofree char *hex = NULL;
  g_autofree char *token = NULL;
  gboolean timed_out = FALSE;
  gboolean echoed = FALSE;
  guint deadline;
  ZltService *service;

  zlt_init ();
  /* a fresh random token: never put one on a command line or in a log */
  zlt_random_bytes (secret, sizeof secret);
  hex = zlt_hex_encode (secret, sizeof secret);
  token = g_strconcat ("zlt_", hex, NULL);

  deadline = example_deadline_add (loop, 30, &timed_out);
  server = start_server (token, loop, &error);
  if (server == NULL)
    {
      g_printerr ("server: %s\n", error->message);
      return 1;
    }
  g_print ("server: control channel on 127.0.0.1:%u, public ports %s\n",
           zlt_server_get_port (server), PORT_RANGE);

  agent = start_agent (server, token, example_echo_service_start (&echo), &error);
  if (agent == NULL)
    {
      g_printerr ("agent: %s\n", error->message);
      return 1;
    }
  g_main_loop_run (loop); /* until the registry's service-added */
  service = zlt_registry_lookup_service_by_name (zlt_server_get_registry (server), "echo", NULL);
  if (timed_out || service == NULL)
    {
      g_printerr ("the echo service was not registered: %s\n",
                  zlt_agent_get_last_error (agent) ? zlt_agent_get_last_error (agent) : "timeout");
      return 1;
    }

  example_echo_check_async (zlt_service_get_assigned_port (service), "hello through the tunnel\n",
                            &echoed, loop);
  g_main_loop_run (loop);
  if (!timed_out)
    g_source_remove (deadline);
  g_print ("echo %s; relays so far: %u\n", echoed ? "came back" : "failed",
           zlt_server_get_n_relays (server));

  zlt_agent_stop (agent);
  zlt_server_stop (server);
  return echoed && !timed_out ? 0 : 1;
}
